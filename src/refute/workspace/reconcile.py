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
* temporary index directories of snapshots whose refute is gone.

Free pool slots are kept: they are the warm pool. Test processes whose refute is gone
are the engine's to stop (`refute.engine.sweep.stop_orphans`); `refute.app.clean` does both
and fills `CleanReport.processes`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from refute.owners import token_owner_alive
from refute.paths import inside, is_owned_dir, state_dir
from refute.workspace.git import GitResult, run_git
from refute.workspace.pool import WorktreePool
from refute.workspace.snapshot import SNAPSHOT_REF_PREFIX, TMP_PREFIX, session_of_ref
from refute.workspace.worktrees import Repository, force_rmtree, forget_admin_entry, remove_worktree

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

    @property
    def nothing_to_do(self) -> bool:
        return not (self.worktrees or self.refs or self.processes or self.temporary)


async def reconcile(repo: Repository | None, *, dry_run: bool = False) -> CleanReport:
    """Clean up the files and refs of dead refute processes; see the module docstring."""
    report = CleanReport(dry_run=dry_run)
    _reconcile_tmp(report, dry_run=dry_run)
    if repo is None:
        return report
    pool = WorktreePool(repo)
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
        if info.get("state") == "free" and (path / ".git").is_file():
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


async def _reconcile_registered(pool: WorktreePool, report: CleanReport, *, dry_run: bool) -> None:
    """Worktrees git knows under our slots directory without a lease, and stray directories."""
    listing = await run_git(["worktree", "list", "--porcelain"], cwd=pool.repo.root)
    registered = [
        Path(line[len("worktree ") :])
        for line in listing.stdout.splitlines()
        if line.startswith("worktree ")
    ]
    leased = set(pool.slot_names())
    slots_dir = pool.slots_dir
    for path in registered:
        if path.parent != slots_dir or not inside(path, slots_dir) or not is_owned_dir(slots_dir):
            continue  # not ours: never touched
        if path.name in leased:
            continue
        report.worktrees.append(str(path))
        if not dry_run:
            if path.exists():
                await remove_worktree(pool.repo, path, pool.registry_lock)
            else:
                forget_admin_entry(pool.repo, path)
    if not is_owned_dir(slots_dir):
        return
    known = {p.name for p in registered if p.parent == slots_dir}
    for entry in slots_dir.iterdir():
        if entry.name.startswith(".") or entry.name in leased or entry.name in known:
            continue
        report.worktrees.append(str(entry))
        if not dry_run:
            force_rmtree(entry)


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
