"""Real git repositories for tests, and a fingerprint of the user's checkout.

`fingerprint(repo)` captures everything refute promises never to change in the user's
checkout: HEAD and branch, `git status --porcelain=v2 --ignored`, the content hash of
every file outside .git, the stash list, and every ref. Tests compare it before and after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

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
