"""Running the async engine from synchronous code, and SIGCHLD hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

_T = TypeVar("_T")

_sigchld_lock = threading.Lock()
_sigchld_depth = 0
_sigchld_saved: object = None


@contextlib.contextmanager
def sigchld_default() -> Iterator[None]:
    """While any batch is inside, SIGCHLD is not ignored, so exit statuses can be collected.

    A process that ignores SIGCHLD (inherited SIG_IGN, or set by a host application) has
    its children reaped by the kernel and their statuses thrown away. The first entry
    (on the main thread: only it may change signal dispositions) switches to SIG_DFL; the
    last exit restores SIG_IGN, so overlapping batches are covered. Where no change is
    possible, a lost status is reported as an ERROR result rather than guessed.
    """
    global _sigchld_depth, _sigchld_saved  # noqa: PLW0603 - one disposition per process
    on_main = threading.current_thread() is threading.main_thread()
    with _sigchld_lock:
        _sigchld_depth += 1
        if (
            on_main
            and _sigchld_saved is None
            and signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
        ):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _sigchld_saved = signal.SIG_IGN
    try:
        yield
    finally:
        with _sigchld_lock:
            _sigchld_depth -= 1
            if _sigchld_depth == 0 and _sigchld_saved is not None and on_main:
                signal.signal(signal.SIGCHLD, signal.SIG_IGN)
                _sigchld_saved = None


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


class Interrupted(Exception):  # noqa: N818 - reads as what happened
    """The run was stopped by SIGINT or SIGTERM; cleanup has finished. `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_interruptible(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a whole refute session from the main thread of a command-line program.

    The first SIGINT or SIGTERM cancels the session, whose cleanup then runs to the end;
    further signals while it cleans up are ignored (asyncio's own handler would raise
    KeyboardInterrupt into the loop on the second Ctrl-C and abandon the cleanup). Raises
    `Interrupted` once everything is cleaned up.
    """
    received: list[int] = []

    async def main() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task here

        def on_signal(signum: int) -> None:
            received.append(signum)
            if len(received) == 1:
                task.cancel()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
        try:
            return await factory()
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    with sigchld_default():
        return asyncio.run(main())
