"""SIGCHLD hygiene: exit statuses can be collected while any batch runs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["sigchld_default"]

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
