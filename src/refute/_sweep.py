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

import contextlib
import os
import sys

import psutil

MARKER_VARIABLE = "REFUTE_RUN_ID"
#: Set by the session runner to its state directory; scopes crash recovery (see below).
SCOPE_VARIABLE = "REFUTE_SCOPE"
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


def signal_pids(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _start_time(pid: int | str) -> str | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:  # noqa: PTH123
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


_token_cache: tuple[int, str] | None = None


def process_token() -> str:
    """`<pid>.<start time>`: names this refute process unambiguously, even after pid reuse."""
    global _token_cache  # noqa: PLW0603 - per-process memo, refreshed after fork
    pid = os.getpid()
    if _token_cache is None or _token_cache[0] != pid:
        _token_cache = (pid, f"{pid}.{_start_time(pid) or 0}")
    return _token_cache[1]


def token_owner_alive(token: str) -> bool:
    """True while the refute process named by a token's `<pid>.<start>` prefix runs."""
    parts = token.split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return False
    return _start_time(parts[0]) == parts[1].split("-")[0]


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
