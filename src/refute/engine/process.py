"""One test process: spawn, stream its output, enforce its timeout, kill its whole tree, reap it.

How a run goes, and what must stay true:

* The child starts in a new session (so its process group is its own), with stdin from
  /dev/null and stdout/stderr on two pipes. Spawning goes through `subprocess.Popen`
  with plain fds, which uses vfork+exec: no shell, no thread, no asyncio transport.
* Exit is observed through a pidfd registered with the event loop (Linux >= 5.3), so no
  thread per child and no SIGCHLD handler; the exit status is collected with `waitpid`
  on that one pid only, so other code's children are never reaped by mistake.
* Both pipes are read with non-blocking `os.read` in 64 KiB chunks as they become
  readable; bytes go to the log file whole and to a bounded head+tail buffer.
* Timeout or cancellation: SIGTERM to the process group and to every process carrying
  the run's marker (daemons that escaped the group), a grace period, then SIGKILL.
* After a normal exit, the fast path costs one `killpg(pgid, 0)`: only if the group still
  has members, or a pipe is still held open by someone, is /proc swept for the marker.
* The stop-and-reap sequence is shielded from cancellation: a second Ctrl-C cannot
  orphan a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from refute.engine.output import DEFAULT_LOG_LIMIT, OutputCapture
from refute.engine.sweep import KILL_WAIT, find_marked, is_alive, killpg, terminate

__all__ = [
    "ProcessOutcome",
    "ProcessSpec",
    "run_process",
    "shielded",
]


_T = TypeVar("_T")
_READ_CHUNK = 64 * 1024
#: How long a pipe may stay open after the tree is gone before /proc is swept for a holder.
_SIBLING_EXEC_WAIT = 0.25
#: A synchronous drain reads at most this much before concluding a writer is still alive.
_DRAIN_LIMIT = 4 * 1024 * 1024

_devnull_lock = threading.Lock()
_devnull_fd: int | None = None


def _devnull() -> int:
    """One read-only /dev/null descriptor for the whole process (non-inheritable)."""
    global _devnull_fd  # noqa: PLW0603 - opened once, shared by every spawn
    with _devnull_lock:
        if _devnull_fd is None:
            _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return _devnull_fd


async def shielded(aw: Awaitable[_T]) -> _T:
    """Await `aw` to completion even if the caller is cancelled (again and again).

    The cancellation is re-raised once `aw` has finished. This is load-bearing for
    cleanup: a cancelled wait must never leave a child running or unreaped.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


@dataclass(frozen=True)
class ProcessSpec:
    """What to run and under which limits. `env` is the complete environment."""

    argv: list[str]
    cwd: Path
    env: dict[bytes, bytes]
    marker: str
    timeout: float
    grace: float = 2.0
    output_limit: int = 64 * 1024
    log_limit: int = DEFAULT_LOG_LIMIT
    stdout_log: Path | None = None
    stderr_log: Path | None = None


@dataclass
class ProcessOutcome:
    """How a process ended. `exit_code` is None when it never started or its status was lost."""

    exit_code: int | None
    duration: float
    started_at: float
    stdout: OutputCapture
    stderr: OutputCapture
    timed_out: bool = False
    spawn_error: Exception | None = None
    status_error: str = ""
    leftovers_killed: int = 0
    output_abandoned: bool = False
    cleanup_seconds: float = 0.0
    spawn_seconds: float = 0.0  # how long Popen took (it returns once the child has exec'd)
    notes: list[str] = field(default_factory=list)


async def run_process(spec: ProcessSpec, spawner: Executor | None = None) -> ProcessOutcome:
    """Run `spec` to completion, timeout or cancellation; never leaves a process behind.

    `spawner` (a small thread pool shared by a batch) runs the `Popen` call off the event
    loop: `Popen` returns only once the child has exec'd, which on a busy machine means
    waiting for the child to be scheduled; spawning from a few threads overlaps those
    waits instead of serializing them. On cancellation the process tree is stopped and
    reaped first, then CancelledError propagates.
    """
    stdout = OutputCapture(spec.output_limit, spec.stdout_log, spec.log_limit)
    stderr = OutputCapture(spec.output_limit, spec.stderr_log, spec.log_limit)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started_at = time.time()
    start = time.monotonic()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=_devnull(),
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,
            close_fds=True,
        )

    try:
        if spawner is None:
            popen = spawn()
        else:
            popen = await _spawn_in(spawner, spawn)
    except (OSError, ValueError, TypeError) as exc:
        os.close(out_r)
        os.close(err_r)
        stdout.close()
        stderr.close()
        return ProcessOutcome(
            exit_code=None,
            duration=time.monotonic() - start,
            started_at=0.0,
            stdout=stdout,
            stderr=stderr,
            spawn_error=exc,
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        stdout.close()
        stderr.close()
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    running = _RunningProcess(spec, popen, start, started_at, (out_r, stdout), (err_r, stderr))
    running.outcome.spawn_seconds = time.monotonic() - start
    return await running.run()


async def _spawn_in(
    spawner: Executor, spawn: Callable[[], subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Spawn on `spawner`. A spawn cannot be interrupted: if we are cancelled meanwhile, wait
    for it, then kill and reap what it started before letting the cancellation through."""
    future = asyncio.get_running_loop().run_in_executor(spawner, spawn)
    cancelled = False
    while True:
        try:
            popen = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            # Remember the cancellation whatever happens next: swallowing it here would
            # leave the run going with its task marked as cancelling (a hang at shutdown).
            cancelled = True
            if future.done():
                if future.cancelled() or future.exception() is not None:
                    raise
                popen = future.result()
                break
    if cancelled:
        killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(popen.pid, 0)  # noqa: ASYNC222 - just SIGKILLed: returns at once
        popen.returncode = -signal.SIGKILL
        raise asyncio.CancelledError
    return popen


class _RunningProcess:
    def __init__(
        self,
        spec: ProcessSpec,
        popen: subprocess.Popen[bytes],
        start: float,
        started_at: float,
        out: tuple[int, OutputCapture],
        err: tuple[int, OutputCapture],
    ) -> None:
        self.spec = spec
        self.popen = popen
        self.pid = popen.pid
        self.start = start
        self.loop = asyncio.get_running_loop()
        self.streams = dict((out, err))
        self.open_fds = set(self.streams)
        self.eof = self.loop.create_future()
        self.exited = self.loop.create_future()
        self.wake = self.loop.create_future()  # exit or deadline, whichever comes first
        self.reaped = False
        self.outcome = ProcessOutcome(
            exit_code=None,
            duration=0.0,
            started_at=started_at,
            stdout=out[1],
            stderr=err[1],
        )

    # -- event-loop plumbing -------------------------------------------------------------

    def _watch(self) -> None:
        for fd in self.streams:
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, self._on_readable, fd)
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # pragma: no cover - kernel < 5.3 or not Linux
            waiter = self.loop.run_in_executor(None, _wait_exit_nowait, self.pid)
            waiter.add_done_callback(lambda _f: self._set_exited())
            return
        self.loop.add_reader(pidfd, self._on_pidfd, pidfd)

    def _on_pidfd(self, pidfd: int) -> None:
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self._set_exited()

    def _set_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        if not self.wake.done():
            self.wake.set_result(None)

    def _on_deadline(self) -> None:
        if not self.wake.done():
            self.outcome.timed_out = True
            self.wake.set_result(None)

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.streams[fd].feed(data)
        else:
            self._close_stream(fd)

    def _close_stream(self, fd: int) -> None:
        if fd in self.open_fds:
            self.open_fds.discard(fd)
            self.loop.remove_reader(fd)
            os.close(fd)
            if not self.open_fds and not self.eof.done():
                self.eof.set_result(None)

    # -- the run -------------------------------------------------------------------------

    async def run(self) -> ProcessOutcome:
        self._watch()
        deadline = self.loop.call_later(self.spec.timeout, self._on_deadline)
        try:
            try:
                await self.wake
            except asyncio.CancelledError:
                self.outcome.duration = time.monotonic() - self.start
                await shielded(self._stop_tree())
                raise
            finally:
                deadline.cancel()
            self.outcome.duration = time.monotonic() - self.start
            if self.outcome.timed_out:
                await shielded(self._stop_tree())
            elif not self._finished_cleanly():
                await shielded(self._after_exit())
        finally:
            self._release()
        return self.outcome

    def _finished_cleanly(self) -> bool:
        """The fast path after an exit: reap, nobody left in the group, pipes at EOF.

        Costs a waitpid, a killpg(pgid, 0) and a read per pipe; no /proc sweep, no task.
        """
        self._reap()
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return self._drain_now()
        except PermissionError:  # pragma: no cover - a setuid member
            return False
        return False

    async def _after_exit(self) -> None:
        """The main process ended by itself: reap it, then deal with anything it left."""
        cleanup_start = time.monotonic()
        self._reap()
        try:
            os.killpg(self.pid, 0)
            leftovers = True
        except ProcessLookupError:
            leftovers = False
        except PermissionError:  # pragma: no cover - a setuid member
            leftovers = True
        if leftovers:
            marked = [p for p in find_marked(self.spec.marker, exact=True) if is_alive(p)]
            if marked:
                await self._terminate(marked)
            else:
                # Only zombies (or members that scrubbed their environment) remain.
                killpg(self.pid, signal.SIGKILL)
        await self._drain()
        self.outcome.cleanup_seconds = time.monotonic() - cleanup_start

    async def _stop_tree(self) -> None:
        """Timeout or cancellation: TERM the tree, wait out the grace period, KILL the rest."""
        cleanup_start = time.monotonic()
        marked = find_marked(self.spec.marker, exact=True)
        await self._terminate(marked, main_running=True)
        if not self.exited.done():
            await asyncio.wait({self.exited}, timeout=KILL_WAIT)
        self._reap()
        await self._drain()
        self.outcome.cleanup_seconds = time.monotonic() - cleanup_start

    async def _terminate(self, marked: list[int], *, main_running: bool = False) -> None:
        """SIGTERM the group and `marked`, wait up to the grace period, then SIGKILL."""
        others = [p for p in marked if p != self.pid]
        self.outcome.leftovers_killed += len([p for p in others if is_alive(p)])
        signalled = await terminate(
            marked,
            self.spec.grace,
            find=lambda: find_marked(self.spec.marker, exact=True),
            group=self.pid,
            group_gone=self.exited.done if main_running else None,
        )
        self.outcome.leftovers_killed += len(signalled - set(marked) - {self.pid})

    def _reap(self) -> None:
        if self.reaped or not self.exited.done():
            return
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            # SIGCHLD is ignored in this process: the kernel reaped the child and dropped its
            # status. The executor resets SIGCHLD to avoid this; see executor._sigchld_default.
            self.outcome.status_error = (
                "exit status lost: SIGCHLD is ignored in this process and could not be reset"
            )
            code = None
        else:
            code = os.waitstatus_to_exitcode(status)
        self.reaped = True
        self.outcome.exit_code = code
        # Popen must not think the child still runs, or it would warn and poll it later.
        self.popen.returncode = code if code is not None else -1

    async def _drain(self) -> None:
        """Read what is left in the pipes; if a writer outlived the tree, find and stop it."""
        if self._drain_now():
            return
        # A sibling spawn that forked while our pipe's write end was still open in this
        # process holds a copy until it execs (close-on-exec): wait a moment for that
        # before concluding that an escaped descendant holds the pipe.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.eof), timeout=_SIBLING_EXEC_WAIT)
        if self._drain_now():
            return
        marked = [p for p in find_marked(self.spec.marker, exact=True) if is_alive(p)]
        if marked:
            await self._terminate(marked)
        if self._drain_now():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.eof), timeout=self.spec.grace)
        if self.open_fds:
            # A writer we cannot find (its environment was scrubbed) still holds the pipe.
            self.outcome.output_abandoned = True
            self.outcome.notes.append(
                "output abandoned: a process outside the test's group kept its pipe open"
            )

    def _drain_now(self) -> bool:
        """Read without waiting; True when every pipe has reached end of file."""
        budget = _DRAIN_LIMIT
        for fd in list(self.open_fds):
            while budget > 0:
                try:
                    data = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self._close_stream(fd)
                    break
                budget -= len(data)
                self.streams[fd].feed(data)
        return not self.open_fds

    def _release(self) -> None:
        for fd in list(self.open_fds):
            self._close_stream(fd)
        for capture in self.streams.values():
            capture.close()
        if not self.reaped:
            if self.exited.done():
                self._reap()
            else:  # pragma: no cover - survived SIGKILL for KILL_WAIT (uninterruptible sleep)
                threading.Thread(target=_reap_later, args=(self.popen,), daemon=True).start()
                self.outcome.notes.append(f"process {self.pid} did not die after SIGKILL")


def _wait_exit_nowait(pid: int) -> None:  # pragma: no cover - fallback without pidfd
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def _reap_later(popen: subprocess.Popen[bytes]) -> None:  # pragma: no cover
    with contextlib.suppress(ChildProcessError):
        _, status = os.waitpid(popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
