"""The session store: sessions, their hypotheses and every run, in one SQLite database.

The database lives at `state_dir()/refute.sqlite3` (DESIGN.md, "Where refute keeps
things"). It holds *session documents* (docs/report.md)
split in two: the **head** (everything but the runs: session meta, control meta,
hypothesis specs and analysis, summary) is one JSON text in `sessions.document`; each
**run** (`TestExecutionResult.to_dict()`) is one row of `runs`, written and committed the
moment it finishes, so a crash (even SIGKILL) loses nothing already finished. `hypotheses`
mirrors the head's hypotheses (spec and analysis) for queries.

Runs are keyed by (session, hypothesis, attempt); control runs use the hypothesis id
`"control"` (which no hypothesis may have). A run that never finished (`metrics.not_run`)
is stored with `not_run = 1` and does not count as done: `unfinished()` lists its attempt
again, and a real result for the same attempt replaces it (what `refute resume` does). A
real result is never replaced by a not_run one.

Each session records its **owner**, the token (`<pid>.<start time>`, `refute.owners`) of
the refute process running it. A session stored as "running" whose owner is gone (killed,
even by SIGKILL) is read as "interrupted" (`load_document`, `list_sessions`), and
`claim_session` (what a resume does first) refuses a session whose owner still runs.

Several processes may use the same database at once: WAL mode (readers never wait for the
writer), a 30 s busy timeout, and every write is one short `BEGIN IMMEDIATE` transaction
(a transaction that starts as a reader and then writes could fail at once with "database
is locked" instead of waiting). The schema carries a version (`PRAGMA user_version`);
`MIGRATIONS` are applied in order inside one transaction, and a database newer than this
code is refused with a `StoreError` rather than misread.

The pieces live in their own modules: `schema` (the SQL schema, its migrations and
connection set-up), `documents` (validating a document and splitting it into head and
runs, and joining them again) and `rows` (writing hypothesis and run rows).

Only plain dicts go in and out, validated on the way in with the models of
`refute.document` (a malformed document or run is a `StoreError` saying what is wrong);
the store keeps exactly the dicts it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from refute.document import ANALYSIS_KEYS, CONTROL_ID, STATUSES
from refute.errors import SessionRunningError, StoreError, UnknownSessionError
from refute.owners import process_token, token_owner_alive
from refute.paths import state_dir
from refute.store.documents import (
    DOCUMENT_SCHEMA,
    dumps,
    get_field,
    join_runs,
    now_iso,
    repeat_count,
    split_document,
    summary_counts,
)
from refute.store.repair import check_schema, ensure_database, prepare_directory
from refute.store.rows import upsert_hypotheses, upsert_run
from refute.store.schema import (
    BUSY_TIMEOUT,
    MIGRATIONS,
    configure,
    migrate,
    sqlite_errors,
)

# The store's API, including the names defined in the private modules.
__all__ = [
    "ANALYSIS_KEYS",
    "BUSY_TIMEOUT",
    "CONTROL_ID",
    "DB_FILENAME",
    "DOCUMENT_SCHEMA",
    "STATUSES",
    "Store",
    "default_path",
    "schema_version",
]

#: File name of the database under `state_dir()`.
DB_FILENAME = "refute.sqlite3"


def schema_version() -> int:
    """The schema version this code creates and understands."""
    return len(MIGRATIONS)


def default_path() -> Path:
    """Where the store lives unless told otherwise: `state_dir()/refute.sqlite3`."""
    return state_dir() / DB_FILENAME


class Store:
    """One connection to the session database. Use `Store.open()`; close it (or use it as a
    context manager). Methods are serialised by a lock, so one Store may be shared by
    threads; each process should open its own."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection: sqlite3.Connection | None = connection
        self.path = path
        self._lock = threading.RLock()

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating and migrating as needed) the database at `path`.

        Default: `state_dir()/refute.sqlite3`, creating the state directory with its
        ownership marker. Raises StoreError when the file cannot be opened, is not a
        refute database, or has a schema newer than this code.
        """
        if path is None:
            path = default_path()
            prepare_directory(path.parent)
        else:
            path = Path(path)
            if not path.parent.exists():
                prepare_directory(path.parent)
        # A corrupt file is refused in one line (`refute.store.repair`); a missing one is
        # created whole and private (SQLite gives the -wal and -shm files its permissions).
        ensure_database(path)
        try:
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the session database: {exc}") from exc
        try:
            # Before anything writes (configure switches to WAL): a foreign database is
            # refused untouched.
            check_schema(connection, path, len(MIGRATIONS))
            configure(connection, path)
            # This module's `MIGRATIONS`, read now: the list `schema_version()` counts.
            migrate(connection, path, MIGRATIONS)
        except BaseException:
            connection.close()
            raise
        return cls(connection, path)

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def create_session(self, doc: Mapping[str, Any], *, owner: str | None = None) -> None:
        """Insert a new session (status "running") and its hypotheses from a session
        document. Runs already in the document are stored too. `owner` is the token of
        the refute process that runs it (default: this process'). Raises StoreError if
        the document is malformed or the id is taken."""
        head, runs = split_document(doc)
        session = head["session"]
        session_id: str = session["id"]
        session.update(status="running", finished_at=None, exit_code=None)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise StoreError(f"session {session_id} already exists")
            conn.execute(
                "INSERT INTO sessions (id, repo, plan_path, bug, status, started_at,"
                " finished_at, exit_code, has_control, document, owner)"
                " VALUES (?, ?, ?, ?, 'running', ?, NULL, NULL, ?, ?, ?)",
                (
                    session_id,
                    session["repo"],
                    session["plan_path"],
                    session["bug"],
                    session["started_at"],
                    int(head.get("control") is not None),
                    dumps(head, "the session document"),
                    owner or process_token(),
                ),
            )
            upsert_hypotheses(conn, session_id, head["hypotheses"])
            for hypothesis_id, run in runs:
                upsert_run(conn, session_id, hypothesis_id, run)

    def add_run(
        self, session_id: str, run: Mapping[str, Any], *, hypothesis_id: str | None = None
    ) -> bool:
        """Store one run (a `TestExecutionResult.to_dict()`) and commit at once.

        The run belongs to `hypothesis_id`, by default `run["hypothesis_id"]`; control runs
        use "control". Its attempt is `run["metrics"]["attempt"]` (default 1). A run
        for an attempt already stored replaces it, except that a not_run result never
        replaces a real one: then nothing is written and False is returned.
        """
        target = hypothesis_id if hypothesis_id is not None else get_field(run, "hypothesis_id")
        if not isinstance(target, str) or not target:
            raise StoreError(f"run has no hypothesis id: {target!r}")
        with self._write() as conn:
            row = _session_row(conn, session_id, "has_control")
            if target == CONTROL_ID:
                if not row[0]:
                    raise StoreError(f"session {session_id} has no control, cannot add its run")
            elif not conn.execute(
                "SELECT 1 FROM hypotheses WHERE session_id = ? AND id = ?", (session_id, target)
            ).fetchone():
                raise StoreError(f"session {session_id} has no hypothesis {target!r}")
            return upsert_run(conn, session_id, target, run)

    def finish_session(
        self, session_id: str, status: str, exit_code: int | None, document: Mapping[str, Any]
    ) -> None:
        """Record the end of a session: its status, exit code and final analysed document.

        The document's head replaces the stored one (its `session.finished_at` is kept, or
        set to now); runs it carries are stored like `add_run` would.
        """
        _check_status(status)
        head, runs = split_document(document)
        session = head["session"]
        if session["id"] != session_id:
            raise StoreError(f"document is for session {session['id']!r}, not {session_id!r}")
        finished_at = session.get("finished_at") or now_iso()
        session.update(status=status, exit_code=exit_code, finished_at=finished_at)
        with self._write() as conn:
            _session_row(conn, session_id, "1")
            conn.execute(
                "UPDATE sessions SET repo = ?, plan_path = ?, bug = ?, status = ?,"
                " finished_at = ?, exit_code = ?, has_control = ?, document = ? WHERE id = ?",
                (
                    session["repo"],
                    session["plan_path"],
                    session["bug"],
                    status,
                    finished_at,
                    exit_code,
                    int(head.get("control") is not None),
                    dumps(head, "the session document"),
                    session_id,
                ),
            )
            upsert_hypotheses(conn, session_id, head["hypotheses"])
            for hypothesis_id, run in runs:
                upsert_run(conn, session_id, hypothesis_id, run)

    def set_status(self, session_id: str, status: str) -> None:
        """Change a session's status. A final status (anything but "running") sets
        `finished_at` if it was unset; "running" (a resume) clears `finished_at` and
        `exit_code`."""
        _check_status(status)
        with self._write() as conn:
            _session_row(conn, session_id, "1")
            if status == "running":
                conn.execute(
                    "UPDATE sessions SET status = ?, finished_at = NULL, exit_code = NULL"
                    " WHERE id = ?",
                    (status, session_id),
                )
            else:
                conn.execute(
                    "UPDATE sessions SET status = ?, finished_at = coalesce(finished_at, ?)"
                    " WHERE id = ?",
                    (status, now_iso(), session_id),
                )

    def claim_session(self, session_id: str, *, owner: str | None = None) -> None:
        """Make `owner` (default: this process) the owner of a session about to run again:
        status "running", `finished_at` and `exit_code` cleared. Atomic, so two resumes
        cannot both win; raises SessionRunningError while another live process runs it."""
        me = owner or process_token()
        with self._write() as conn:
            status, current = _session_row(conn, session_id, "status, owner")
            if status == "running" and current and current != me and token_owner_alive(current):
                raise SessionRunningError(
                    f"session {session_id} is still running (refute process"
                    f" {_owner_pid(current)}); wait for it, or stop it first"
                )
            conn.execute(
                "UPDATE sessions SET status = 'running', finished_at = NULL, exit_code = NULL,"
                " owner = ? WHERE id = ?",
                (me, session_id),
            )

    def mark_failed(self, session_id: str, exit_code: int | None, error: str) -> None:
        """Record that a session failed, writing as little as possible: for when
        `finish_session` itself failed (a full disk). Tries the status, exit code and
        error; if even that cannot be written, the status and exit code alone."""
        finished_at = now_iso()
        try:
            with self._write() as conn:
                conn.execute(
                    "UPDATE sessions SET status = 'failed', exit_code = ?,"
                    " finished_at = coalesce(finished_at, ?),"
                    " document = json_set(document, '$.session.error', ?) WHERE id = ?",
                    (exit_code, finished_at, error, session_id),
                )
        except StoreError:
            with self._write() as conn:
                conn.execute(
                    "UPDATE sessions SET status = 'failed', exit_code = ?,"
                    " finished_at = coalesce(finished_at, ?) WHERE id = ?",
                    (exit_code, finished_at, session_id),
                )

    # -- reading --------------------------------------------------------------------------

    def load_document(self, session_id: str) -> dict[str, Any]:
        """The full session document: the stored head with the runs attached, each
        hypothesis' (and the control's) in attempt order; status, finished_at and exit_code
        are the current ones."""
        with self._read() as conn:
            status, finished_at, exit_code, document, owner = _session_row(
                conn, session_id, "status, finished_at, exit_code, document, owner"
            )
            rows = conn.execute(
                "SELECT hypothesis_id, data FROM runs WHERE session_id = ?"
                " ORDER BY hypothesis_id, attempt",
                (session_id,),
            ).fetchall()
        doc: dict[str, Any] = json.loads(document)
        shown = _status_as_seen(status, owner)
        doc["session"].update(status=shown, finished_at=finished_at, exit_code=exit_code)
        if shown != status and not doc["session"].get("error"):
            doc["session"]["error"] = (
                f"its refute process ({_owner_pid(owner)}) is gone;"
                f" `refute resume {session_id}` finishes it"
            )
        return join_runs(doc, rows)

    def latest_session_id(self, repo: str | os.PathLike[str] | None = None) -> str | None:
        """The id of the most recently started session (of `repo`, if given), or None."""
        sessions = self.list_sessions(repo, limit=1)
        return str(sessions[0]["id"]) if sessions else None

    def list_sessions(
        self, repo: str | os.PathLike[str] | None = None, limit: int | None = 50
    ) -> list[dict[str, Any]]:
        """Sessions, newest first (of `repo` only, if given), at most `limit` (None: all).

        Each: id, repo, plan_path, bug, status, started_at, finished_at, exit_code,
        runs (finished runs stored) and counts (the summary's verdict counts, or None
        while unknown).
        """
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise StoreError(f"limit must be >= 1, got {limit!r}")
        columns = (
            "SELECT s.id, s.repo, s.plan_path, s.bug, s.status, s.started_at, s.finished_at,"
            " s.exit_code, s.document, s.owner,"
            " (SELECT count(*) FROM runs r WHERE r.session_id = s.id AND r.not_run = 0)"
            " FROM sessions s"
        )
        order = " ORDER BY s.started_at DESC, s.rowid DESC LIMIT ?"
        count = -1 if limit is None else limit
        with self._read() as conn:
            if repo is None:
                rows = conn.execute(columns + order, (count,)).fetchall()
            else:
                rows = conn.execute(
                    columns + " WHERE s.repo = ?" + order, (os.fspath(repo), count)
                ).fetchall()
        sessions = []
        for sid, repo_, plan, bug, status, started, finished, code, document, owner, runs in rows:
            sessions.append(
                {
                    "id": sid,
                    "repo": repo_,
                    "plan_path": plan,
                    "bug": bug,
                    "status": _status_as_seen(status, owner),
                    "started_at": started,
                    "finished_at": finished,
                    "exit_code": code,
                    "runs": runs,
                    "counts": summary_counts(document),
                }
            )
        return sessions

    def resolve_session_id(self, prefix_or_id: str) -> str:
        """The full id of the session `prefix_or_id` names: its id, or a prefix of exactly
        one session's id. Raises StoreError when it names none or several."""
        if not isinstance(prefix_or_id, str) or not prefix_or_id:
            raise UnknownSessionError("a session id (or a prefix of one) is required")
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (prefix_or_id,)).fetchone():
                return prefix_or_id
            rows = conn.execute(
                "SELECT id FROM sessions WHERE substr(id, 1, ?) = ?"
                " ORDER BY started_at DESC, rowid DESC LIMIT 6",
                (len(prefix_or_id), prefix_or_id),
            ).fetchall()
        if not rows:
            raise UnknownSessionError(f"no session matches {prefix_or_id!r}")
        if len(rows) > 1:
            shown = ", ".join(row[0] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise UnknownSessionError(f"session prefix {prefix_or_id!r} is ambiguous: {shown}")
        return str(rows[0][0])

    def unfinished(self, session_id: str) -> dict[str, list[int]]:
        """What a resume must run: for the control ("control") and each hypothesis, the
        attempts in 1..repeat with no final result (missing, or stored as not_run).
        Entries with nothing left are omitted, so an empty dict means "all done"."""
        with self._read() as conn:
            (document,) = _session_row(conn, session_id, "document")
            done_rows = conn.execute(
                "SELECT hypothesis_id, attempt FROM runs WHERE session_id = ? AND not_run = 0",
                (session_id,),
            ).fetchall()
        head: dict[str, Any] = json.loads(document)
        done: dict[str, set[int]] = {}
        for hypothesis_id, attempt in done_rows:
            done.setdefault(hypothesis_id, set()).add(attempt)
        settings = head["session"].get("settings") or {}
        fallback = repeat_count(settings.get("repeat"), 1)
        wanted: list[tuple[str, int]] = []
        if head.get("control") is not None:
            wanted.append((CONTROL_ID, repeat_count(head["control"].get("repeat"), fallback)))
        wanted.extend(
            (h["id"], repeat_count(h.get("repeat"), fallback)) for h in head["hypotheses"]
        )
        missing: dict[str, list[int]] = {}
        for hypothesis_id, repeat in wanted:
            have = done.get(hypothesis_id, set())
            attempts = [a for a in range(1, repeat + 1) if a not in have]
            if attempts:
                missing[hypothesis_id] = attempts
        return missing

    # -- transactions ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front and committed on exit."""
        with self._lock, sqlite_errors(self.path):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with self._lock, sqlite_errors(self.path):
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")


# -- helpers ------------------------------------------------------------------------------


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise StoreError(f"invalid session status {status!r}; one of {', '.join(STATUSES)}")


def _status_as_seen(status: str, owner: str | None) -> str:
    """A "running" session whose owner is gone (or unknown: stored before owners were) is
    "interrupted": nothing will ever finish it but a resume."""
    if status == "running" and not (owner and token_owner_alive(owner)):
        return "interrupted"
    return status


def _owner_pid(owner: str | None) -> str:
    pid = (owner or "").partition(".")[0]
    return f"pid {pid}" if pid.isdigit() else "unknown"


def _session_row(conn: sqlite3.Connection, session_id: str, columns: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {columns} FROM sessions WHERE id = ?", (session_id,)).fetchone()  # noqa: S608 - column names are literals of this module
    if row is None:
        raise StoreError(f"no session {session_id!r}")
    return tuple(row)
