"""Real git repositories for tests, and a fingerprint of the user's checkout.

`fingerprint(repo)` captures everything refute promises never to change in the user's
checkout: HEAD and branch, `git status --porcelain=v2 --ignored`, the content hash of
every file outside .git, the stash list, and every ref. Tests compare it before and after.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from refute.app.isolated import IsolatedRun
from refute.model import FalsificationConfig, Hypothesis, TestResult

# Variables that would redirect git away from the repository a test names.
_GIT_LOCAL = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
)


def git(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k not in _GIT_LOCAL}
    base["GIT_OPTIONAL_LOCKS"] = "0"  # a fingerprint's `status` must not rewrite the index
    if env:
        base.update(env)
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        env=base,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def make_repo(path: Path, files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
    """A repository at `path` with `files` committed on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "refute tests")
    git(path, "config", "user.email", "tests@refute.invalid")
    git(path, "config", "commit.gpgsign", "false")
    for name, content in (
        files or {"README.md": "hello\n", "src/app.py": "print('app')\n"}
    ).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def fingerprint(repo: Path) -> dict[str, object]:
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            full = Path(root) / name
            rel = str(full.relative_to(repo))
            if full.is_symlink():
                files[rel] = "link:" + os.readlink(full)
            else:
                try:
                    files[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
                except PermissionError:
                    files[rel] = "unreadable"
    return {
        "head": git(repo, "rev-parse", "HEAD", check=False).strip(),
        "branch": git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip(),
        "status": git(repo, "status", "--porcelain=v2", "--ignored", "--untracked-files=all"),
        "files": files,
        "stash": git(repo, "stash", "list"),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
        if (repo / ".git" / "index").exists()
        else "",
    }


def refute_worktrees(repo: Path, home: Path) -> list[str]:
    """Worktrees git knows that live under refute's home directory."""
    out = git(repo, "worktree", "list", "--porcelain")
    paths = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]
    return [p for p in paths if Path(p).resolve().is_relative_to(home.resolve())]


# -- shared by the isolation tests (worktrees, git layer, snapshot) ----------------------

PY = sys.executable
FILES = {"README.md": "hello\n", "src/app.py": "print('app')\n", ".gitignore": "*.log\n"}

# Prints its working directory; fails unless `name` exists there with `content`.
CHECK_FILE = r"""
import os, sys
name, content = sys.argv[1], sys.argv[2]
print(os.getcwd())
with open(name, encoding="utf-8") as f:
    sys.exit(0 if f.read() == content else 3)
"""


def home() -> Path:
    return Path(os.environ["REFUTE_HOME"])


def isolation_config(concurrency: int = 4) -> FalsificationConfig:
    return FalsificationConfig(
        max_concurrent_tests=concurrency, test_timeout=60.0, kill_grace_period=0.5
    )


def check_file_hyp(hid: str, name: str, content: str, **kwargs) -> Hypothesis:
    return Hypothesis(
        id=hid, description=f"checks {name}", test=[PY, "-c", CHECK_FILE, name, content], **kwargs
    )


def failures(run: IsolatedRun) -> list[tuple[str, str, str, str]]:
    return [
        (r.hypothesis_id, r.result.value, r.error_message, r.stderr[-500:])
        for r in run.results
        if r.result is not TestResult.PASS
    ]


def assert_pool_idle(repo: Path) -> None:
    """No refute worktree is leased; the free slots the pool keeps are registered worktrees."""
    root = home()
    for lease_file in (root / "cache" / "worktrees").glob("*/leases/*.json"):
        fd = os.open(lease_file, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pytest.fail(f"lease {lease_file} is still held")
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        info = json.loads(lease_file.read_text(encoding="utf-8") or "{}")
        assert info.get("state") == "free", (lease_file, info)
    assert git(repo, "for-each-ref", "refs/refute/") == ""
    listed = git(repo, "worktree", "list", "--porcelain")
    others = [
        Path(line.split(" ", 1)[1])
        for line in listed.splitlines()
        if line.startswith("worktree ") and Path(line.split(" ", 1)[1]) != repo.resolve()
    ]
    assert all(p.resolve().is_relative_to(root.resolve()) for p in others), others
    # Free slots are cleaned when next acquired, not on release (docs/isolation.md, "The
    # warm pool"); test_pool.py checks that a dirtied slot comes back pristine.
    for slot in refute_worktrees(repo, root):
        assert (Path(slot) / ".git").is_file(), slot
