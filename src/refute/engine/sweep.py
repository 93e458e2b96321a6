"""Finding processes by the run marker in their environment (Linux /proc).

Every test process gets `REFUTE_RUN_ID=<batch>-<n>` in its environment, and every
descendant inherits it, including daemons that left the test's process group with
`setsid` and a double fork. A sweep reads `/proc/<pid>/environ` of every process and
returns those carrying the marker. It costs one pass over /proc, so the engine runs it
only when something was left behind (see process.py), never on the hot path.

Limits (documented in docs/executor.md): a process that replaced its environment
(`env -i`, `execve` with a fresh env) carries no marker and is not found; processes of
other users are unreadable without privileges; zombies have an empty environ and are
treated as dead, which they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

from refute.owners import token_owner_alive

__all__ = [
    "MARKER_VARIABLE",
    "SCOPE_VARIABLE",
    "find_marked",
    "find_orphaned_runs",
    "is_alive",
    "signal_pids",
    "stop_marked",
    "stop_orphans",
    "terminate",
]

MARKER_VARIABLE = "REFUTE_RUN_ID"
#: Set by the session runner to its state directory; scopes crash recovery (see below).
SCOPE_VARIABLE = "REFUTE_SCOPE"
_PROC = "/proc"
_POLL_INTERVAL = 0.02
#: How long to wait for a SIGKILLed process to disappear before giving up on it.
KILL_WAIT = 5.0


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


def signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _variable(environ: bytes, name: str) -> str | None:
    prefix = f"\0{name}=".encode()
    start = environ.find(prefix)
    if start < 0:
        return None
    end = environ.find(b"\0", start + 1)
    return environ[start + len(prefix) : end if end >= 0 else None].decode(errors="replace")


def find_orphaned_runs(scope: str) -> list[int]:
    """Live test processes whose refute (the owner named in their marker) is gone.

    Only processes whose `REFUTE_SCOPE` equals `scope` (the state directory of the refute
    that started them) count: two refute homes on one machine (two users, two CI jobs, two
    test sessions) never stop each other's tests.
    """
    orphans = []
    own = os.getpid()
    for name in os.listdir(_PROC):  # noqa: PTH208
        if not name.isdigit() or int(name) == own:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as handle:  # noqa: PTH123
                data = b"\0" + handle.read()
        except OSError:
            continue
        value = _variable(data, MARKER_VARIABLE)
        if value is None or _variable(data, SCOPE_VARIABLE) != scope:
            continue
        if not token_owner_alive(value) and is_alive(int(name)):
            orphans.append(int(name))
    return orphans


def killpg(pgid: int, signum: int) -> None:
    """Signal a process group; a group that is gone (or not ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def terminate(
    pids: Iterable[int],
    grace: float,
    *,
    find: Callable[[], list[int]] | None = None,
    group: int | None = None,
    group_gone: Callable[[], bool] | None = None,
) -> set[int]:
    """The one stop routine: SIGTERM, up to `grace` seconds, then SIGKILL.

    Signals the process group `group` (when given) and every pid of `pids`; `group_gone`
    says when the group's leader has exited. If anything is still alive after the grace
    period, it is killed, and `find` (when given) is asked again, up to three times, for
    processes forked meanwhile; then up to `KILL_WAIT` seconds pass for them to vanish.
    Returns every pid signalled (those of `pids` and the late ones).
    """
    signalled = set(pids)
    if group is not None:
        killpg(group, signal.SIGTERM)
    signal_pids(signalled, signal.SIGTERM)
    deadline = time.monotonic() + grace

    def everyone_gone() -> bool:
        leader_gone = group_gone is None or group_gone()
        return leader_gone and not any(is_alive(p) for p in signalled)

    while not everyone_gone() and time.monotonic() < deadline:  # noqa: ASYNC110 - no event exists for the death of a non-child
        await asyncio.sleep(_POLL_INTERVAL)
    if group is not None:
        # Unmarked stragglers (a scrubbed environment) may remain in the group; SIGKILL to
        # a group of zombies is harmless.
        killpg(group, signal.SIGKILL)
    if everyone_gone():
        return signalled
    signal_pids(signalled, signal.SIGKILL)
    if find is not None:
        for _ in range(3):  # processes forked during the grace period
            late = [p for p in find() if is_alive(p)]
            if not late:
                break
            signal_pids(late, signal.SIGKILL)
            signalled |= set(late)
            await asyncio.sleep(_POLL_INTERVAL)
    deadline = time.monotonic() + KILL_WAIT
    while any(is_alive(p) for p in signalled if p != group) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_POLL_INTERVAL)
    return signalled


async def stop_marked(marker_prefix: str, grace: float) -> int:
    """Stop every live process whose marker starts with `marker_prefix`; how many were found.

    Used once at the end of a batch for daemons that escaped runs which ended normally.
    """
    pids = [p for p in find_marked(marker_prefix, exact=False) if is_alive(p)]
    if pids:
        await terminate(pids, grace, find=lambda: find_marked(marker_prefix, exact=False))
    return len(pids)


async def stop_orphans(scope: str, grace: float, *, dry_run: bool = False) -> list[int]:
    """Stop test processes of refute processes that are gone (see `find_orphaned_runs`).

    Returns their pids; with `dry_run`, only finds them.
    """
    orphans = find_orphaned_runs(scope)
    if orphans and not dry_run:
        await terminate(orphans, grace, find=lambda: find_orphaned_runs(scope))
    return orphans
