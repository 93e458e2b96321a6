"""Signals of the command line: the first SIGINT/SIGTERM cancels, cleanup runs to the end.

What must stay true, whenever a signal (or a burst of them) arrives:

* From the moment `run_interruptible` is entered to the end of the process, SIGINT and
  SIGTERM never take their default action (death by signal, or a KeyboardInterrupt raised
  wherever the interpreter happens to be): Python-level handlers are installed before the
  event loop exists and never replaced by the defaults again. asyncio's own
  `add_signal_handler` is not used, because removing it (which `loop.close()` does) puts
  the defaults back, and a SIGTERM in that window killed refute with -15.
* A signal delivered to another thread still wakes the loop: the C handler writes to a
  wake-up pipe the loop reads (`signal.set_wakeup_fd`), then the Python handler runs on
  the main thread.
* The first signal cancels the session (once it is running, or at once if it came before);
  further ones are recorded and ignored, so the cleanup is never abandoned.
* A signal after the session has ended changes nothing: the session is recorded, the
  report is printed, refute exits with the recorded code (docs/decisions.md §17.3).
  From then on the two signals are ignored: a no-op handler, then SIG_IGN from exit on
  (finalization resets Python handlers to the defaults, never SIG_IGN).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

from refute.engine.sigchld import sigchld_default
from refute.errors import Interrupted

__all__ = ["Interrupted", "run_interruptible"]

_T = TypeVar("_T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _after_session(_signum: int, _frame: FrameType | None) -> None:
    """A signal after the session has ended: nothing left to interrupt."""


_exit_hook: list[bool] = []


def _ignore_from_exit() -> None:
    """From interpreter exit on, SIGINT and SIGTERM are ignored at the OS level.

    Finalization resets every Python-level handler to SIG_DFL, and a burst's last signal
    then killed refute with -2 or -15 after its "interrupted" line or its report; it never
    resets SIG_IGN. Only from exit on: children spawned before would inherit SIG_IGN.
    """
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(_ignore_signals)


def _ignore_signals() -> None:
    for signum in _SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN)


def _install(handler: Callable[[int, FrameType | None], None]) -> list[int]:
    """Install `handler` for SIGINT and SIGTERM; the signals it could be installed for
    (none off the main thread, where Python cannot change signal dispositions)."""
    installed: list[int] = []
    for signum in _SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, handler)
            installed.append(signum)
    return installed


@contextlib.contextmanager
def _wakeup(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """While inside, a signal wakes `loop` (whichever thread the kernel delivered it to)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)

    def drain() -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(read_end, 512):
                pass

    try:
        previous = signal.set_wakeup_fd(write_end)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        os.close(read_end)
        os.close(write_end)
        yield
        return
    loop.add_reader(read_end, drain)
    try:
        yield
    finally:
        loop.remove_reader(read_end)
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)


def run_interruptible(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a whole refute session from the main thread of a command-line program.

    The first SIGINT or SIGTERM cancels the session, whose cleanup then runs to the end;
    further signals while it cleans up are ignored. Raises `Interrupted` once everything
    is cleaned up. Afterwards SIGINT and SIGTERM are ignored in this process (refute is
    only printing and exiting; the session has ended and is recorded), through a no-op
    Python handler (so processes spawned later still get the default dispositions) and,
    from interpreter exit on, SIG_IGN.
    """
    received: list[int] = []
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1 and running:
            loop, task = running[0]
            loop.call_soon_threadsafe(task.cancel)

    installed = _install(on_signal)

    async def main() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task here
        running.append((loop, task))
        try:
            with _wakeup(loop) if installed else contextlib.nullcontext():
                if received:  # before the loop ran: nothing has started
                    raise Interrupted(received[0])
                return await factory()
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            running.clear()

    try:
        with sigchld_default():
            return asyncio.run(main())
    finally:
        for signum in installed:
            signal.signal(signum, _after_session)
        if installed:
            _ignore_from_exit()
