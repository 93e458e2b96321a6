"""Hostile tests (issue step 3, points 1-2): a test command, run by a real refute session
(the CLI in a subprocess), attacks its own worktree or the pool around it; the next session
and `refute clean` must leave the user's checkout byte-identical and the pool consistent.

The test finds the pool through its working directory: the worktree is
`<cache>/worktrees/<repo-id>/slots/<name>`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import faultutil
import pytest
from checkout_fingerprint import assert_same, checkout_fingerprint, make_busy_checkout

from gitutil import git, make_repo

PY = sys.executable
TIMEOUT = 180.0

# Each attack runs in its worktree with the user's repository (found the way a test could:
# the worktree's common git dir is the user's .git) as sys.argv[1], then exits 1.
PRELUDE = """
import os, subprocess, sys
common = subprocess.run(
    ['git', 'rev-parse', '--path-format=absolute', '--git-common-dir'],
    capture_output=True, text=True, check=True,
).stdout.strip()
sys.argv[1:] = [os.path.dirname(common)]
"""
ATTACKS = {
    # Point 1: the worktree's .git file names the user's repository.
    "dotgit-points-at-user": """
import sys
open('.git', 'w').write('gitdir: ' + sys.argv[1] + '/.git\\n')
""",
    # The worktree's .git becomes a directory: a repository of the test's own.
    "dotgit-a-directory": """
import os, subprocess
os.remove('.git')
subprocess.run(['git', 'init', '-q', '.'], check=True)
""",
    # .git becomes a symlink to the user's .git directory.
    "dotgit-symlink-to-user": """
import os, sys
os.remove('.git')
os.symlink(sys.argv[1] + '/.git', '.git')
""",
    # The test deletes its worktree's admin entry (the gitdir the .git file names).
    "gitdir-deleted": """
import shutil
shutil.rmtree(open('.git').read().split(': ', 1)[1].strip())
""",
    # The test checks out one of the user's branches in its worktree.
    "checkout-user-branch": """
import subprocess
subprocess.run(['git', 'checkout', '-q', '--ignore-other-worktrees', 'feature'], check=True)
""",
    # The worktree directory itself becomes a symlink to the user's checkout.
    "worktree-symlink-to-user": """
import os, sys
here = os.getcwd()
os.chdir('/')
os.rename(here, here + '.gone')
os.symlink(sys.argv[1], here)
""",
}

# Point 2: the pool's `slots` directory becomes a symlink to the user's checkout (one
# hostile run only: two would race to move the same directory).
SLOTS_SYMLINK = """
import os, sys
here = os.getcwd()
slots = here[: here.rindex('/slots/')] + '/slots'
os.chdir('/')
os.rename(slots, slots + '.moved')
os.symlink(sys.argv[1], slots)
"""


def refute(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    # stdout may carry the tests' own output (the JSON report); stderr is refute's.
    return faultutil.refute(*args, cwd=cwd, timeout=TIMEOUT)


def attack(code: str) -> list[str]:
    return [PY, "-c", PRELUDE + code + "\nraise SystemExit(1)\n"]


def write_plan(path: Path, control: list[str], tests: dict[str, list[str]]) -> Path:
    plan = {
        "version": 1,
        "bug": "a bug",
        "defaults": {"timeout": 60},
        "control": {"test": control},
        "hypotheses": [
            {"id": hid, "description": f"hypothesis {hid}", "test": test}
            for hid, test in tests.items()
        ],
    }
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def benign_plan(path: Path) -> Path:
    """Control and three hypotheses that sleep a little: with -j 2 the first two acquire
    at once, so both warm slots are reused."""
    slow = [PY, "-c", "import time; time.sleep(0.5); raise SystemExit(1)"]
    return write_plan(path, slow, {f"after-{n}": slow for n in range(3)})


def errors_of(document: dict[str, Any]) -> list[str]:
    return [
        f"{run['hypothesis_id']}: {run['error_message']}"
        for entry in (document["control"], *document["hypotheses"])
        for run in entry["runs"]
        if run["result"] == "error"
    ]


def assert_pool_consistent(repo: Path) -> None:
    """Every worktree git knows is a live one: nothing prunable, no stale admin entry; each
    of refute's is a real directory with a regular .git file."""
    listing = git(repo, "worktree", "list", "--porcelain")
    assert "prunable" not in listing, listing
    home = Path(os.environ["REFUTE_HOME"]).resolve()
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = Path(line.split(" ", 1)[1])
            if path.resolve().is_relative_to(home):
                assert not path.is_symlink(), path
                assert path.is_dir(), path
                assert not (path / ".git").is_symlink(), path
                assert (path / ".git").is_file(), path


def run_hostile_then_normal(tmp_path: Path, first_plan: Path, repo: Path) -> None:
    before = checkout_fingerprint(repo)
    first = refute("run", first_plan, "-j", "2", "--format", "json", cwd=repo)
    assert first.returncode in (0, 3), first.stderr
    assert_same(before, checkout_fingerprint(repo))

    second = refute(
        "run", benign_plan(tmp_path / "after.json"), "-j", "2", "--format", "json", cwd=repo
    )
    assert second.returncode == 0, second.stderr
    assert errors_of(json.loads(second.stdout)) == []
    assert_same(before, checkout_fingerprint(repo))

    for args in (("clean", "--dry-run"), ("clean",)):
        cleaned = refute(*args, cwd=repo)
        assert cleaned.returncode == 0, cleaned.stderr
        assert_same(before, checkout_fingerprint(repo))
    assert_pool_consistent(repo)

    # And the pool still works: one more session reuses what is left.
    third = refute(
        "run", benign_plan(tmp_path / "again.json"), "-j", "2", "--format", "json", cwd=repo
    )
    assert third.returncode == 0, third.stderr
    assert errors_of(json.loads(third.stdout)) == []
    assert_same(before, checkout_fingerprint(repo))
    assert_pool_consistent(repo)


def busy_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    make_busy_checkout(repo)
    return repo


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_hostile_test_cannot_touch_the_users_checkout(tmp_path: Path, name: str) -> None:
    repo = busy_repo(tmp_path)
    hostile = attack(ATTACKS[name])
    plan = write_plan(tmp_path / "hostile.json", hostile, {"hostile": hostile})
    run_hostile_then_normal(tmp_path, plan, repo)


@pytest.mark.slow
def test_slots_swapped_for_a_symlink_to_the_checkout_deletes_nothing(tmp_path: Path) -> None:
    repo = busy_repo(tmp_path)
    quick = [PY, "-c", "raise SystemExit(1)"]
    plan = write_plan(tmp_path / "hostile.json", quick, {"hostile": attack(SLOTS_SYMLINK)})
    run_hostile_then_normal(tmp_path, plan, repo)
    assert not (repo / ".refute-owned").exists()


@pytest.mark.slow
def test_a_slot_reused_within_the_session_is_verified_too(tmp_path: Path) -> None:
    """-j 1: the next hypothesis of the same session gets the control's slot back."""
    repo = busy_repo(tmp_path)
    before = checkout_fingerprint(repo)
    quick = [PY, "-c", "raise SystemExit(1)"]
    hostile = attack(ATTACKS["dotgit-points-at-user"])
    plan = write_plan(tmp_path / "plan.json", hostile, {"next-1": quick, "next-2": quick})
    proc = refute("run", plan, "-j", "1", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert errors_of(json.loads(proc.stdout)) == []
    assert_same(before, checkout_fingerprint(repo))
    assert refute("clean", cwd=repo).returncode == 0
    assert_same(before, checkout_fingerprint(repo))
    assert_pool_consistent(repo)
