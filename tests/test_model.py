"""The data model inherited from the seed: defaults, validation, serialisation, exit codes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refute import (
    ConfigError,
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    RefuteError,
    TestExecutionResult,
    TestExecutor,
    TestResult,
    classify_exit,
)

# -- FalsificationConfig ---------------------------------------------------------------------


def test_config_defaults_match_the_seed() -> None:
    cfg = FalsificationConfig()
    assert cfg.test_timeout == 300
    assert cfg.max_concurrent_tests == 5
    assert cfg.min_parallel_time == 60
    assert cfg.worktree_creation_time == 8.0
    assert cfg.session_startup_time == 5.0
    assert cfg.environment_setup_time == 5.0
    assert cfg.cleanup_time == 3.0
    assert cfg.max_hypotheses == 5
    assert cfg.probability_weight == 0.5
    assert cfg.impact_weight == 0.3
    assert cfg.complexity_weight == 0.2
    assert cfg.concurrency() == 5


def test_config_keyword_construction_like_the_seed() -> None:
    cfg = FalsificationConfig(test_timeout=10, max_concurrent_tests=2, max_hypotheses=3)
    assert (cfg.test_timeout, cfg.max_concurrent_tests, cfg.max_hypotheses) == (10, 2, 3)
    assert cfg.concurrency() == 2


def test_config_refute_additions_have_defaults() -> None:
    cfg = FalsificationConfig()
    assert cfg.log_dir is None
    assert cfg.exit_code_overrides == {}
    assert cfg.kill_grace_period >= 0
    assert cfg.output_limit_bytes >= 2
    # Mutable defaults are not shared between instances.
    cfg.exit_code_overrides[1] = TestResult.PASS
    assert FalsificationConfig().exit_code_overrides == {}


def test_config_log_dir_becomes_a_path(tmp_path: Path) -> None:
    cfg = FalsificationConfig(log_dir=str(tmp_path / "logs"))
    assert cfg.log_dir == tmp_path / "logs"
    assert isinstance(cfg.log_dir, Path)


def test_auto_concurrency_resolves_to_a_sane_int() -> None:
    cfg = FalsificationConfig(max_concurrent_tests="auto")
    value = cfg.concurrency()
    assert isinstance(value, int)
    assert not isinstance(value, bool)
    assert 1 <= value <= (os.cpu_count() or 1)
    assert value <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("test_timeout", 0),
        ("test_timeout", -1),
        ("test_timeout", math.nan),
        ("test_timeout", math.inf),
        ("test_timeout", True),
        ("test_timeout", "300"),
        ("max_concurrent_tests", 0),
        ("max_concurrent_tests", -3),
        ("max_concurrent_tests", True),
        ("max_concurrent_tests", False),
        ("max_concurrent_tests", 2.0),
        ("max_concurrent_tests", math.nan),
        ("max_concurrent_tests", "many"),
        ("min_parallel_time", -1),
        ("min_parallel_time", math.nan),
        ("worktree_creation_time", math.nan),
        ("worktree_creation_time", -0.5),
        ("session_startup_time", True),
        ("environment_setup_time", -1),
        ("cleanup_time", math.nan),
        ("kill_grace_period", -1),
        ("probability_weight", math.nan),
        ("impact_weight", -0.1),
        ("complexity_weight", True),
        ("max_hypotheses", 0),
        ("max_hypotheses", True),
        ("max_hypotheses", 2.5),
        ("output_limit_bytes", 1),
        ("output_limit_bytes", True),
    ],
)
def test_config_rejects_invalid_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        FalsificationConfig(**{field: value})
    assert excinfo.value.field == field
    assert field in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, RefuteError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"test_timeout": 0.01},
        {"max_concurrent_tests": 1},
        {"min_parallel_time": 0},
        {"cleanup_time": 0.0},
        {"kill_grace_period": 0},
        {"max_hypotheses": 1},
    ],
)
def test_config_accepts_boundary_values(kwargs: dict) -> None:
    FalsificationConfig(**kwargs)


# -- Hypothesis ------------------------------------------------------------------------------


def test_hypothesis_defaults() -> None:
    hyp = Hypothesis(id="h1", description="the cache is stale")
    assert hyp.test_strategy == ""
    assert hyp.expected_behavior == ""
    assert hyp.estimated_test_time == 0.0
    assert hyp.probability == 0.5
    assert hyp.impact == 0.5
    assert hyp.test_complexity == 0.5
    assert hyp.status is HypothesisStatus.PENDING
    assert hyp.dependencies == []
    assert hyp.test is None
    assert hyp.shell is False
    assert hyp.patch is None
    assert hyp.env == {}
    assert hyp.repeat == 1
    assert hyp.timeout is None
    assert hyp.argv() is None  # the seed's script convention


def test_hypothesis_mutable_defaults_are_not_shared() -> None:
    first = Hypothesis(id="a", description="")
    first.dependencies.append("x")
    first.env["K"] = "v"
    second = Hypothesis(id="b", description="")
    assert second.dependencies == []
    assert second.env == {}


def test_hypothesis_seed_positional_construction() -> None:
    hyp = Hypothesis(
        "h1", "desc", "strategy", "expected", 12.5, 0.9, 0.8, 0.1, HypothesisStatus.TESTING, ["h0"]
    )
    assert hyp.test_strategy == "strategy"
    assert hyp.expected_behavior == "expected"
    assert hyp.estimated_test_time == 12.5
    assert (hyp.probability, hyp.impact, hyp.test_complexity) == (0.9, 0.8, 0.1)
    assert hyp.status is HypothesisStatus.TESTING
    assert hyp.dependencies == ["h0"]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("id", {"id": ""}),
        ("id", {"id": "a/b"}),
        ("id", {"id": "."}),
        ("id", {"id": ".."}),
        ("id", {"id": "a\0b"}),
        ("id", {"id": 5}),
        ("probability", {"probability": 1.5}),
        ("probability", {"probability": -0.1}),
        ("probability", {"probability": math.nan}),
        ("impact", {"impact": 2}),
        ("test_complexity", {"test_complexity": -1}),
        ("estimated_test_time", {"estimated_test_time": -1}),
        ("estimated_test_time", {"estimated_test_time": math.nan}),
        ("estimated_test_time", {"estimated_test_time": math.inf}),
        ("repeat", {"repeat": 0}),
        ("repeat", {"repeat": True}),
        ("repeat", {"repeat": 1.5}),
        ("timeout", {"timeout": 0}),
        ("timeout", {"timeout": -1}),
        ("timeout", {"timeout": math.nan}),
        ("test", {"test": ""}),
        ("test", {"test": "   "}),
        ("test", {"test": []}),
        ("test", {"test": "echo 'unterminated"}),
        ("env", {"env": {"A=B": "x"}}),
        ("env", {"env": {"": "x"}}),
        ("env", {"env": {"A": 1}}),
    ],
)
def test_hypothesis_rejects_invalid_values(field: str, kwargs: dict) -> None:
    values = {"id": "h1", "description": "d", **kwargs}
    with pytest.raises(ConfigError) as excinfo:
        Hypothesis(**values)
    assert excinfo.value.field == field
    assert field in str(excinfo.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"probability": 0.0, "impact": 1.0, "test_complexity": 0},
        {"estimated_test_time": 0},
        {"timeout": 0.001},
        {"repeat": 10},
        {"id": "with spaces and-dashes_1"},
        {"test": ["true"], "env": {"A": ""}},
    ],
)
def test_hypothesis_accepts_boundary_values(kwargs: dict) -> None:
    Hypothesis(**{"id": "h1", "description": "d", **kwargs})


def test_hypothesis_argv() -> None:
    assert Hypothesis(id="a", description="", test="pytest -k 'x and y'").argv() == [
        "pytest",
        "-k",
        "x and y",
    ]
    assert Hypothesis(id="a", description="", test=["echo", "$HOME"]).argv() == ["echo", "$HOME"]
    # S604: shell=True here is the Hypothesis field under test, not a subprocess call.
    shell_str = Hypothesis(id="a", description="", test="echo $HOME | cat", shell=True)  # noqa: S604
    assert shell_str.argv() == ["/bin/sh", "-c", "echo $HOME | cat"]
    shell_list = Hypothesis(id="a", description="", test=["echo", "a b"], shell=True)  # noqa: S604
    assert shell_list.argv() == ["/bin/sh", "-c", "echo 'a b'"]


# -- score -----------------------------------------------------------------------------------


def test_score_formula_with_seed_weights() -> None:
    hyp = Hypothesis(id="h", description="", probability=0.8, impact=0.6, test_complexity=0.4)
    # 0.8 * 0.5 + 0.6 * 0.3 - 0.4 * 0.2
    assert hyp.score() == pytest.approx(0.5)
    assert hyp.score(FalsificationConfig()) == pytest.approx(0.5)


def test_score_uses_config_weights() -> None:
    hyp = Hypothesis(id="h", description="", probability=0.8, impact=0.6, test_complexity=0.4)
    cfg = FalsificationConfig(probability_weight=1.0, impact_weight=0.0, complexity_weight=1.0)
    assert hyp.score(cfg) == pytest.approx(0.4)


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(deadline=None)  # no per-example deadline: a loaded machine must not fail these
@given(probability=unit, impact=unit, complexity=unit, pw=unit, iw=unit, cw=unit)
def test_score_formula_property(
    probability: float, impact: float, complexity: float, pw: float, iw: float, cw: float
) -> None:
    hyp = Hypothesis(
        id="h", description="", probability=probability, impact=impact, test_complexity=complexity
    )
    cfg = FalsificationConfig(probability_weight=pw, impact_weight=iw, complexity_weight=cw)
    expected = probability * pw + impact * iw - complexity * cw
    assert hyp.score(cfg) == pytest.approx(expected)
    assert hyp.score() == pytest.approx(probability * 0.5 + impact * 0.3 - complexity * 0.2)


def test_score_orders_hypotheses() -> None:
    likely = Hypothesis(
        id="likely", description="", probability=0.9, impact=0.9, test_complexity=0.1
    )
    unlikely = Hypothesis(
        id="unlikely", description="", probability=0.1, impact=0.1, test_complexity=0.9
    )
    assert likely.score() > unlikely.score()


# -- enums and pytest collection -------------------------------------------------------------


def test_test_result_values() -> None:
    assert {r.name: r.value for r in TestResult} == {
        "PASS": "pass",
        "FAIL": "fail",
        "TIMEOUT": "timeout",
        "ERROR": "error",
        "SKIP": "skip",
    }
    assert TestResult("pass") is TestResult.PASS


def test_hypothesis_status_members() -> None:
    seed = {
        "PENDING": "pending",
        "TESTING": "testing",
        "FALSIFIED": "falsified",
        "SUPPORTED": "supported",
        "INCONCLUSIVE": "inconclusive",
    }
    members = {s.name: s.value for s in HypothesisStatus}
    assert seed.items() <= members.items()
    assert members["FLAKY"] == "flaky"
    for name, value in members.items():
        assert value == name.lower()


@pytest.mark.parametrize("cls", [TestResult, TestExecutionResult, TestExecutor])
def test_seed_names_starting_with_test_are_not_collected(cls: type) -> None:
    assert cls.__test__ is False


def test_test_result_has_no_test_member() -> None:
    assert "__test__" not in TestResult.__members__
    assert len(TestResult) == 5


# -- TestExecutionResult ---------------------------------------------------------------------


def test_execution_result_defaults() -> None:
    result = TestExecutionResult(hypothesis_id="h", result=TestResult.PASS, duration=1.5)
    assert result.stdout == ""
    assert result.stderr == ""
    assert result.exit_code == 0
    assert result.worktree_path == ""
    assert result.error_message == ""
    assert result.metrics == {}
    assert result.stdout_log == ""
    assert result.stderr_log == ""
    assert result.started_at == 0.0
    assert result.not_run is False
    assert TestExecutionResult("h", TestResult.SKIP, 0.0, metrics={"not_run": True}).not_run is True


def test_execution_result_to_dict_is_json_ready() -> None:
    result = TestExecutionResult(
        hypothesis_id="h", result=TestResult.TIMEOUT, duration=2.0, metrics={"confidence": 0.3}
    )
    data = result.to_dict()
    assert data["result"] == "timeout"
    assert json.loads(json.dumps(data)) == data


def test_from_dict_ignores_unknown_keys() -> None:
    hyp = Hypothesis.from_dict(
        {"id": "h", "description": "d", "status": "falsified", "new_field": 1}
    )
    assert hyp.status is HypothesisStatus.FALSIFIED
    result = TestExecutionResult.from_dict(
        {"hypothesis_id": "h", "result": "fail", "duration": 1.0, "from_the_future": True}
    )
    assert result.result is TestResult.FAIL
    assert result.metrics == {}


# -- property-based round trips --------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)
hyp_ids = st.text(min_size=1, max_size=20).filter(
    lambda s: "/" not in s and "\0" not in s and s not in {".", ".."}
)
env_keys = st.text(min_size=1, max_size=10).filter(lambda s: "=" not in s)
tests = st.one_of(
    st.none(),
    st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4),
    st.sampled_from(["echo hi", "pytest -k 'a and b' tests/", "make check"]),
)

hypotheses = st.builds(
    Hypothesis,
    id=hyp_ids,
    description=st.text(max_size=30),
    test_strategy=st.text(max_size=20),
    expected_behavior=st.text(max_size=20),
    estimated_test_time=non_negative,
    probability=unit,
    impact=unit,
    test_complexity=unit,
    status=st.sampled_from(HypothesisStatus),
    dependencies=st.lists(hyp_ids, max_size=3),
    test=tests,
    shell=st.booleans(),
    patch=st.one_of(st.none(), st.text(max_size=30)),
    env=st.dictionaries(env_keys, st.text(max_size=10), max_size=3),
    repeat=st.integers(min_value=1, max_value=50),
    timeout=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e6)),
)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)

execution_results = st.builds(
    TestExecutionResult,
    hypothesis_id=hyp_ids,
    result=st.sampled_from(TestResult),
    duration=non_negative,
    stdout=st.text(max_size=50),
    stderr=st.text(max_size=50),
    exit_code=st.integers(min_value=-64, max_value=300),
    worktree_path=st.text(max_size=30),
    error_message=st.text(max_size=30),
    metrics=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    stdout_log=st.text(max_size=20),
    stderr_log=st.text(max_size=20),
    started_at=non_negative,
)


@settings(deadline=None)  # no per-example deadline: a loaded machine must not fail these
@given(hypotheses)
def test_hypothesis_round_trip(hyp: Hypothesis) -> None:
    data = hyp.to_dict()
    assert data["status"] == hyp.status.value
    assert Hypothesis.from_dict(data) == hyp
    assert Hypothesis.from_dict(json.loads(json.dumps(data))) == hyp


@settings(deadline=None)  # no per-example deadline: a loaded machine must not fail these
@given(execution_results)
def test_execution_result_round_trip(result: TestExecutionResult) -> None:
    data = result.to_dict()
    assert data["result"] == result.result.value
    restored = TestExecutionResult.from_dict(data)
    assert restored == result
    assert restored.result is result.result
    assert TestExecutionResult.from_dict(json.loads(json.dumps(data))) == result


# -- classify_exit ---------------------------------------------------------------------------


def expected_outcome(code: int) -> TestResult:
    if code == 0:
        return TestResult.PASS
    if 1 <= code <= 124:
        return TestResult.FAIL
    if code == 125:
        return TestResult.SKIP
    return TestResult.ERROR


def test_classify_exit_table_exhaustive() -> None:
    for code in range(-64, 301):
        assert classify_exit(code) is expected_outcome(code), code
        assert classify_exit(code, {}) is expected_outcome(code), code
        assert classify_exit(code, None) is expected_outcome(code), code


@settings(deadline=None)  # no per-example deadline: a loaded machine must not fail these
@given(st.integers(min_value=-64, max_value=300))
def test_classify_exit_property(code: int) -> None:
    outcome = classify_exit(code)
    assert outcome is expected_outcome(code)
    if code < 0:
        assert outcome is TestResult.ERROR  # death by a signal
    if code in (126, 127) or code >= 128:
        assert outcome is TestResult.ERROR


@settings(deadline=None)  # no per-example deadline: a loaded machine must not fail these
@given(
    st.integers(min_value=-64, max_value=300),
    st.dictionaries(
        st.integers(min_value=-64, max_value=300), st.sampled_from(TestResult), max_size=8
    ),
)
def test_classify_exit_overrides_property(code: int, overrides: dict[int, TestResult]) -> None:
    expected = overrides.get(code, expected_outcome(code))
    assert classify_exit(code, overrides) is expected


def test_classify_exit_signal_override() -> None:
    assert classify_exit(-11) is TestResult.ERROR
    assert classify_exit(-11, {-11: TestResult.FAIL}) is TestResult.FAIL
    assert classify_exit(139, {-11: TestResult.FAIL}) is TestResult.ERROR
