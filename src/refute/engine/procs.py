"""Processes by their run marker, through /proc: the synchronous, stdlib-only half of the sweep.

`refute.engine.sweep` builds the asynchronous stop routine on these; the crash watchdog
(`refute.engine.watchdog`) uses them directly, because it must start in a few milliseconds
and so imports nothing but the standard library (no asyncio).

Limits (documented in docs/executor.md): a process that replaced its environment
(`env -i`, `execve` with a fresh env) carries no marker and is not found; processes of
other users are unreadable without privileges; zombies have an empty environ and are
treated as dead, which they are.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable

__all__ = [
    "MARKER_VARIABLE",
    "find_marked",
    "is_alive",
    "killpg",
    "process_group",
    "signal_pids",
]

MARKER_VARIABLE = "REFUTE_RUN_ID"
_PROC = "/proc"


def find_marked(marker_prefix: str, *, exact: bool) -> list[int]:
    """Pids of live processes whose environment has `REFUTE_RUN_ID=<marker_prefix>...`.

    With `exact=True` the value must equal `marker_prefix`; otherwise it must start with it.
    """
    needle = f"\0{MARKER_VARIABLE}={marker_prefix}".encode()
    if exact:
        needle += b"\0"
    if not sys.platform.startswith("linux"):  # pragma: no cover - psutil fallback
        return _find_marked_psutil(marker_prefix, exact=exact)
    own = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir(_PROC)  # noqa: PTH208 - str names, no Path objects per pid
    except OSError:  # pragma: no cover - /proc not mounted
        return _find_marked_psutil(marker_prefix, exact=exact)
    for name in entries:
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == own:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as handle:  # noqa: PTH123 - hot loop
                data = handle.read()
        except OSError:
            continue  # gone, or not ours to read
        if needle in b"\0" + data + b"\0":
            found.append(pid)
    return found


def _find_marked_psutil(marker_prefix: str, *, exact: bool) -> list[int]:  # pragma: no cover
    import psutil  # noqa: PLC0415 - only without /proc (Linux reads it directly)

    found = []
    for proc in psutil.process_iter():
        try:
            value = proc.environ().get(MARKER_VARIABLE)
        except (psutil.Error, OSError):
            continue
        if value is not None and (
            value == marker_prefix if exact else value.startswith(marker_prefix)
        ):
            found.append(proc.pid)
    return found


def is_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie holds no resources)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:  # noqa: PTH123
            stat = handle.read()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - unreadable: assume alive, the kill will tell
        return True
    # The state letter follows the last ')' (the command name may contain parentheses).
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


def process_group(pid: int) -> int | None:
    """The process group of `pid`, or None when it is gone."""
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def killpg(pgid: int, signum: int) -> None:
    """Signal a process group; a group that is gone (or not ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
