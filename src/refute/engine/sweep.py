"""Finding processes by the run marker in their environment (Linux /proc).

Every test process gets `REFUTE_RUN_ID=<batch>-<n>` in its environment, and every
descendant inherits it, including daemons that left the test's process group with
`setsid` and a double fork. A sweep reads `/proc/<pid>/environ` of every process and
returns those carrying the marker. It costs one pass over /proc, so the engine runs it
only when something was left behind (see process.py), never on the hot path.

The /proc readers themselves live in `refute.engine.procs` (stdlib only, shared with the
crash watchdog); their limits are documented there and in docs/executor.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterable

from refute.engine.procs import (
    MARKER_VARIABLE,
    find_marked,
    is_alive,
    killpg,
    signal_pids,
)
from refute.owners import token_owner_alive

__all__ = [
    "MARKER_VARIABLE",
    "SCOPE_VARIABLE",
    "find_marked",
    "find_orphaned_runs",
    "is_alive",
    "killpg",
    "signal_pids",
    "stop_marked",
    "stop_orphans",
    "terminate",
]

#: Set by the session runner to its state directory; scopes crash recovery (see below).
SCOPE_VARIABLE = "REFUTE_SCOPE"
_PROC = "/proc"
_POLL_INTERVAL = 0.02
#: How long to wait for a SIGKILLed process to disappear before giving up on it.
KILL_WAIT = 5.0


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
