"""The seed's `AsyncTestExecutor` and `TestExecutor`, over the local backend.

Their names, constructors and methods are the seed's contract (README, docs/executor.md);
every run goes through `refute.engine.local.LocalBackend`, so the seed API gets the same
limits as `refute run`: bounded concurrency, process-tree timeouts, bounded output.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from refute.engine.local import LocalBackend, LocalBatch
from refute.engine.protocol import BatchSettings, EventCallback, Job, RunEvent
from refute.engine.sigchld import sigchld_default
from refute.errors import ConfigError
from refute.model import (
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestResult,
    seed_confidence,
)
from refute.plan.cost import CostModel, ParallelDecision, decide_parallel

__all__ = ["AsyncTestExecutor", "RunEvent", "TestExecutor", "run_sync"]

_T = TypeVar("_T")


class AsyncTestExecutor:
    """Runs falsification tests concurrently, each in its own worktree, under hard limits.

    - at most `config.max_concurrent_tests` test processes alive at once;
    - each test in a new session, stdin from /dev/null, its whole process tree stopped
      (TERM, grace, KILL) on timeout or cancellation, escaped daemons included;
    - output read in chunks, written to `config.log_dir` when set (up to
      `config.log_limit_bytes` per stream: beyond it the head and tail, the cut marked),
      with only a bounded head and tail kept in memory.
    """

    def __init__(
        self,
        config: FalsificationConfig | None = None,
        *,
        cost_model: CostModel | None = None,
        on_event: EventCallback | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """`environment` is what every test inherits (default: this process' environment at
        the start of each batch); a hypothesis' `env` is merged over it."""
        self.config = config or FalsificationConfig()
        self.environment = environment
        self.cost_model = cost_model or CostModel.from_config(self.config)
        self.on_event = on_event
        self._batches: set[LocalBatch] = set()
        self._backend = LocalBackend()

    # -- the seed's API ------------------------------------------------------------------

    async def execute_parallel_async(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        on_event: EventCallback | None = None,
    ) -> list[TestExecutionResult]:
        """Run each hypothesis' test once; one result per hypothesis, in input order."""
        runs = self._stream_indexed(hypotheses, worktrees, repeat=False, on_event=on_event)
        async with contextlib.aclosing(runs) as stream:
            results = {index: result async for index, result in stream}
        return [results[i] for i in range(len(hypotheses))]

    async def execute_single_async(
        self, hypothesis: Hypothesis, worktree: Path
    ) -> TestExecutionResult:
        """Run one hypothesis' test once (timeout enforced)."""
        [result] = await self.execute_parallel_async([hypothesis], {hypothesis.id: Path(worktree)})
        return result

    def execute_parallel(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        on_event: EventCallback | None = None,
    ) -> list[TestExecutionResult]:
        """Synchronous `execute_parallel_async`; works inside a running event loop too."""
        return run_sync(
            lambda: self.execute_parallel_async(hypotheses, worktrees, on_event=on_event)
        )

    def execute_single(self, hypothesis: Hypothesis, worktree: Path) -> TestExecutionResult:
        """Synchronous `execute_single_async`; works inside a running event loop too."""
        return run_sync(lambda: self.execute_single_async(hypothesis, worktree))

    def should_parallelize(self, hypotheses: Sequence[Hypothesis]) -> bool:
        """The seed's decision: worth running side by side given the overheads?"""
        return self.explain_parallelization(hypotheses).parallel

    def explain_parallelization(self, hypotheses: Sequence[Hypothesis]) -> ParallelDecision:
        """`should_parallelize` with the numbers behind it."""
        return decide_parallel(hypotheses, self.cost_model)

    def _calculate_confidence(self, result: TestResult, duration: float) -> float:
        """The seed's single-run confidence rule."""
        return seed_confidence(result, duration)

    # -- streaming and cancellation ------------------------------------------------------

    async def stream(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        on_event: EventCallback | None = None,
        attempts: Mapping[str, Sequence[int]] | None = None,
    ) -> AsyncGenerator[TestExecutionResult, None]:
        """Yield results in completion order, `hypothesis.repeat` runs per hypothesis.

        `attempts` (hypothesis id -> attempt numbers) runs only those attempts, e.g. the
        ones an interrupted session did not finish. Use it as
        `async with contextlib.aclosing(executor.stream(...)) as results:` so an early
        `break` stops the remaining tests at once.
        """
        runs = self._stream_indexed(
            hypotheses, worktrees, repeat=True, on_event=on_event, attempts=attempts
        )
        async with contextlib.aclosing(runs) as stream:
            async for _, result in stream:
                yield result

    def cancel(self) -> None:
        """Stop every running batch of this executor: running tests are killed, queued ones
        are not started, and each gets a result marked `not_run`. The batch then returns."""
        for batch in list(self._batches):
            batch.cancel()

    async def _stream_indexed(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        repeat: bool,
        on_event: EventCallback | None,
        attempts: Mapping[str, Sequence[int]] | None = None,
    ) -> AsyncGenerator[tuple[int, TestExecutionResult], None]:
        jobs = self._jobs(hypotheses, worktrees, repeat=repeat, attempts=attempts)
        settings = BatchSettings(
            concurrency=self.config.concurrency(),
            environment=self.environment,
            log_dir=self.config.log_dir,
            output_limit=self.config.output_limit_bytes,
            log_limit=self.config.log_limit_bytes,
            kill_grace=self.config.kill_grace_period,
        )
        index_of = {(job.key, job.attempt): index for index, job in jobs}
        async with self._backend.batch(settings, on_event=on_event or self.on_event) as batch:
            self._batches.add(batch)
            try:
                for _, job in jobs:
                    batch.submit(job)
                batch.close()
                async for result in batch:
                    yield index_of[(result.hypothesis_id, _attempt(result))], result
            finally:
                self._batches.discard(batch)

    def _jobs(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        repeat: bool,
        attempts: Mapping[str, Sequence[int]] | None = None,
    ) -> list[tuple[int, Job]]:
        seen: set[str] = set()
        jobs: list[tuple[int, Job]] = []
        for index, hyp in enumerate(hypotheses):
            if not isinstance(hyp, Hypothesis):
                raise ConfigError(
                    "hypotheses", f"expected Hypothesis objects, got {type(hyp).__name__}"
                )
            if hyp.id in seen:
                raise ConfigError("hypotheses", f"duplicate hypothesis id {hyp.id!r}")
            seen.add(hyp.id)
            numbers: Sequence[int] = range(1, (hyp.repeat if repeat else 1) + 1)
            if attempts is not None:
                numbers = attempts.get(hyp.id, ())
            worktree = worktrees.get(hyp.id)
            for attempt in numbers:
                job = job_for(hyp, self.config, attempt, cwd=worktree)
                jobs.append((index, job))
        return jobs


def job_for(hyp: Hypothesis, config: FalsificationConfig, attempt: int, *, cwd: Path | None) -> Job:
    """The engine job for one run of a seed `Hypothesis`."""
    return Job(
        key=hyp.id,
        attempt=attempt,
        argv=hyp.argv(),
        env=dict(hyp.env),
        cwd=Path(cwd) if cwd is not None else None,
        timeout=hyp.timeout if hyp.timeout is not None else config.test_timeout,
        exit_codes=dict(config.exit_code_overrides),
    )


def _attempt(result: TestExecutionResult) -> int:
    return int(result.metrics.get("attempt", 1))


class TestExecutor:
    """The seed's synchronous facade, delegating everything to `AsyncTestExecutor`."""

    __test__ = False

    def __init__(
        self, config: FalsificationConfig | None = None, *, cost_model: CostModel | None = None
    ) -> None:
        self.async_executor = AsyncTestExecutor(config, cost_model=cost_model)
        self.config = self.async_executor.config

    def execute_parallel(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        on_event: EventCallback | None = None,
    ) -> list[TestExecutionResult]:
        return self.async_executor.execute_parallel(hypotheses, worktrees, on_event=on_event)

    def execute_single(self, hypothesis: Hypothesis, worktree: Path) -> TestExecutionResult:
        return self.async_executor.execute_single(hypothesis, worktree)

    def should_parallelize(self, hypotheses: Sequence[Hypothesis]) -> bool:
        return self.async_executor.should_parallelize(hypotheses)

    def explain_parallelization(self, hypotheses: Sequence[Hypothesis]) -> ParallelDecision:
        return self.async_executor.explain_parallelization(hypotheses)

    def cancel(self) -> None:
        self.async_executor.cancel()

    def _calculate_confidence(self, result: TestResult, duration: float) -> float:
        return seed_confidence(result, duration)


# -- running the async engine from synchronous code -----------------------------------------


def run_sync(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run the coroutine made by `factory` to completion from synchronous code.

    Without a running event loop in this thread this is `asyncio.run`. Inside one (a
    notebook, an async application calling the sync API) `asyncio.run` would raise, so
    the coroutine runs on a fresh loop in a worker thread while this thread waits. A
    KeyboardInterrupt while waiting cancels the worker's run, waits for its cleanup, and
    is then re-raised.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with sigchld_default():
            return asyncio.run(factory())
    with sigchld_default():
        return _run_in_thread(factory)


def _run_in_thread(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    outcome: dict[str, Any] = {}
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> _T:
        state["loop"] = asyncio.get_running_loop()
        state["task"] = asyncio.current_task()
        ready.set()
        return await factory()

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as exc:  # handed to the waiting thread, re-raised there
            outcome["error"] = exc
        finally:
            ready.set()

    worker = threading.Thread(target=target, name="refute-sync-runner", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        ready.wait()
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(task.cancel)
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value
