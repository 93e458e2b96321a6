"""Recovery after a crash, and `refute clean`: remove only what refute made and nobody holds.

Run at every start (cheap when there is nothing to do) and on demand with a dry run:

* pool slots whose lease is not held (the holder died: the kernel dropped its flock) and
  whose state is not "free" — a session was killed while using or creating them;
* worktrees registered in git under refute's slots directory (exact path prefix, after
  resolving symlinks) that have no lease file, and directories in the slots directory
  that git does not know;
* snapshot refs under `refs/refute/snapshots/` whose owning refute process is gone, except
  a session's (`session_of_ref`): a session killed mid-way is resumed on its snapshot, so
  its ref is `refute.app`'s to delete once the session is finished;
* temporary index directories of snapshots whose refute is gone;
* corrupt state under the pool: one of its directories (`worktrees/<repo-id>`, `slots`,
  `leases`) that is a symlink (removed: the link, never what it points at) or a file
  (moved aside), a lease that is not a regular file (moved aside), a lease being created
  whose creator died (removed). Leases with garbage or wrong JSON types are unusable: their
  slots are removed like those of dead sessions.

Nothing is deleted through a symlink, and only below directories that are refute's own
(`refute.paths.owned_chain`); the scan of registered worktrees holds the pool's admin lock,
so it never sees another refute's worktree half created or half removed.

Free pool slots are kept: they are the warm pool. Test processes whose refute is gone
are the engine's to stop (`refute.engine.sweep.stop_orphans`); `refute.app.clean` does both
and fills `CleanReport.processes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from refute.errors import WorktreeError
from refute.owners import token_owner_alive
from refute.paths import is_owned_dir, owned_chain, state_dir
from refute.workspace.git import GitResult, run_git
from refute.workspace.pool import WorktreePool
from refute.workspace.snapshot import SNAPSHOT_REF_PREFIX, TMP_PREFIX, session_of_ref
from refute.workspace.worktrees import Repository, admin_dir_of, force_rmtree, forget_admin_entry

__all__ = [
    "CleanReport",
    "reconcile",
]


@dataclass
class CleanReport:
    """What reconciliation removed (or, with `dry_run`, would remove)."""

    dry_run: bool
    worktrees: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    #: Corrupt state moved aside or removed, each as "<path> (<what was done>)".
    repaired: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.worktrees or self.refs or self.processes or self.temporary or self.repaired
        )


async def reconcile(repo: Repository | None, *, dry_run: bool = False) -> CleanReport:
    """Clean up the files and refs of dead refute processes; see the module docstring."""
    report = CleanReport(dry_run=dry_run)
    _reconcile_tmp(report, dry_run=dry_run)
    if repo is None:
        return report
    pool = WorktreePool(repo)
    _repair_pool(pool, report, dry_run=dry_run)
    # The snapshot refs are listed while the slots are looked at (one git call less to wait
    # for at every start); nothing below changes them.
    refs = asyncio.ensure_future(_list_snapshot_refs(repo))
    try:
        await _reconcile_slots(pool, report, dry_run=dry_run)
        await _reconcile_registered(pool, report, dry_run=dry_run)
        listing = await refs
    finally:
        if not refs.done():
            refs.cancel()
            await asyncio.wait({refs})  # run_git kills and reaps its git process
        if not refs.cancelled():
            refs.exception()  # retrieved: an error here is not logged as unhandled
    await _reconcile_refs(repo, listing, report, dry_run=dry_run)
    return report


def _reconcile_tmp(report: CleanReport, *, dry_run: bool) -> None:
    """Temporary index directories of snapshots whose refute died mid-way."""
    tmp_root = state_dir() / "tmp"
    if not is_owned_dir(tmp_root):
        return
    for entry in tmp_root.iterdir():
        if not entry.name.startswith(TMP_PREFIX):
            continue
        if token_owner_alive(entry.name[len(TMP_PREFIX) :]):
            continue
        report.temporary.append(str(entry))
        if not dry_run:
            force_rmtree(entry)


def _aside(path: Path, report: CleanReport, *, dry_run: bool) -> None:
    """Move corrupt state out of the way: a symlink is removed (the link only), anything
    else is renamed to `<name>.corrupt-<time>-<random>` beside it, never deleted."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISLNK(mode):
        report.repaired.append(f"{path} (a symlink: removed, not what it points at)")
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}-{secrets.token_hex(3)}")
    report.repaired.append(f"{path} (not refute's: moved aside to {aside.name})")
    if not dry_run:
        with contextlib.suppress(FileNotFoundError):
            path.rename(aside)


def _repair_pool(pool: WorktreePool, report: CleanReport, *, dry_run: bool) -> None:
    """Corrupt state under the pool (see the module docstring), outermost first."""
    top = pool.root.parent
    for path in (top, pool.root, pool.slots_dir, pool.leases_dir):
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return  # missing: made afresh when needed
        if not stat.S_ISDIR(mode):
            _aside(path, report, dry_run=dry_run)
            return
        if not is_owned_dir(path):
            return  # not marked as refute's: never touched
    lock = pool.admin.path
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        _aside(lock, report, dry_run=dry_run)
    try:
        with os.scandir(pool.leases_dir) as scan:
            entries = [(e.name, Path(e.path), e.is_file(follow_symlinks=False)) for e in scan]
    except OSError:
        return
    for name, path, regular in entries:
        if name.startswith(".tmp-"):
            _remove_dead_tmp_lease(path, report, dry_run=dry_run)
        elif name.endswith(".json") and not regular:
            _aside(path, report, dry_run=dry_run)


def _remove_dead_tmp_lease(path: Path, report: CleanReport, *, dry_run: bool) -> None:
    """A lease being created (see `WorktreePool._new_lease`) whose creator died."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # its creator is alive and about to link it into place
    try:
        report.temporary.append(str(path))
        if not dry_run:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


async def _reconcile_slots(pool: WorktreePool, report: CleanReport, *, dry_run: bool) -> None:
    if not is_owned_dir(pool.root):
        return
    for name in pool.slot_names():
        fd = pool.try_lock(name)
        if fd is None:
            report.kept.append(f"{name} (leased by a running refute)")
            continue
        info = pool.read_info(fd)
        path = pool.slots_dir / name
        if info.get("state") == "free" and _is_slot_dir(pool.repo, path):
            report.kept.append(f"{name} (free pool slot)")
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            continue
        report.worktrees.append(str(path))
        if dry_run:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:
            await pool.destroy_slot(name, fd)


def _is_slot_dir(repo: Repository, path: Path) -> bool:
    """A worktree of its own by its files (`admin_dir_of`: no git runs; the full check,
    with git's view, runs when the slot is next acquired)."""
    try:
        admin_dir_of(repo, path)
    except WorktreeError:
        return False
    return True


async def _reconcile_registered(pool: WorktreePool, report: CleanReport, *, dry_run: bool) -> None:
    """Worktrees git knows under our slots directory without a lease, and stray directories
    (under the admin lock: another refute creates a lease before it registers a worktree,
    and forgets a worktree before it deletes the lease)."""
    if not is_owned_dir(pool.root):
        return
    async with pool.admin.held():
        await _reconcile_registered_locked(pool, report, dry_run=dry_run)


async def _reconcile_registered_locked(
    pool: WorktreePool, report: CleanReport, *, dry_run: bool
) -> None:
    listing = await run_git(["worktree", "list", "--porcelain"], cwd=pool.repo.root)
    registered = [
        Path(line[len("worktree ") :])
        for line in listing.stdout.splitlines()
        if line.startswith("worktree ")
    ]
    leased = set(pool.slot_names())
    slots_dir = pool.slots_dir
    for path in registered:
        if path.parent != slots_dir or not owned_chain(path, pool.root):
            continue  # not ours (or no longer a directory of refute's): never touched
        if path.name in leased:
            continue
        report.worktrees.append(str(path))
        if not dry_run:
            forget_admin_entry(pool.repo, path)
            force_rmtree(path)  # owned_chain: every directory down to it is refute's
    if not owned_chain(slots_dir / "x", pool.root):
        return
    known = {p.name for p in registered if p.parent == slots_dir}
    for entry in slots_dir.iterdir():
        if entry.name.startswith(".") or entry.name in leased or entry.name in known:
            continue
        report.worktrees.append(str(entry))
        if not dry_run:
            force_rmtree(entry)  # a symlink is unlinked, never followed


async def _list_snapshot_refs(repo: Repository) -> GitResult:
    return await run_git(
        ["for-each-ref", "--format=%(refname)", SNAPSHOT_REF_PREFIX], cwd=repo.root
    )


async def _reconcile_refs(
    repo: Repository, listing: GitResult, report: CleanReport, *, dry_run: bool
) -> None:
    for ref in listing.stdout.split():
        token = ref[len(SNAPSHOT_REF_PREFIX) :]
        if token_owner_alive(token) or session_of_ref(ref) is not None:
            continue  # a session's snapshot outlives its refute (until the session ends)
        report.refs.append(ref)
        if not dry_run:
            await run_git(["update-ref", "-d", ref], cwd=repo.root, check=False)
