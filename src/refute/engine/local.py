"""The local asyncio backend: jobs run as process trees on this machine.

Each submitted job becomes a task that waits for a concurrency slot, leases its checkout
(when it has one) while holding the slot, starts its command through `refute.engine.process`,
and turns whatever happens into exactly one `TestExecutionResult` (the per-job boundary:
no exception escapes a run). Results are queued in completion order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from refute.engine import results, sandbox
from refute.engine.process import ProcessSpec, run_process, shielded
from refute.engine.protocol import (
    BatchSettings,
    Checkouts,
    EventCallback,
    Job,
    JobHandle,
    RunEvent,
)
from refute.engine.sigchld import sigchld_default
from refute.engine.sweep import MARKER_VARIABLE, stop_marked
from refute.engine.watchdog import ensure_watchdog
from refute.errors import CheckoutError
from refute.model import TestExecutionResult
from refute.owners import process_token

__all__ = ["LocalBackend", "LocalBatch", "run_one"]

#: Most threads a batch uses to start processes (they only wait for exec, then idle).
SPAWN_THREADS = 8
#: An inline spawn slower than this means the machine is busy (see spawner_for_next_run).
SLOW_SPAWN_SECONDS = 0.002
#: After this many slow inline spawns, a batch spawns on threads for the rest of its runs.
SLOW_SPAWNS_TO_SWITCH = 3


class LocalBackend:
    """Runs batches of jobs as local process trees (see `refute.engine.protocol.Backend`)."""

    @contextlib.asynccontextmanager
    async def batch(
        self,
        settings: BatchSettings,
        *,
        checkouts: Checkouts | None = None,
        on_event: EventCallback | None = None,
    ) -> AsyncIterator[LocalBatch]:
        batch = LocalBatch(settings, checkouts, on_event)
        with sigchld_default():
            try:
                yield batch
            finally:
                await shielded(batch.shutdown())


class _TaskHandle:
    """A submitted job of a local batch: `cancel()` stops it alone (its tree is killed)."""

    __slots__ = ("_task", "job")

    def __init__(self, job: Job, task: asyncio.Task[None]) -> None:
        self.job = job
        self._task = task

    def cancel(self) -> None:
        self._task.cancel()

    @property
    def done(self) -> bool:
        return self._task.done()


class LocalBatch:
    """One batch: bounded concurrency, jobs accepted while it runs, results as they finish."""

    def __init__(
        self,
        settings: BatchSettings,
        checkouts: Checkouts | None,
        on_event: EventCallback | None,
    ) -> None:
        limit = max(1, settings.concurrency)
        self.settings = settings
        self.checkouts = checkouts
        self.on_event = on_event
        # Names the owner (pid + start time) so a later refute can tell orphans apart.
        self.token = f"{process_token()}.{secrets.token_hex(6)}"
        self.start = time.monotonic()
        self.limit = limit
        self.semaphore = asyncio.Semaphore(limit)
        self.free_slots = list(range(limit - 1, -1, -1))
        self.started_at: dict[int, float] = {}  # epoch start of each running job, by number
        # Results in completion order; None only wakes the reader up.
        self.queue: asyncio.Queue[TestExecutionResult | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.submitted = 0
        self.delivered = 0
        self.answered: set[int] = set()  # submissions whose result is queued
        self.closed = False
        self.cancel_requested = False
        self.callback_error: Exception | None = None
        self.checked_dirs: set[Path] = set()  # directories seen to exist in this batch
        self.slow_spawns = 0
        self.spawner: ThreadPoolExecutor | None = None
        environment: Mapping[str, str] | None = settings.environment
        # Snapshot once per batch, as bytes: os.environ decodes on every read and Popen
        # re-encodes every entry, which was a tenth of the cost of a trivial run.
        self.base_env: dict[bytes, bytes] = (
            dict(os.environb)
            if environment is None
            else {os.fsencode(k): os.fsencode(v) for k, v in environment.items()}
        )

    # -- the Batch protocol ----------------------------------------------------------------

    def submit(self, job: Job) -> JobHandle:
        """Queue `job`; it starts as soon as a slot is free. The handle cancels it alone."""
        if self.closed:
            raise RuntimeError("submit() after close()")
        number = self.submitted
        self.submitted += 1
        task = asyncio.create_task(self._run_one(job, number))
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._ended(done, job, number))
        return _TaskHandle(job, task)

    def _ended(self, task: asyncio.Task[None], job: Job, number: int) -> None:
        self.tasks.discard(task)
        if number not in self.answered:
            # Cancelled before its first step: the coroutine never ran, so its `finally`
            # did not deliver a result. Every submitted job gets exactly one.
            self._deliver(job, results.not_run_result(job), number)

    def close(self) -> None:
        """No more jobs: iteration ends once every submitted job has its result."""
        self.closed = True
        self.queue.put_nowait(None)  # wakes a reader waiting with nothing outstanding

    def cancel(self) -> None:
        """Stop every running job (its process tree is killed); unstarted ones are not run."""
        self.cancel_requested = True
        for task in list(self.tasks):
            if not task.done():
                task.cancel()

    @property
    def outstanding(self) -> int:
        """Jobs submitted whose result has not been read yet."""
        return self.submitted - self.delivered

    async def __aiter__(self) -> AsyncIterator[TestExecutionResult]:
        while not (self.closed and self.delivered == self.submitted):
            self._check_callback()
            result = await self.queue.get()
            if result is None:  # a wake-up from close() or a failed callback
                continue
            self.delivered += 1
            self._check_callback()
            yield result
        self._check_callback()

    # -- lifecycle -------------------------------------------------------------------------

    async def shutdown(self) -> None:
        self.cancel()
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self.spawner is not None:
            self.spawner.shutdown(wait=True)  # every spawn has returned; the threads are idle
        # Daemons that escaped runs which ended normally are found here, once per batch.
        await stop_marked(f"{self.token}-", self.settings.kill_grace)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _emit(self, event: RunEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception as exc:  # a broken callback stops the batch; raised to the reader
            if self.callback_error is None:
                self.callback_error = exc
                self.cancel()
                self.queue.put_nowait(None)

    def _check_callback(self) -> None:
        if self.callback_error is not None:
            raise self.callback_error

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

    # -- one run ---------------------------------------------------------------------------

    async def _run_one(self, job: Job, number: int) -> None:
        result: TestExecutionResult | None = None
        try:
            async with self.semaphore:
                slot = self.free_slots.pop()
                try:
                    if not self.cancel_requested:
                        result = await self._place_and_run(job, number, slot)
                finally:
                    self.free_slots.append(slot)
        except asyncio.CancelledError:
            result = None  # the process tree was already stopped and reaped by run_process
        except Exception as exc:  # the per-job boundary: a bug here must not sink the batch
            message = f"internal error: {type(exc).__name__}: {exc}"
            result = results.error_result(job, message, 1)
        finally:
            started = self.started_at.pop(number, 0.0)
            self._deliver(job, result or results.not_run_result(job, started_at=started), number)

    def _deliver(self, job: Job, result: TestExecutionResult, number: int) -> None:
        self.answered.add(number)
        self.queue.put_nowait(result)
        self._emit(RunEvent("finished", job.key, job.attempt, self.elapsed(), result))

    def _started(self, job: Job, number: int) -> None:
        self.started_at[number] = time.time()  # a run cancelled from now on keeps it
        self._emit(RunEvent("started", job.key, job.attempt, self.elapsed()))

    async def _place_and_run(self, job: Job, number: int, slot: int) -> TestExecutionResult:
        """`preparing` while a job's checkout is made (worktree, patch, setup), then
        `started` just before its command starts."""
        if job.checkout is not None:
            if self.checkouts is None:
                return results.error_result(job, "no checkouts available for this job", 126)
            self._emit(RunEvent("preparing", job.key, job.attempt, self.elapsed()))
            try:
                async with self.checkouts.lease(job.checkout) as path:
                    self._started(job, number)
                    return await self._execute(job, path, number, slot)
            except CheckoutError as exc:
                failure = results.checkout_failure(str(exc))
                return results.error_result(job, str(exc), -1, failure=failure)
        self._started(job, number)
        if job.cwd is None:
            return results.error_result(job, f"no worktree given for hypothesis {job.key!r}", 126)
        return await self._execute(job, job.cwd, number, slot)

    async def _execute(self, job: Job, cwd: Path, number: int, slot: int) -> TestExecutionResult:
        if cwd not in self.checked_dirs:
            if not cwd.is_dir():
                return results.error_result(job, f"worktree not found: {cwd}", 126, worktree=cwd)
            self.checked_dirs.add(cwd)
        argv = list(job.argv) if job.argv is not None else None
        if argv is None:
            script = results.seed_script(cwd, job)
            if not script.is_file():
                message = f"test script not found: {script}"
                return results.error_result(job, message, 127, worktree=cwd, failure="command")
            if not os.access(script, os.X_OK):
                message = f"test script is not executable: {script}"
                return results.error_result(job, message, 126, worktree=cwd, failure="command")
            argv = [str(script)]
        command = argv
        if job.sandbox is not None:  # isolation: sandbox (the launcher execs the test)
            try:
                command = sandbox.launcher_argv(job.sandbox(cwd), argv)
            except OSError as exc:
                message = f"cannot lay out the sandbox: {exc}"
                return results.error_result(job, message, 126, worktree=cwd)
        stdout_log, stderr_log = results.log_paths(self.settings.log_dir, job)
        if self.settings.log_dir is not None:
            self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        marker = f"{self.token}-{number}-{job.attempt}"
        spec = ProcessSpec(
            argv=command,
            cwd=cwd,
            env={
                **self.base_env,
                **{os.fsencode(k): os.fsencode(v) for k, v in job.env.items()},
                **{
                    os.fsencode(k): os.fsencode(v.replace("{worktree}", str(cwd)))
                    for k, v in job.worktree_env.items()
                },
                # A shell's idea of where it is, for tests that read it instead of getcwd().
                b"PWD": os.fsencode(cwd),
                MARKER_VARIABLE.encode(): marker.encode(),
            },
            marker=marker,
            timeout=job.timeout,
            grace=self.settings.kill_grace,
            output_limit=self.settings.output_limit,
            log_limit=self.settings.log_limit,
            stdout_log=stdout_log,
            stderr_log=stderr_log,
        )
        # Before the first test of this process starts: something that stops the tests if
        # refute dies without cleaning up (SIGKILL, OOM); see refute.engine.watchdog.
        ensure_watchdog()
        spawner = self.spawner_for_next_run()
        outcome = await run_process(spec, spawner)
        self.note_spawn(outcome.spawn_seconds, inline=spawner is None)
        # Results read the test's own command (its runner, its name), not the launcher's.
        shown = spec if command is argv else dataclasses.replace(spec, argv=argv)
        return results.outcome_result(job, shown, outcome, slot)


async def run_one(job: Job, settings: BatchSettings) -> TestExecutionResult:
    """Run a single job in a batch of its own (e.g. a setup command) and return its result."""
    async with LocalBackend().batch(settings) as batch:
        batch.submit(job)
        batch.close()
        async for result in batch:
            return result
    raise AssertionError("a batch with one job yields one result")  # pragma: no cover
