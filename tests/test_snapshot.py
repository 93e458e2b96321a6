"""The snapshot of uncommitted work: every kind of change, the user's checkout untouched.

Real repositories, real git. The user's `.git/index.lock` is held (by the test, standing
for another git process) throughout: refute must neither need it nor remove it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gitutil import (
    assert_pool_idle as _assert_pool_idle,
)
from gitutil import (
    failures as _failures,
)
from gitutil import fingerprint, git, make_repo
from refute.app.isolated import IsolationOptions, run_isolated
from refute.model import FalsificationConfig, Hypothesis
from refute.workspace.snapshot import SNAPSHOT_REF_PREFIX, delete_snapshot, snapshot_uncommitted
from refute.workspace.worktrees import Repository, resolve_base

PY = sys.executable
BASE_FILES = {
    ".gitignore": "*.log\nbuild/\n",
    "README.md": "hello\n",
    "staged.txt": "base\n",
    "mod.txt": "base\n",
    "both.txt": "base\n",
    "deleted.txt": "base\n",
    "gone.txt": "base\n",
    "script.sh": "#!/bin/sh\nexit 0\n",
    "sub/keep.txt": "keep\n",
}
LOCK_CONTENT = b"held by another git process\n"

# One hypothesis per kind of change, each checking that state in its worktree.
CHECKS = {
    "staged-mod": "grep -qx staged staged.txt",
    "unstaged-mod": "grep -qx unstaged mod.txt",
    "staged-then-edited": "grep -qx v3 both.txt",
    "untracked": "grep -qx untracked new.txt && grep -qx inner newdir/inner.txt",
    "deleted": "! test -e deleted.txt && grep -qx keep sub/keep.txt",
    "staged-deletion": "! test -e gone.txt",
    "staged-new": "grep -qx added added.txt",
    "ignored": "! test -e debug.log && ! test -e build && ! test -e sub/trace.log",
    "mode-change": "test -x script.sh",
    "clean-checkout": 'test -z "$(git status --porcelain --untracked-files=all)"',
    "all-at-once": (
        "test -f new.txt && ! test -e deleted.txt && grep -q unstaged mod.txt"
        " && ! test -e gone.txt && test -f added.txt && ! test -e debug.log"
    ),
}


def _make_every_kind_of_change(repo: Path) -> None:
    # A stash entry of the user's: the stash list must survive as it is.
    (repo / "README.md").write_text("stashed work\n", encoding="utf-8")
    git(repo, "stash", "push", "-q", "-m", "users own stash")
    assert git(repo, "stash", "list").count("\n") == 1

    (repo / "staged.txt").write_text("staged\n", encoding="utf-8")
    git(repo, "add", "staged.txt")
    (repo / "mod.txt").write_text("unstaged\n", encoding="utf-8")
    (repo / "both.txt").write_text("v2\n", encoding="utf-8")
    git(repo, "add", "both.txt")
    (repo / "both.txt").write_text("v3\n", encoding="utf-8")
    (repo / "new.txt").write_text("untracked\n", encoding="utf-8")
    (repo / "newdir").mkdir()
    (repo / "newdir" / "inner.txt").write_text("inner\n", encoding="utf-8")
    (repo / "deleted.txt").unlink()
    git(repo, "rm", "-q", "gone.txt")
    (repo / "added.txt").write_text("added\n", encoding="utf-8")
    git(repo, "add", "added.txt")
    (repo / "script.sh").chmod(0o755)
    (repo / "debug.log").write_text("ignored\n", encoding="utf-8")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored\n", encoding="utf-8")
    (repo / "sub" / "trace.log").write_text("ignored\n", encoding="utf-8")

    status = git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all")
    for expected in (
        "M  staged.txt",
        " M mod.txt",
        "MM both.txt",
        "?? new.txt",
        " D deleted.txt",
        "D  gone.txt",
        "A  added.txt",
        " M script.sh",
        "!! debug.log",
    ):
        assert expected in status.splitlines(), (expected, status)


@pytest.mark.asyncio
async def test_every_kind_of_uncommitted_change_while_index_lock_is_held(tmp_path):
    repo = make_repo(tmp_path / "repo", BASE_FILES)
    assert git(repo, "ls-files", "-s", "script.sh").startswith("100644 ")
    head = git(repo, "rev-parse", "HEAD").strip()
    _make_every_kind_of_change(repo)

    lock = repo / ".git" / "index.lock"
    lock.write_bytes(LOCK_CONTENT)
    lock_stat = lock.stat()
    try:
        before = fingerprint(repo)
        hyps = [
            Hypothesis(id=hid, description=f"sees {hid}", test=["/bin/sh", "-c", check], timeout=60)
            for hid, check in CHECKS.items()
        ]
        config = FalsificationConfig(max_concurrent_tests=4, kill_grace_period=0.5)
        run = await run_isolated(repo, hyps, config, IsolationOptions(include_uncommitted=True))

        assert _failures(run) == []
        assert run.snapshot_of == head
        assert run.base != head
        assert git(repo, "rev-parse", f"{run.base}^").strip() == head
        assert fingerprint(repo) == before
        assert lock.read_bytes() == LOCK_CONTENT
        after = lock.stat()
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
            lock_stat.st_ino,
            lock_stat.st_mtime_ns,
            lock_stat.st_size,
        )
        assert git(repo, "for-each-ref", "refs/refute/") == ""
        assert git(repo, "stash", "list").count("\n") == 1
    finally:
        lock.unlink()
    _assert_pool_idle(repo)


@pytest.mark.asyncio
async def test_snapshot_is_a_commit_on_the_base_kept_by_a_ref_until_deleted(tmp_path):
    repo_path = make_repo(tmp_path / "repo", BASE_FILES)
    _make_every_kind_of_change(repo_path)
    before = fingerprint(repo_path)
    repo = await Repository.open(repo_path)
    base = await resolve_base(repo, "HEAD")

    snap = await snapshot_uncommitted(repo, base)
    assert snap.base == base
    assert git(repo_path, "cat-file", "-t", snap.sha).strip() == "commit"
    assert git(repo_path, "rev-list", "--parents", "-n", "1", snap.sha).split() == [snap.sha, base]
    assert snap.ref.startswith(SNAPSHOT_REF_PREFIX)
    assert git(repo_path, "rev-parse", "--verify", snap.ref).strip() == snap.sha
    listed = git(repo_path, "for-each-ref", "--format=%(refname) %(objectname)", "refs/refute/")
    assert listed.splitlines() == [f"{snap.ref} {snap.sha}"]

    tree = set(git(repo_path, "ls-tree", "-r", "--name-only", snap.sha).split())
    assert {"new.txt", "newdir/inner.txt", "added.txt", "staged.txt", "mod.txt"} <= tree
    assert not tree & {"deleted.txt", "gone.txt", "debug.log", "build/out.bin", "sub/trace.log"}
    assert git(repo_path, "show", f"{snap.sha}:mod.txt") == "unstaged\n"
    assert git(repo_path, "show", f"{snap.sha}:both.txt") == "v3\n"
    assert git(repo_path, "show", f"{snap.sha}:README.md") == "hello\n"  # stashed, not present
    # The user's checkout is untouched apart from the new ref.
    during = fingerprint(repo_path)
    assert {k: v for k, v in during.items() if k != "refs"} == {
        k: v for k, v in before.items() if k != "refs"
    }

    await delete_snapshot(repo, snap)
    assert git(repo_path, "for-each-ref", "refs/refute/") == ""
    assert git(repo_path, "rev-parse", "--verify", "--quiet", snap.ref, check=False) == ""
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_snapshot_of_a_clean_checkout_has_the_base_tree(tmp_path):
    repo_path = make_repo(tmp_path / "repo", BASE_FILES)
    (repo_path / "debug.log").write_text("ignored\n", encoding="utf-8")
    before = fingerprint(repo_path)
    repo = await Repository.open(repo_path)
    base = await resolve_base(repo, "HEAD")

    snap = await snapshot_uncommitted(repo, base)
    try:
        assert git(repo_path, "rev-parse", f"{snap.sha}^{{tree}}") == git(
            repo_path, "rev-parse", f"{base}^{{tree}}"
        )
        assert git(repo_path, "rev-parse", f"{snap.sha}^").strip() == base
    finally:
        await delete_snapshot(repo, snap)
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_snapshot_without_an_index_file_records_the_working_tree(tmp_path):
    repo_path = make_repo(tmp_path / "repo", BASE_FILES)
    (repo_path / ".git" / "index").unlink()
    (repo_path / "mod.txt").write_text("unstaged\n", encoding="utf-8")
    (repo_path / "new.txt").write_text("untracked\n", encoding="utf-8")
    (repo_path / "debug.log").write_text("ignored\n", encoding="utf-8")
    before = fingerprint(repo_path)
    repo = await Repository.open(repo_path)
    base = await resolve_base(repo, "HEAD")

    snap = await snapshot_uncommitted(repo, base)
    try:
        tree = set(git(repo_path, "ls-tree", "-r", "--name-only", snap.sha).split())
        assert tree == (set(BASE_FILES) | {"new.txt"})
        assert git(repo_path, "show", f"{snap.sha}:mod.txt") == "unstaged\n"
    finally:
        await delete_snapshot(repo, snap)
    assert not (repo_path / ".git" / "index").exists()
    assert fingerprint(repo_path) == before
