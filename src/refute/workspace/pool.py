"""The warm pool: worktrees reused across sessions of the same repository.

Layout under `cache_dir()/worktrees/<repo-id>/` (each directory carries refute's marker):

    slots/<name>/          a detached git worktree
    leases/<name>.json     its lease: flock-ed while a refute process uses the slot; the JSON
                           says state ("creating" | "leased" | "free"), pid, base, last use
    admin.lock             flock-ed around worktree administration (`worktrees.AdminLock`)

A slot is leased to one refute process at a time: the lease file is locked with `flock`,
which the kernel releases when the holder dies, even by SIGKILL. So "is the holder dead?"
is a non-blocking lock attempt, immune to pid reuse. A new lease is written and locked
under a temporary name, then linked into place: no other refute can ever lock it first.

No path is followed through a symlink: the pool's directories must be real directories
of refute's (`refute.paths.owned_chain`), lease files are opened with `O_NOFOLLOW`, and a
slot is checked to be a worktree of its own (`verify_worktree`: its `.git` file, its admin
entry, git's view of its top level) every time it is reused, before any git runs in it;
a slot that fails is destroyed, by path, without asking git. Acquiring a free slot resets it to
the base (`reset --hard`, `clean -ffdx` keeping configured paths such as `.venv`); if
`status --porcelain --ignored` is not clean afterwards, the slot is destroyed and made
anew. The pool holds at most `capacity` slots; extra ones are evicted least recently used
first when released.

A warm slot that a test left clean costs two git commands (`rev-parse` for the isolation
check, `status`). The index flags that
could hide a change from it (assume-unchanged, skip-worktree) are read with `ls-files -v`
only when the slot's index file is not the very one read last time: the lease records
the index's inode, size, mtime and ctime after a check, and git rewrites the index
through a new file (a new inode), while any in-place write changes its ctime, which no
program can set back.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import secrets
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refute.errors import GitError, NotOwnedError, WorktreeError
from refute.model import DEFAULT_CONCURRENCY, DEFAULT_KEEP_PATHS, check_id
from refute.paths import cache_dir, inside, is_real_dir, make_owned_dir, owned_chain
from refute.workspace.git import GitResult, git_out, run_git
from refute.workspace.submodules import init_submodules
from refute.workspace.worktrees import (
    AdminLock,
    Repository,
    add_worktree,
    forget_admin_entry,
    remove_worktree,
    verify_worktree,
)

__all__ = [
    "INDEX_CHECKED",
    "MIN_FREE_BYTES",
    "Lease",
    "WorktreePool",
    "index_signature",
    "init_submodules",
    "pool_root",
]


#: Refuse to create a worktree when less than this is free on the cache's filesystem.
MIN_FREE_BYTES = 256 * 1024 * 1024
#: Lease info key: the stat signature of the slot's index when its flags were last checked.
INDEX_CHECKED = "index_checked"
#: A lease file longer than this is not refute's (it is read as an empty, unusable lease).
_LEASE_LIMIT = 1 << 20
#: Where a lease being created is written and locked before it appears under its name.
_TMP_LEASE = ".tmp-"
#: Tries at creating a lease that a concurrent cleanup removed before it was locked.
_LEASE_ATTEMPTS = 5


@dataclass(frozen=True)
class _Check:
    pristine: bool
    detached: bool


@dataclass
class Lease:
    """A slot held by this process. `fresh` is True when it was created for this lease."""

    name: str
    path: Path
    fd: int
    fresh: bool = False
    seconds: float = 0.0  # time spent creating or refreshing it
    info: dict[str, Any] = field(default_factory=dict)


def pool_root(repo: Repository) -> Path:
    """The pool of `repo`: under the real path of the cache directory, so that the paths
    git records for its worktrees are exactly refute's (no symlink to resolve)."""
    return Path(os.path.realpath(cache_dir())) / "worktrees" / repo.id


def last_used(info: dict[str, Any]) -> float:
    """A lease's `last_used`, 0.0 when it is missing or not a number (a corrupt lease)."""
    value = info.get("last_used")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


class WorktreePool:
    """Leases, refreshes, creates and evicts the worktrees of one repository."""

    def __init__(
        self,
        repo: Repository,
        *,
        capacity: int = DEFAULT_CONCURRENCY,
        keep_paths: Sequence[str] = DEFAULT_KEEP_PATHS,
    ) -> None:
        if capacity < 1:
            raise ValueError("pool capacity must be >= 1")
        self.repo = repo
        self.capacity = capacity
        self.keep_paths = tuple(keep_paths)
        self.root = pool_root(repo)
        self.slots_dir = self.root / "slots"
        self.leases_dir = self.root / "leases"
        self.admin = AdminLock(self.root / "admin.lock")
        self._statuses_running = 0  # `git status` calls of this pool under way
        self._cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    def _ensure_dirs(self) -> None:
        """Create (and check) the pool's directories; none may be a symlink or a file
        (`make_owned_dir` refuses; `refute clean`, run at every start, repairs them)."""
        top = self.root.parent.parent
        try:
            for path in (top, top / "worktrees", self.root, self.slots_dir, self.leases_dir):
                make_owned_dir(path)
        except NotOwnedError as exc:
            raise WorktreeError(f"{exc}; `refute clean` repairs it") from exc
        if inside(self.root, self.repo.root):
            raise WorktreeError(
                f"refute's cache {self.root} is inside the repository {self.repo.root}"
            )

    # -- leases --------------------------------------------------------------------------

    def _lease_path(self, name: str) -> Path:
        return self.leases_dir / f"{name}.json"

    def _slot_path(self, name: str) -> Path:
        """`slots/<name>`, lexically: a plain name, and no symlink is resolved (whether the
        directories on the way are refute's is checked where it matters)."""
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise WorktreeError(f"refusing a slot name: {name!r}")
        return self.slots_dir / name

    def try_lock(self, name: str) -> int | None:
        """Lock the lease of slot `name` (an fd), or None when it is held, missing or not a
        regular file of refute's (never followed through a symlink)."""
        path = self._lease_path(name)
        if not owned_chain(path, self.root):
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Still the file under that name (not one its destroyer has just unlinked)?
            st = os.fstat(fd)
            now = os.lstat(path)
        except OSError:
            os.close(fd)
            return None
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
            os.close(fd)
            return None
        return fd

    def _new_lease(self, name: str, info: dict[str, Any]) -> int:
        """Create the lease of a new slot, already locked and written when it appears under
        its name (a temporary file, flock-ed, then linked into place): another refute's
        start-up cleanup can never lock it in between and take it for a dead one's.

        Between creating the temporary file and locking it, a cleanup may still take it
        for a dead creator's and remove it (or hold its lock for that moment): then it is
        made again, under a new name."""
        for _ in range(_LEASE_ATTEMPTS - 1):
            with contextlib.suppress(FileNotFoundError, BlockingIOError):
                return self._try_new_lease(name, info)
        return self._try_new_lease(name, info)

    def _try_new_lease(self, name: str, info: dict[str, Any]) -> int:
        path = self._lease_path(name)
        tmp = self.leases_dir / f"{_TMP_LEASE}{name}-{secrets.token_hex(4)}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._write_info(fd, info)
            os.link(tmp, path, follow_symlinks=False)
        except BaseException:
            os.close(fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return fd

    @staticmethod
    def read_info(fd: int) -> dict[str, Any]:
        """The lease's JSON object; {} (an unusable lease) when it is not one."""
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while len(raw) <= _LEASE_LIMIT and (chunk := os.read(fd, 65536)):
            raw += chunk
        if len(raw) > _LEASE_LIMIT:
            return {}
        try:
            data = json.loads(raw.decode("utf-8") or "{}")
        except (ValueError, RecursionError):  # bad UTF-8 or JSON, absurd nesting
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write_info(fd: int, info: dict[str, Any]) -> None:
        data = json.dumps(info, sort_keys=True).encode("utf-8")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)

    def slot_names(self) -> list[str]:
        """Slots with a lease: regular files `leases/<name>.json` (a directory, a symlink
        or anything else under such a name is corrupt state, for `refute clean`)."""
        if not owned_chain(self.leases_dir / "x", self.root):
            return []
        names = []
        with contextlib.suppress(OSError), os.scandir(self.leases_dir) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".json") and not name.startswith("."):
                    with contextlib.suppress(OSError):
                        if entry.is_file(follow_symlinks=False):
                            names.append(name[: -len(".json")])
        return sorted(names)

    # -- acquire / release ---------------------------------------------------------------

    async def acquire(self, sha: str, hypothesis_id: str) -> Lease:
        """A worktree at `sha` for `hypothesis_id`: a refreshed free slot, or a new one."""
        check_id(hypothesis_id)
        self._ensure_dirs()
        lease = self._lease_free_slot()
        if lease is not None:
            start = time.monotonic()
            try:
                await self._refresh(lease, sha)
            except (GitError, WorktreeError, OSError):
                await self.destroy_slot(lease.name, lease.fd)
                lease = None
            except BaseException:
                await asyncio.shield(self.destroy_slot(lease.name, lease.fd))
                raise
            else:
                lease.seconds = time.monotonic() - start
        if lease is None:
            lease = await self._create(sha, hypothesis_id)
        lease.info.update(state="leased", pid=os.getpid(), base=sha, hypothesis=hypothesis_id)
        self._write_info(lease.fd, lease.info)
        return lease

    def _lease_free_slot(self) -> Lease | None:
        """Lock the most recently used free slot (synchronously: no other task interleaves)."""
        candidates = []
        for name in self.slot_names():
            fd = self.try_lock(name)
            if fd is None:
                continue
            info = self.read_info(fd)
            if info.get("state") != "free" or not _looks_like_slot(self.slots_dir / name):
                # Left by a process that died mid-way: reconcile's business, not reusable.
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                continue
            candidates.append((last_used(info), name, fd, info))
        if not candidates:
            return None
        candidates.sort(reverse=True)
        _, name, fd, info = candidates[0]
        for _, _, other_fd, _ in candidates[1:]:
            fcntl.flock(other_fd, fcntl.LOCK_UN)
            os.close(other_fd)
        return Lease(name=name, path=self._slot_path(name), fd=fd, info=info)

    async def _create(self, sha: str, hypothesis_id: str) -> Lease:
        free = shutil.disk_usage(self.slots_dir).free
        if free < MIN_FREE_BYTES:
            raise WorktreeError(
                f"not enough free disk for a worktree in {self.slots_dir}:"
                f" {free // 2**20} MiB free",
                hypothesis_id,
            )
        # Named for no hypothesis: a slot is reused by others, and its path is reported.
        name = f"slot-{secrets.token_hex(4)}"
        path = self._slot_path(name)
        info: dict[str, Any] = {"state": "creating", "pid": os.getpid(), "created": time.time()}
        try:
            fd = self._new_lease(name, info)
        except OSError as exc:  # a random name collided, or the leases dir went away
            raise WorktreeError(f"cannot create the lease of slot {name}: {exc}") from exc
        start = time.monotonic()
        try:
            await add_worktree(self.repo, path, sha, self.admin)
            await self._init_submodules(path)
            await verify_worktree(self.repo, path, sha)
        except BaseException:
            await asyncio.shield(self.destroy_slot(name, fd))
            raise
        return Lease(
            name=name, path=path, fd=fd, fresh=True, seconds=time.monotonic() - start, info=info
        )

    async def _refresh(self, lease: Lease, sha: str) -> None:
        """Bring a free slot back to `sha`, pristine and detached.

        One read-only git call when it already is (status; the index flags too when the
        index changed since they were last checked).
        """
        lease.info.update(state="leased", pid=os.getpid())
        self._write_info(lease.fd, lease.info)
        path = lease.path
        # Before any git runs in it: is the slot still a worktree of its own? (A test may
        # have pointed its `.git` at the user's repository; see `verify_worktree`.)
        await verify_worktree(self.repo, path)
        if (path / ".gitmodules").is_file():
            await self._init_submodules(path)
        check = await self._check(path, sha, lease.info)
        if check.pristine:
            return
        excludes = [arg for keep in self.keep_paths for arg in ("-e", f"/{keep}")]
        for attempt in range(2):
            try:
                if attempt:
                    # Second chance: a test may have left directories git cannot enter
                    # (chmod 000) or index flags that hide changes; start the index afresh.
                    _make_traversable(path)
                    index = await git_out(
                        ["rev-parse", "--path-format=absolute", "--git-path", "index"], cwd=path
                    )
                    Path(index).unlink(missing_ok=True)
                # Detach first: a test may have switched the slot to one of the user's
                # branches, and `reset --hard` would move that branch. (A detached HEAD is
                # moved by the reset itself: the usual case, a new base.)
                if attempt or not check.detached:
                    await run_git(["update-ref", "--no-deref", "HEAD", sha], cwd=path)
                await run_git(
                    ["-c", "checkout.workers=0", "reset", "--quiet", "--hard", sha], cwd=path
                )
                await run_git(["clean", "-ffdxq", *excludes], cwd=path)
                if (path / ".gitmodules").is_file():
                    await self._init_submodules(path)
            except GitError:
                if attempt:
                    raise
                continue
            if (await self._check(path, sha, lease.info)).pristine:
                return
        raise WorktreeError(f"slot {lease.name} is not clean after reset")

    def _kept(self, entry: str) -> bool:
        return any(entry == keep or entry.startswith(f"{keep}/") for keep in self.keep_paths)

    async def _check(self, path: Path, sha: str, info: dict[str, Any]) -> _Check:
        """Pristine: detached at `sha`, nothing modified, untracked or ignored (apart from
        kept paths), and no index entry flagged assume-unchanged or skip-worktree (which
        hide changes). Also says whether HEAD is detached.

        `info` (the lease's) remembers the index file whose flags were found clean, so the
        flags are read again only from an index that changed (see the module docstring).
        """
        status = await self._status(path)
        at_sha = clean = True
        head: str | None = None
        for line in status.stdout.splitlines():
            if line.startswith("# branch.oid "):
                at_sha = line.split()[2] == sha
            elif line.startswith("# branch.head "):
                head = line.split(maxsplit=2)[2]
            elif line.startswith("#") or (
                line[:2] in ("! ", "? ") and self._kept(line[2:].strip('"').rstrip("/"))
            ):
                continue
            else:
                clean = False
                break  # the branch headers come first
        detached = head == "(detached)"
        if not (at_sha and head in (None, "(detached)") and clean):
            return _Check(pristine=False, detached=detached)
        return _Check(pristine=await self._flags_clean(path, info), detached=detached)

    async def _flags_clean(self, path: Path, info: dict[str, Any]) -> bool:
        """No index entry flagged assume-unchanged or skip-worktree (`ls-files -v`), unless
        the index is the very file found clean last time (see the module docstring)."""
        signature = index_signature(path)
        if signature is not None and signature == info.get(INDEX_CHECKED):
            return True  # the same index file as at the last check: the same flags
        info.pop(INDEX_CHECKED, None)
        flags = await run_git(["ls-files", "-v", "-z"], cwd=path)
        if not all(entry.startswith("H ") for entry in flags.stdout.split("\0") if entry):
            return False
        if signature is not None:
            info[INDEX_CHECKED] = signature  # taken before the read: a later change shows
        return True

    async def _status(self, path: Path) -> GitResult:
        """`git status` of a slot, with every change, untracked and ignored file listed.

        Git's index preload runs one lstat thread per CPU; when the pool already checks as
        many slots at once as there are CPUs (a batch's first jobs acquire together), those
        threads only compete with each other, so it is turned off for the extra calls.
        """
        args = ["status", "--porcelain=v2", "--branch", "--ignored", "--untracked-files=all"]
        if self._statuses_running >= self._cpus:
            args = ["-c", "core.preloadIndex=false", *args]
        self._statuses_running += 1
        try:
            return await run_git(args, cwd=path)
        finally:
            self._statuses_running -= 1

    async def _init_submodules(self, path: Path) -> None:
        """Check out submodules from the user's local clones: no network, no shared config."""
        await init_submodules(self.repo.root, path)

    def record(self, lease: Lease) -> None:
        """Write `lease.info` to its lease file now (e.g. the key of the setup that ran in
        the slot, which a later session compares to skip the setup)."""
        self._write_info(lease.fd, lease.info)

    async def release(self, lease: Lease) -> None:
        """Return a slot to the pool, then evict beyond capacity (least recently used first)."""
        try:
            lease.info.update(state="free", pid=None, last_used=time.time())
            self._write_info(lease.fd, lease.info)
        finally:
            fcntl.flock(lease.fd, fcntl.LOCK_UN)
            os.close(lease.fd)
        await self.evict()

    async def evict(self) -> list[str]:
        names = self.slot_names()
        excess = len(names) - self.capacity
        if excess <= 0:
            return []
        free: list[tuple[float, str, int]] = []
        for name in names:
            fd = self.try_lock(name)
            if fd is None:
                continue
            info = self.read_info(fd)
            free.append((last_used(info), name, fd))
        free.sort()
        evicted = []
        for index, (_, name, fd) in enumerate(free):
            if index < excess:
                await self.destroy_slot(name, fd)
                evicted.append(name)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        return evicted

    async def destroy_slot(self, name: str, fd: int) -> None:
        """Remove the worktree, its git admin entry and its lease (we hold the lock).

        Git is not asked and no symlink is followed: the admin entry naming the slot goes,
        then the slot, only when every directory down to it is refute's (a test may have
        swapped `slots` for a symlink into the user's checkout).
        """
        try:
            path = self._slot_path(name)
            if owned_chain(path, self.root):
                _make_traversable(path)
                await remove_worktree(self.repo, path, self.admin, top=self.root)
            else:
                async with self.admin.held():
                    forget_admin_entry(self.repo, path)
            lease = self._lease_path(name)
            if owned_chain(lease, self.root):
                with contextlib.suppress(FileNotFoundError):
                    lease.unlink()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def index_signature(path: Path) -> list[int] | None:
    """inode, size, mtime and ctime (ns) of the index of the worktree at `path`, or None.

    The index is `<gitdir>/index`, the gitdir named by the worktree's `.git` file (refute's
    git children never get a GIT_INDEX_FILE). None when that cannot be read: then the
    flags are always checked.
    """
    try:
        text = (path / ".git").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir: "):
        return None
    gitdir = Path(text[len("gitdir: ") :].strip())
    try:
        st = (path / gitdir / "index").stat()  # a relative gitdir is relative to `path`
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _looks_like_slot(path: Path) -> bool:
    """A real directory with a regular `.git` file (lstat only; `verify_worktree` checks the
    rest before git runs there)."""
    if not is_real_dir(path):
        return False
    try:
        return stat.S_ISREG(os.lstat(path / ".git").st_mode)
    except OSError:
        return False


def _make_traversable(path: Path) -> None:
    """Undo a test's `chmod 000` on directories so git can reset and clean them."""
    if not is_real_dir(path):
        return
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            full = Path(root) / name
            with contextlib.suppress(OSError):
                if not full.is_symlink() and (full.stat().st_mode & 0o700) != 0o700:
                    full.chmod(full.stat().st_mode | 0o700)
