"""The seed's own test cases (tests/test_async_executor.py in the seed), ported to refute.

The seed ran `<worktree>/.falsification/test_<id>.sh` directly in the worktree; refute keeps
that convention when a hypothesis has no `test`, and adds argv/shell commands, per-run
environments and a documented exit-code table. Every test here starts real processes.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

import refute
from refute import (
    AsyncTestExecutor,
    ConfigError,
    CostModel,
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)

# Generous bounds: a 0.5 s timeout on a loaded 2-core machine may take a few seconds to
# enforce (TERM, reap), but never anywhere near the test's own 30 s sleep.
SHORT_TIMEOUT = 0.5
TIMEOUT_LOWER = 0.4
TIMEOUT_UPPER = 5.0


# -- helpers ---------------------------------------------------------------------------------


def make_worktree(tmp_path: Path, name: str) -> Path:
    worktree = tmp_path / "worktrees" / name
    worktree.mkdir(parents=True)
    return worktree


def write_script(worktree: Path, hyp_id: str, body: str, *, executable: bool = True) -> Path:
    """Write the seed's convention script `<worktree>/.falsification/test_<id>.sh`."""
    folder = worktree / ".falsification"
    folder.mkdir(exist_ok=True)
    script = folder / f"test_{hyp_id}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    mode = stat.S_IRUSR | stat.S_IWUSR
    if executable:
        mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    script.chmod(mode)
    return script


def seed_hypothesis(hyp_id: str, **kwargs) -> Hypothesis:
    return Hypothesis(
        id=hyp_id,
        description=f"hypothesis {hyp_id}",
        test_strategy="run the falsification script",
        expected_behavior="exit 0 if the hypothesis survives",
        estimated_test_time=kwargs.pop("estimated_test_time", 1.0),
        **kwargs,
    )


def py_hypothesis(hyp_id: str, code: str, **kwargs) -> Hypothesis:
    """A hypothesis whose test is `python -c <code>` (argv form, no shell)."""
    return Hypothesis(
        id=hyp_id, description=f"python {hyp_id}", test=[sys.executable, "-c", code], **kwargs
    )


def run_one(
    hyp: Hypothesis, worktree: Path, config: FalsificationConfig | None = None
) -> TestExecutionResult:
    return AsyncTestExecutor(config).execute_single(hyp, worktree)


NO_CORE = "import resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "


# -- single test: pass / fail / timeout / missing script -------------------------------------


def test_single_pass(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    write_script(worktree, "h1", 'echo "hello from h1"\npwd\nexit 0')
    result = TestExecutor(FalsificationConfig(test_timeout=30)).execute_single(
        seed_hypothesis("h1"), worktree
    )

    assert isinstance(result, TestExecutionResult)
    assert result.hypothesis_id == "h1"
    assert result.result is TestResult.PASS
    assert result.exit_code == 0
    assert "hello from h1" in result.stdout
    # The script runs with the worktree as its working directory.
    assert str(worktree.resolve()) in result.stdout.splitlines()
    assert result.worktree_path == str(worktree)
    assert result.error_message == ""
    assert result.duration >= 0
    assert "confidence" in result.metrics


def test_single_fail(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    write_script(worktree, "h1", "echo 'assertion failed' >&2\nexit 1")
    result = TestExecutor(FalsificationConfig(test_timeout=30)).execute_single(
        seed_hypothesis("h1"), worktree
    )

    assert result.hypothesis_id == "h1"
    assert result.result is TestResult.FAIL
    assert result.exit_code == 1
    assert "assertion failed" in result.stderr


def test_single_timeout(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    write_script(worktree, "h1", "echo started\nsleep 30\necho never")
    config = FalsificationConfig(test_timeout=SHORT_TIMEOUT)
    began = time.monotonic()
    result = TestExecutor(config).execute_single(seed_hypothesis("h1"), worktree)
    wall = time.monotonic() - began

    assert result.result is TestResult.TIMEOUT
    assert result.exit_code == 124
    assert "timed out after" in result.error_message
    assert TIMEOUT_LOWER <= result.duration <= TIMEOUT_UPPER
    assert wall <= TIMEOUT_UPPER + 3.0
    assert "never" not in result.stdout


def test_single_missing_script(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")  # no .falsification/test_h1.sh
    result = TestExecutor().execute_single(seed_hypothesis("h1"), worktree)

    assert result.hypothesis_id == "h1"
    assert result.result is TestResult.ERROR
    assert "not found" in result.error_message
    assert result.metrics["confidence"] == pytest.approx(0.2)


def test_single_script_not_executable(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    write_script(worktree, "h1", "exit 0", executable=False)
    result = TestExecutor().execute_single(seed_hypothesis("h1"), worktree)

    assert result.result is TestResult.ERROR
    assert "not executable" in result.error_message


# -- parallel execution ----------------------------------------------------------------------


def test_parallel_three_hypotheses_alternating_exit_codes(tmp_path: Path) -> None:
    codes = {"h0": 0, "h1": 1, "h2": 0}
    hypotheses = []
    worktrees = {}
    for hyp_id, code in codes.items():
        worktree = make_worktree(tmp_path, hyp_id)
        write_script(worktree, hyp_id, f"echo 'running {hyp_id}'\nexit {code}")
        hypotheses.append(seed_hypothesis(hyp_id))
        worktrees[hyp_id] = worktree

    results = TestExecutor(FalsificationConfig(test_timeout=30)).execute_parallel(
        hypotheses, worktrees
    )

    assert len(results) == 3
    by_id = {r.hypothesis_id: r for r in results}
    assert set(by_id) == set(codes)
    expected = {"h0": TestResult.PASS, "h1": TestResult.FAIL, "h2": TestResult.PASS}
    for hyp_id, outcome in expected.items():
        result = by_id[hyp_id]
        assert result.result is outcome, hyp_id
        assert result.exit_code == codes[hyp_id]
        assert f"running {hyp_id}" in result.stdout
        assert result.worktree_path == str(worktrees[hyp_id])
    # refute documents input order for the list APIs.
    assert [r.hypothesis_id for r in results] == ["h0", "h1", "h2"]


def test_parallel_results_follow_hypotheses_not_positions(tmp_path: Path) -> None:
    """Outcomes stay attached to their ids when the input order differs from finish order."""
    worktrees = {}
    hypotheses = []
    # The first hypothesis finishes last; its outcome must not be swapped with another's.
    plan = [("slow_fail", "sleep 0.5\nexit 3"), ("fast_pass", "exit 0"), ("fast_skip", "exit 125")]
    for hyp_id, body in plan:
        worktrees[hyp_id] = make_worktree(tmp_path, hyp_id)
        write_script(worktrees[hyp_id], hyp_id, body)
        hypotheses.append(seed_hypothesis(hyp_id))

    results = AsyncTestExecutor(FalsificationConfig(test_timeout=30)).execute_parallel(
        hypotheses, worktrees
    )
    by_id = {r.hypothesis_id: r for r in results}
    assert by_id["slow_fail"].result is TestResult.FAIL
    assert by_id["slow_fail"].exit_code == 3
    assert by_id["fast_pass"].result is TestResult.PASS
    assert by_id["fast_skip"].result is TestResult.SKIP
    assert [r.hypothesis_id for r in results] == ["slow_fail", "fast_pass", "fast_skip"]


def test_parallel_empty_input() -> None:
    assert TestExecutor().execute_parallel([], {}) == []


def test_parallel_one_result_per_hypothesis_despite_broken_inputs(tmp_path: Path) -> None:
    good = make_worktree(tmp_path, "good")
    no_script = make_worktree(tmp_path, "no_script")
    hypotheses = [
        py_hypothesis("good", "print('ok')"),
        py_hypothesis("no_worktree_entry", "print('unreachable')"),
        py_hypothesis("missing_dir", "print('unreachable')"),
        Hypothesis(id="bad_command", description="", test=["/nonexistent/refute-no-such-command"]),
        seed_hypothesis("no_script"),
    ]
    worktrees = {
        "good": good,
        "missing_dir": tmp_path / "does-not-exist",
        "bad_command": good,
        "no_script": no_script,
    }

    results = TestExecutor(FalsificationConfig(test_timeout=30)).execute_parallel(
        hypotheses, worktrees
    )

    assert len(results) == len(hypotheses)
    assert [r.hypothesis_id for r in results] == [h.id for h in hypotheses]
    by_id = {r.hypothesis_id: r for r in results}
    assert by_id["good"].result is TestResult.PASS
    assert by_id["good"].stdout.strip() == "ok"
    for hyp_id in ("no_worktree_entry", "missing_dir", "bad_command", "no_script"):
        assert by_id[hyp_id].result is TestResult.ERROR, hyp_id
        assert by_id[hyp_id].error_message, hyp_id
        assert "unreachable" not in by_id[hyp_id].stdout
    assert "not found" in by_id["missing_dir"].error_message
    assert "not found" in by_id["bad_command"].error_message
    assert by_id["bad_command"].exit_code == 127
    assert "not found" in by_id["no_script"].error_message


@pytest.mark.parametrize("api", ["sync", "facade"])
def test_duplicate_ids_raise_config_error(tmp_path: Path, api: str) -> None:
    worktree = make_worktree(tmp_path, "w")
    hypotheses = [py_hypothesis("dup", "print(1)"), py_hypothesis("dup", "print(2)")]
    executor = AsyncTestExecutor() if api == "sync" else TestExecutor()
    with pytest.raises(ConfigError) as excinfo:
        executor.execute_parallel(hypotheses, {"dup": worktree})
    assert isinstance(excinfo.value, refute.ConfigError)
    assert "dup" in str(excinfo.value)


@pytest.mark.asyncio
async def test_duplicate_ids_raise_config_error_async(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    hypotheses = [py_hypothesis("dup", "print(1)"), py_hypothesis("dup", "print(2)")]
    with pytest.raises(refute.ConfigError):
        await AsyncTestExecutor().execute_parallel_async(hypotheses, {"dup": worktree})


# -- should_parallelize ----------------------------------------------------------------------


def test_should_parallelize_single_hypothesis_is_false() -> None:
    executor = TestExecutor()
    assert executor.should_parallelize([seed_hypothesis("h1", estimated_test_time=600)]) is False
    assert executor.should_parallelize([]) is False


def test_should_parallelize_five_long_tests_is_true() -> None:
    hypotheses = [seed_hypothesis(f"h{i}", estimated_test_time=60) for i in range(5)]
    assert TestExecutor().should_parallelize(hypotheses) is True
    assert AsyncTestExecutor().should_parallelize(hypotheses) is True


def test_should_parallelize_two_short_tests_is_false() -> None:
    hypotheses = [seed_hypothesis(f"h{i}", estimated_test_time=10) for i in range(2)]
    assert TestExecutor().should_parallelize(hypotheses) is False
    assert AsyncTestExecutor().should_parallelize(hypotheses) is False


def test_measured_cost_model_flips_the_decision() -> None:
    short = [seed_hypothesis(f"s{i}", estimated_test_time=10) for i in range(2)]
    long = [seed_hypothesis(f"l{i}", estimated_test_time=60) for i in range(5)]
    cheap = CostModel(fixed=0.5, per_hypothesis=0.5, source="measured")
    dear = CostModel(fixed=100.0, per_hypothesis=50.0, source="measured")

    # Seed costs: 20 s <= 10 s + 7 + 2*16 -> sequential; measured: 20 > 10 + 1.5 -> parallel.
    assert AsyncTestExecutor().should_parallelize(short) is False
    assert AsyncTestExecutor(cost_model=cheap).should_parallelize(short) is True
    assert TestExecutor(cost_model=cheap).should_parallelize(short) is True
    # Seed costs: 300 s > 60 + 7 + 80 -> parallel; measured: 300 <= 60 + 100 + 250.
    assert AsyncTestExecutor().should_parallelize(long) is True
    assert AsyncTestExecutor(cost_model=dear).should_parallelize(long) is False

    decision = TestExecutor(cost_model=cheap).explain_parallelization(short)
    assert decision.parallel is True
    assert decision.cost_source == "measured"
    assert decision.sequential_time == pytest.approx(20.0)
    assert decision.longest_test == pytest.approx(10.0)
    assert decision.overhead == pytest.approx(1.5)


def test_config_estimates_feed_the_seed_cost_model() -> None:
    short = [seed_hypothesis(f"s{i}", estimated_test_time=10) for i in range(2)]
    free = FalsificationConfig(worktree_creation_time=0, environment_setup_time=0, cleanup_time=0)
    # 20 s > 10 s + 7 s fixed + 0 per hypothesis.
    assert TestExecutor(free).should_parallelize(short) is True
    assert TestExecutor(free).explain_parallelization(short).cost_source == "seed"


# -- confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "duration", "expected"),
    [
        (TestResult.TIMEOUT, 0.5, 0.3),
        (TestResult.TIMEOUT, 300.0, 0.3),
        (TestResult.ERROR, 0.0, 0.2),
        (TestResult.ERROR, 10.0, 0.2),
        (TestResult.PASS, 0.1, 0.6),
        (TestResult.PASS, 4.99, 0.6),
        (TestResult.PASS, 5.0, 0.85),
        (TestResult.PASS, 30.0, 0.85),
        (TestResult.FAIL, 1.0, 0.6),
        (TestResult.FAIL, 10.0, 0.85),
    ],
)
def test_calculate_confidence(outcome: TestResult, duration: float, expected: float) -> None:
    assert AsyncTestExecutor()._calculate_confidence(outcome, duration) == pytest.approx(expected)
    assert TestExecutor()._calculate_confidence(outcome, duration) == pytest.approx(expected)


def test_confidence_in_metrics_follows_the_seed_rule_on_real_runs(tmp_path: Path) -> None:
    """The seed's rule, checked against its known values on runs of each kind: TIMEOUT
    0.3, ERROR 0.2, PASS and FAIL 0.6 under 5 s and 0.85 from 5 s."""
    worktree = make_worktree(tmp_path, "w")
    hypotheses = [
        py_hypothesis("quick-pass", "pass"),
        py_hypothesis("quick-fail", "raise SystemExit(1)"),
        py_hypothesis("slow-pass", "import time; time.sleep(5.2)"),
        py_hypothesis("slow-fail", "import time; time.sleep(5.2); raise SystemExit(1)"),
        py_hypothesis("crashes", "raise SystemExit(127)"),
        Hypothesis(id="not-found", description="", test=["/nonexistent/refute-no-such-command"]),
        py_hypothesis("hangs", "import time; time.sleep(30)", timeout=SHORT_TIMEOUT),
    ]
    executor = AsyncTestExecutor(FalsificationConfig(test_timeout=60, max_concurrent_tests=7))
    results = executor.execute_parallel(hypotheses, {h.id: worktree for h in hypotheses})
    by_id = {r.hypothesis_id: r for r in results}

    expected = {
        "quick-pass": (TestResult.PASS, 0.6),
        "quick-fail": (TestResult.FAIL, 0.6),
        "slow-pass": (TestResult.PASS, 0.85),
        "slow-fail": (TestResult.FAIL, 0.85),
        "crashes": (TestResult.ERROR, 0.2),
        "not-found": (TestResult.ERROR, 0.2),
        "hangs": (TestResult.TIMEOUT, 0.3),
    }
    assert {k: r.result for k, r in by_id.items()} == {k: v[0] for k, v in expected.items()}
    for hyp_id, (_, confidence) in expected.items():
        assert by_id[hyp_id].metrics["confidence"] == pytest.approx(confidence), hyp_id
    # The runs fell on the side of the 5 s line their expected value assumes.
    assert by_id["slow-pass"].duration >= 5.0
    assert by_id["slow-fail"].duration >= 5.0
    assert by_id["quick-pass"].duration < 5.0
    assert by_id["quick-fail"].duration < 5.0


# -- direct async API ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_execute_parallel_async(tmp_path: Path) -> None:
    hypotheses = []
    worktrees = {}
    for hyp_id, code in (("a", 0), ("b", 1), ("c", 0)):
        worktrees[hyp_id] = make_worktree(tmp_path, hyp_id)
        write_script(worktrees[hyp_id], hyp_id, f"exit {code}")
        hypotheses.append(seed_hypothesis(hyp_id))

    executor = AsyncTestExecutor(FalsificationConfig(test_timeout=30))
    results = await executor.execute_parallel_async(hypotheses, worktrees)

    by_id = {r.hypothesis_id: r.result for r in results}
    assert by_id == {"a": TestResult.PASS, "b": TestResult.FAIL, "c": TestResult.PASS}
    assert len(results) == 3


@pytest.mark.asyncio
async def test_execute_single_async(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    write_script(worktree, "h1", "echo async\nexit 0")
    result = await AsyncTestExecutor().execute_single_async(seed_hypothesis("h1"), worktree)
    assert result.result is TestResult.PASS
    assert "async" in result.stdout


@pytest.mark.asyncio
async def test_execute_single_async_timeout(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    hyp = py_hypothesis("h1", "import time; time.sleep(30)")
    executor = AsyncTestExecutor(FalsificationConfig(test_timeout=SHORT_TIMEOUT))
    result = await executor.execute_single_async(hyp, worktree)
    assert result.result is TestResult.TIMEOUT
    assert result.exit_code == 124
    assert TIMEOUT_LOWER <= result.duration <= TIMEOUT_UPPER


@pytest.mark.asyncio
async def test_sync_api_works_inside_a_running_loop(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "h1")
    result = TestExecutor().execute_single(py_hypothesis("h1", "print('inside')"), worktree)
    assert result.result is TestResult.PASS
    assert result.stdout.strip() == "inside"


# -- the TestExecutor facade -----------------------------------------------------------------


class RecordingExecutor(AsyncTestExecutor):
    """A real AsyncTestExecutor that notes which of its methods the facade called."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def execute_parallel(self, *args, **kwargs):
        self.calls.append("execute_parallel")
        return super().execute_parallel(*args, **kwargs)

    def execute_single(self, *args, **kwargs):
        self.calls.append("execute_single")
        return super().execute_single(*args, **kwargs)

    def should_parallelize(self, *args, **kwargs):
        self.calls.append("should_parallelize")
        return super().should_parallelize(*args, **kwargs)


def test_facade_is_backed_by_async_executor() -> None:
    config = FalsificationConfig(test_timeout=12)
    facade = TestExecutor(config)
    assert isinstance(facade.async_executor, AsyncTestExecutor)
    assert facade.config is config
    assert facade.async_executor.config is config
    assert TestExecutor().config == FalsificationConfig()


def test_facade_delegates_to_async_executor(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    facade = TestExecutor()
    backend = RecordingExecutor(facade.config)
    facade.async_executor = backend

    single = facade.execute_single(py_hypothesis("one", "print(1)"), worktree)
    many = facade.execute_parallel([py_hypothesis("two", "print(2)")], {"two": worktree})
    decision = facade.should_parallelize([seed_hypothesis("x")])

    assert backend.calls == ["execute_single", "execute_parallel", "should_parallelize"]
    assert single.result is TestResult.PASS
    assert single.stdout.strip() == "1"
    assert [r.stdout.strip() for r in many] == ["2"]
    assert decision is False


# -- timeouts through the sync API -----------------------------------------------------------


@pytest.mark.parametrize("where", ["config", "hypothesis"])
def test_sync_api_enforces_timeout(tmp_path: Path, where: str) -> None:
    worktree = make_worktree(tmp_path, "w")
    if where == "config":
        config = FalsificationConfig(test_timeout=SHORT_TIMEOUT)
        hyp = py_hypothesis("sleepy", "import time; print('start', flush=True); time.sleep(30)")
    else:
        config = FalsificationConfig(test_timeout=300)
        hyp = py_hypothesis(
            "sleepy",
            "import time; print('start', flush=True); time.sleep(30)",
            timeout=SHORT_TIMEOUT,
        )

    began = time.monotonic()
    [result] = TestExecutor(config).execute_parallel([hyp], {"sleepy": worktree})
    wall = time.monotonic() - began

    assert result.result is TestResult.TIMEOUT
    assert result.exit_code == 124
    assert TIMEOUT_LOWER <= result.duration <= TIMEOUT_UPPER
    assert wall <= TIMEOUT_UPPER + 3.0
    assert "timed out after" in result.error_message
    assert "0.5" in result.error_message
    assert "start" in result.stdout  # output produced before the timeout is kept


def test_timeout_only_hits_the_slow_hypothesis(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    hypotheses = [
        py_hypothesis("slow", "import time; time.sleep(30)", timeout=SHORT_TIMEOUT),
        py_hypothesis("fast", "print('fast')"),
    ]
    results = TestExecutor(FalsificationConfig(test_timeout=30)).execute_parallel(
        hypotheses, {"slow": worktree, "fast": worktree}
    )
    by_id = {r.hypothesis_id: r for r in results}
    assert by_id["slow"].result is TestResult.TIMEOUT
    assert by_id["fast"].result is TestResult.PASS


# -- exit-code mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, TestResult.PASS),
        (1, TestResult.FAIL),
        (2, TestResult.FAIL),
        (99, TestResult.FAIL),
        (123, TestResult.FAIL),
        (124, TestResult.FAIL),  # the test's own 124 is a failure, not a refute timeout
        (125, TestResult.SKIP),
        (126, TestResult.ERROR),
        (127, TestResult.ERROR),
        (128, TestResult.ERROR),
        (139, TestResult.ERROR),
        (255, TestResult.ERROR),
    ],
)
def test_exit_code_mapping(tmp_path: Path, code: int, expected: TestResult) -> None:
    worktree = make_worktree(tmp_path, "w")
    result = run_one(py_hypothesis("code", f"raise SystemExit({code})"), worktree)
    assert result.result is expected
    assert result.exit_code == code
    if code == 124:
        assert "timed out" not in result.error_message
        assert result.duration < TIMEOUT_UPPER


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGSEGV, "SIGSEGV"), (signal.SIGKILL, "SIGKILL")]
)
def test_death_by_signal_is_error(tmp_path: Path, signum: int, name: str) -> None:
    worktree = make_worktree(tmp_path, "w")
    code = f"{NO_CORE}import os; os.kill(os.getpid(), {int(signum)})"
    result = run_one(py_hypothesis("sig", code), worktree)
    assert result.result is TestResult.ERROR
    assert result.exit_code == -int(signum)
    assert name in result.error_message


def test_exit_code_override_for_signal(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    config = FalsificationConfig(exit_code_overrides={-11: TestResult.FAIL})
    code = f"{NO_CORE}import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    result = run_one(py_hypothesis("segv", code), worktree, config)
    assert result.result is TestResult.FAIL
    assert result.exit_code == -11


def test_exit_code_override_for_plain_code(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    config = FalsificationConfig(exit_code_overrides={139: TestResult.FAIL, 0: TestResult.SKIP})
    results = AsyncTestExecutor(config).execute_parallel(
        [py_hypothesis("shellsegv", "raise SystemExit(139)"), py_hypothesis("zero", "pass")],
        {"shellsegv": worktree, "zero": worktree},
    )
    by_id = {r.hypothesis_id: r for r in results}
    assert by_id["shellsegv"].result is TestResult.FAIL
    assert by_id["shellsegv"].exit_code == 139
    assert by_id["zero"].result is TestResult.SKIP


# -- how the command runs --------------------------------------------------------------------


def test_shell_true_runs_through_bin_sh(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    script = 'echo "shell=$0"; echo $((2 + 3)) | tr 5 X'
    hyp = Hypothesis(id="sh", description="", test=script, shell=True)  # noqa: S604 - under test
    result = run_one(hyp, worktree)
    assert result.result is TestResult.PASS, result.error_message
    lines = result.stdout.splitlines()
    assert "shell=/bin/sh" in lines
    assert "X" in lines


def test_shell_true_exit_code(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    hyp = Hypothesis(id="sh", description="", test="false || exit 7", shell=True)  # noqa: S604
    result = run_one(hyp, worktree)
    assert result.result is TestResult.FAIL
    assert result.exit_code == 7


def test_string_test_is_split_with_shlex_without_a_shell(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    result = run_one(Hypothesis(id="noshell", description="", test="echo $HOME"), worktree)
    assert result.result is TestResult.PASS, result.error_message
    assert result.stdout.strip() == "$HOME"


def test_string_test_quoting(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    test = f"{sys.executable} -c 'import sys; print(len(sys.argv), sys.argv[1])' 'two words'"
    result = run_one(Hypothesis(id="quoted", description="", test=test), worktree)
    assert result.result is TestResult.PASS, result.stderr
    assert result.stdout.strip() == "2 two words"


def test_stdin_is_not_inherited(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    result = run_one(py_hypothesis("stdin", "import sys; print(repr(sys.stdin.read()))"), worktree)
    assert result.result is TestResult.PASS
    assert result.stdout.strip() == "''"


# -- environment -----------------------------------------------------------------------------

ENV_DUMP = (
    "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
    "['REFUTE_CHILD_ONLY', 'REFUTE_OVERRIDDEN', 'REFUTE_PARENT_ONLY', 'REFUTE_TEST_TAG', "
    "'REFUTE_RUN_ID']}))"
)


def test_hypothesis_env_reaches_child_merged_over_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_tag: str
) -> None:
    monkeypatch.setenv("REFUTE_PARENT_ONLY", "parent")
    monkeypatch.setenv("REFUTE_OVERRIDDEN", "parent")
    worktree = make_worktree(tmp_path, "w")
    hyp = py_hypothesis(
        "env", ENV_DUMP, env={"REFUTE_CHILD_ONLY": "child", "REFUTE_OVERRIDDEN": "child"}
    )

    result = run_one(hyp, worktree)

    assert result.result is TestResult.PASS, result.stderr
    seen = json.loads(result.stdout)
    assert seen["REFUTE_CHILD_ONLY"] == "child"
    assert seen["REFUTE_OVERRIDDEN"] == "child"
    assert seen["REFUTE_PARENT_ONLY"] == "parent"
    assert seen["REFUTE_TEST_TAG"] == test_tag
    assert seen["REFUTE_RUN_ID"]
    # The hypothesis' env is applied to the child only, never to this process.
    assert os.environ["REFUTE_OVERRIDDEN"] == "parent"
    assert "REFUTE_CHILD_ONLY" not in os.environ


def test_run_marker_present_and_distinct_per_run(tmp_path: Path) -> None:
    worktree = make_worktree(tmp_path, "w")
    hypotheses = [py_hypothesis("a", ENV_DUMP), py_hypothesis("b", ENV_DUMP)]
    results = AsyncTestExecutor().execute_parallel(hypotheses, {"a": worktree, "b": worktree})
    markers = [json.loads(r.stdout)["REFUTE_RUN_ID"] for r in results]
    assert all(markers)
    assert markers[0] != markers[1]
    assert "REFUTE_RUN_ID" not in os.environ
