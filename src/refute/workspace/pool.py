"""The warm pool: worktrees reused across sessions of the same repository.

Layout under `cache_dir()/worktrees/<repo-id>/` (each directory carries refute's marker):

    slots/<name>/          a detached git worktree
    leases/<name>.json     its lease: flock-ed while a refute process uses the slot; the JSON
                           says state ("creating" | "leased" | "free"), pid, base, last use

A slot is leased to one refute process at a time: the lease file is locked with `flock`,
which the kernel releases when the holder dies, even by SIGKILL. So "is the holder dead?"
is a non-blocking lock attempt, immune to pid reuse. Acquiring a free slot resets it to
the base (`reset --hard`, `clean -ffdx` keeping configured paths such as `.venv`); if
`status --porcelain --ignored` is not clean afterwards, the slot is destroyed and made
anew. The pool holds at most `capacity` slots; extra ones are evicted least recently used
first when released.

A warm slot that a test left clean costs one git command (`status`). The index flags that
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
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refute.errors import GitError, WorktreeError
from refute.model import DEFAULT_CONCURRENCY, DEFAULT_KEEP_PATHS, check_id
from refute.paths import cache_dir, inside, make_owned_dir
from refute.workspace.git import GitResult, git_out, run_git
from refute.workspace.worktrees import (
    Repository,
    add_worktree,
    force_rmtree,
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
    return cache_dir() / "worktrees" / repo.id


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
        self.registry_lock = asyncio.Lock()
        self._statuses_running = 0  # `git status` calls of this pool under way
        self._cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    def _ensure_dirs(self) -> None:
        make_owned_dir(cache_dir())
        make_owned_dir(self.root)
        make_owned_dir(self.slots_dir)
        make_owned_dir(self.leases_dir)

    # -- leases --------------------------------------------------------------------------

    def _lease_path(self, name: str) -> Path:
        return self.leases_dir / f"{name}.json"

    def _slot_path(self, name: str) -> Path:
        path = self.slots_dir / name
        if not inside(path, self.slots_dir) or path.parent.resolve() != self.slots_dir.resolve():
            raise WorktreeError(f"refusing a slot path outside refute's directory: {path}")
        return path

    def try_lock(self, name: str, *, create: bool = False) -> int | None:
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self._lease_path(name), flags, 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def read_info(fd: int) -> dict[str, Any]:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            data = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write_info(fd: int, info: dict[str, Any]) -> None:
        data = json.dumps(info, sort_keys=True).encode("utf-8")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)

    def slot_names(self) -> list[str]:
        if not self.leases_dir.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in self.leases_dir.glob("*.json"))

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
            if info.get("state") != "free" or not (self.slots_dir / name / ".git").is_file():
                # Left by a process that died mid-way: reconcile's business, not reusable.
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                continue
            candidates.append((float(info.get("last_used", 0.0)), name, fd, info))
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
        name = f"{hypothesis_id}-{secrets.token_hex(3)}"
        path = self._slot_path(name)
        fd = self.try_lock(name, create=True)
        if fd is None:  # pragma: no cover - a random name collided with a held lease
            raise WorktreeError(f"slot {name} is busy", hypothesis_id)
        info: dict[str, Any] = {"state": "creating", "pid": os.getpid(), "created": time.time()}
        self._write_info(fd, info)
        start = time.monotonic()
        try:
            await add_worktree(self.repo, path, sha, self.registry_lock)
            await self._init_submodules(path)
            await verify_worktree(path, sha)
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
            free.append((float(info.get("last_used", 0.0)), name, fd))
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
        """Remove the worktree, its git admin entry and its lease (we hold the lock)."""
        try:
            path = self._slot_path(name)
            _make_traversable(path)
            if path.exists():
                await remove_worktree(self.repo, path, self.registry_lock)
            else:
                forget_admin_entry(self.repo, path)
            with contextlib.suppress(FileNotFoundError):
                self._lease_path(name).unlink()
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


def _make_traversable(path: Path) -> None:
    """Undo a test's `chmod 000` on directories so git can reset and clean them."""
    if not path.is_dir():
        return
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            full = Path(root) / name
            with contextlib.suppress(OSError):
                if not full.is_symlink() and (full.stat().st_mode & 0o700) != 0o700:
                    full.chmod(full.stat().st_mode | 0o700)


async def init_submodules(source_root: Path, path: Path) -> None:
    """Populate the submodules of the worktree at `path` from the user's checkouts.

    Each submodule is cloned with `--shared` from the user's own checkout of it (objects are
    borrowed, nothing is fetched) and set to the commit the worktree records. The user's
    config is not touched (`git submodule init` would write to the shared config).
    """
    if not (path / ".gitmodules").is_file():
        return
    listing = await run_git(["ls-files", "--stage", "-z"], cwd=path)
    for record in listing.stdout.split("\0"):
        if not record.startswith("160000 "):
            continue
        meta, _, sub_path = record.partition("\t")
        sha = meta.split()[1]
        target = path / sub_path
        source = source_root / sub_path
        if not (source / ".git").exists():
            continue  # the user has not initialised it either: nothing local to use
        if not (target / ".git").exists():
            force_rmtree(target)
            await run_git(
                ["clone", "--quiet", "--shared", "--no-checkout", str(source), str(target)],
                cwd=path,
                env={"GIT_ALLOW_PROTOCOL": "file"},
            )
        await run_git(["reset", "--quiet", "--hard", sha], cwd=target)
        await run_git(["clean", "-ffdxq"], cwd=target)
        await init_submodules(source, target)
