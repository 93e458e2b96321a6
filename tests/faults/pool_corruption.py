"""Corrupt state under the pool, for the fault tests of issue step 3, point 8 (the pool's
part): leases with garbage or wrong JSON types, a lease path that is a directory, a `slots`
or `leases` directory that is a file or a symlink, a slot that is a file. Each must give no
traceback; a session still runs (its start-up cleanup repairs what it can); `refute clean
--dry-run` changes nothing; `refute clean` moves corrupt files aside (never deletes what it
cannot vouch for) and leaves a pool that a second clean finds in order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["CORRUPTIONS", "check_corruption"]

import faultutil
from checkout_fingerprint import assert_same, checkout_fingerprint, make_busy_checkout

from gitutil import git, make_repo

PY = sys.executable
TIMEOUT = 180.0


def refute(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faultutil.refute(*args, cwd=cwd, timeout=TIMEOUT)


def tree(path: Path) -> list[str]:
    """Everything under `path`, with what each entry is (no symlink followed)."""
    found = []
    for root, dirs, names in os.walk(path):
        for name in [*dirs, *names]:
            full = Path(root) / name
            kind = "link" if full.is_symlink() else "dir" if full.is_dir() else "file"
            found.append(f"{full.relative_to(path)} {kind}")
    return sorted(found)


def first_lease(pool: Path) -> Path:
    return min((pool / "leases").glob("*.json"))


def write_lease(content: bytes) -> Callable[[Path, Path], None]:
    def corrupt(pool: Path, _elsewhere: Path) -> None:
        first_lease(pool).write_bytes(content)

    return corrupt


def lease_is_a_directory(pool: Path, _elsewhere: Path) -> None:
    lease = first_lease(pool)
    lease.unlink()
    lease.mkdir()
    (lease / "inside").write_text("x\n", encoding="utf-8")


def replace_with_file(name: str) -> Callable[[Path, Path], None]:
    def corrupt(pool: Path, _elsewhere: Path) -> None:
        shutil.rmtree(pool / name)
        (pool / name).write_text("not a directory\n", encoding="utf-8")

    return corrupt


def replace_with_symlink(name: str) -> Callable[[Path, Path], None]:
    def corrupt(pool: Path, elsewhere: Path) -> None:
        shutil.rmtree(pool / name)
        (pool / name).symlink_to(elsewhere, target_is_directory=True)

    return corrupt


def slot_is_a_file(pool: Path, _elsewhere: Path) -> None:
    slot = pool / "slots" / first_lease(pool).name.removesuffix(".json")
    shutil.rmtree(slot)
    slot.write_text("not a worktree\n", encoding="utf-8")


CORRUPTIONS: dict[str, Callable[[Path, Path], None]] = {
    "lease-wrong-types": write_lease(
        json.dumps(
            {"state": "free", "last_used": "yesterday", "pid": [1], "index_checked": "x"}
        ).encode()
    ),
    "lease-not-an-object": write_lease(b"[1, 2, 3]"),
    "lease-garbage": write_lease(b"\xff\x00{not json"),
    "lease-absurdly-nested": write_lease(b"[" * 100_000),
    "lease-is-a-directory": lease_is_a_directory,
    "leases-is-a-file": replace_with_file("leases"),
    "leases-is-a-symlink": replace_with_symlink("leases"),
    "slots-is-a-file": replace_with_file("slots"),
    "slots-is-a-symlink": replace_with_symlink("slots"),
    "slot-is-a-file": slot_is_a_file,
}


def write_plan(path: Path) -> Path:
    fails = [PY, "-c", "raise SystemExit(1)"]
    plan = {
        "version": 1,
        "bug": "a bug",
        "defaults": {"timeout": 60},
        "control": {"test": fails},
        "hypotheses": [
            {"id": f"h{n}", "description": f"hypothesis {n}", "test": fails} for n in range(3)
        ],
    }
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def assert_session_ok(repo: Path, plan: Path) -> None:
    proc = refute("run", plan, "-j", "2", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    errors = [
        run["error_message"]
        for entry in (document["control"], *document["hypotheses"])
        for run in entry["runs"]
        if run["result"] == "error"
    ]
    assert errors == []


def check_corruption(tmp_path: Path, name: str) -> None:
    """Run a session, corrupt the pool, then: a dry-run clean changes nothing, a session
    runs (its start-up cleanup repairs), and, corrupted again, `refute clean` repairs it
    so that a second clean has nothing to do."""
    repo = make_repo(tmp_path / "repo")
    make_busy_checkout(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not refute's\n", encoding="utf-8")
    plan = write_plan(tmp_path / "plan.json")
    before = checkout_fingerprint(repo)
    assert_session_ok(repo, plan)
    top = Path(os.environ["REFUTE_HOME"]) / "cache" / "worktrees"
    (pool,) = (p for p in top.iterdir() if p.is_dir())

    # A dry run changes nothing; a session repairs at start-up and runs.
    CORRUPTIONS[name](pool, elsewhere)
    corrupt = tree(pool)
    dry = refute("clean", "--dry-run", cwd=repo)
    assert dry.returncode == 0, dry.stderr
    assert tree(pool) == corrupt
    assert_session_ok(repo, plan)

    # `refute clean` repairs the same corruption; a second clean finds nothing to do.
    CORRUPTIONS[name](pool, elsewhere)
    cleaned = refute("clean", cwd=repo)
    assert cleaned.returncode == 0, cleaned.stderr
    again = refute("clean", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert "nothing to clean" in again.stdout, again.stdout
    assert "prunable" not in git(repo, "worktree", "list", "--porcelain")

    assert tree(elsewhere) == ["keep.txt file"]  # nothing written or deleted through a link
    assert_same(before, checkout_fingerprint(repo))
