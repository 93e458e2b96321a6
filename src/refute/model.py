"""The seed's data model: hypotheses, outcomes, verdicts, results and configuration.

These names and their constructors are the contract inherited from the seed's
`AsyncTestExecutor`; fields after the seed's own are refute's additions and all have
defaults, so code written against the seed keeps working.
"""

from __future__ import annotations

import enum
import math
import os
import re
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from refute.errors import ConfigError, InvalidIdError

__all__ = [
    "AUTO_MEMORY_PER_TEST",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_KEEP_PATHS",
    "DEFAULT_SETUP_TIMEOUT",
    "DEFAULT_TEST_TIMEOUT",
    "ISOLATIONS",
    "MAX_CONCURRENCY",
    "MAX_HISTORY",
    "MAX_HYPOTHESES",
    "MAX_REPEAT",
    "MAX_SECONDS",
    "MAX_WEIGHT",
    "CheckoutRequest",
    "FalsificationConfig",
    "Hypothesis",
    "HypothesisStatus",
    "TestExecutionResult",
    "TestResult",
    "auto_concurrency",
    "check_id",
    "classify_exit",
    "seed_confidence",
]


#: The defaults, each defined here only: seconds a test run may take, tests at once,
#: seconds a setup command may take, and the paths the warm pool keeps between sessions.
DEFAULT_TEST_TIMEOUT = 300.0
DEFAULT_CONCURRENCY = 5
DEFAULT_SETUP_TIMEOUT = 600.0
DEFAULT_KEEP_PATHS = (".venv", "venv", "node_modules")

#: How a test is kept from the user's repository: its own worktree (the default), or also a
#: sandbox where everything but that worktree is read-only (docs/sandbox.md).
ISOLATIONS = ("worktree", "sandbox")

#: The upper bounds, each defined here only (docs/plan.md, "Limits"): `refute check` (and
#: `run`, before anything) refuses a plan or an option past one with exit 2. Tests at once
#: (`concurrency`, `-j`); hypotheses in a plan (and `max_hypotheses`); runs per hypothesis
#: (`repeat`); seconds of any timeout or estimate (a week); a ranking weight; sessions
#: `refute history -n` lists.
MAX_CONCURRENCY = 256
MAX_HYPOTHESES = 10_000
MAX_REPEAT = 1_000
MAX_SECONDS = 7 * 24 * 3600.0
MAX_WEIGHT = 1_000.0
MAX_HISTORY = 10_000

#: Memory budget assumed per concurrent test when `max_concurrent_tests="auto"`.
AUTO_MEMORY_PER_TEST = 512 * 1024 * 1024

_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class CheckoutRequest:
    """A worktree at `commit` (a full sha) for `owner` (a hypothesis id, or "control"),
    with at most one change applied — `patch` (a diff file), `patch_text` (a diff),
    `cherry_pick` (that commit's change) or `revert` (its reverse), both full shas — and
    `setup` run in it.

    Requests that compare equal share one checkout (the repeats of a hypothesis do);
    requests of different owners never do. `setup_env` is what the setup adds to the
    environment of the batch.
    """

    owner: str
    commit: str
    patch: str | None = None
    patch_text: str | None = None
    cherry_pick: str | None = None
    revert: str | None = None
    setup: tuple[str, ...] | None = None
    setup_timeout: float = DEFAULT_SETUP_TIMEOUT
    setup_env: tuple[tuple[str, str], ...] = ()


class TestResult(enum.Enum):
    """Outcome of one run of a falsification test."""

    __test__: ClassVar[bool] = False  # the seed's name starts with Test; pytest must not collect it

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    TIMEOUT = "timeout"
    ERROR = "error"
    SKIP = "skip"


class HypothesisStatus(enum.Enum):
    """Verdict on a hypothesis (or its state while it is being tested)."""

    PENDING = "pending"
    TESTING = "testing"
    FALSIFIED = "falsified"
    SUPPORTED = "supported"
    INCONCLUSIVE = "inconclusive"
    FLAKY = "flaky"


def classify_exit(exit_code: int, overrides: dict[int, TestResult] | None = None) -> TestResult:
    """Map a test command's exit status to an outcome (DESIGN.md's table).

    `exit_code` follows `subprocess`: a negative value -N means "killed by signal N".
    `overrides` (exit code or -signal -> outcome) wins over the default table, so a plan
    can say that a segfault (-11, or 139 from a shell) is the bug reproducing.
    """
    if overrides and exit_code in overrides:
        return overrides[exit_code]
    if exit_code == 0:
        return TestResult.PASS
    if 1 <= exit_code <= 124:
        return TestResult.FAIL
    if exit_code == 125:
        return TestResult.SKIP
    return TestResult.ERROR  # 126, 127, 128+ and death by a signal: a broken test, not evidence


def _check_unit_interval(name: str, value: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and 0.0 <= value <= 1.0):
        raise ConfigError(name, f"must be a number between 0 and 1, got {value!r}")


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(name, f"must be a number {bound}, got {value!r}")


@dataclass
class Hypothesis:
    """A possible root cause of the bug, with the test that could falsify it.

    `test` is an argv list, or a string split with `shlex`; it runs without a shell
    unless `shell=True`, in which case a string runs as `/bin/sh -c <test>`. Without
    `test`, the seed's convention applies: `<worktree>/.falsification/test_<id>.sh`.
    """

    id: str
    description: str
    test_strategy: str = ""
    expected_behavior: str = ""
    estimated_test_time: float = 0.0
    probability: float = 0.5
    impact: float = 0.5
    test_complexity: float = 0.5
    status: HypothesisStatus = HypothesisStatus.PENDING
    dependencies: list[str] = field(default_factory=list)
    # refute's additions
    test: list[str] | str | None = None
    shell: bool = False
    patch: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    repeat: int = 1
    timeout: float | None = None
    runner: str = "auto"  # how exit codes are read (refute.engine.runners)
    failure_pattern: str | None = None  # a failure not matching it failed differently
    patch_text: str | None = None  # the other patch sources (at most one of the four)
    commit: str | None = None
    revert: str | None = None
    base: str | None = None  # tested at this commit-ish instead of the session's base
    isolation: str = "worktree"  # one of ISOLATIONS

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError("id", "must be a non-empty string")
        if "\0" in self.id or "/" in self.id or self.id in {".", ".."}:
            raise ConfigError("id", f"must not contain '/' or NUL or be '.'/'..': {self.id!r}")
        for name in ("probability", "impact", "test_complexity"):
            _check_unit_interval(name, getattr(self, name))
        _check_positive("estimated_test_time", self.estimated_test_time, allow_zero=True)
        if not isinstance(self.repeat, int) or isinstance(self.repeat, bool) or self.repeat < 1:
            raise ConfigError("repeat", f"must be an integer >= 1, got {self.repeat!r}")
        if self.timeout is not None:
            _check_positive("timeout", self.timeout)
        if self.test is not None:
            try:
                argv = self.argv()
            except ValueError as exc:  # shlex: unbalanced quotes
                raise ConfigError("test", f"cannot be split into arguments: {exc}") from exc
            if not argv or not argv[0]:
                raise ConfigError("test", "must not be empty")
        for key, value in self.env.items():
            if not isinstance(key, str) or not isinstance(value, str) or "=" in key or not key:
                raise ConfigError("env", f"names and values must be strings: {key!r}={value!r}")
        if self.isolation not in ISOLATIONS:
            choices = " or ".join(ISOLATIONS)
            raise ConfigError("isolation", f"must be {choices}, got {self.isolation!r}")

    def argv(self) -> list[str] | None:
        """The command to run, as an argv list, or None for the seed's script convention."""
        if self.test is None:
            return None
        if self.shell:
            script = self.test if isinstance(self.test, str) else shlex.join(self.test)
            return ["/bin/sh", "-c", script]
        if isinstance(self.test, str):
            return shlex.split(self.test)
        return [str(part) for part in self.test]

    def score(self, config: FalsificationConfig | None = None) -> float:
        """Ranking score: probability and impact raise it, test complexity lowers it."""
        cfg = config or FalsificationConfig()
        return (
            self.probability * cfg.probability_weight
            + self.impact * cfg.impact_weight
            - self.test_complexity * cfg.complexity_weight
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "status" in values:
            values["status"] = HypothesisStatus(values["status"])
        return cls(**values)


@dataclass
class TestExecutionResult:
    """What one run of one hypothesis' test produced.

    `stdout`/`stderr` hold a bounded head and tail of each stream (decoded with
    replacement); the complete bytes are in `stdout_log`/`stderr_log` when the executor
    was given a log directory. `metrics` carries `confidence`, byte counts, truncation
    flags, the concurrency `slot`, `attempt`, and `not_run` for runs that never finished.
    """

    __test__: ClassVar[bool] = False

    hypothesis_id: str
    result: TestResult
    duration: float
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    worktree_path: str = ""
    error_message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    # refute's additions
    stdout_log: str = ""
    stderr_log: str = ""
    started_at: float = 0.0  # wall-clock (epoch seconds) when the process started; 0 if never

    @property
    def not_run(self) -> bool:
        """True when the run was cancelled before it could finish."""
        return bool(self.metrics.get("not_run", False))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["result"] = self.result.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestExecutionResult:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["result"] = TestResult(values["result"])
        values["metrics"] = dict(values.get("metrics") or {})
        return cls(**values)


@dataclass
class FalsificationConfig:
    """Settings of a falsification session; keyword construction as in the seed.

    Estimates in seconds (`worktree_creation_time`, ...) are the seed's defaults for the
    parallelization decision; refute replaces them with measured figures when it has some
    (see `refute.plan.cost.CostModel`).
    """

    test_timeout: float = DEFAULT_TEST_TIMEOUT
    max_concurrent_tests: int | Literal["auto"] = DEFAULT_CONCURRENCY
    min_parallel_time: float = 60.0
    worktree_creation_time: float = 8.0
    session_startup_time: float = 5.0
    environment_setup_time: float = 5.0
    cleanup_time: float = 3.0
    max_hypotheses: int = 5
    probability_weight: float = 0.5
    impact_weight: float = 0.3
    complexity_weight: float = 0.2
    # refute's additions
    kill_grace_period: float = 2.0
    output_limit_bytes: int = 64 * 1024
    log_limit_bytes: int = 64 << 20  # per stream log cap (refute.engine.output)
    log_dir: Path | None = None
    exit_code_overrides: dict[int, TestResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_positive("test_timeout", self.test_timeout)
        mc = self.max_concurrent_tests
        if mc != "auto" and (
            not isinstance(mc, int) or isinstance(mc, bool) or not 1 <= mc <= MAX_CONCURRENCY
        ):
            raise ConfigError(
                "max_concurrent_tests",
                f"must be an integer from 1 to {MAX_CONCURRENCY} or 'auto', got {mc!r}",
            )
        for name in (
            "min_parallel_time",
            "worktree_creation_time",
            "session_startup_time",
            "environment_setup_time",
            "cleanup_time",
            "kill_grace_period",
        ):
            _check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("probability_weight", "impact_weight", "complexity_weight"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        mh = self.max_hypotheses
        if not isinstance(mh, int) or isinstance(mh, bool) or mh < 1:
            raise ConfigError("max_hypotheses", f"must be an integer >= 1, got {mh!r}")
        ol = self.output_limit_bytes
        if not isinstance(ol, int) or isinstance(ol, bool) or ol < 2:
            raise ConfigError("output_limit_bytes", f"must be an integer >= 2, got {ol!r}")
        ll = self.log_limit_bytes
        if not isinstance(ll, int) or isinstance(ll, bool) or not 4096 <= ll <= 4 << 30:
            raise ConfigError(
                "log_limit_bytes", f"must be an integer from 4096 to 4 GiB, got {ll!r}"
            )
        if self.log_dir is not None:
            self.log_dir = Path(self.log_dir)

    def concurrency(self) -> int:
        """The concurrency limit as a number; `"auto"` is resolved against this machine."""
        if self.max_concurrent_tests != "auto":
            return self.max_concurrent_tests
        return auto_concurrency()


def auto_concurrency() -> int:
    """CPUs this process may use, capped by available memory at 512 MiB per test."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    import psutil  # noqa: PLC0415 - only `auto` needs it; kept off every start-up

    by_memory = int(psutil.virtual_memory().available // AUTO_MEMORY_PER_TEST)
    return max(1, min(cpus, by_memory))


def check_id(value: object) -> str:
    """Return `value` if it is a safe hypothesis id, else raise InvalidIdError.

    The rule (DESIGN.md): `[a-z0-9][a-z0-9._-]{0,63}`, which already excludes '/', NUL,
    upper case (so case-folded duplicates cannot collide on a case-insensitive disk) and a
    leading '-' or '.'; additionally no '..' anywhere and no '.lock' suffix (git refuses
    both in ref and worktree names).
    """
    if not isinstance(value, str):
        raise InvalidIdError(value, "is not a string")
    if not _ID_RE.fullmatch(value):
        raise InvalidIdError(value, "must match [a-z0-9][a-z0-9._-]{0,63}")
    if ".." in value:
        raise InvalidIdError(value, "must not contain '..'")
    if value.endswith(".lock"):
        raise InvalidIdError(value, "must not end with '.lock'")
    return value


def seed_confidence(result: TestResult, duration: float) -> float:
    """The seed's single-run confidence rule (`_calculate_confidence`), the one copy of it:
    TIMEOUT 0.3, ERROR 0.2, any other outcome 0.6 under 5 s and 0.85 from 5 s."""
    if result is TestResult.TIMEOUT:
        return 0.3
    if result is TestResult.ERROR:
        return 0.2
    return 0.6 if duration < 5.0 else 0.85
