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

Several processes may use the same database at once: WAL mode (readers never wait for the
writer), a 30 s busy timeout, and every write is one short `BEGIN IMMEDIATE` transaction
(a transaction that starts as a reader and then writes could fail at once with "database
is locked" instead of waiting). The schema carries a version (`PRAGMA user_version`);
`_MIGRATIONS` are applied in order inside one transaction, and a database newer than this
code is refused with a `StoreError` rather than misread.

Only plain dicts go in and out; this module imports nothing above `model`'s layer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from refute.errors import StoreError, UnknownSessionError
from refute.paths import make_owned_dir, state_dir

#: The `schema` value of a session document this store understands.
DOCUMENT_SCHEMA = "refute.session/1"
#: File name of the database under `state_dir()`.
DB_FILENAME = "refute.sqlite3"
#: The hypothesis id under which control runs are stored.
CONTROL_ID = "control"
#: The statuses a session can have.
STATUSES = ("running", "completed", "interrupted", "failed")
#: Seconds a connection waits for another process' write lock before giving up.
BUSY_TIMEOUT = 30.0

#: Keys of a hypothesis entry produced by analysis (the rest, minus "runs", is its spec).
ANALYSIS_KEYS = frozenset(
    {
        "verdict",
        "confidence",
        "unreliable",
        "reason",
        "counts",
        "runs_total",
        "runs_valid",
        "reproduction_rate",
        "wilson_95",
    }
)

_RESULTS = frozenset({"pass", "fail", "timeout", "error", "skip"})

# Schema migrations: _MIGRATIONS[n - 1] takes a database from version n - 1 to n.
# Never edit a released entry; append a new one.
_MIGRATIONS: list[tuple[str, ...]] = [
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
]


def schema_version() -> int:
    """The schema version this code creates and understands."""
    return len(_MIGRATIONS)


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
            make_owned_dir(state_dir())
            path = default_path()
        else:
            path = Path(path)
            if not path.parent.exists():
                make_owned_dir(path.parent)
        try:
            # Created private: runs hold test output, which may hold secrets. SQLite gives
            # the -wal and -shm files the same permissions.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the session database: {exc}") from exc
        try:
            _configure(connection, path)
            _migrate(connection, path)
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

    def create_session(self, doc: Mapping[str, Any]) -> None:
        """Insert a new session (status "running") and its hypotheses from a session
        document. Runs already in the document are stored too. Raises StoreError if the
        document is malformed or the id is taken."""
        head, runs = _split(doc)
        session = head["session"]
        session_id: str = session["id"]
        session.update(status="running", finished_at=None, exit_code=None)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise StoreError(f"session {session_id} already exists")
            conn.execute(
                "INSERT INTO sessions (id, repo, plan_path, bug, status, started_at,"
                " finished_at, exit_code, has_control, document)"
                " VALUES (?, ?, ?, ?, 'running', ?, NULL, NULL, ?, ?)",
                (
                    session_id,
                    session["repo"],
                    session["plan_path"],
                    session["bug"],
                    session["started_at"],
                    int(head.get("control") is not None),
                    _dumps(head, "the session document"),
                ),
            )
            _upsert_hypotheses(conn, session_id, head["hypotheses"])
            for hypothesis_id, run in runs:
                _upsert_run(conn, session_id, hypothesis_id, run)

    def add_run(
        self, session_id: str, run: Mapping[str, Any], *, hypothesis_id: str | None = None
    ) -> bool:
        """Store one run (a `TestExecutionResult.to_dict()`) and commit at once.

        The run belongs to `hypothesis_id`, by default `run["hypothesis_id"]`; control runs
        use "control". Its attempt is `run["metrics"]["attempt"]` (default 1). A run
        for an attempt already stored replaces it, except that a not_run result never
        replaces a real one: then nothing is written and False is returned.
        """
        target = hypothesis_id if hypothesis_id is not None else _get(run, "hypothesis_id")
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
            return _upsert_run(conn, session_id, target, run)

    def finish_session(
        self, session_id: str, status: str, exit_code: int | None, document: Mapping[str, Any]
    ) -> None:
        """Record the end of a session: its status, exit code and final analysed document.

        The document's head replaces the stored one (its `session.finished_at` is kept, or
        set to now); runs it carries are stored like `add_run` would.
        """
        _check_status(status)
        head, runs = _split(document)
        session = head["session"]
        if session["id"] != session_id:
            raise StoreError(f"document is for session {session['id']!r}, not {session_id!r}")
        finished_at = session.get("finished_at") or _now_iso()
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
                    _dumps(head, "the session document"),
                    session_id,
                ),
            )
            _upsert_hypotheses(conn, session_id, head["hypotheses"])
            for hypothesis_id, run in runs:
                _upsert_run(conn, session_id, hypothesis_id, run)

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
                    (status, _now_iso(), session_id),
                )

    # -- reading --------------------------------------------------------------------------

    def load_document(self, session_id: str) -> dict[str, Any]:
        """The full session document: the stored head with the runs attached, each
        hypothesis' (and the control's) in attempt order; status, finished_at and exit_code
        are the current ones."""
        with self._read() as conn:
            status, finished_at, exit_code, document = _session_row(
                conn, session_id, "status, finished_at, exit_code, document"
            )
            rows = conn.execute(
                "SELECT hypothesis_id, data FROM runs WHERE session_id = ?"
                " ORDER BY hypothesis_id, attempt",
                (session_id,),
            ).fetchall()
        doc: dict[str, Any] = json.loads(document)
        doc["session"].update(status=status, finished_at=finished_at, exit_code=exit_code)
        runs: dict[str, list[dict[str, Any]]] = {}
        for hypothesis_id, data in rows:
            runs.setdefault(hypothesis_id, []).append(json.loads(data))
        if doc.get("control") is not None:
            doc["control"]["runs"] = runs.get(CONTROL_ID, [])
        for hypothesis in doc["hypotheses"]:
            hypothesis["runs"] = runs.get(hypothesis["id"], [])
        return doc

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
            " s.exit_code, s.document,"
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
        for sid, repo_, plan, bug, status, started, finished, code, document, runs in rows:
            sessions.append(
                {
                    "id": sid,
                    "repo": repo_,
                    "plan_path": plan,
                    "bug": bug,
                    "status": status,
                    "started_at": started,
                    "finished_at": finished,
                    "exit_code": code,
                    "runs": runs,
                    "counts": _summary_counts(document),
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
        fallback = _repeat(settings.get("repeat"), 1)
        wanted: list[tuple[str, int]] = []
        if head.get("control") is not None:
            wanted.append((CONTROL_ID, _repeat(head["control"].get("repeat"), fallback)))
        wanted.extend((h["id"], _repeat(h.get("repeat"), fallback)) for h in head["hypotheses"])
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
        with self._lock, _sqlite_errors(self.path):
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
        with self._lock, _sqlite_errors(self.path):
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {exc}") from exc


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    with _sqlite_errors(path):
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


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    latest = schema_version()
    with _sqlite_errors(path):
        version = _user_version(conn)
        _check_not_newer(version, latest, path)
        if version == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _user_version(conn)  # another process may have migrated meanwhile
            _check_not_newer(version, latest, path)
            for number in range(version + 1, latest + 1):
                for statement in _MIGRATIONS[number - 1]:
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


def _session_row(conn: sqlite3.Connection, session_id: str, columns: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {columns} FROM sessions WHERE id = ?", (session_id,)).fetchone()  # noqa: S608 - column names are literals of this module
    if row is None:
        raise StoreError(f"no session {session_id!r}")
    return tuple(row)


def _upsert_hypotheses(
    conn: sqlite3.Connection, session_id: str, hypotheses: list[dict[str, Any]]
) -> None:
    for index, hypothesis in enumerate(hypotheses, start=1):
        spec = {k: v for k, v in hypothesis.items() if k not in ANALYSIS_KEYS}
        analysis = {k: v for k, v in hypothesis.items() if k in ANALYSIS_KEYS}
        rank = hypothesis.get("rank")
        verdict = hypothesis.get("verdict")
        conn.execute(
            "INSERT INTO hypotheses (session_id, id, rank, verdict, spec, analysis)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, id) DO UPDATE SET"
            " rank = excluded.rank, verdict = excluded.verdict, spec = excluded.spec,"
            " analysis = excluded.analysis",
            (
                session_id,
                hypothesis["id"],
                rank if _is_int(rank) else index,
                verdict if isinstance(verdict, str) else None,
                _dumps(spec, f"hypothesis {hypothesis['id']!r}"),
                _dumps(analysis, f"hypothesis {hypothesis['id']!r}") if analysis else None,
            ),
        )


def _upsert_run(
    conn: sqlite3.Connection, session_id: str, hypothesis_id: str, run: Mapping[str, Any]
) -> bool:
    if not isinstance(run, Mapping):
        raise StoreError(f"a run must be a dict, got {type(run).__name__}")
    result = run.get("result")
    if result not in _RESULTS:
        raise StoreError(f"run of {hypothesis_id!r} has an invalid result {result!r}")
    metrics = run.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise StoreError(f"run of {hypothesis_id!r} has metrics that are not a dict")
    attempt = metrics.get("attempt", 1)
    if not _is_int(attempt) or attempt < 1:
        raise StoreError(f"run of {hypothesis_id!r} has an invalid attempt {attempt!r}")
    not_run = bool(metrics.get("not_run", False))
    if not_run:
        existing = conn.execute(
            "SELECT not_run FROM runs WHERE session_id = ? AND hypothesis_id = ? AND attempt = ?",
            (session_id, hypothesis_id, attempt),
        ).fetchone()
        if existing is not None and not existing[0]:
            return False  # never trade a finished result for "did not run"
    duration = _number(run.get("duration"))
    started_at = _number(run.get("started_at"))
    if started_at is not None and started_at <= 0:
        started_at = None  # 0 means "never started"
    finished_at = started_at + duration if started_at and duration is not None else None
    exit_code = run.get("exit_code")
    conn.execute(
        "INSERT OR REPLACE INTO runs (session_id, hypothesis_id, attempt, result, exit_code,"
        " duration, started_at, finished_at, stdout_log, stderr_log, not_run, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            hypothesis_id,
            attempt,
            result,
            exit_code if _is_int(exit_code) else None,
            duration,
            started_at,
            finished_at,
            _text_or_none(run.get("stdout_log")),
            _text_or_none(run.get("stderr_log")),
            int(not_run),
            _dumps(dict(run), f"run of {hypothesis_id!r}"),
        ),
    )
    return True


def _split(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Check a session document's shape; return its head (no runs) and its runs."""
    if not isinstance(doc, Mapping):
        raise StoreError(f"a session document must be a dict, got {type(doc).__name__}")
    schema = doc.get("schema", DOCUMENT_SCHEMA)
    if schema != DOCUMENT_SCHEMA:
        raise StoreError(f"unknown session document schema {schema!r}, want {DOCUMENT_SCHEMA!r}")
    head: dict[str, Any] = dict(doc)
    head["schema"] = DOCUMENT_SCHEMA
    session = doc.get("session")
    if not isinstance(session, Mapping):
        raise StoreError("the session document has no 'session' object")
    session = dict(session)
    session_id = session.get("id")
    if not isinstance(session_id, str) or not session_id:
        raise StoreError(f"the session document has an invalid session.id: {session_id!r}")
    session.setdefault("repo", "")
    session.setdefault("plan_path", None)
    session.setdefault("bug", "")
    session.setdefault("started_at", _now_iso())
    for key in ("repo", "bug", "started_at"):
        if not isinstance(session[key], str):
            raise StoreError(f"session.{key} must be a string, got {session[key]!r}")
    if session["plan_path"] is not None and not isinstance(session["plan_path"], str):
        raise StoreError(f"session.plan_path must be a string, got {session['plan_path']!r}")
    head["session"] = session

    runs: list[tuple[str, dict[str, Any]]] = []
    control = doc.get("control")
    if control is not None:
        if not isinstance(control, Mapping):
            raise StoreError("'control' must be an object or null")
        head["control"] = {k: v for k, v in control.items() if k != "runs"}
        runs.extend((CONTROL_ID, run) for run in _runs_of(control, CONTROL_ID))
    else:
        head["control"] = None

    hypotheses = doc.get("hypotheses", [])
    if not isinstance(hypotheses, list):
        raise StoreError("'hypotheses' must be a list")
    head["hypotheses"] = []
    seen: set[str] = set()
    for hypothesis in hypotheses:
        if not isinstance(hypothesis, Mapping):
            raise StoreError("every hypothesis must be an object")
        hypothesis_id = hypothesis.get("id")
        if not isinstance(hypothesis_id, str) or not hypothesis_id:
            raise StoreError(f"a hypothesis has an invalid id: {hypothesis_id!r}")
        if hypothesis_id == CONTROL_ID or hypothesis_id in seen:
            raise StoreError(f"hypothesis id {hypothesis_id!r} is reserved or repeated")
        seen.add(hypothesis_id)
        head["hypotheses"].append({k: v for k, v in hypothesis.items() if k != "runs"})
        runs.extend((hypothesis_id, run) for run in _runs_of(hypothesis, hypothesis_id))
    return head, runs


def _runs_of(entry: Mapping[str, Any], owner: str) -> list[dict[str, Any]]:
    runs = entry.get("runs") or []
    if not isinstance(runs, list) or not all(isinstance(run, Mapping) for run in runs):
        raise StoreError(f"the runs of {owner!r} must be a list of objects")
    return [dict(run) for run in runs]


def _summary_counts(document: str) -> dict[str, Any] | None:
    try:
        head = json.loads(document)
    except ValueError:
        return None
    summary = head.get("summary") if isinstance(head, dict) else None
    counts = summary.get("counts") if isinstance(summary, dict) else None
    return counts if isinstance(counts, dict) else None


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise StoreError(f"invalid session status {status!r}; one of {', '.join(STATUSES)}")


def _repeat(value: object, fallback: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return fallback


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(mapping: Mapping[str, Any], key: str) -> object:
    if not isinstance(mapping, Mapping):
        raise StoreError(f"a run must be a dict, got {type(mapping).__name__}")
    return mapping.get(key)


def _dumps(value: object, what: str) -> str:
    try:
        # ASCII escapes keep lone surrogates (surrogateescape-decoded output) storable.
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
