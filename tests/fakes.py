"""Small fakes for logic tests, where no process is involved.

`ScriptedBackend` implements the engine's `Backend`/`Batch` protocol without starting
anything: every job gets the outcome scripted for its key (and attempt). It records what
it was given, so use-case tests can check which runs a session asked for. It does not
lease checkouts (the use cases' jobs carry a `CheckoutRequest` that nobody turns into a
worktree), so no git worktree is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from refute.engine.protocol import BatchSettings, Checkouts, EventCallback, Job, RunEvent
from refute.engine.results import NOT_RUN_MESSAGE
from refute.model import TestExecutionResult, TestResult

#: The exit code a scripted outcome reports (what a real test would have exited with).
EXIT_OF = {
    TestResult.PASS: 0,
    TestResult.FAIL: 1,
    TestResult.SKIP: 125,
    TestResult.ERROR: 127,
    TestResult.TIMEOUT: 124,
}

#: An outcome for every attempt of a key, or one per attempt (attempt 1 first).
Script = TestResult | Sequence[TestResult]


def not_run(job: Job) -> TestExecutionResult:
    """What the protocol promises for a job that was cancelled before it finished."""
    return TestExecutionResult(
        hypothesis_id=job.key,
        result=TestResult.SKIP,
        duration=0.0,
        exit_code=-1,
        error_message=NOT_RUN_MESSAGE,
        metrics={"not_run": True, "attempt": job.attempt, "confidence": 0.0},
    )


@dataclass
class ScriptedBackend:
    """A backend whose jobs finish at once with their scripted outcome.

    `hang`: keys, or (key, attempt) pairs, whose jobs never finish on their own (until the
    batch is cancelled or left); `waiting` is set once only such jobs are left, so a test
    knows when to cancel. `fail_on_open` is raised when a batch opens; `fail_after` raises
    an OSError from the iteration after that many results were delivered.
    """

    outcomes: Mapping[str, Script] = field(default_factory=dict)
    hang: set[str | tuple[str, int]] = field(default_factory=set)
    fail_on_open: BaseException | None = None
    fail_after: int | None = None
    jobs: list[Job] = field(default_factory=list)
    settings: list[BatchSettings] = field(default_factory=list)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)

    def runs(self) -> list[tuple[str, int]]:
        """(key, attempt) of every job submitted, sorted."""
        return sorted((job.key, job.attempt) for job in self.jobs)

    def outcome(self, job: Job) -> TestResult:
        script = self.outcomes.get(job.key, TestResult.PASS)
        if isinstance(script, TestResult):
            return script
        return script[job.attempt - 1]

    def hangs(self, job: Job) -> bool:
        return job.key in self.hang or (job.key, job.attempt) in self.hang

    @contextlib.asynccontextmanager
    async def batch(
        self,
        settings: BatchSettings,
        *,
        checkouts: Checkouts | None = None,  # noqa: ARG002 - the protocol's; not leased here
        on_event: EventCallback | None = None,
    ) -> AsyncIterator[ScriptedBatch]:
        if self.fail_on_open is not None:
            raise self.fail_on_open
        self.settings.append(settings)
        batch = ScriptedBatch(self, on_event)
        try:
            yield batch
        finally:
            batch.leave()


@dataclass
class _Run:
    """One submitted job of a scripted batch."""

    job: Job
    hangs: bool
    cancelled: bool = False
    result: TestExecutionResult | None = None


class ScriptedHandle:
    """What `ScriptedBatch.submit` returns (the `JobHandle` protocol)."""

    def __init__(self, run: _Run, batch: ScriptedBatch) -> None:
        self._run = run
        self._batch = batch
        self.job = run.job

    def cancel(self) -> None:
        self._run.cancelled = True
        self._batch.wake.set()

    @property
    def done(self) -> bool:
        return self._run.result is not None


class ScriptedBatch:
    """One batch of a `ScriptedBackend` (the `Batch` protocol)."""

    def __init__(self, backend: ScriptedBackend, on_event: EventCallback | None) -> None:
        self.backend = backend
        self.on_event = on_event
        self.start = time.monotonic()
        self.runs: list[_Run] = []
        self.unannounced: list[_Run] = []  # submitted, "started" not announced yet
        self.closed = False
        self.cancelled = False
        self.delivered = 0
        self.wake = asyncio.Event()

    def submit(self, job: Job) -> ScriptedHandle:
        if self.closed:
            raise RuntimeError("submit() after close()")
        self.backend.jobs.append(job)
        run = _Run(job, hangs=self.backend.hangs(job))
        self.runs.append(run)
        self.unannounced.append(run)
        self.wake.set()
        return ScriptedHandle(run, self)

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    def cancel(self) -> None:
        self.cancelled = True
        self.wake.set()

    @property
    def outstanding(self) -> int:
        return len(self.runs) - self.delivered

    def _emit(
        self,
        kind: Literal["preparing", "started", "finished"],
        job: Job,
        result: TestExecutionResult | None = None,
    ) -> None:
        if self.on_event is not None:
            elapsed = time.monotonic() - self.start
            self.on_event(RunEvent(kind, job.key, job.attempt, elapsed, result))

    def _announce(self) -> None:
        runs, self.unannounced = self.unannounced, []
        for run in runs:
            self._emit("started", run.job)

    def _finish(self, run: _Run, result: TestExecutionResult) -> TestExecutionResult:
        run.result = result
        self._emit("finished", run.job, result)
        return result

    def _scripted(self, job: Job) -> TestExecutionResult:
        outcome = self.backend.outcome(job)
        return TestExecutionResult(
            hypothesis_id=job.key,
            result=outcome,
            duration=0.01,
            exit_code=EXIT_OF[outcome],
            metrics={"attempt": job.attempt, "confidence": 0.6},
        )

    def _next_to_finish(self) -> _Run | None:
        for run in self.runs:
            if run.result is None and (run.cancelled or self.cancelled or not run.hangs):
                return run
        return None

    async def __aiter__(self) -> AsyncIterator[TestExecutionResult]:
        while True:
            self._announce()
            if self.backend.fail_after is not None and self.delivered >= self.backend.fail_after:
                raise OSError("scripted infrastructure failure")
            run = self._next_to_finish()
            if run is not None:
                stopped = run.cancelled or self.cancelled
                result = self._finish(run, not_run(run.job) if stopped else self._scripted(run.job))
                self.delivered += 1
                yield result
                continue
            if self.closed and all(r.result is not None for r in self.runs):
                return
            if any(r.result is None for r in self.runs):
                self.backend.waiting.set()  # only hanging jobs are left
            self.wake.clear()
            await self.wake.wait()

    def leave(self) -> None:
        """Leaving the batch: every job without a result gets a not-run one (announced)."""
        self._announce()
        for run in self.runs:
            if run.result is None:
                self._finish(run, not_run(run.job))
