"""The plan layer: loading (YAML and JSON), validation, error messages, ranking, schema.

Every bad plan must end in one `PlanError` whose message is one line naming the field
(and the line, where the parser knows it): never a traceback, never another exception.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from refute import ConfigError, Hypothesis, TestResult, classify_exit, model
from refute.errors import PlanError
from refute.plan import (
    MAX_PLAN_BYTES,
    HypothesisSpec,
    Plan,
    Ranking,
    load_plan,
    loader,
    parse_plan,
    plan_json_schema,
    rank,
    score,
    to_config,
    to_control,
    to_hypotheses,
)

# The example plan of docs/plan.md, plus the hypothesis it depends on.
EXAMPLE = """\
version: 1                      # required, must be 1
bug: "Auth service randomly rejects valid sessions"
base: HEAD
include_uncommitted: false
defaults:
  timeout: 120
  repeat: 1
  env: {PYTHONHASHSEED: "0"}
setup: ["pip", "install", "-q", "-e", "."]
setup_timeout: 600
control:
  test: ["pytest", "-x", "tests/test_session.py"]
  timeout: 60
  repeat: 1
  env: {}
  shell: false
ranking:
  probability_weight: 0.5
  impact_weight: 0.3
  complexity_weight: 0.2
max_hypotheses: 5
concurrency: auto
keep_paths: [".venv", "node_modules"]
exit_codes: {139: fail, -11: fail}
hypotheses:
  - id: token-race
    description: Token expiry check races with refresh
    test: ["pytest", "-x", "tests/test_session.py::test_refresh_race"]
    shell: false
    patch: hypotheses/token-race.diff
    supported_if: fails
    estimated_test_time: 30
    probability: 0.7
    impact: 0.9
    test_complexity: 0.3
    timeout: 60
    repeat: 3
    env: {KEY: value}
    depends_on: [other-id]
    test_strategy: ""
    expected_behavior: ""
  - id: other-id
    description: The refresh job reads a stale clock
"""

MINIMAL = """\
version: 1
bug: a bug
hypotheses:
  - id: alpha
    description: first
    test: ["true"]
"""


def write(tmp_path: Path, text: str | bytes, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def example_dir(tmp_path: Path) -> Path:
    (tmp_path / "hypotheses").mkdir()
    (tmp_path / "hypotheses" / "token-race.diff").write_text("--- a/x\n+++ b/x\n")
    return write(tmp_path, EXAMPLE)


def plan_error(path: Path) -> PlanError:
    with pytest.raises(PlanError) as info:
        load_plan(path)
    err = info.value
    text = str(err)
    assert text.splitlines() == [text], f"not one line: {text!r}"
    assert text.startswith(f"{path}:")
    assert isinstance(err, ConfigError)
    return err


def bad(tmp_path: Path, text: str | bytes) -> PlanError:
    return plan_error(write(tmp_path, text))


def with_hypothesis(**fields: str) -> str:
    """MINIMAL with extra lines in its one hypothesis (each value written as given)."""
    return MINIMAL + "".join(f"    {key}: {value}\n" for key, value in fields.items())


# -- valid plans -----------------------------------------------------------------------------


def test_the_contract_example_loads_with_every_field(tmp_path: Path) -> None:
    plan = load_plan(example_dir(tmp_path))
    assert plan.version == 1
    assert plan.bug == "Auth service randomly rejects valid sessions"
    assert plan.base == "HEAD"
    assert plan.include_uncommitted is False
    assert (plan.defaults.timeout, plan.defaults.repeat) == (120, 1)
    assert plan.defaults.env == {"PYTHONHASHSEED": "0"}
    assert plan.setup_argv() == ["pip", "install", "-q", "-e", "."]
    assert plan.setup_timeout == 600
    assert plan.control is not None
    assert plan.control.test == ["pytest", "-x", "tests/test_session.py"]
    assert plan.ranking == Ranking(probability_weight=0.5, impact_weight=0.3, complexity_weight=0.2)
    assert plan.max_hypotheses == 5
    assert plan.concurrency == "auto"
    assert plan.keep_paths == [".venv", "node_modules"]
    assert plan.exit_code_overrides() == {139: TestResult.FAIL, -11: TestResult.FAIL}
    first = plan.hypotheses[0]
    assert first.id == "token-race"
    assert first.patch == "hypotheses/token-race.diff"
    assert (first.probability, first.impact, first.test_complexity) == (0.7, 0.9, 0.3)
    assert (first.timeout, first.repeat, first.depends_on) == (60, 3, ["other-id"])
    assert plan.source == (tmp_path / "plan.yaml").resolve()
    assert plan.base_dir == tmp_path.resolve()


def test_the_json_form_gives_the_same_plan(tmp_path: Path) -> None:
    from_yaml = load_plan(example_dir(tmp_path))
    data = yaml.safe_load(EXAMPLE)
    as_json = json.dumps(data, indent=2)  # exit codes become string keys: "139", "-11"
    assert '"139"' in as_json
    from_json = load_plan(write(tmp_path, as_json, "plan.json"))
    assert from_json.model_dump() == from_yaml.model_dump()
    # A one-line JSON document too, with a JSON exponent float (YAML 1.1 would read a string).
    data["defaults"]["timeout"] = 1.2e2
    compact = json.dumps(data).replace("120.0", "1.2e2")
    assert load_plan(write(tmp_path, compact, "compact.json")).defaults.timeout == 120


def test_defaults_fill_in_what_the_plan_leaves_out(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, MINIMAL))
    assert plan.base == "HEAD"
    assert plan.include_uncommitted is False
    assert (plan.defaults.timeout, plan.defaults.repeat, plan.defaults.env) == (300, 1, {})
    assert plan.setup is None
    assert plan.setup_argv() is None
    assert plan.setup_timeout == 600
    assert plan.control is None
    assert to_control(plan) is None
    assert plan.ranking == Ranking()
    assert (plan.max_hypotheses, plan.concurrency, plan.keep_paths) == (None, "auto", None)
    assert plan.exit_code_overrides() == {}
    spec = plan.hypotheses[0]
    assert spec.supported_if == "fails"
    assert spec.shell is False
    assert (spec.estimated_test_time, spec.probability, spec.impact) == (0, 0.5, 0.5)
    assert spec.test_complexity == 0.5
    assert (spec.timeout, spec.repeat, spec.patch, spec.depends_on) == (None, None, None, [])


def test_to_hypotheses_applies_defaults_and_resolves_patches(tmp_path: Path) -> None:
    plan = load_plan(example_dir(tmp_path))
    hypotheses = to_hypotheses(plan)
    assert [h.id for h in hypotheses] == ["other-id", "token-race"]  # dependency first
    other, race = hypotheses
    assert isinstance(race, Hypothesis)
    assert race.patch == str((tmp_path / "hypotheses" / "token-race.diff").resolve())
    assert Path(race.patch).is_absolute()
    assert (race.timeout, race.repeat) == (60, 3)
    assert race.env == {"PYTHONHASHSEED": "0", "KEY": "value"}
    assert race.dependencies == ["other-id"]
    assert race.argv() == ["pytest", "-x", "tests/test_session.py::test_refresh_race"]
    assert (race.probability, race.impact, race.test_complexity) == (0.7, 0.9, 0.3)
    assert race.estimated_test_time == 30
    # The hypothesis that sets nothing gets the plan's defaults and the seed's script.
    assert (other.timeout, other.repeat, other.env) == (120, 1, {"PYTHONHASHSEED": "0"})
    assert other.test is None
    assert other.argv() is None
    assert other.patch is None
    control = to_control(plan)
    assert control is not None
    assert (control.id, control.timeout, control.repeat) == ("control", 60, 1)
    assert control.argv() == ["pytest", "-x", "tests/test_session.py"]
    assert control.env == {"PYTHONHASHSEED": "0"}


def test_env_of_a_hypothesis_wins_over_the_defaults(tmp_path: Path) -> None:
    text = MINIMAL.replace("bug: a bug\n", "bug: a bug\ndefaults: {env: {A: '1', B: '2'}}\n")
    plan = load_plan(write(tmp_path, text + "    env: {B: three}\n"))
    assert to_hypotheses(plan)[0].env == {"A": "1", "B": "three"}


def test_string_tests_and_shell(tmp_path: Path) -> None:
    text = """\
version: 1
bug: b
setup: pip install -q -e '.[dev]'
hypotheses:
  - {id: split, description: d, test: "pytest -x 'tests/a b.py'"}
  - {id: shell, description: d, test: "exit 3 | cat; false", shell: true}
  - {id: argv-shell, description: d, test: [echo, "a b"], shell: true}
"""
    plan = load_plan(write(tmp_path, text))
    assert plan.setup_argv() == ["pip", "install", "-q", "-e", ".[dev]"]
    split, shell, argv_shell = to_hypotheses(plan, plan.hypotheses)
    assert split.argv() == ["pytest", "-x", "tests/a b.py"]
    assert shell.argv() == ["/bin/sh", "-c", "exit 3 | cat; false"]
    assert argv_shell.argv() == ["/bin/sh", "-c", "echo 'a b'"]


def test_supported_if_passes_and_exit_code_overrides(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "hypotheses:", "exit_codes: {139: fail, 125: error, 0: skip}\nhypotheses:"
    )
    plan = load_plan(write(tmp_path, text + "    supported_if: passes\n"))
    assert plan.hypotheses[0].supported_if == "passes"
    overrides = plan.exit_code_overrides()
    assert classify_exit(139, overrides) is TestResult.FAIL
    assert classify_exit(125, overrides) is TestResult.ERROR
    assert classify_exit(0, overrides) is TestResult.SKIP
    config = to_config(plan, concurrency=3, max_hypotheses=2)
    assert (config.max_concurrent_tests, config.max_hypotheses) == (3, 2)
    assert config.exit_code_overrides == overrides
    assert to_config(plan).max_hypotheses == 1  # all of them


def test_patch_paths_are_relative_to_the_plan_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "fix.diff").write_text("")
    path = write(tmp_path / "plans", with_hypothesis(patch="fix.diff"))
    monkeypatch.chdir(tmp_path)
    plan = load_plan(Path("plans/plan.yaml"))
    assert to_hypotheses(plan)[0].patch == str((tmp_path / "plans" / "fix.diff").resolve())
    assert plan.source == path.resolve()


def test_parse_plan_without_a_directory_does_not_check_patches() -> None:
    plan = parse_plan(with_hypothesis(patch="nowhere.diff"))
    assert plan.hypotheses[0].patch == "nowhere.diff"
    assert plan.source is None


def test_plans_are_immutable(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        plan.bug = "other"  # type: ignore[misc]


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    padding = "#" * 99 + "\n"
    text = MINIMAL + padding * ((MAX_PLAN_BYTES - len(MINIMAL)) // len(padding))
    assert len(text) <= MAX_PLAN_BYTES
    assert load_plan(write(tmp_path, text)).bug == "a bug"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert load_plan(write(tmp_path, b"\xef\xbb\xbf" + MINIMAL.encode())).bug == "a bug"


def test_the_examples_in_docs_plan_md_load(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plan.md").read_text()
    blocks = [part.split("```", 1)[0] for part in docs.split("```yaml\n")[1:]]
    assert len(blocks) >= 3
    (tmp_path / "hypotheses").mkdir()
    (tmp_path / "hypotheses" / "token-race.diff").write_text("")
    (tmp_path / "fix-floor-division.diff").write_text("")
    full = load_plan(write(tmp_path, blocks[0]))
    assert [s.id for s in full.ranked()] == ["clock-skew", "token-race"]
    assert load_plan(write(tmp_path, blocks[1])).hypotheses[0].test == (
        "pytest -x tests/test_stats.py::test_mean"
    )
    snippet = "version: 1\nbug: b\nhypotheses:\n" + blocks[2]
    assert load_plan(write(tmp_path, snippet)).hypotheses[0].supported_if == "passes"


# -- ranking ---------------------------------------------------------------------------------


def ranking_plan(*entries: str, header: str = "") -> Plan:
    body = "".join(f"  - {{{entry}}}\n" for entry in entries)
    return parse_plan(f"version: 1\nbug: b\n{header}hypotheses:\n{body}")


def test_score_follows_the_contract_formula() -> None:
    spec = HypothesisSpec(id="a", description="d", probability=0.7, impact=0.9, test_complexity=0.3)
    assert score(spec) == 0.56
    weights = Ranking(probability_weight=1, impact_weight=0, complexity_weight=1)
    assert score(spec, weights) == 0.4


def test_rank_orders_by_score_with_ties_in_plan_order() -> None:
    plan = ranking_plan(
        "id: low, description: d, probability: 0.1",
        "id: tie-a, description: d",
        "id: high, description: d, probability: 0.9",
        "id: tie-b, description: d",
        # the same score as tie-a by a different route: 0.6*0.5+0.5*0.3-0.75*0.2 = 0.3
        "id: tie-c, description: d, probability: 0.6, test_complexity: 0.75",
    )
    order = rank(plan)
    assert [item.spec.id for item in order.selected] == ["high", "tie-a", "tie-b", "tie-c", "low"]
    assert [item.rank for item in order.selected] == [1, 2, 3, 4, 5]
    assert order.by_id()["high"].score == 0.5  # 0.9*0.5 + 0.5*0.3 - 0.5*0.2
    assert order.dropped == ()
    assert plan.ranked() == order.specs


def test_max_hypotheses_keeps_the_top_k_and_reports_the_rest() -> None:
    plan = ranking_plan(
        "id: a, description: d, probability: 0.1",
        "id: b, description: d, probability: 0.9",
        "id: c, description: d, probability: 0.5",
        header="max_hypotheses: 2\n",
    )
    order = rank(plan)
    assert [item.spec.id for item in order.selected] == ["b", "c"]
    assert [(item.spec.id, item.rank) for item in order.dropped] == [("a", 3)]
    # The argument (the CLI's --max-hypotheses) wins over the plan.
    assert [spec.id for spec in plan.ranked(max_hypotheses=1)] == ["b"]
    assert [spec.id for spec in plan.ranked(max_hypotheses=10)] == ["b", "c", "a"]
    for wrong in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="max_hypotheses"):
            rank(plan, max_hypotheses=wrong)  # type: ignore[arg-type]


def test_weights_can_be_overridden() -> None:
    plan = ranking_plan(
        "id: likely, description: d, probability: 0.9, impact: 0.1",
        "id: costly, description: d, probability: 0.1, impact: 0.9",
    )
    assert [s.id for s in plan.ranked()] == ["likely", "costly"]
    impact_only = Ranking(probability_weight=0, impact_weight=1, complexity_weight=0)
    assert [s.id for s in plan.ranked(weights=impact_only)] == ["costly", "likely"]


def test_depends_on_runs_dependencies_first_otherwise_by_rank() -> None:
    plan = ranking_plan(
        "id: top, description: d, probability: 1.0, depends_on: [base]",
        "id: base, description: d, probability: 0.0, depends_on: [middle]",
        "id: middle, description: d, probability: 0.5",
        "id: free, description: d, probability: 0.9",
    )
    order = rank(plan)
    ids = [item.spec.id for item in order.selected]
    assert ids == ["free", "middle", "base", "top"]
    assert ids.index("middle") < ids.index("base") < ids.index("top")
    assert {item.spec.id: item.rank for item in order.selected} == {
        "top": 1,
        "free": 2,
        "middle": 3,
        "base": 4,
    }


def test_a_dependency_dropped_by_max_hypotheses_is_ignored() -> None:
    plan = ranking_plan(
        "id: top, description: d, probability: 1.0, depends_on: [weak]",
        "id: weak, description: d, probability: 0.0",
    )
    order = rank(plan, max_hypotheses=1)
    assert [item.spec.id for item in order.selected] == ["top"]
    assert order.ignored_dependencies == (("top", "weak"),)
    hypotheses = to_hypotheses(plan, order.specs)
    assert hypotheses[0].dependencies == []


def test_long_dependency_chains_do_not_recurse() -> None:
    count = 3000
    entries = [f"id: h{i}, description: d, depends_on: [h{i + 1}]" for i in range(count - 1)]
    plan = ranking_plan(*entries, f"id: h{count - 1}, description: d")
    assert [s.id for s in plan.ranked()] == [f"h{i}" for i in reversed(range(count))]


# -- JSON Schema -----------------------------------------------------------------------------


def test_the_json_schema_accepts_the_example_and_rejects_bad_plans() -> None:
    schema = plan_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "refute plan (version 1)"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = json.loads(json.dumps(yaml.safe_load(EXAMPLE)))  # as a JSON document
    assert list(validator.iter_errors(example)) == []
    assert list(validator.iter_errors(json.loads(json.dumps(yaml.safe_load(MINIMAL))))) == []
    for breakage in (
        {"version": 2},
        {"surprise": 1},
        {"hypotheses": []},
        {"concurrency": 0},
        {"exit_codes": {"x": "fail"}},
    ):
        assert list(validator.iter_errors({**example, **breakage})), breakage
    assert list(validator.iter_errors({k: v for k, v in example.items() if k != "bug"}))


# -- the bad-plan corpus ---------------------------------------------------------------------


def test_malformed_yaml(tmp_path: Path) -> None:
    err = bad(tmp_path, "version: 1\nbug: [unclosed\nhypotheses: []\n")
    assert "invalid YAML" in str(err)
    assert err.line is not None
    assert err.field == ""


def test_python_tags_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (
        "version: 1\nbug: b\n"
        f'hypotheses: !!python/object/apply:os.system ["echo pwned > {marker}"]\n'
    )
    err = bad(tmp_path, text)
    assert str(err) == (
        f"{tmp_path / 'plan.yaml'}:3: hypotheses: "
        "YAML tag !!python/object/apply:os.system is not allowed"
    )
    top_level = f'!!python/object/apply:os.system ["echo pwned > {marker}"]\n'
    assert "is not allowed" in str(bad(tmp_path, top_level))
    scalar = "version: 1\nbug: !!python/name:os.system ''\n"
    assert "!!python/name:os.system is not allowed" in str(bad(tmp_path, scalar))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nbug: !!set {a, b}\n", "YAML tag !!set is not allowed"),
        ("version: 1\nbug: !custom x\n", "YAML tag !custom is not allowed"),
        ("version: 1\nbug: !!binary aGVsbG8=\n", "YAML tag !!binary is not allowed"),
        ("version: 1\nbug: !!int abc\n", "cannot read 'abc' as !!int"),
        ("version: 1\n<<: {bug: b}\n", "merge keys (<<) are not allowed"),
        ("version: 1\n? [a, b]\n: c\n", "a mapping key must be a plain value"),
        ("version: 1\n---\nversion: 1\n", "one YAML document"),
    ],
)
def test_other_unsafe_or_odd_yaml(tmp_path: Path, text: str, message: str) -> None:
    err = bad(tmp_path, text)
    assert message in str(err)
    assert err.line is not None


def test_duplicate_keys(tmp_path: Path) -> None:
    err = bad(tmp_path, "version: 1\nbug: a\nbug: b\nhypotheses: []\n")
    assert (err.line, err.field) == (3, "bug")
    assert err.message == "duplicate key 'bug'"
    nested = MINIMAL + "    description: again\n"
    err = bad(tmp_path, nested)
    assert (err.line, err.field) == (7, "hypotheses[0].description")
    json_dupe = '{"version": 1, "version": 1}'
    assert "duplicate key 'version'" in str(bad(tmp_path, json_dupe))


def test_an_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    err = plan_error(path)
    assert time.monotonic() - started < 1.0
    assert "anchors (&name) are not allowed" in str(err)
    assert err.line == 1


def test_a_single_alias_is_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, "version: 1\nbug: *nothing\n")
    assert "aliases" in str(err) or "invalid YAML" in str(err)  # unknown alias: a parse error
    text = "version: 1\nbug: &b text\nbase: *b\n"
    err = bad(tmp_path, text)
    assert "anchors" in str(err)
    assert err.line == 2


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (
            'timeout: "5"',
            "hypotheses[0].timeout",
            "must be a number > 0 and <= 604800 (a week), got '5'",
        ),
        (
            "timeout: 0",
            "hypotheses[0].timeout",
            "must be a number > 0 and <= 604800 (a week), got 0",
        ),
        ("timeout: -3.5", "hypotheses[0].timeout", "must be a number > 0"),
        ("timeout: .inf", "hypotheses[0].timeout", "must be a number > 0"),
        ("timeout: .nan", "hypotheses[0].timeout", "must be a number > 0"),
        ("repeat: 0", "hypotheses[0].repeat", "must be an integer from 1 to 1000"),
        ("repeat: 2.0", "hypotheses[0].repeat", "must be an integer from 1 to 1000"),
        ("repeat: true", "hypotheses[0].repeat", "must be an integer from 1 to 1000, got true"),
        ("repeat: 1001", "hypotheses[0].repeat", "must be an integer from 1 to 1000, got 1001"),
        ("repeat: 100000000", "hypotheses[0].repeat", "from 1 to 1000, got 100000000"),
        ("repeat: 99999999999999999999", "hypotheses[0].repeat", "must be an integer from 1"),
        ("timeout: 604801", "hypotheses[0].timeout", "<= 604800 (a week), got 604801"),
        ("timeout: 1e300", "hypotheses[0].timeout", "<= 604800 (a week)"),
        ("estimated_test_time: 1e300", "hypotheses[0].estimated_test_time", "from 0 to 604800"),
        ("env: {REFUTE_SCOPE: x}", "hypotheses[0].env.REFUTE_SCOPE", "reserved for refute"),
        ("env: {REFUTE_RUN_ID: x}", "hypotheses[0].env.REFUTE_RUN_ID", "reserved for refute"),
        ("env: {REFUTE_: x}", "hypotheses[0].env.REFUTE_", "starting with REFUTE_ are reserved"),
        ("probability: 1.5", "hypotheses[0].probability", "must be a number between 0 and 1"),
        ("impact: -0.1", "hypotheses[0].impact", "must be a number between 0 and 1"),
        ("test_complexity: high", "hypotheses[0].test_complexity", "between 0 and 1"),
        (
            "estimated_test_time: -1",
            "hypotheses[0].estimated_test_time",
            "must be a number from 0 to 604800",
        ),
        ("supported_if: maybe", "hypotheses[0].supported_if", "must be one of: fails, passes"),
        ("shell: 'yes'", "hypotheses[0].shell", "must be true or false"),
        ("env: {A: 1}", "hypotheses[0].env.A", "must be a string, got 1"),
        ("env: {1: a}", "hypotheses[0].env", "key 1 must be a string"),
        ("env: {'A=B': c}", "hypotheses[0].env", "'A=B' is not a valid variable name"),
        ("env: [A]", "hypotheses[0].env", "must be a mapping"),
        ("depends_on: alpha", "hypotheses[0].depends_on", "must be a list"),
        ("test_strategy: 5", "hypotheses[0].test_strategy", "must be a string"),
        ("patch: ''", "hypotheses[0].patch", "must not be empty"),
    ],
)
def test_wrong_types_and_ranges(tmp_path: Path, extra: str, field: str, message: str) -> None:
    key, _, value = extra.partition(": ")
    err = bad(tmp_path, with_hypothesis(**{key: value}))
    assert err.field == field
    assert message in err.message
    assert err.line == 7
    assert str(err) == f"{tmp_path / 'plan.yaml'}:7: {field}: {err.message}"


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("[]", "must be a non-empty string or a list of strings, got a list"),
        ("''", "must be a non-empty string or a list of strings"),
        ("[pytest, 3]", "must be a non-empty string or a list of strings"),
        ("42", "must be a non-empty string or a list of strings, got 42"),
        ("['', x]", "argv[0] must not be empty"),
        ("'pytest \"unbalanced'", "cannot be split into arguments"),
        ("'   '", "must not be empty"),
        ('"a\\0b"', "NUL"),
    ],
)
def test_bad_test_commands(tmp_path: Path, test: str, message: str) -> None:
    text = MINIMAL.replace('    test: ["true"]\n', f"    test: {test}\n")
    err = bad(tmp_path, text)
    assert err.field == "hypotheses[0].test"
    assert message in err.message
    assert err.line == 6


def test_id_no_is_a_boolean_not_a_string(tmp_path: Path) -> None:
    err = bad(tmp_path, MINIMAL.replace("id: alpha", "id: no"))
    assert (err.field, err.line) == ("hypotheses[0].id", 4)
    assert err.message.startswith("must be a string, got false")
    assert "quote it" in err.message


def test_description_must_be_a_string(tmp_path: Path) -> None:
    err = bad(tmp_path, MINIMAL.replace("description: first", "description: 123"))
    assert (
        str(err)
        == f"{tmp_path / 'plan.yaml'}:5: hypotheses[0].description: must be a string, got 123"
    )
    blank = bad(tmp_path, MINIMAL.replace("description: first", "description: '  '"))
    assert blank.message == "must not be blank"
    missing = bad(tmp_path, MINIMAL.replace("    description: first\n", ""))
    assert (missing.field, missing.message, missing.line) == (
        "hypotheses[0].description",
        "required",
        4,
    )


def test_duplicate_ids(tmp_path: Path) -> None:
    text = MINIMAL + "  - {id: beta, description: d}\n  - {id: alpha, description: again}\n"
    err = bad(tmp_path, text)
    assert (err.field, err.line) == ("hypotheses[2].id", 8)
    assert err.message == "duplicate id (also hypotheses[0])"


def test_case_folded_duplicates_cannot_happen_because_ids_are_lowercase(tmp_path: Path) -> None:
    err = bad(tmp_path, MINIMAL + "  - {id: Alpha, description: d}\n")
    assert err.field == "hypotheses[1].id"
    assert "must match [a-z0-9][a-z0-9._-]{0,63}" in err.message


@pytest.mark.parametrize(
    ("hostile", "message"),
    [
        ("'../x'", "must match"),
        ("'--lock'", "must match"),
        ("a..b", "must not contain '..'"),
        ("x.lock", "must not end with '.lock'"),
        ("'a/b'", "must match"),
        ("'.hidden'", "must match"),
        ("''", "must match"),
        ("'a b'", "must match"),
        ("'x' ", "must match"),
        ("'\\u00e9t\\u00e9'", "must match"),
        ("'a\\nb'", "must match"),
        ("x" * 300, "must be at most 64 characters, got 300"),
        ("control", "'control' is reserved"),
        ("42", "must be a string, got 42"),
    ],
)
def test_hostile_ids(tmp_path: Path, hostile: str, message: str) -> None:
    if hostile == "'x' ":
        hostile = "'x!'"
    err = bad(tmp_path, MINIMAL.replace("id: alpha", f"id: {hostile}"))
    assert err.field == "hypotheses[0].id"
    assert message in err.message
    assert err.line == 4
    assert len(str(err)) < 200


def test_a_missing_patch_file(tmp_path: Path) -> None:
    err = bad(tmp_path, with_hypothesis(patch="hypotheses/missing.diff"))
    assert (err.field, err.line) == ("hypotheses[0].patch", 7)
    assert err.message == f"not found: {tmp_path / 'hypotheses' / 'missing.diff'}"
    (tmp_path / "adir").mkdir()
    err = bad(tmp_path, with_hypothesis(patch="adir"))
    assert err.message.startswith("is not a file")
    err = bad(tmp_path, with_hypothesis(patch="x" * 5000))
    assert err.field == "hypotheses[0].patch"


def test_empty_and_missing_hypotheses(tmp_path: Path) -> None:
    err = bad(tmp_path, "version: 1\nbug: b\nhypotheses: []\n")
    assert (err.field, err.message, err.line) == ("hypotheses", "must not be empty", 3)
    err = bad(tmp_path, "version: 1\nbug: b\n")
    assert (err.field, err.message) == ("hypotheses", "required")
    assert str(err) == f"{tmp_path / 'plan.yaml'}:1: hypotheses: required"
    err = bad(tmp_path, "version: 1\nbug: b\nhypotheses:\n")
    assert (err.field, err.message) == ("hypotheses", "must be a list, got null")


def test_dependency_cycles(tmp_path: Path) -> None:
    text = (
        "version: 1\nbug: b\nhypotheses:\n"
        "  - {id: a, description: d, depends_on: [b]}\n"
        "  - {id: b, description: d, depends_on: [c]}\n"
        "  - {id: c, description: d, depends_on: [a]}\n"
        "  - {id: d, description: d, depends_on: [a]}\n"
    )
    err = bad(tmp_path, text)
    assert err.message == "dependency cycle: a -> b -> c -> a"
    assert (err.field, err.line) == ("hypotheses[0].depends_on", 4)


def test_self_dependency(tmp_path: Path) -> None:
    err = bad(tmp_path, with_hypothesis(depends_on="[alpha]"))
    assert (err.field, err.line) == ("hypotheses[0].depends_on[0]", 7)
    assert err.message == "a hypothesis cannot depend on itself"


def test_unknown_dependency(tmp_path: Path) -> None:
    err = bad(tmp_path, with_hypothesis(depends_on="[ghost]"))
    assert (err.field, err.line) == ("hypotheses[0].depends_on[0]", 7)
    assert err.message == "unknown hypothesis id 'ghost'"


def test_unknown_fields(tmp_path: Path) -> None:
    err = bad(tmp_path, with_hypothesis(timout="5"))
    assert (err.field, err.line) == ("hypotheses[0].timout", 7)
    assert err.message == "unknown field 'timout' (did you mean 'timeout'?)"
    err = bad(tmp_path, MINIMAL.replace("bug: a bug", "bug: a bug\nsurprise: 1"))
    assert (err.field, err.message, err.line) == ("surprise", "unknown field 'surprise'", 3)
    err = bad(
        tmp_path, MINIMAL.replace("bug: a bug", "bug: a bug\ndefaults: {timeout: 1, rpeat: 2}")
    )
    assert err.field == "defaults.rpeat"
    assert "did you mean 'repeat'" in err.message
    err = bad(tmp_path, MINIMAL.replace("bug: a bug", "bug: a bug\ncontrol: {test: x, patch: y}"))
    assert (err.field, err.message) == ("control.patch", "unknown field 'patch'")
    # An unknown key carrying a line break still gives a one-line message.
    err = bad(tmp_path, MINIMAL.replace("bug: a bug", 'bug: a bug\n"x\\ny": 1'))
    assert "\\n" in str(err)


def test_versions(tmp_path: Path) -> None:
    for version, shown in (("2", "2"), ("'1'", "'1'"), ("true", "true"), ("1.0", "1.0")):
        err = bad(tmp_path, MINIMAL.replace("version: 1", f"version: {version}"))
        assert err.field == "version"
        assert err.line == 1
        assert "must be" in err.message
        assert shown in err.message
    err = bad(tmp_path, MINIMAL.replace("version: 1", "version: 2"))
    assert str(err) == f"{tmp_path / 'plan.yaml'}:1: version: must be 1, got 2"
    err = bad(tmp_path, MINIMAL.replace("version: 1\n", ""))
    assert (err.field, err.message) == ("version", "required")


@pytest.mark.parametrize(
    ("setting", "field", "message"),
    [
        ("concurrency: 0", "concurrency", "must be an integer from 1 to 256 or 'auto', got 0"),
        (
            "concurrency: many",
            "concurrency",
            "must be an integer from 1 to 256 or 'auto', got 'many'",
        ),
        ("max_hypotheses: 0", "max_hypotheses", "must be an integer from 1 to 10000"),
        ("max_hypotheses: 10001", "max_hypotheses", "must be an integer from 1 to 10000"),
        ("concurrency: 257", "concurrency", "from 1 to 256 or 'auto', got 257"),
        ("concurrency: 100000000", "concurrency", "from 1 to 256 or 'auto', got 100000000"),
        ("concurrency: 99999999999999999999", "concurrency", "from 1 to 256 or 'auto'"),
        ("setup_timeout: 1e9", "setup_timeout", "<= 604800 (a week)"),
        ("defaults: {repeat: 100000000}", "defaults.repeat", "from 1 to 1000, got 100000000"),
        ("defaults: {env: {REFUTE_SCOPE: x}}", "defaults.env.REFUTE_SCOPE", "reserved for refute"),
        ("control: {test: [a], env: {REFUTE_SCOPE: x}}", "control.env.REFUTE_SCOPE", "reserved"),
        ("control: {test: [a], repeat: 1001}", "control.repeat", "from 1 to 1000"),
        ("ranking: {impact_weight: 1e300}", "ranking.impact_weight", "from 0 to 1000"),
        ('bug: "a\\0b"', "bug", "must not contain a NUL character"),
        ("setup_timeout: 0", "setup_timeout", "must be a number > 0"),
        ("setup: 'pip install \"x'", "setup", "cannot be split into arguments"),
        ("setup: []", "setup", "must be a non-empty string or a list of strings"),
        ("base: --output=/tmp/x", "base", "must be a commit-ish"),
        ("base: ''", "base", "must not be empty"),
        ("include_uncommitted: 1", "include_uncommitted", "must be true or false"),
        ("keep_paths: [/etc]", "keep_paths[0]", "must be a relative path inside the worktree"),
        ("keep_paths: [../up]", "keep_paths[0]", "must be a relative path"),
        ("keep_paths: [.venv, a//b]", "keep_paths[1]", "must be a relative path"),
        ("keep_paths: .venv", "keep_paths", "must be a list"),
        ("exit_codes: {139: crash}", "exit_codes[139]", "must be one of: pass, fail, skip, error"),
        ("exit_codes: {x: fail}", "exit_codes", "key 'x' must be an integer"),
        ("exit_codes: {1: fail, '1': pass}", "exit_codes", "exit code 1 is listed twice"),
        ("exit_codes: {99999: fail}", "exit_codes", "exit code 99999 cannot happen"),
        ("exit_codes: {-65: fail}", "exit_codes", "exit code -65 cannot happen"),
        ("exit_codes: {true: fail}", "exit_codes", "key true must be an integer"),
        (
            "ranking: {impact_weight: -1}",
            "ranking.impact_weight",
            "must be a number from 0 to 1000",
        ),
        (
            "defaults: {timeout: '5'}",
            "defaults.timeout",
            "must be a number > 0 and <= 604800 (a week), got '5'",
        ),
        ("defaults: 5", "defaults", "must be a mapping"),
        ("control: {timeout: 5}", "control.test", "required"),
        ("control: {test: [a], shell: 1}", "control.shell", "must be true or false"),
        ("control: {test: 'a \"b'}", "control.test", "cannot be split into arguments"),
        ("bug: ''", "bug", "must not be empty"),
        ("bug: [a]", "bug", "must be a string, got a list"),
    ],
)
def test_bad_settings(tmp_path: Path, setting: str, field: str, message: str) -> None:
    replacement = f"{setting}\n" if setting.startswith("bug:") else f"bug: a bug\n{setting}\n"
    err = bad(tmp_path, MINIMAL.replace("bug: a bug\n", replacement))
    assert err.field == field
    assert message in err.message
    assert err.line in {2, 3}


def test_a_50_mb_file_is_refused_by_its_size_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    with path.open("wb") as handle:
        handle.write(MINIMAL.encode())
        handle.truncate(50 * 1024 * 1024)  # sparse: cheap to make, never read
    started = time.monotonic()
    err = plan_error(path)
    assert time.monotonic() - started < 1.0
    assert err.message == (
        f"is too large ({50 * 1024 * 1024} bytes; a plan may have at most "
        f"{MAX_PLAN_BYTES} bytes (1 MiB))"
    )
    assert (err.field, err.line) == ("", None)
    comments = ("# " + "x" * 97 + "\n") * (MAX_PLAN_BYTES // 100 + 1)
    assert "too large" in str(bad(tmp_path, MINIMAL + comments))


def test_the_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    for text, shown in (("- a\n- b\n", "a list"), ("just text\n", "'just text'"), ("42\n", "42")):
        err = bad(tmp_path, text)
        assert err.message == f"the top level must be a mapping (key: value), got {shown}"
        assert str(err) == f"{tmp_path / 'plan.yaml'}:1: {err.message}"


def test_an_empty_file(tmp_path: Path) -> None:
    for text in ("", "\n\n", "# only a comment\n", "---\n", "null\n"):
        err = bad(tmp_path, text)
        assert err.message == "the plan is empty"


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    err = bad(tmp_path, b"version: 1\nbug: caf\xe9\n")
    assert err.message == "is not UTF-8 text (byte 0xe9)"
    assert err.line == 2
    utf16 = MINIMAL.encode("utf-16")
    assert "is not UTF-8" in str(bad(tmp_path, utf16))


def test_control_characters_and_nul_are_refused(tmp_path: Path) -> None:
    err = bad(tmp_path, b"version: 1\nbug: a\x00b\n")
    assert "invalid YAML" in str(err)
    err = bad(
        tmp_path, 'version: 1\nbug: "a\\x07b"\nbase: "a\\0b"\n' + MINIMAL.split("bug: a bug\n")[1]
    )
    assert (err.field, err.line) == ("base", 3)


def test_a_nonexistent_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    err = plan_error(path)
    assert str(err) == f"{path}: file not found"
    assert (err.path, err.field, err.line) == (str(path), "", None)


def test_a_directory_instead_of_a_file(tmp_path: Path) -> None:
    err = plan_error(tmp_path)
    assert str(err) == f"{tmp_path}: is a directory, not a plan file"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "plan.fifo"
    os.mkfifo(path)
    err = plan_error(path)
    assert err.message == "is not a regular file"


def test_an_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # running as root
            pytest.skip("root reads everything")
        assert plan_error(path).message == "permission denied"
    finally:
        path.chmod(0o600)


def test_deep_nesting_is_refused_quickly(tmp_path: Path) -> None:
    deep = "version: 1\nbug: " + "[" * 100_000 + "]" * 100_000 + "\n"
    started = time.monotonic()
    err = bad(tmp_path, deep)
    assert time.monotonic() - started < 2.0
    assert "nest" in err.message  # libyaml's own limit, or ours
    err = bad(tmp_path, "version: 1\nbug: " + "[" * 40 + "]" * 40 + "\n")
    assert (err.message, err.line) == ("nested more than 32 levels deep", 2)


def test_only_the_first_problem_in_file_order_is_reported(tmp_path: Path) -> None:
    text = "version: 1\nbug: 5\nhypotheses:\n  - {id: A, description: 3}\n"
    err = bad(tmp_path, text)
    assert (err.field, err.line) == ("bug", 2)


# -- PlanError -------------------------------------------------------------------------------


def test_plan_error_formats() -> None:
    err = PlanError("plan.yaml", "hypotheses[2].timeout", "must be a number > 0", 12)
    assert str(err) == "plan.yaml:12: hypotheses[2].timeout: must be a number > 0"
    assert (err.path, err.line, err.field, err.message) == (
        "plan.yaml",
        12,
        "hypotheses[2].timeout",
        "must be a number > 0",
    )
    assert str(PlanError("plan.yaml", "bug", "required")) == "plan.yaml: bug: required"
    assert str(PlanError("plan.yaml", "", "file not found")) == "plan.yaml: file not found"
    assert str(PlanError("a\nb.yaml", "x\ny", "m\u2028n", 1)) == "a\\nb.yaml:1: x\\ny: m\\u2028n"
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert (str(copy), copy.line) == (str(err), 12)


# -- fuzzing: nothing but Plan or PlanError --------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_data = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["version", "bug", "hypotheses", "id", "description", "test", "timeout", "env", "x"]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def parsed(text: str) -> Plan | PlanError:
    try:
        return parse_plan(text)
    except PlanError as err:
        return err


def assert_one_line(result: Plan | PlanError) -> None:
    if isinstance(result, PlanError):
        assert str(result).splitlines() == [str(result)]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_plan_or_a_plan_error(text: str) -> None:
    assert_one_line(parsed(text))


@settings(max_examples=300, deadline=None)
@given(data=_data)
def test_any_structure_gives_a_plan_or_a_plan_error(data: object) -> None:
    assert_one_line(parsed(yaml.safe_dump(data)))


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(
        ["id", "description", "test", "timeout", "repeat", "probability", "env", "depends_on"]
    ),
    value=_data,
)
def test_any_hypothesis_field_value_gives_a_plan_or_a_plan_error(field: str, value: object) -> None:
    data = yaml.safe_load(MINIMAL)
    data["hypotheses"][0][field] = value
    result = parsed(yaml.safe_dump(data))
    assert_one_line(result)
    if isinstance(result, PlanError):
        assert result.field.startswith("hypotheses[0]")
    else:
        to_hypotheses(result)  # whatever validates also converts


# -- bounds (docs/plan.md, "Limits") -----------------------------------------------------------


def test_every_bound_is_the_one_model_defines() -> None:
    schema = plan_json_schema()
    text = json.dumps(schema)
    for bound in (model.MAX_REPEAT, model.MAX_CONCURRENCY, model.MAX_HYPOTHESES):
        assert f": {bound}" in text, bound
    assert schema["properties"]["hypotheses"]["maxItems"] == model.MAX_HYPOTHESES
    with pytest.raises(ConfigError, match="max_concurrent_tests"):
        model.FalsificationConfig(max_concurrent_tests=model.MAX_CONCURRENCY + 1)


def test_the_bounds_are_listed_in_the_plan_docs() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plan.md").read_text(encoding="utf-8")
    limits = docs[docs.index("## Limits") :]
    for name in ("MAX_REPEAT", "MAX_CONCURRENCY", "MAX_HYPOTHESES", "MAX_SECONDS", "MAX_WEIGHT"):
        value = getattr(model, name)
        assert f"{value:,g}".replace(",", "") in limits.replace(",", ""), name


def test_a_plan_at_the_bounds_is_valid(tmp_path: Path) -> None:
    hypotheses = [
        {"id": f"h{i}", "description": "d", "test": ["true"]} for i in range(model.MAX_HYPOTHESES)
    ]
    data = {
        "version": 1,
        "bug": "b",
        "concurrency": model.MAX_CONCURRENCY,
        "max_hypotheses": model.MAX_HYPOTHESES,
        "defaults": {"repeat": model.MAX_REPEAT, "timeout": model.MAX_SECONDS},
        "hypotheses": hypotheses,
    }
    plan = load_plan(write(tmp_path, json.dumps(data), "plan.json"))
    assert len(plan.hypotheses) == model.MAX_HYPOTHESES
    data["hypotheses"] = [*hypotheses, {"id": "one-more", "description": "d", "test": ["true"]}]
    err = plan_error(write(tmp_path, json.dumps(data), "over.json"))
    assert err.field == "hypotheses"
    assert "at most 10000 hypotheses, got 10001" in err.message


def test_the_reserved_prefix_is_case_sensitive_like_the_environment(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, with_hypothesis(env="{refute_scope: x, MY_REFUTE_X: y}")))
    assert plan.hypotheses[0].env == {"refute_scope": "x", "MY_REFUTE_X": "y"}


# -- JSON plans are read by a JSON parser -----------------------------------------------------


def test_a_json_plan_with_surrogate_pair_escapes_loads(tmp_path: Path) -> None:
    data = yaml.safe_load(MINIMAL)
    data["bug"] = "the \U0001f600 button crashes"
    data["hypotheses"][0]["description"] = "caf\u00e9 \U0001f4a5"
    text = json.dumps(data)  # ASCII only: the emoji become "\ud83d\ude00"
    assert "\\ud83d\\ude00" in text
    plan = load_plan(write(tmp_path, text, "plan.json"))
    assert plan.bug == "the \U0001f600 button crashes"
    assert plan.hypotheses[0].description == "caf\u00e9 \U0001f4a5"
    upper = load_plan(write(tmp_path, text, "PLAN.JSON"))
    assert upper.bug == plan.bug


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ('{"version": 1,\n "bug": "a",\n "bug": "b"}', 3, "bug", "duplicate key 'bug'"),
        ('{"version": 1,\n "bug": NaN}', 2, "bug", "NaN and Infinity are not numbers"),
        ('{"version": 1,\n "bug": -Infinity}', 2, "bug", "NaN and Infinity"),
        ('{"version": 1, "bug": 1e400}', 1, "bug", "the number '1e400' is out of range"),
        ('{"version": 1, "bug": "\\ud800"}', 1, "bug", "a lone surrogate"),
        ('{"version": 1, "bug": "\\udc00\\ud800"}', 1, "bug", "a lone surrogate"),
        ('{"version": 1, "bug": "a\tb"}', 1, "", "invalid JSON: Invalid control character"),
        ('{"version": 1,}', 1, "", "invalid JSON: expected '\"'"),
        ('{"version": 1} {}', 1, "", "invalid JSON: extra text after the plan"),
        ('{"version": 1', 1, "", "invalid JSON: expected ',' or '}', found the end"),
        ("{'version': 1}", 1, "", "invalid JSON: expected '\"'"),
        ('{"version": 1, "bug": ' + "9" * 5000 + "}", 1, "bug", "more than 100 digits"),
        ("[" * 40 + "]" * 40, 1, "", "nested more than 32 levels deep"),
        ("[1]", 1, "", "the top level must be a mapping"),
        ('"text"', 1, "", "the top level must be a mapping"),
        ("version: 1\nbug: b\n", 1, "", "invalid JSON: expected a value"),
    ],
)
def test_bad_json_plans(tmp_path: Path, text: str, line: int, field: str, message: str) -> None:
    err = plan_error(write(tmp_path, text, "plan.json"))
    assert message in err.message
    assert (err.line, err.field if field else "") == (line, field)
    assert "YAML" not in str(err)


def test_json_errors_name_the_line_of_the_value(tmp_path: Path) -> None:
    data = yaml.safe_load(MINIMAL)
    data["hypotheses"].append({"id": "beta", "description": "b", "test": ["x"], "repeat": 0})
    text = json.dumps(data, indent=2)
    err = plan_error(write(tmp_path, text, "plan.json"))
    expected = next(n for n, ln in enumerate(text.splitlines(), 1) if '"repeat"' in ln)
    assert (err.field, err.line) == ("hypotheses[1].repeat", expected)
    data["hypotheses"][1] = {"id": "beta", "description": "b", "tset": ["x"]}
    text = json.dumps(data, indent=2)
    err = plan_error(write(tmp_path, text, "plan.json"))
    expected = next(n for n, ln in enumerate(text.splitlines(), 1) if '"tset"' in ln)
    assert err.line == expected
    assert "did you mean 'test'" in err.message


def test_an_empty_json_plan(tmp_path: Path) -> None:
    err = plan_error(write(tmp_path, "  \n", "plan.json"))
    assert err.message == "the plan is empty"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=_data)
def test_any_json_structure_reads_as_json_does(data: object) -> None:
    """Whatever `json.dumps` writes (ASCII escapes or not) reads as `json.loads` reads it."""
    for text in (json.dumps(data), json.dumps(data, ensure_ascii=False, indent=1)):
        result: object
        try:
            result, _ = loader.parse_json(text, "plan.json")
        except PlanError as err:
            result = err
        if isinstance(result, PlanError):
            assert str(result).splitlines() == [str(result)]
            assert not isinstance(data, dict) or _refused_in_json(data), (data, result)
        else:
            assert result == json.loads(text)


def _refused_in_json(data: object) -> bool:
    """What `parse_json` refuses although `json.dumps` writes it: NaN/Infinity, lone surrogates."""
    if isinstance(data, float):
        return not math.isfinite(data)
    if isinstance(data, str):
        return any(0xD800 <= ord(char) <= 0xDFFF for char in data)
    if isinstance(data, dict):
        return any(_refused_in_json(key) or _refused_in_json(v) for key, v in data.items())
    if isinstance(data, list):
        return any(_refused_in_json(item) for item in data)
    return False
