"""The user's repository, the base commit, and single worktrees: create, verify, patch, remove.

Worktrees are detached (`--detach <sha>`, no branch is ever created) and live in refute's
cache directory, never inside the user's tree. The pool (pool.py) decides which slot a
hypothesis gets; this module does the git work on one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from refute.errors import GitError, RepositoryError, WorktreeError
from refute.paths import repo_id
from refute.workspace.git import git_out, run_git

__all__ = [
    "Repository",
    "add_worktree",
    "apply_patch",
    "force_rmtree",
    "forget_admin_entry",
    "remove_worktree",
    "resolve_base",
    "verify_worktree",
]


#: Lock errors that are worth a retry (another git process held a lock for a moment).
_LOCK_HINTS = (
    "index.lock",
    "config.lock",
    ".lock': File exists",
    "Unable to create",
    "could not lock",
)
_LOCK_RETRIES = 8


@dataclass(frozen=True)
class Repository:
    """The user's repository: its working-tree top level and its common git directory."""

    root: Path
    common_dir: Path
    id: str

    @classmethod
    async def open(cls, path: Path | str) -> Repository:
        where = Path(path).expanduser()
        if not where.is_dir():
            raise RepositoryError(f"not a directory: {where}")
        try:
            out = await git_out(
                ["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"],
                cwd=where,
            )
        except GitError as exc:
            if "bare repository" in exc.stderr or "must be run in a work tree" in exc.stderr:
                raise RepositoryError(f"bare repositories are not supported: {where}") from exc
            if "dubious ownership" in exc.stderr:  # say what git says, not "not a repository"
                said = next(
                    (line for line in exc.stderr.splitlines() if "dubious ownership" in line), ""
                ).removeprefix("fatal: ")
                raise RepositoryError(
                    f"git refuses {where}: {said} (it belongs to another user; `git config"
                    f" --global --add safe.directory {Path(where).resolve()}` trusts it)"
                ) from exc
            raise RepositoryError(f"not a git repository: {where}") from exc
        top, common = out.splitlines()[:2]
        common_dir = Path(common).resolve()
        return cls(root=Path(top).resolve(), common_dir=common_dir, id=repo_id(common_dir))


async def resolve_base(repo: Repository, base: str = "HEAD") -> str:
    """Resolve `base` (any commit-ish) once to a full commit SHA, with clear errors."""
    if not isinstance(base, str) or not base or "\0" in base:
        raise RepositoryError(f"bad base {base!r}: must be a non-empty commit-ish")
    result = await run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}"],
        cwd=repo.root,
        check=False,
    )
    if result.exit_code == 0:
        return result.stdout.strip()
    head = await run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo.root, check=False)
    if head.exit_code != 0:
        raise RepositoryError(
            f"the repository at {repo.root} has no commits yet (unborn HEAD);"
            " commit something first"
        )
    raise RepositoryError(f"bad base {base!r}: not a commit in {repo.root}")


def _is_lock_error(exc: GitError) -> bool:
    return any(hint in exc.stderr for hint in _LOCK_HINTS)


async def add_worktree(repo: Repository, path: Path, sha: str, registry_lock: asyncio.Lock) -> None:
    """Register `path` as a detached worktree at `sha`, then check it out.

    The registration (`worktree add --no-checkout`) is the step that takes git's locks in
    the common directory, so it is serialized within this process and retried on lock
    errors from other processes; the checkout, the slow part, runs concurrently.
    """
    try:
        await _retry_on_lock(
            ["worktree", "add", "--no-checkout", "--detach", str(path), sha],
            repo.root,
            registry_lock,
        )
        # Parallel checkout (git >= 2.32; older gits ignore the setting): writing thousands
        # of files is bound by the filesystem, and two workers halved it here.
        await _retry_on_lock(["-c", "checkout.workers=0", "reset", "--quiet", "--hard", sha], path)
    except GitError as exc:
        raise WorktreeError(f"cannot create worktree {path}: {exc}") from exc


async def _retry_on_lock(args: list[str], cwd: Path, lock: asyncio.Lock | None = None) -> None:
    """Run git, retrying only when it failed on a lock another process held."""
    for attempt in range(_LOCK_RETRIES):
        try:
            if lock is None:
                await run_git(args, cwd=cwd)
            else:
                async with lock:
                    await run_git(args, cwd=cwd)
        except GitError as exc:
            if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
        else:
            return


async def verify_worktree(path: Path, sha: str) -> None:
    """The isolation check: `path` is a worktree of its own, at `sha`.

    Guards against the known failure where an empty or half-removed directory makes git
    fall back to the enclosing (the user's) repository.
    """
    if not (path / ".git").is_file():
        raise WorktreeError(f"worktree {path} is missing its .git file")
    try:
        out = await git_out(
            ["rev-parse", "--path-format=absolute", "--show-toplevel", "HEAD"], cwd=path
        )
    except GitError as exc:
        raise WorktreeError(f"worktree {path} is not usable: {exc}") from exc
    top, head = out.splitlines()[:2]
    if Path(top).resolve() != path.resolve():
        raise WorktreeError(f"worktree {path} resolves to {top}, not to itself")
    if head != sha:
        raise WorktreeError(f"worktree {path} is at {head}, expected {sha}")


async def apply_patch(path: Path, patch: Path, hypothesis_id: str) -> None:
    """Apply `patch` in the worktree; a patch that does not apply is that hypothesis' error."""
    if not patch.is_file():
        raise WorktreeError(f"patch not found: {patch}", hypothesis_id)
    try:
        await run_git(["apply", "--whitespace=nowarn", str(patch.resolve())], cwd=path)
    except GitError as exc:
        detail = "; ".join(line for line in exc.stderr.strip().splitlines() if line) or str(exc)
        raise WorktreeError(f"patch {patch} does not apply: {detail}", hypothesis_id) from exc


async def remove_worktree(repo: Repository, path: Path, registry_lock: asyncio.Lock) -> None:
    """Unregister and delete a worktree refute created, even a half-removed one."""
    async with registry_lock:
        result = await run_git(
            ["worktree", "remove", "--force", "--force", str(path)], cwd=repo.root, check=False
        )
    if result.exit_code != 0:
        forget_admin_entry(repo, path)
    force_rmtree(path)


def forget_admin_entry(repo: Repository, path: Path) -> None:
    """Delete git's admin entry for the worktree at `path` (a targeted `worktree prune`).

    `git worktree prune` would also prune the user's own stale worktrees; this only
    touches the entry whose `gitdir` file points at `path`.
    """
    admin_root = repo.common_dir / "worktrees"
    if not admin_root.is_dir():
        return
    target = path / ".git"
    for entry in admin_root.iterdir():
        with contextlib.suppress(OSError):
            recorded = Path((entry / "gitdir").read_text(encoding="utf-8").strip())
            if recorded == target or recorded.resolve() == target.resolve():
                shutil.rmtree(entry)


def force_rmtree(path: Path) -> None:
    """rm -rf that also copes with directories a test made unreadable (chmod 000)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return

    def fix_and_retry(_func: object, failed: str, _exc: object) -> None:
        target = Path(failed)
        with contextlib.suppress(OSError):
            target.parent.chmod(stat.S_IRWXU)
        if target.is_dir() and not target.is_symlink():
            with contextlib.suppress(OSError):
                target.chmod(stat.S_IRWXU)
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                target.unlink()

    # Make every directory traversable first: a test may have left a chmod 000 directory.
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            full = Path(root) / name
            if not full.is_symlink():
                with contextlib.suppress(OSError):
                    full.chmod(stat.S_IRWXU)
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=fix_and_retry)
    else:
        shutil.rmtree(path, onerror=fix_and_retry)
