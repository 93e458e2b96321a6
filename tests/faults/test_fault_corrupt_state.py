"""Fault suite: each corrupted-state variant of the session database, through the real CLI.

One case per variant (the cases: `corrupt_state_cases.DATABASE_VARIANTS`; the other state
files are in test_fault_corrupt_state_files.py): the command gives one clear line on stderr
(exit 4), never a traceback or "internal error"; `refute clean` moves the file aside as
`<name>.corrupt-<UTC time>` (same bytes: nothing deleted) and says so; the next `run`
works; the user's checkout is byte-identical throughout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from corrupt_state_cases import (
    DATABASE_VARIANTS,
    DB,
    Env,
    calibration_not_json,
    check_variant,
    db_garbage,
    env_maker,
    errors_of,
    make_template,
    moved_aside,
    refute,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A state directory holding one finished session, made by a real `refute run`."""
    return make_template(tmp_path_factory)


@pytest.fixture
def make_env(tmp_path: Path, template: tuple[Path, str]) -> Callable[[], Env]:
    return env_maker(tmp_path, template)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DATABASE_VARIANTS))
def test_corrupt_database_is_one_line_then_clean_repairs_it(
    name: str,
    make_env: Callable[[], Env],
    template: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variant = DATABASE_VARIANTS[name]
    if variant.other_user and os.geteuid() == 0:
        pytest.skip("root reads and writes any file (see test_an_immutable_database_...)")
    check_variant(name, variant, make_env(), template[1], monkeypatch)


@pytest.mark.slow
def test_dry_run_moves_nothing(make_env: Callable[[], Env], template: tuple[Path, str]) -> None:
    env = make_env()
    db_garbage(env)
    calibration_not_json(env)
    planted = {p: p.read_bytes() for p in (env.state / DB, env.state / "calibration.json")}
    dry = refute(env, "clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for path, data in planted.items():
        assert f"would move aside {path}" in dry.stdout, dry.stdout
        assert path.read_bytes() == data
        assert moved_aside(path.parent, path.name) == []
    assert errors_of(refute(env, "history", "--all"))  # still refused: nothing was repaired


@pytest.mark.slow
def test_an_immutable_database_is_one_line_and_clean_says_it_cannot_repair_it(
    make_env: Callable[[], Env],
) -> None:
    """The permission case root can meet: `chattr +i` (where the filesystem allows it)."""
    env = make_env()
    db = env.state / DB
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not possible here")
    try:
        proc = refute(env, "history", "--all")
        assert proc.returncode == 4, proc.stderr
        [line] = errors_of(proc)
        assert "cannot be opened for writing" in line, line
        cleaned = refute(env, "clean")
        assert cleaned.returncode == 4, cleaned.stderr
        [line] = errors_of(cleaned)
        assert f"cannot repair {db}" in line, line
        assert moved_aside(env.state, DB) == []  # nothing moved, nothing deleted
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True, check=False)
    again = refute(env, "run", str(env.plan))
    assert again.returncode == 0, again.stderr


_OPEN = """
import sys
from refute.errors import StoreError
from refute.store import Store
try:
    Store.open().close()
except StoreError as exc:
    print(exc)
    sys.exit(4)
"""


def test_processes_creating_the_database_at_once_never_see_it_half_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new database is created whole (built aside, then linked into place): another
    process starting at the same moment never meets the 0-byte file it would refuse."""
    for trial in range(3):
        monkeypatch.setenv("REFUTE_HOME", str(tmp_path / f"home{trial}"))
        procs = [
            subprocess.Popen([sys.executable, "-c", _OPEN], stdout=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        outputs = [(proc.communicate(timeout=120)[0], proc.returncode) for proc in procs]
        assert all(code == 0 for _, code in outputs), outputs
        state = tmp_path / f"home{trial}" / "state"
        assert sorted(p.name for p in state.iterdir() if ".new-" in p.name) == []


@pytest.mark.slow
def test_a_newer_schema_is_refused_but_not_moved_aside(make_env: Callable[[], Env]) -> None:
    """A newer refute's database is valid, only not ours to read: `clean` leaves it."""
    env = make_env()
    db = env.state / DB
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    data = db.read_bytes()
    proc = refute(env, "history", "--all")
    assert proc.returncode == 4, proc.stderr
    [line] = errors_of(proc)
    assert "upgrade refute" in line, line
    cleaned = refute(env, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "moved aside" not in cleaned.stdout
    assert db.read_bytes() == data
    assert moved_aside(env.state, DB) == []
