"""Signals of the command line: the first SIGINT/SIGTERM cancels, cleanup runs to the end."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from refute.engine.sigchld import sigchld_default
from refute.errors import Interrupted

__all__ = ["Interrupted", "run_interruptible"]

_T = TypeVar("_T")


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
