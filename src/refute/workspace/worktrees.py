"""The user's repository, the base commit, and single worktrees: create, verify, patch, remove.

Worktrees are detached (`--detach <sha>`, no branch is ever created) and live in refute's
cache directory, never inside the user's tree. The pool (pool.py) decides which slot a
hypothesis gets; this module does the git work on one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import stat
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from refute.errors import GitError, RepositoryError, WorktreeError
from refute.paths import is_real_dir, owned_chain, repo_id
from refute.workspace.git import git_out, run_git

__all__ = [
    "AdminLock",
    "Repository",
    "add_worktree",
    "admin_dir_of",
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
    # Another git (not refute's: those take the AdminLock) created or removed a worktree
    # while this one listed them: `failed to read .git/worktrees/<other>/commondir`.
    "failed to read",
    "/commondir",
)
_LOCK_RETRIES = 8
#: Give up waiting for another refute's worktree administration after this long.
ADMIN_LOCK_TIMEOUT = 300.0
#: A `.git` file or an admin entry's `gitdir` file longer than this is not git's.
_POINTER_LIMIT = 8192


class AdminLock:
    """Serializes the worktree administration of one repository (`worktree add`, removing
    an admin entry, reconcile's scan of registered worktrees) within this process (an
    asyncio lock) and across refute processes (`flock` on `path`, polled without blocking
    the event loop). Git's own locks do not cover this: one git listing the worktrees
    while another creates or removes one fails with `failed to read .../commondir`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._local:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            try:
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise WorktreeError(f"cannot open the lock {self.path}: {exc}") from exc
            try:
                deadline = time.monotonic() + ADMIN_LOCK_TIMEOUT
                delay = 0.002
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise WorktreeError(
                                f"another refute held {self.path} for {ADMIN_LOCK_TIMEOUT:.0f} s"
                            ) from None
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 0.05)
                yield
            finally:
                os.close(fd)  # drops the flock


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


async def add_worktree(repo: Repository, path: Path, sha: str, admin: AdminLock) -> None:
    """Register `path` as a detached worktree at `sha`, then check it out.

    The registration (`worktree add --no-checkout`) is the step that takes git's locks in
    the common directory, so it is serialized across refute processes (`admin`) and
    retried on lock errors from other gits; the checkout, the slow part, runs concurrently.
    """
    try:
        await _retry_on_lock(
            ["worktree", "add", "--no-checkout", "--detach", str(path), sha],
            repo.root,
            admin,
        )
        # Parallel checkout (git >= 2.32; older gits ignore the setting): writing thousands
        # of files is bound by the filesystem, and two workers halved it here.
        await _retry_on_lock(["-c", "checkout.workers=0", "reset", "--quiet", "--hard", sha], path)
    except GitError as exc:
        raise WorktreeError(f"cannot create worktree {path}: {exc}") from exc


async def _retry_on_lock(args: list[str], cwd: Path, admin: AdminLock | None = None) -> None:
    """Run git, retrying only when it failed on a lock another process held."""
    for attempt in range(_LOCK_RETRIES):
        try:
            if admin is None:
                await run_git(args, cwd=cwd)
            else:
                async with admin.held():
                    await run_git(args, cwd=cwd)
        except GitError as exc:
            if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
        else:
            return


def _read_pointer(path: Path) -> str:
    """The text of a small regular file, read without following a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = os.read(fd, _POINTER_LIMIT + 1)
    finally:
        os.close(fd)
    if len(data) > _POINTER_LIMIT:
        raise OSError(f"{path} is too long")
    return data.decode("utf-8", errors="replace").strip()


def admin_dir_of(repo: Repository, path: Path) -> Path:
    """The admin entry (`<common dir>/worktrees/<x>`) of the worktree at `path`, after
    checking, without following a symlink, that it is one of this repository's own: `path`
    is a real directory whose `.git` is a regular file naming a real directory right under
    `<common dir>/worktrees`, whose `gitdir` file names `path/.git` back."""
    if not is_real_dir(path):
        raise WorktreeError(f"worktree {path} is not a directory (a symlink or a file?)")
    dotgit = path / ".git"
    try:
        text = _read_pointer(dotgit)
    except FileNotFoundError:
        raise WorktreeError(f"worktree {path} is missing its .git file") from None
    except OSError as exc:
        raise WorktreeError(f"worktree {path}: its .git is not git's file ({exc})") from exc
    if not text.startswith("gitdir: "):
        raise WorktreeError(f"worktree {path}: its .git file names no gitdir")
    gitdir = Path(os.path.normpath(path / text[len("gitdir: ") :].strip()))
    admin_root = repo.common_dir / "worktrees"
    if gitdir.parent != admin_root or not is_real_dir(admin_root) or not is_real_dir(gitdir):
        raise WorktreeError(
            f"worktree {path}: its .git file points at {gitdir}, not at an entry of {admin_root}"
        )
    try:
        back = _read_pointer(gitdir / "gitdir")
    except OSError as exc:
        raise WorktreeError(f"worktree {path}: its admin entry {gitdir} is broken") from exc
    if Path(os.path.normpath(gitdir / back)) != dotgit:
        raise WorktreeError(f"worktree {path}: its admin entry {gitdir} belongs to {back}")
    return gitdir


async def verify_worktree(repo: Repository, path: Path, sha: str | None = None) -> None:
    """The isolation check: `path` is a worktree of its own of `repo` (at `sha`, if given).

    Run on every slot before refute's git touches it, not only on a new one: a test may
    have rewritten its worktree's `.git` file to point at the user's repository, made it a
    directory, deleted its admin entry, or made the worktree a symlink, and every git
    command in it would then act on whatever those name. Guards too against the known
    failure where an empty or half-removed directory makes git fall back to the enclosing
    repository, and against a `core.worktree` set in the slot's config.
    """
    gitdir = admin_dir_of(repo, path)
    try:
        out = await git_out(
            [
                "rev-parse",
                "--path-format=absolute",
                "--show-toplevel",
                "--absolute-git-dir",
                "--git-common-dir",
                "HEAD",
            ],
            cwd=path,
        )
    except GitError as exc:
        raise WorktreeError(f"worktree {path} is not usable: {exc}") from exc
    lines = out.splitlines()
    if len(lines) < 4:
        raise WorktreeError(f"worktree {path} is not usable: git said {out!r}")
    top, own, common, head = lines[:4]
    if Path(top).resolve() != path.resolve():
        raise WorktreeError(f"worktree {path} resolves to {top}, not to itself")
    if Path(own).resolve() != gitdir.resolve() or Path(common).resolve() != repo.common_dir:
        raise WorktreeError(f"worktree {path} uses the git directory {own}, not its own")
    if sha is not None and head != sha:
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


async def remove_worktree(
    repo: Repository, path: Path, admin: AdminLock, *, top: Path | None = None
) -> None:
    """Unregister and delete a worktree refute created, even a half-removed one.

    Git is not asked (`worktree remove` would read the worktree's `.git` file, which a test
    may have pointed at the user's repository): the admin entry that names `path` is
    removed (under `admin`), then `path` itself, never following a symlink. With `top`,
    nothing is deleted unless every directory from `top` down to `path` is refute's.
    """
    async with admin.held():
        forget_admin_entry(repo, path)
    if top is None or owned_chain(path, top):
        force_rmtree(path)


def forget_admin_entry(repo: Repository, path: Path) -> None:
    """Delete git's admin entry for the worktree at `path` (a targeted `worktree prune`).

    `git worktree prune` would also prune the user's own stale worktrees; this only
    touches entries (real directories) whose `gitdir` file names exactly `path/.git`, the
    path git recorded when refute created it (refute's paths have no symlinks).
    """
    admin_root = repo.common_dir / "worktrees"
    if not is_real_dir(admin_root):
        return
    target = path / ".git"
    try:
        entries = [Path(e.path) for e in os.scandir(admin_root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            recorded = Path(os.path.normpath(entry / _read_pointer(entry / "gitdir")))
            if recorded == target:
                shutil.rmtree(entry)


def force_rmtree(path: Path) -> None:
    """rm -rf that also copes with directories a test made unreadable (chmod 000).

    Never follows a symlink: a symlink (or a file) at `path` is unlinked, and inside a
    directory shutil's fd-based rmtree does not descend into symlinks either. Whether
    `path`'s parents may be trusted is the caller's business (`refute.paths.owned_chain`).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
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
    with contextlib.suppress(OSError):
        path.chmod(stat.S_IRWXU)  # a real directory: checked above
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
