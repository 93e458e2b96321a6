"""A byte-level fingerprint of the user's checkout, for fault tests to compare before/after.

`checkout_fingerprint(repo)` captures what refute promises never to change: HEAD (the raw
`.git/HEAD` bytes, so a detached HEAD at the same commit differs from a branch), the branch,
every ref, the index file's bytes, the staged work (`diff --cached`), the unstaged work, the
status with untracked and ignored files, the stash, the repository's config and worktree
list, and every path outside `.git` (tracked, untracked, ignored; directories, symlinks and
file modes included) with its content hash. `assert_same(before, after)` names the keys
that differ.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from gitutil import git

__all__ = ["assert_same", "checkout_fingerprint", "make_busy_checkout"]


def _tree(repo: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for root, dirs, names in os.walk(repo):
        top = Path(root)
        if top == repo:
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs:
            full = top / name
            found[str(full.relative_to(repo)) + "/"] = (
                "link:" + os.readlink(full) if full.is_symlink() else "dir"
            )
        for name in names:
            full = top / name
            rel = str(full.relative_to(repo))
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(full)
                continue
            try:
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
            found[rel] = f"{stat.S_IMODE(st.st_mode):o}:{digest}"
    return found


def _bytes(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _own_worktrees(repo: Path) -> list[str]:
    """The user's worktrees (refute's, under REFUTE_HOME, come and go)."""
    home = Path(os.environ["REFUTE_HOME"]).resolve()
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    paths = [line.split(" ", 1)[1] for line in listed if line.startswith("worktree ")]
    return sorted(p for p in paths if not Path(p).is_relative_to(home))


def checkout_fingerprint(repo: Path) -> dict[str, Any]:
    dot = repo / ".git"
    return {
        "HEAD file": (dot / "HEAD").read_bytes().decode(errors="replace"),
        "head": git(repo, "rev-parse", "HEAD", check=False).strip(),
        "branch": git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip(),
        # refute's own refs (refs/refute/: a session's snapshot, kept until it is finished)
        # are not the user's.
        "refs": [
            line
            for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").split("\n")
            if not line.startswith("refs/refute/")
        ],
        "index bytes": _bytes(dot / "index"),
        "staged": git(repo, "diff", "--cached", "--binary"),
        "unstaged": git(repo, "diff", "--binary"),
        "status": git(repo, "status", "--porcelain=v2", "--ignored", "--untracked-files=all"),
        "stash": git(repo, "stash", "list"),
        "config": _bytes(dot / "config"),
        "worktrees": _own_worktrees(repo),
        "files": _tree(repo),
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    differ = [key for key in before if before[key] != after.get(key)]
    assert not differ, f"the user's checkout changed: {differ}: " + "; ".join(
        f"{key}: {before[key]!r} -> {after.get(key)!r}"[:600] for key in differ
    )


def make_busy_checkout(repo: Path) -> None:
    """Give a fresh `gitutil.make_repo` repository work in progress of every kind: a second
    branch, a staged change, an unstaged change, an untracked and an ignored file."""
    git(repo, "branch", "feature")
    (repo / ".gitignore").write_text("*.log\n", encoding="utf-8")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    (repo / "README.md").write_text("staged work\n", encoding="utf-8")
    git(repo, "add", "README.md")
    (repo / "src" / "app.py").write_text("print('unstaged work')\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked work\n", encoding="utf-8")
    (repo / "build.log").write_text("ignored\n", encoding="utf-8")
