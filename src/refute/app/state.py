"""Refute's state directory: every file it keeps there, what can be wrong with each, and
the repair `refute clean` makes (docs/cli.md, "State and logs").

The files, from the code that writes them:

* the directory itself and its `.refute-owned` marker (`paths.make_owned_dir`);
* `refute.sqlite3` with its `-wal` and `-shm` (`refute.store`: sessions and runs);
* `calibration.json`, `calibration.lock`, `calibration.tmp` (`workspace.calibration`);
* `logs/`, holding one `logs/<session>/` per session (`app.run`: the run logs);
* `tmp/` (snapshots' temporary indexes, preflight's scratch worktrees).

A corrupt file is never deleted: it is renamed `<name>.corrupt-<UTC time>` beside itself
(a database with its `-wal` and `-shm`, so that SQLite still opens the copy and no session
is lost). A file this user may not read or write is made so (`chmod u+rw`) when this user
owns it; otherwise the repair is left to the user, and said so. The lease files of the
warm pool live in the cache directory and are the pool's (`refute.workspace.pool`).

`check_state` is what `check`, `run` and `resume` ask first: a problem that stops a run
raises StoreError (exit 4: the state, not the command line, is wrong; `refute clean`
repairs it), a problem that only costs something (a corrupt calibration: the seed's cost
model applies) is returned as a warning.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from refute.errors import StoreError
from refute.paths import MARKER_FILE, make_owned_dir, state_dir
from refute.store import DB_FILENAME, default_path, schema_version
from refute.store.repair import REPAIR_HINT, database_problem
from refute.workspace import calibration

__all__ = [
    "Repair",
    "StateProblem",
    "check_state",
    "move_aside",
    "repair_state",
    "state_problems",
]

_SIDECARS = ("-wal", "-shm")


@dataclass(frozen=True)
class StateProblem:
    """One state file that is not what refute writes. `fatal`: a run cannot go on (or,
    for the database, nothing that reads the store can). `action` is the repair: "move"
    (aside), "chmod" (u+rw, when this user owns it) or "" (none refute can make)."""

    path: Path
    problem: str
    fatal: bool
    action: str = "move"

    def __str__(self) -> str:
        return f"{self.path} {self.problem}"


@dataclass(frozen=True)
class Repair:
    """What `repair_state` did (or, dry, would do) about one problem: `moved_to` is the new
    name of a file moved aside; `done` is False for a problem it could not repair."""

    problem: StateProblem
    moved_to: Path | None = None
    done: bool = True

    def describe(self, *, dry_run: bool) -> str:
        path, what = self.problem.path, self.problem.problem
        if not self.done:
            return f"cannot repair {path} ({what}): do it by hand"
        if self.problem.action == "chmod":
            verb = "would make" if dry_run else "made"
            return f"{verb} {path} readable and writable (chmod u+rw; it {what})"
        verb = "would move aside" if dry_run else "moved aside"
        kept = " (nothing in it is deleted)" if path.name == DB_FILENAME else ""
        return f"{verb} {path} ({what}) to {self.moved_to}{kept}"


def _not_a_directory(path: Path) -> str | None:
    """What is in the way of a directory at `path` (a symlink to one is fine)."""
    if path.is_dir() or not os.path.lexists(path):
        return None
    if path.is_symlink():
        return (
            "is a symlink to nothing, not a directory"
            if not path.exists()
            else ("is a symlink to a file, not a directory")
        )
    return "is a file, not a directory"


def state_problems(*, database: bool = True) -> list[StateProblem]:
    """Every state file that is not what refute writes (see the module docstring). With
    `database`, the session database is examined too (read-only, with SQLite's
    quick_check: `refute clean`'s thorough look; `Store.open` does the quick one)."""
    root = state_dir()
    found = _not_a_directory(root)
    if found is not None:
        return [StateProblem(root, found, fatal=True)]
    problems: list[StateProblem] = []
    marker = root / MARKER_FILE
    if marker.exists() and not marker.is_file():
        problems.append(StateProblem(marker, "is not a file", fatal=False))
    for name in ("logs", "tmp"):
        found = _not_a_directory(root / name)
        if found is not None:
            problems.append(StateProblem(root / name, found, fatal=True))
    db = default_path()
    sidecars = [
        StateProblem(side, "is not a file", fatal=True)
        for side in (db.with_name(db.name + suffix) for suffix in _SIDECARS)
        if os.path.lexists(side) and not side.is_file()
    ]
    problems.extend(sidecars)
    if database and not sidecars:  # with a sidecar in the way, the database cannot be judged
        problem = database_problem(db, schema_version())
        if problem is not None:
            problems.append(_database_problem(db, problem))
    found_calibration = calibration.problem()
    if found_calibration is not None:
        path, problem = found_calibration
        problems.append(StateProblem(path, problem, fatal=False))
    return problems


def _database_problem(db: Path, problem: str) -> StateProblem:
    if "cannot be opened for writing" in problem:
        return StateProblem(db, problem, fatal=True, action="")
    if "not readable and writable" in problem:
        owned = _owner(db) == os.geteuid()
        return StateProblem(db, problem, fatal=True, action="chmod" if owned else "")
    return StateProblem(db, problem, fatal=True)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


def check_state() -> list[str]:
    """Raise StoreError for a state problem that stops a run (one line, with the repair);
    return the others as warnings. The database is `Store.open`'s to check."""
    warnings = []
    for problem in state_problems(database=False):
        if problem.fatal:
            raise StoreError(f"{problem}; {REPAIR_HINT}")
        warnings.append(
            f"{problem}: ignored (measurements are not used); `refute clean` moves it aside"
            if problem.path in calibration.files()
            else f"{problem}; `refute clean` moves it aside"
        )
    return warnings


def move_aside(path: Path, *, dry_run: bool = False, now: datetime | None = None) -> Path:
    """Rename `path` to `<name>.corrupt-<UTC time>[-n]` beside itself and return the new
    name (with `dry_run`, only the name). A database moves with its -wal and -shm."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while any(
        os.path.lexists(f"{target}{suffix}") for suffix in ("", *_SIDECARS)
    ):  # never over an earlier one
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    if dry_run:
        return target
    path.rename(target)
    if path.name == DB_FILENAME:
        for suffix in _SIDECARS:
            side = path.with_name(path.name + suffix)
            if os.path.lexists(side):
                side.rename(f"{target}{suffix}")
    return target


def repair_state(*, dry_run: bool = False) -> list[Repair]:
    """Repair every problem `state_problems` finds: move the file aside, or chmod it;
    never delete one. Afterwards the state directory has its marker again."""
    repairs = []
    for problem in state_problems():
        if not os.path.lexists(problem.path):  # moved with the database it belongs to
            continue
        try:
            if problem.action == "chmod":
                if not dry_run:
                    mode = stat.S_IMODE(problem.path.stat().st_mode)
                    problem.path.chmod(mode | stat.S_IRUSR | stat.S_IWUSR)
                repairs.append(Repair(problem))
            elif problem.action == "move":
                repairs.append(Repair(problem, move_aside(problem.path, dry_run=dry_run)))
            else:
                repairs.append(Repair(problem, done=False))
        except OSError:
            repairs.append(Repair(problem, done=False))
    if repairs and not dry_run:
        make_owned_dir(state_dir())
    return repairs
