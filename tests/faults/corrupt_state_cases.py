"""The corrupted-state fault suite's cases and helpers (tests/faults/test_fault_corrupt_state*.py).

Each case plants one corruption in a state directory that holds one real session, then
runs a command as a user does (`python -m refute.cli ...` as a subprocess) and checks:
one clear `refute: error:` line (exit 4: the state, not the command line, is wrong) or,
for state that only costs something (calibration, the marker), one `refute: warning:`
line and a run that goes on; never a traceback or "internal error". `refute clean` then
moves the corrupt file aside as `<name>.corrupt-<UTC time>` (or, for a file this user may
not write, makes it writable) and says so; nothing is deleted (the moved file holds the
same bytes; the stored session is still listed), and the next `run` works with no
warning. The user's checkout is byte-identical throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitutil import fingerprint, git, make_repo
from refute.paths import repo_id

TIMEOUT = 120
DB = "refute.sqlite3"

PLAN = {
    "version": 1,
    "bug": "nothing, really",
    "hypotheses": [
        {
            "id": "passes",
            "description": "a test that passes",
            "test": [sys.executable, "-c", "print('ok')"],
        }
    ],
}


@dataclass(frozen=True)
class Env:
    home: Path
    repo: Path
    plan: Path

    @property
    def state(self) -> Path:
        return self.home / "state"


def refute(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, REFUTE_HOME=str(env.home))
    proc = subprocess.run(
        [sys.executable, "-m", "refute.cli", *args],
        cwd=env.repo,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both, both
    assert "internal error" not in both, both
    return proc


def errors_of(proc: subprocess.CompletedProcess[str], kind: str = "error") -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith(f"refute: {kind}: ")]


def make_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A state directory holding one finished session, made by a real `refute run`."""
    root = tmp_path_factory.mktemp("template")
    env = Env(root / "home", make_repo(root / "repo"), root / "plan.json")
    env.plan.write_text(json.dumps(PLAN), encoding="utf-8")
    proc = refute(env, "run", str(env.plan), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    session = json.loads(proc.stdout)["session"]["id"]
    run = refute(env, "clean")  # leaves no stale worktrees registered in the template repo
    assert run.returncode == 0, run.stderr
    return env.state, session


def env_maker(tmp_path: Path, template: tuple[Path, str]) -> Callable[[], Env]:
    """A factory of environments: a copy of the template state, a repository, a plan."""

    def make() -> Env:
        home = tmp_path / "home"
        shutil.copytree(template[0], home / "state")
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps(PLAN), encoding="utf-8")
        return Env(home, make_repo(tmp_path / "repo"), plan)

    return make


# -- the variants -------------------------------------------------------------------------


def repo_key(env: Env) -> str:
    """The key of the test's repository in calibration.json."""
    return repo_id(env.repo / ".git")


def _garbage(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _sqlite(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _replace_db(state: Path, data: bytes | None = None) -> None:
    for name in (DB, f"{DB}-wal", f"{DB}-shm"):
        (state / name).unlink(missing_ok=True)
    if data is not None:
        (state / DB).write_bytes(data)


def db_empty(env: Env) -> None:
    state = env.state
    _replace_db(state, b"")


def db_truncated(env: Env) -> None:
    state = env.state
    _replace_db(state, (state / DB).read_bytes()[:5000])


def db_garbage(env: Env) -> None:
    state = env.state
    _replace_db(state, _garbage(16384, 1))


def db_garbage_after_header(env: Env) -> None:
    state = env.state
    good = (state / DB).read_bytes()
    _replace_db(state, good[:100] + _garbage(len(good) - 100, 2))


def db_directory(env: Env) -> None:
    state = env.state
    _replace_db(state)
    (state / DB).mkdir()
    (state / DB / "something").write_text("x", encoding="utf-8")


def db_foreign_schema(env: Env) -> None:
    state = env.state
    _replace_db(state)
    _sqlite(state / DB, "CREATE TABLE users (id INTEGER)", "INSERT INTO users VALUES (1)")


def db_old_schema(env: Env) -> None:
    state = env.state
    _replace_db(state)
    _sqlite(state / DB, "CREATE TABLE sessions (id TEXT, bug TEXT)", "PRAGMA user_version = 1")


def db_wal_directory(env: Env) -> None:
    state = env.state
    (state / f"{DB}-wal").unlink(missing_ok=True)
    (state / f"{DB}-wal").mkdir()


def db_unreadable(env: Env) -> None:
    state = env.state
    (state / DB).chmod(0)


def calibration_wrong_types(env: Env) -> None:
    state = env.state
    data = {repo_key(env): {"worktree_create": {"mean": "fast", "count": None}}}
    (state / "calibration.json").write_text(json.dumps(data), encoding="utf-8")


def calibration_list_entry(env: Env) -> None:
    state = env.state
    data = {repo_key(env): [1, 2]}
    (state / "calibration.json").write_text(json.dumps(data), encoding="utf-8")


def calibration_not_json(env: Env) -> None:
    state = env.state
    (state / "calibration.json").write_bytes(b"\x00\xff{{ not json")


def calibration_directory(env: Env) -> None:
    state = env.state
    (state / "calibration.json").unlink(missing_ok=True)
    (state / "calibration.json").mkdir()


def calibration_lock_directory(env: Env) -> None:
    state = env.state
    (state / "calibration.lock").unlink(missing_ok=True)
    (state / "calibration.lock").mkdir()


def logs_file(env: Env) -> None:
    state = env.state
    shutil.rmtree(state / "logs")
    (state / "logs").write_text("not a directory\n", encoding="utf-8")


def tmp_file(env: Env) -> None:
    state = env.state
    shutil.rmtree(state / "tmp", ignore_errors=True)
    (state / "tmp").write_text("not a directory\n", encoding="utf-8")


def marker_directory(env: Env) -> None:
    state = env.state
    (state / ".refute-owned").unlink()
    (state / ".refute-owned").mkdir()


def state_file(env: Env) -> None:
    state = env.state
    shutil.rmtree(state)
    state.write_text("not a directory\n", encoding="utf-8")


@dataclass(frozen=True)
class Variant:
    corrupt: Callable[[Env], None]
    command: str  # run, history or show
    says: str  # in the one stderr line
    moved: str  # what is moved aside, relative to REFUTE_HOME ("" for a chmod)
    fatal: bool = True  # error + exit 4; else a warning and the command goes on
    database: bool = False  # the stored session went aside with the database
    other_user: bool = False


DATABASE_VARIANTS = {
    "db-0-bytes": Variant(db_empty, "history", "is empty (0 bytes)", f"state/{DB}", database=True),
    "db-truncated": Variant(db_truncated, "show", "is truncated", f"state/{DB}", database=True),
    "db-garbage": Variant(db_garbage, "run", "is not a database", f"state/{DB}", database=True),
    "db-garbage-after-header": Variant(
        db_garbage_after_header, "history", "malformed", f"state/{DB}", database=True
    ),
    "db-directory": Variant(db_directory, "run", "is a directory", f"state/{DB}", database=True),
    "db-foreign-schema": Variant(
        db_foreign_schema, "history", "is not a refute database", f"state/{DB}", database=True
    ),
    "db-old-schema": Variant(db_old_schema, "run", "without column", f"state/{DB}", database=True),
    "db-wal-directory": Variant(db_wal_directory, "history", "is not a file", f"state/{DB}-wal"),
    "db-permissions": Variant(
        db_unreadable, "history", "not readable and writable", "", other_user=True
    ),
}

FILE_VARIANTS = {
    "calibration-wrong-types": Variant(
        calibration_wrong_types, "run", "mean is 'fast'", "state/calibration.json", fatal=False
    ),
    "calibration-list-entry": Variant(
        calibration_list_entry, "run", "is list", "state/calibration.json", fatal=False
    ),
    "calibration-not-json": Variant(
        calibration_not_json, "run", "not UTF-8", "state/calibration.json", fatal=False
    ),
    "calibration-directory": Variant(
        calibration_directory, "run", "is a directory", "state/calibration.json", fatal=False
    ),
    "calibration-lock-directory": Variant(
        calibration_lock_directory, "run", "is a directory", "state/calibration.lock", fatal=False
    ),
    "logs-is-a-file": Variant(logs_file, "run", "logs is a file, not a directory", "state/logs"),
    "tmp-is-a-file": Variant(tmp_file, "run", "tmp is a file, not a directory", "state/tmp"),
    "marker-is-a-directory": Variant(
        marker_directory, "run", ".refute-owned is not a file", "state/.refute-owned", fatal=False
    ),
    "state-dir-is-a-file": Variant(
        state_file, "history", "state is a file, not a directory", "state"
    ),
}


def stored_sessions(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM sessions")]


def moved_aside(parent: Path, name: str) -> list[Path]:
    return sorted(parent.glob(f"{name}.corrupt-*[0-9]Z"))


def check_variant(
    name: str, variant: Variant, env: Env, session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Corrupt, see the one line, `refute clean`, see the repair, run again."""
    variant.corrupt(env)
    before = fingerprint(env.repo)
    planted = env.home / variant.moved if variant.moved else None
    planted_bytes = planted.read_bytes() if planted is not None and planted.is_file() else None

    args = {"run": ["run", str(env.plan)], "show": ["show", session], "history": ["history"]}
    proc = refute(env, *args[variant.command], *(["--all"] if variant.command == "history" else []))
    if variant.fatal:
        assert proc.returncode == 4, (proc.returncode, proc.stderr)
        lines = errors_of(proc)
        assert len(lines) == 1, proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert variant.says in lines[0], lines
        assert "refute clean" in lines[0], lines
    else:
        assert proc.returncode == 0, (proc.returncode, proc.stderr)
        lines = errors_of(proc, "warning")
        assert len(lines) == 1, proc.stderr
        assert variant.says in lines[0], lines
        assert "refute clean" in lines[0], lines
        assert not errors_of(proc)
    assert fingerprint(env.repo) == before

    cleaned = refute(env, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    if variant.moved:
        assert planted is not None
        [aside] = moved_aside(planted.parent, planted.name)
        assert f"moved aside {planted}" in cleaned.stdout, cleaned.stdout
        assert str(aside) in cleaned.stdout
        if planted_bytes is not None:  # nothing deleted: the very bytes, under a new name
            assert aside.read_bytes() == planted_bytes
    else:
        assert f"made {env.state / DB} readable and writable" in cleaned.stdout, cleaned.stdout

    again = refute(env, "run", str(env.plan))
    assert again.returncode == 0, again.stderr
    assert not errors_of(again, "warning"), again.stderr
    assert not errors_of(again), again.stderr
    if not variant.database and name != "state-dir-is-a-file":
        assert session in stored_sessions(env.state / DB)  # the session was never deleted
    from refute.app.state import state_problems  # noqa: PLC0415 - after the CLI's checks

    monkeypatch.setenv("REFUTE_HOME", str(env.home))
    assert state_problems() == []  # nothing left to repair
    assert fingerprint(env.repo) == before
    assert git(env.repo, "worktree", "prune", "--dry-run", "-v") == ""  # no stale worktree
