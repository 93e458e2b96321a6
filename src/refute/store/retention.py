"""Which sessions are old, and deleting them: what `refute clean --older-than` asks for.

A session's age is that of its end (`finished_at`, else `started_at`). A session whose
status is "running" is never listed: its refute may still be writing it (one that died
is first marked so by `refute resume` or the session lifecycle). Deleting a session
deletes its hypotheses and runs; its logs are the caller's (`refute.app.retention`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from refute.store.sessions import Store

__all__ = [
    "SessionAge",
    "delete_sessions",
    "session_ages",
]


@dataclass(frozen=True)
class SessionAge:
    """One stored session: its id, status and when it ended (or started, if it did not)."""

    id: str
    status: str
    ended: datetime


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def session_ages(store: Store) -> list[SessionAge]:
    """Every stored session, oldest end first; a time that does not parse counts as the
    oldest (such a session can only be cleaned up)."""
    with store._read() as conn:  # noqa: SLF001 - the store's own package
        rows = conn.execute("SELECT id, status, started_at, finished_at FROM sessions").fetchall()
    oldest = datetime.min.replace(tzinfo=UTC)
    ages = [
        SessionAge(str(sid), str(status), _parse(finished) or _parse(started) or oldest)
        for sid, status, started, finished in rows
    ]
    return sorted(ages, key=lambda age: (age.ended, age.id))


def delete_sessions(store: Store, session_ids: Sequence[str]) -> int:
    """Delete these sessions (never a "running" one) with their hypotheses and runs, in one
    transaction; returns how many were deleted."""
    deleted = 0
    with store._write() as conn:  # noqa: SLF001 - the store's own package
        for session_id in session_ids:
            row = conn.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None or row[0] == "running":
                continue
            conn.execute("DELETE FROM runs WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM hypotheses WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            deleted += 1
    return deleted
