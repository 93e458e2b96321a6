"""Is the file at the database's path a refute database? And creating one atomically.

`Store.open` asks `ensure_database` before it connects: a missing database is created
whole (built under a temporary name, then linked into place, so no other process ever
sees a half-made one, and a 0-byte file is never "a new database"); an existing one must
be a readable, writable regular file with SQLite's header and no fewer bytes than its
header counts. After connecting, `check_schema` refuses a database whose tables are not
refute's (a foreign or damaged schema) before any migration writes to it.
`database_problem` is the same diagnosis, read-only, for `refute clean` and the state
check (`refute.app.state`); it also runs SQLite's `quick_check`.

Every problem is one line ending in `REPAIR_HINT`; the CLI exits 4 (a StoreError).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from pathlib import Path

from refute.errors import StoreError
from refute.paths import make_owned_dir

__all__ = [
    "REPAIR_HINT",
    "REQUIRED_COLUMNS",
    "check_schema",
    "database_problem",
    "ensure_database",
    "file_problem",
    "prepare_directory",
    "schema_problem",
]

#: What every database problem message ends with.
REPAIR_HINT = "`refute clean` moves it aside (no session is deleted)"

#: The tables and columns of schema version 1 that the store reads and writes.
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    "sessions": frozenset(
        {
            "id",
            "repo",
            "plan_path",
            "bug",
            "status",
            "started_at",
            "finished_at",
            "exit_code",
            "has_control",
            "document",
        }
    ),
    "hypotheses": frozenset({"session_id", "id", "rank", "verdict", "spec", "analysis"}),
    "runs": frozenset(
        {"session_id", "hypothesis_id", "attempt", "result", "not_run", "data", "exit_code"}
    ),
}

_HEADER = b"SQLite format 3\x00"


def file_problem(path: Path) -> str | None:
    """What is wrong with the file at `path` as a database (without SQLite), or None:
    also None when nothing is there."""
    try:
        info = path.stat()  # a symlink to a database is fine
    except FileNotFoundError:
        return "is a symlink to nothing" if path.is_symlink() else None
    except OSError as exc:
        return f"cannot be examined: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory, not a database file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    problem = _sidecar_problem(path)
    if problem is None:
        header = _read_header(path, info)
        problem = header if isinstance(header, str) else _header_problem(info.st_size, header)
    return problem


def _sidecar_problem(path: Path) -> str | None:
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(side.lstat().st_mode):
                return f"cannot be used: {side} is not a file"
    return None


def _read_header(path: Path, info: os.stat_result) -> bytes | str:
    """The first 100 bytes, opened for writing as the store will; or what went wrong."""
    try:
        fd = os.open(path, os.O_RDWR)
    except PermissionError as exc:
        if exc.errno == errno.EPERM:  # not the mode: an attribute (lsattr) or a policy
            return f"cannot be opened for writing: {exc.strerror} (is it immutable? lsattr)"
        return (
            f"is not readable and writable by this user (mode {stat.S_IMODE(info.st_mode):o},"
            f" owner uid {info.st_uid}); fix its permissions (chmod u+rw)"
        )
    except OSError as exc:
        return f"cannot be opened: {exc.strerror or exc}"
    try:
        return os.pread(fd, 100, 0)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    finally:
        os.close(fd)


def _header_problem(size: int, header: bytes) -> str | None:
    if size == 0:
        return "is empty (0 bytes): its sessions are gone or it was never a database"
    if len(header) < 100 or not header.startswith(_HEADER):
        return "is not a database (its first bytes are not SQLite's header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counter, valid_for = header[24:28], header[92:96]
    if page_size < 512 or page_size & (page_size - 1):
        return "is not a database (its SQLite header is damaged)"
    if counter == valid_for and pages and size < pages * page_size:
        return f"is truncated ({size} of {pages * page_size} bytes)"
    return None


def check_schema(conn: sqlite3.Connection, path: Path, latest: int) -> None:
    """Raise StoreError when the tables of the database behind `conn` are not refute's:
    version 0 with tables of its own (a foreign database), or a known version lacking a
    table or column the store uses. A newer version is `migrate`'s to refuse."""
    try:
        problem = schema_problem(conn, latest)
    except sqlite3.DatabaseError as exc:
        raise StoreError(_message(path, f"is damaged ({exc})")) from exc
    if problem is not None:
        raise StoreError(_message(path, problem))


def schema_problem(conn: sqlite3.Connection, latest: int) -> str | None:
    """`check_schema`'s finding as text, or None; SQLite's errors propagate.

    Version, tables and columns are read in one read transaction: another process may
    be creating the schema at this moment (one transaction of its own), and reading the
    version before its commit and the tables after it would see "version 0 with tables",
    a foreign database."""
    started = not conn.in_transaction
    if started:
        conn.execute("BEGIN")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        tables = {str(row[0]) for row in rows}
        columns = {
            table: {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
            for table in REQUIRED_COLUMNS
            if table in tables
        }
    finally:
        if started and conn.in_transaction:
            conn.execute("ROLLBACK")  # only read
    return _schema_problem(version, latest, tables, columns)


def _schema_problem(
    version: int, latest: int, tables: set[str], columns: dict[str, set[str]]
) -> str | None:
    if version == 0:
        if tables:
            shown = ", ".join(sorted(tables)[:5])
            return f"is not a refute database (schema version 0 with tables {shown})"
        return None
    if version > latest:
        return None
    for table, wanted in REQUIRED_COLUMNS.items():
        if table not in tables:
            return f"has schema version {version} but no table {table!r}: not refute's schema"
        missing = sorted(wanted - columns.get(table, set()))
        if missing:
            return f"has a table {table!r} without column(s) {', '.join(missing)}"
    return None


def database_problem(path: Path, latest: int) -> str | None:
    """What is wrong with the database at `path`, read-only (file, schema, quick_check),
    as the text after the path; None when it is usable or absent."""
    problem = file_problem(path)
    if problem is not None or not path.exists():
        return problem
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return f"cannot be opened by SQLite: {exc}"
    try:
        problem = schema_problem(conn, latest)
        if problem is None:
            rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
            problem = None if rows == ["ok"] else f"is damaged ({'; '.join(rows)})"
    except sqlite3.DatabaseError as exc:
        busy = "locked" in str(exc) or "busy" in str(exc)
        problem = None if busy else f"is damaged ({exc})"
    finally:
        conn.close()
    return problem


def prepare_directory(path: Path) -> None:
    """Create the database's directory (with refute's marker), or raise StoreError in one
    line: a file where the directory (or one above it) should be is a state problem."""
    try:
        make_owned_dir(path)
    except OSError as exc:
        for part in (path, *path.parents):
            if os.path.lexists(part) and not part.is_dir():
                kind = "a symlink to nothing" if part.is_symlink() else "a file"
                raise StoreError(f"{part} is {kind}, not a directory; {REPAIR_HINT}") from exc
        raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from exc


def ensure_database(path: Path) -> None:
    """Make sure `path` is a database file this process may use, or raise StoreError.

    Missing: created atomically, private (0600: runs hold test output, which may hold
    secrets), already in WAL mode (the schema is `migrate`'s to add). Present: the
    checks of `file_problem`.
    """
    problem = file_problem(path)
    if problem is not None:
        raise StoreError(_message(path, problem))
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(tmp, path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot create the session database: {exc}") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _message(path: Path, problem: str) -> str:
    return f"the session database {path} {problem}; {REPAIR_HINT}"
