"""The session database's schema, its migrations, and how a connection is set up.

`refute.store` opens connections with `configure` and brings their schema up to date
with `migrate`; nothing here knows about session documents. The schema version is
`PRAGMA user_version`: `MIGRATIONS[n - 1]` takes a database from version n - 1 to n.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from refute.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT",
    "MIGRATIONS",
    "configure",
    "migrate",
    "sqlite_errors",
]

#: Seconds a connection waits for another process' write lock before giving up.
BUSY_TIMEOUT = 30.0

# Schema migrations: MIGRATIONS[n - 1] takes a database from version n - 1 to n.
# Never edit a released entry; append a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # version 1: the initial schema
        """
        CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            repo        TEXT NOT NULL,
            plan_path   TEXT,
            bug         TEXT NOT NULL,
            status      TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            exit_code   INTEGER,
            has_control INTEGER NOT NULL DEFAULT 0,
            document    TEXT NOT NULL
        )
        """,
        "CREATE INDEX sessions_by_started ON sessions (started_at)",
        "CREATE INDEX sessions_by_repo ON sessions (repo, started_at)",
        """
        CREATE TABLE hypotheses (
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            id         TEXT NOT NULL,
            rank       INTEGER NOT NULL,
            verdict    TEXT,
            spec       TEXT NOT NULL,
            analysis   TEXT,
            PRIMARY KEY (session_id, id)
        )
        """,
        """
        CREATE TABLE runs (
            session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            hypothesis_id TEXT NOT NULL,
            attempt       INTEGER NOT NULL CHECK (attempt >= 1),
            result        TEXT NOT NULL,
            exit_code     INTEGER,
            duration      REAL,
            started_at    REAL,
            finished_at   REAL,
            stdout_log    TEXT,
            stderr_log    TEXT,
            not_run       INTEGER NOT NULL DEFAULT 0,
            data          TEXT NOT NULL,
            PRIMARY KEY (session_id, hypothesis_id, attempt)
        )
        """,
    ),
    (  # version 2: the owner of a session (`<pid>.<start time>`, refute.owners), so a
        # session whose refute died is told apart from one that still runs
        "ALTER TABLE sessions ADD COLUMN owner TEXT",
    ),
]


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and any(
            sign in text for sign in ("malformed", "not a database", "disk I/O error")
        ):
            text += "; the session database is damaged: `refute clean` moves it aside"
        raise StoreError(f"{path}: {text}") from exc


def configure(conn: sqlite3.Connection, path: Path) -> None:
    with sqlite_errors(path):
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Switching a new database to WAL needs a moment of exclusive access; should another
        # process hold the lock then, retry within the busy timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        # Every commit reaches the disk: a finished run survives a power cut too.
        conn.execute("PRAGMA synchronous = FULL")


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[tuple[str, ...]]) -> None:
    """Bring the database up to version `len(migrations)`, applying the missing entries in
    one transaction; raises StoreError for a database newer than that. `refute.store`
    passes its own `MIGRATIONS`, the list `schema_version()` counts."""
    latest = len(migrations)
    with sqlite_errors(path):
        version = _user_version(conn)
        _check_not_newer(version, latest, path)
        if version == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _user_version(conn)  # another process may have migrated meanwhile
            _check_not_newer(version, latest, path)
            for number in range(version + 1, latest + 1):
                for statement in migrations[number - 1]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {latest}")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_not_newer(version: int, latest: int, path: Path) -> None:
    if version > latest:
        raise StoreError(
            f"{path}: the session database has schema version {version}, but this version"
            f" of refute only knows versions up to {latest}; upgrade refute, or point"
            " REFUTE_HOME elsewhere"
        )
