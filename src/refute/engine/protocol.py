"""The engine's seam: a `Job`, a `Batch` that takes jobs while it runs, a `Backend` that opens
batches, and the `Checkouts` a backend asks for a place to run a job.

Every backend keeps the same limits (bounded concurrency counted until a job's whole
process tree is reaped, TERM → grace → KILL, the escaped-daemon sweep, bounded output,
log files) and shapes its results with `refute.engine.results`, so a result reads the
same whichever backend produced it. The engine knows nothing about git: a job that needs
a worktree carries a `CheckoutRequest`, and the batch's `Checkouts` (the workspace's,
handed in by the app) turns it into a directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from refute.engine.output import DEFAULT_LOG_LIMIT
from refute.engine.sandbox import SandboxMounts
from refute.model import DEFAULT_TEST_TIMEOUT, CheckoutRequest, TestExecutionResult, TestResult

__all__ = [
    "Backend",
    "Batch",
    "BatchSettings",
    "CheckoutRequest",
    "Checkouts",
    "EventCallback",
    "Job",
    "JobHandle",
    "RunEvent",
]


@dataclass(frozen=True)
class Job:
    """One run of one command.

    `key` names what the run belongs to (a hypothesis id, "control"), `attempt` which run
    of it this is; together they are unique within a batch. `argv` None means the seed's
    convention: `<cwd>/.falsification/test_<key>.sh`. The job runs in `cwd`, or in the
    directory its `checkout` is leased to. `env` is merged over the batch's environment.
    `exit_codes` override the default exit-code table; `runner` says how the command's
    exit code is read ("none": the plain table; "auto": recognise pytest, unittest, ... by
    the command, see `refute.engine.runners`); a failing run whose output does not match
    `failure_pattern` failed differently (ERROR). Its logs are named
    `<log_stem>.stdout.log` / `.stderr.log`, by default `<key>.run<attempt>`.
    `worktree_env` holds variables whose values name paths in the job's own directory:
    every `{worktree}` in them is replaced by the directory the job runs in (known only
    once its checkout is leased, and different on every machine).
    `sandbox`, when set, says what the job's directory exposes read-only and writable:
    the command then runs through the sandbox launcher (`refute.engine.sandbox`).
    """

    key: str
    attempt: int = 1
    argv: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    checkout: CheckoutRequest | None = None
    timeout: float = DEFAULT_TEST_TIMEOUT
    exit_codes: Mapping[int, TestResult] = field(default_factory=dict)
    runner: str = "none"
    failure_pattern: str | None = None
    log_stem: str | None = None
    worktree_env: Mapping[str, str] = field(default_factory=dict)
    sandbox: Callable[[Path], SandboxMounts] | None = None


@dataclass(frozen=True)
class RunEvent:
    """A progress event of one run: `preparing` (its worktree is being leased, patched and
    set up; only for jobs with a checkout), `started` (its command is about to start) or
    `finished` (`result` is set). `elapsed` is seconds since the batch began.
    """

    kind: Literal["preparing", "started", "finished"]
    hypothesis_id: str
    attempt: int
    elapsed: float
    result: TestExecutionResult | None = None


EventCallback = Callable[[RunEvent], None]


@dataclass(frozen=True)
class BatchSettings:
    """Limits and surroundings shared by every job of a batch.

    `environment` is what every job inherits (None: this process' environment when the
    batch opens); `log_dir` receives `<key>.run<attempt>.stdout.log` and `.stderr.log`, each
    capped at `log_limit` bytes (its first and last halves, the cut marked).
    """

    concurrency: int = 1
    environment: Mapping[str, str] | None = None
    log_dir: Path | None = None
    output_limit: int = 64 * 1024
    log_limit: int = DEFAULT_LOG_LIMIT
    kill_grace: float = 2.0


class Checkouts(Protocol):
    """Where jobs with a `CheckoutRequest` run. Raises `refute.errors.CheckoutError` when
    the checkout cannot be made; the engine turns that into the job's ERROR result."""

    def lease(self, request: CheckoutRequest) -> contextlib.AbstractAsyncContextManager[Path]: ...


class JobHandle(Protocol):
    """A submitted job. `cancel()` stops it alone (its process tree is killed, or it never
    starts); its result, a not-run one, still comes through the batch."""

    job: Job

    def cancel(self) -> None: ...

    @property
    def done(self) -> bool: ...


class Batch(Protocol):
    """Jobs run concurrently under the batch's limits; results come in completion order.

    `submit` may be called at any time, also while results are being read; iteration ends
    once `close()` was called and every submitted job has a result. `cancel()` stops the
    running jobs (their process trees are killed) and gives every unfinished job a
    not-run result; a handle's `cancel()` does the same for one job.
    """

    def submit(self, job: Job) -> JobHandle: ...

    def close(self) -> None: ...

    def cancel(self) -> None: ...

    @property
    def outstanding(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[TestExecutionResult]: ...


class Backend(Protocol):
    """Opens batches. Leaving the context stops whatever still runs, shielded."""

    def batch(
        self,
        settings: BatchSettings,
        *,
        checkouts: Checkouts | None = None,
        on_event: EventCallback | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Batch]: ...
