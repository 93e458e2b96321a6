"""Which paths a sandboxed test sees read-only, and which it may still write.

`isolation: sandbox` (docs/sandbox.md) runs each test in a private mount namespace built by
the engine's launcher (`refute.engine.sandbox`), which knows no git. The layout comes from
here, read from the repository's files (no git process):

* read-only: the user's checkout (with its `.git`), the common git directory (refs,
  packed-refs, config, the stash, hooks, every worktree's admin directory), the warm
  pool (its slots: the sibling tests' worktrees, and their leases), and every other
  worktree registered in `<common>/worktrees/*/gitdir`;
* writable, bound on top: the test's own worktree, its own admin directory
  (`<common>/worktrees/<name>`, named by the worktree's `.git` file: HEAD, index, its
  reflog, its per-worktree refs) and `<common>/objects`, so a test may commit.

Worktrees inside the user's checkout and a common directory outside it are both covered:
every path is a bind of its own, writable ones applied last.
"""

from __future__ import annotations

from pathlib import Path

from refute.workspace.worktrees import Repository

__all__ = ["SandboxLayout", "admin_dir_of"]

#: How much of a `.git` file is read (it holds one `gitdir: <path>` line).
_GITFILE_LIMIT = 64 * 1024


def admin_dir_of(worktree: Path) -> Path | None:
    """The git admin directory a linked worktree's `.git` file names, or None when
    `.git` is not such a file. Relative paths are relative to the worktree."""
    gitfile = worktree / ".git"
    try:
        if not gitfile.is_file():
            return None
        with gitfile.open("rb") as handle:
            text = handle.read(_GITFILE_LIMIT).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("gitdir:"):
            target = Path(line.removeprefix("gitdir:").strip())
            return (worktree / target).resolve() if not target.is_absolute() else target
    return None


class SandboxLayout:
    """The mounts of one repository's sandboxed tests; `pool_root` is refute's warm pool."""

    def __init__(self, repo: Repository, pool_root: Path) -> None:
        self.repo = repo
        self.pool_root = pool_root

    def registered_worktrees(self) -> list[Path]:
        """Every linked worktree of the repository (from `<common>/worktrees/*/gitdir`)."""
        found = []
        admin_root = self.repo.common_dir / "worktrees"
        try:
            entries = sorted(admin_root.iterdir())
        except OSError:
            return []
        for entry in entries:
            try:
                gitdir = (entry / "gitdir").read_text(encoding="utf-8", errors="surrogateescape")
            except OSError:
                continue
            target = Path(gitdir.strip())
            if not target.is_absolute():
                target = (entry / target).resolve()
            found.append(target.parent)
        return found

    def mounts(self, worktree: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """`(read_only, writable)` for a test running in `worktree`."""
        own = worktree.resolve()
        read_only = [self.repo.root, self.repo.common_dir, self.pool_root]
        read_only += [path for path in self.registered_worktrees() if path.resolve() != own]
        writable = [own, self.repo.common_dir / "objects"]
        admin = admin_dir_of(own)
        if admin is not None:
            writable.append(admin)
        existing = tuple(path for path in dict.fromkeys(read_only) if path.exists())
        return existing, tuple(dict.fromkeys(writable))
