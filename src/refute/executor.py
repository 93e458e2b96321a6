"""The seed's `AsyncTestExecutor` and `TestExecutor`, with every limit enforced.

A batch is one call: each requested run becomes a task that waits for a concurrency slot,
starts its test through `refute.process`, and turns whatever happens into exactly one
`TestExecutionResult` (the per-hypothesis boundary: no exception escapes a run). Results
are queued in completion order; `stream()` yields them as they come, the list APIs
collect them in input order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from refute._sweep import MARKER_VARIABLE, process_token
from refute._sync import run_sync, sigchld_default
from refute.cost import CostModel, ParallelDecision, decide_parallel
from refute.errors import ConfigError
from refute.model import (
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestResult,
    classify_exit,
)
from refute.process import ProcessOutcome, ProcessSpec, run_process, shielded, stop_marked

#: Most threads a batch uses to start processes (they only wait for exec, then idle).
SPAWN_THREADS = 8
#: An inline spawn slower than this means the machine is busy (see _Batch.spawner_for).
SLOW_SPAWN_SECONDS = 0.002
#: After this many slow inline spawns, a batch spawns on threads for the rest of its runs.
SLOW_SPAWNS_TO_SWITCH = 3
NOT_RUN_MESSAGE = "not run: the run was cancelled before this test finished"


@dataclass(frozen=True)
class RunEvent:
    """A progress event: a run `started` or `finished` (`result` is set on `finished`).

    `elapsed` is seconds since the batch began.
    """

    kind: Literal["started", "finished"]
    hypothesis_id: str
    attempt: int
    elapsed: float
    result: TestExecutionResult | None = None


EventCallback = Callable[[RunEvent], None]


@dataclass(frozen=True)
class _Request:
    index: int
    hypothesis: Hypothesis
    worktree: Path | None
    attempt: int


class _Batch:
    """The shared state of one execute/stream call."""

    def __init__(
        self,
        limit: int,
        total: int,
        on_event: EventCallback | None,
        environment: Mapping[str, str] | None,
    ) -> None:
        # Names the owner (pid + start time) so a later refute can tell orphans apart.
        self.token = f"{process_token()}.{secrets.token_hex(6)}"
        self.start = time.monotonic()
        self.semaphore = asyncio.Semaphore(limit)
        self.free_slots = list(range(limit - 1, -1, -1))
        self.queue: asyncio.Queue[tuple[int, TestExecutionResult]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.total = total
        self.on_event = on_event
        self.callback_error: Exception | None = None
        self.cancel_requested = False
        self.checked_dirs: set[Path] = set()  # worktrees seen to exist in this batch
        self.limit = limit
        self.slow_spawns = 0
        self.spawner: ThreadPoolExecutor | None = None
        # Snapshot once per batch, as bytes: os.environ decodes on every read and Popen
        # re-encodes every entry, which was a tenth of the cost of a trivial run.
        self.base_env: dict[bytes, bytes] = (
            dict(os.environb)
            if environment is None
            else {os.fsencode(k): os.fsencode(v) for k, v in environment.items()}
        )

    def spawner_for_next_run(self) -> ThreadPoolExecutor | None:
        """Where the next `Popen` runs: inline while spawning is fast, else on threads.

        Inline is cheapest (no thread hand-off: measured about half the orchestrator CPU
        on trivial commands). But `Popen` waits until the child has exec'd, and on a busy
        machine that wait blocks the event loop for every spawn in turn; once spawns are
        seen to be slow, a few threads overlap those waits instead. docs/decisions.md §1.
        """
        if self.slow_spawns < SLOW_SPAWNS_TO_SWITCH:
            return None
        if self.spawner is None:
            self.spawner = ThreadPoolExecutor(
                max_workers=min(self.limit, SPAWN_THREADS), thread_name_prefix="refute-spawn"
            )
        return self.spawner

    def note_spawn(self, seconds: float, *, inline: bool) -> None:
        if inline and seconds > SLOW_SPAWN_SECONDS:
            self.slow_spawns += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def emit(self, event: RunEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception as exc:  # a broken callback stops the batch; raised to the caller
            if self.callback_error is None:
                self.callback_error = exc
                self.cancel()

    def cancel(self) -> None:
        self.cancel_requested = True
        for task in self.tasks:
            if not task.done():
                task.cancel()

    def check_callback(self) -> None:
        if self.callback_error is not None:
            raise self.callback_error


class AsyncTestExecutor:
    """Runs falsification tests concurrently, each in its own worktree, under hard limits.

    - at most `config.max_concurrent_tests` test processes alive at once;
    - each test in a new session, stdin from /dev/null, its whole process tree stopped
      (TERM, grace, KILL) on timeout or cancellation, escaped daemons included;
    - output read in chunks, written whole to `config.log_dir` when set, with only a
      bounded head and tail kept in memory.
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
        self._batches: set[_Batch] = set()

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
        if result is TestResult.TIMEOUT:
            return 0.3
        if result is TestResult.ERROR:
            return 0.2
        return 0.6 if duration < 5.0 else 0.85

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
        requests = self._requests(hypotheses, worktrees, repeat=repeat, attempts=attempts)
        callback = on_event or self.on_event
        batch = _Batch(self.config.concurrency(), len(requests), callback, self.environment)
        self._batches.add(batch)
        with sigchld_default():
            try:
                batch.tasks = [asyncio.create_task(self._run_one(batch, req)) for req in requests]
                for _ in range(len(requests)):
                    item = await batch.queue.get()
                    batch.check_callback()
                    yield item
                batch.check_callback()
            finally:
                self._batches.discard(batch)
                await shielded(self._shutdown(batch))

    async def _shutdown(self, batch: _Batch) -> None:
        batch.cancel()
        await asyncio.gather(*batch.tasks, return_exceptions=True)
        if batch.spawner is not None:
            batch.spawner.shutdown(wait=True)  # every spawn has returned; the threads are idle
        # Daemons that escaped runs which ended normally are found here, once per batch.
        await stop_marked(f"{batch.token}-", self.config.kill_grace_period)

    def _requests(
        self,
        hypotheses: Sequence[Hypothesis],
        worktrees: Mapping[str, Path],
        *,
        repeat: bool,
        attempts: Mapping[str, Sequence[int]] | None = None,
    ) -> list[_Request]:
        seen: set[str] = set()
        requests: list[_Request] = []
        for index, hyp in enumerate(hypotheses):
            if not isinstance(hyp, Hypothesis):
                raise ConfigError(
                    "hypotheses", f"expected Hypothesis objects, got {type(hyp).__name__}"
                )
            if hyp.id in seen:
                raise ConfigError("hypotheses", f"duplicate hypothesis id {hyp.id!r}")
            seen.add(hyp.id)
            worktree = worktrees.get(hyp.id)
            numbers: Sequence[int] = range(1, (hyp.repeat if repeat else 1) + 1)
            if attempts is not None:
                numbers = attempts.get(hyp.id, ())
            path = Path(worktree) if worktree is not None else None
            requests.extend(_Request(index, hyp, path, attempt) for attempt in numbers)
        return requests

    # -- one run -------------------------------------------------------------------------

    async def _run_one(self, batch: _Batch, req: _Request) -> None:
        result: TestExecutionResult | None = None
        try:
            async with batch.semaphore:
                slot = batch.free_slots.pop()
                try:
                    if not batch.cancel_requested:
                        batch.emit(
                            RunEvent("started", req.hypothesis.id, req.attempt, batch.elapsed())
                        )
                        result = await self._execute(batch, req, slot)
                finally:
                    batch.free_slots.append(slot)
        except asyncio.CancelledError:
            result = None  # the process tree was already stopped and reaped by run_process
        except Exception as exc:  # the per-hypothesis boundary: a bug here must not sink the batch
            result = self._error(req, f"internal error: {type(exc).__name__}: {exc}", 1, 0.0)
        finally:
            if result is None:
                result = self._not_run(req)
            batch.queue.put_nowait((req.index, result))
            batch.emit(
                RunEvent("finished", req.hypothesis.id, req.attempt, batch.elapsed(), result)
            )

    async def _execute(self, batch: _Batch, req: _Request, slot: int) -> TestExecutionResult:
        hyp = req.hypothesis
        if req.worktree is None:
            return self._error(req, f"no worktree given for hypothesis {hyp.id!r}", 126, 0.0)
        if req.worktree not in batch.checked_dirs:
            if not req.worktree.is_dir():
                return self._error(req, f"worktree not found: {req.worktree}", 126, 0.0)
            batch.checked_dirs.add(req.worktree)
        argv = hyp.argv()
        if argv is None:
            script = req.worktree / ".falsification" / f"test_{hyp.id}.sh"
            if not script.is_file():
                return self._error(req, f"test script not found: {script}", 127, 0.0)
            if not os.access(script, os.X_OK):
                return self._error(req, f"test script is not executable: {script}", 126, 0.0)
            argv = [str(script)]
        timeout = hyp.timeout if hyp.timeout is not None else self.config.test_timeout
        stdout_log = stderr_log = None
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            stem = f"{hyp.id}.run{req.attempt}"
            stdout_log = self.config.log_dir / f"{stem}.stdout.log"
            stderr_log = self.config.log_dir / f"{stem}.stderr.log"
        marker = f"{batch.token}-{req.index}-{req.attempt}"
        spec = ProcessSpec(
            argv=argv,
            cwd=req.worktree,
            env={
                **batch.base_env,
                **{os.fsencode(k): os.fsencode(v) for k, v in hyp.env.items()},
                MARKER_VARIABLE.encode(): marker.encode(),
            },
            marker=marker,
            timeout=timeout,
            grace=self.config.kill_grace_period,
            output_limit=self.config.output_limit_bytes,
            stdout_log=stdout_log,
            stderr_log=stderr_log,
        )
        spawner = batch.spawner_for_next_run()
        outcome = await run_process(spec, spawner)
        batch.note_spawn(outcome.spawn_seconds, inline=spawner is None)
        return self._to_result(req, spec, outcome, slot)

    def _to_result(
        self, req: _Request, spec: ProcessSpec, outcome: ProcessOutcome, slot: int
    ) -> TestExecutionResult:
        exit_code: int
        message = ""
        if outcome.spawn_error is not None:
            result, exit_code, message = _spawn_failure(outcome.spawn_error, spec)
        elif outcome.timed_out:
            result, exit_code = TestResult.TIMEOUT, 124
            message = (
                f"timed out after {spec.timeout:g}s (test timeout {spec.timeout:g}s);"
                " the test's process tree was stopped"
            )
        elif outcome.exit_code is None:
            result, exit_code, message = TestResult.ERROR, -1, outcome.status_error
        else:
            exit_code = outcome.exit_code
            result = classify_exit(exit_code, self.config.exit_code_overrides)
            message = _exit_message(exit_code, result)
        metrics: dict[str, Any] = {
            "confidence": self._calculate_confidence(result, outcome.duration),
            "attempt": req.attempt,
            "slot": slot,
            "stdout_bytes": outcome.stdout.total,
            "stderr_bytes": outcome.stderr.total,
            "stdout_truncated": outcome.stdout.truncated,
            "stderr_truncated": outcome.stderr.truncated,
            "cleanup_seconds": round(outcome.cleanup_seconds, 6),
        }
        if outcome.leftovers_killed:
            metrics["leftover_processes_killed"] = outcome.leftovers_killed
        if outcome.output_abandoned:
            metrics["output_abandoned"] = True
        notes = [
            n for n in (outcome.stdout.log_error, outcome.stderr.log_error, *outcome.notes) if n
        ]
        if notes:
            metrics["notes"] = notes
        return TestExecutionResult(
            hypothesis_id=req.hypothesis.id,
            result=result,
            duration=outcome.duration,
            stdout=outcome.stdout.text(),
            stderr=outcome.stderr.text(),
            exit_code=exit_code,
            worktree_path=str(req.worktree),
            error_message=message,
            metrics=metrics,
            stdout_log=str(spec.stdout_log)
            if spec.stdout_log and not outcome.stdout.log_error
            else "",
            stderr_log=str(spec.stderr_log)
            if spec.stderr_log and not outcome.stderr.log_error
            else "",
            started_at=outcome.started_at,
        )

    def _error(
        self, req: _Request, message: str, exit_code: int, duration: float
    ) -> TestExecutionResult:
        return TestExecutionResult(
            hypothesis_id=req.hypothesis.id,
            result=TestResult.ERROR,
            duration=duration,
            exit_code=exit_code,
            worktree_path=str(req.worktree or ""),
            error_message=message,
            metrics={
                "confidence": self._calculate_confidence(TestResult.ERROR, duration),
                "attempt": req.attempt,
            },
        )

    def _not_run(self, req: _Request) -> TestExecutionResult:
        return TestExecutionResult(
            hypothesis_id=req.hypothesis.id,
            result=TestResult.SKIP,
            duration=0.0,
            exit_code=-1,
            worktree_path=str(req.worktree or ""),
            error_message=NOT_RUN_MESSAGE,
            metrics={"not_run": True, "attempt": req.attempt, "confidence": 0.0},
        )


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
        return self.async_executor._calculate_confidence(result, duration)  # noqa: SLF001


def _spawn_failure(exc: Exception, spec: ProcessSpec) -> tuple[TestResult, int, str]:
    command = spec.argv[0] if spec.argv else ""
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None and str(exc.filename) == str(spec.cwd):
            return TestResult.ERROR, 126, f"worktree not found: {spec.cwd}"
        return TestResult.ERROR, 127, f"test command not found: {command}"
    if isinstance(exc, PermissionError):
        return (
            TestResult.ERROR,
            126,
            f"test command is not executable (permission denied): {command}",
        )
    if isinstance(exc, OSError):
        return (
            TestResult.ERROR,
            126,
            f"could not start test command {command}: {exc.strerror or exc}",
        )
    return TestResult.ERROR, 126, f"invalid test command: {exc}"


def _exit_message(exit_code: int, result: TestResult) -> str:
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"killed by {name}"
    if result is not TestResult.ERROR:
        return ""
    if exit_code == 126:
        return "exit 126: the test's command could not be executed"
    if exit_code == 127:
        return "exit 127: the test's command was not found"
    return f"exit {exit_code}: the test harness crashed (128+N means killed by signal N)"
