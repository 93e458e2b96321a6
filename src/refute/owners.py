"""Who made a thing: a token naming one live refute process, immune to pid reuse.

Snapshot refs, temporary directories and test-process markers carry the token of the
refute process that made them (`<pid>.<start time>`); reconciliation removes a thing only
when the process its token names is gone. Linux /proc; no other dependency.
"""

from __future__ import annotations

import os

__all__ = ["process_token", "token_owner_alive"]

_PROC = "/proc"


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
