"""The `refute` command line."""

# The command line's first instructions: a Ctrl-C while the rest is imported (a noticeable
# fraction of a second on a loaded machine) ends the process with one line and exit 130,
# not an import traceback. `main` takes over from there; the previous handler is back
# once the import is done, so a program that imports `refute.cli` keeps its own.
import contextlib as _contextlib
import os as _os
import signal as _signal
from types import FrameType as _FrameType


def _interrupted_early(_signum: int, _frame: _FrameType | None) -> None:
    with _contextlib.suppress(OSError):  # stderr closed: the exit code says it
        _os.write(2, b"refute: interrupted\n")
    # Not SystemExit: raised inside the import machinery's callbacks it would be printed
    # as "Exception ignored" and the Ctrl-C lost. Nothing exists yet that needs cleaning.
    _os._exit(130)  # EXIT_INTERRUPTED, which is not imported yet


# SIGTERM too: the session treats it as a Ctrl-C (exit 130), and so does its start.
_EARLY = (_signal.SIGINT, _signal.SIGTERM)
_previous = {signum: _signal.getsignal(signum) for signum in _EARLY}
try:
    for _signum in _EARLY:
        _signal.signal(_signum, _interrupted_early)
    _installed = True
except ValueError:  # not the main thread
    _installed = False
try:
    from refute.cli.main import cli, main
finally:
    if _installed:
        for _signum, _handler in _previous.items():
            _signal.signal(_signum, _handler)

__all__ = ["cli", "main"]
