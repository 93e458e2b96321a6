"""A commit of the user's uncommitted work, made without touching any of it.

Staged, unstaged and untracked (not ignored) changes, deletions included, are recorded
as they are on disk, through a temporary index file: the user's index, working files,
stash list and branches are never written, and the user's `index.lock` is never taken
(so this works while another process holds it). The commit is kept alive by a ref under
`refs/refute/snapshots/` whose name carries the owner's pid and start time. A plain
snapshot's ref is deleted when its run ends (or by reconciliation after a crash). A
*session's* snapshot ref (`session_ref_name`: `<token>-session-<session id>`) outlives the
process: a session killed mid-way is resumed on the same snapshot, so reconciliation never
deletes it; `refute.app` does, once the session is finished (or gone from the store).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from refute.owners import process_token
from refute.paths import make_owned_dir, state_dir
from refute.workspace.git import git_out, run_git
from refute.workspace.worktrees import Repository

__all__ = [
    "SESSION_REF_MARK",
    "SNAPSHOT_REF_PREFIX",
    "TMP_PREFIX",
    "Snapshot",
    "delete_ref",
    "delete_snapshot",
    "list_snapshot_refs",
    "session_of_ref",
    "session_ref_name",
    "snapshot_uncommitted",
]


SNAPSHOT_REF_PREFIX = "refs/refute/snapshots/"
#: What separates the owner's token from the session id in a session's snapshot ref.
SESSION_REF_MARK = "-session-"
TMP_PREFIX = "snapshot-"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "refute",
    "GIT_AUTHOR_EMAIL": "refute@localhost",
    "GIT_COMMITTER_NAME": "refute",
    "GIT_COMMITTER_EMAIL": "refute@localhost",
}


@dataclass(frozen=True)
class Snapshot:
    sha: str
    ref: str
    base: str


def session_ref_name(session_id: str) -> str:
    """The name (after `SNAPSHOT_REF_PREFIX`) of the snapshot ref of session `session_id`."""
    return f"{process_token()}{SESSION_REF_MARK}{session_id}"


def session_of_ref(ref: str) -> str | None:
    """The session id a snapshot ref (full name) belongs to, or None for a plain one."""
    name = ref.removeprefix(SNAPSHOT_REF_PREFIX)
    _, mark, session_id = name.partition(SESSION_REF_MARK)
    return session_id if mark and session_id else None


async def snapshot_uncommitted(repo: Repository, base: str, *, name: str | None = None) -> Snapshot:
    """Commit the working tree's state on top of `base` (a SHA) without touching it.

    The ref is `SNAPSHOT_REF_PREFIX + name` (default: this process' token and a random
    suffix); a session passes `session_ref_name(id)`."""
    tmp_root = make_owned_dir(state_dir() / "tmp")
    # The owner's token in the name lets reconciliation remove it after a SIGKILL.
    tmp_dir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{process_token()}-", dir=tmp_root))
    try:
        index = tmp_dir / "index"
        user_index = Path(
            await git_out(
                ["rev-parse", "--path-format=absolute", "--git-path", "index"], cwd=repo.root
            )
        )
        env = {"GIT_INDEX_FILE": str(index), **_IDENTITY}
        if user_index.is_file():
            # Start from a copy of the user's index: its stat data spares hashing every file.
            shutil.copyfile(user_index, index)
        else:
            await run_git(["read-tree", base], cwd=repo.root, env=env)
        await run_git(["add", "--all", "--", ":/"], cwd=repo.root, env=env)
        tree = await git_out(["write-tree"], cwd=repo.root, env=env)
        sha = await git_out(
            ["commit-tree", tree, "-p", base, "-m", "refute: snapshot of uncommitted work"],
            cwd=repo.root,
            env=env,
        )
        ref = SNAPSHOT_REF_PREFIX + (name or f"{process_token()}-{os.urandom(3).hex()}")
        await run_git(["update-ref", ref, sha], cwd=repo.root)
        return Snapshot(sha=sha, ref=ref, base=base)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


async def delete_snapshot(repo: Repository, snapshot: Snapshot) -> None:
    await delete_ref(repo, snapshot.ref)


async def delete_ref(repo: Repository, ref: str) -> None:
    """Delete a snapshot ref; never raises (a ref already gone is fine)."""
    if not ref.startswith(SNAPSHOT_REF_PREFIX):
        return  # only refute's own snapshot refs are ever deleted
    with contextlib.suppress(Exception):
        await run_git(["update-ref", "-d", ref], cwd=repo.root)


async def list_snapshot_refs(repo: Repository) -> list[str]:
    """The full names of every snapshot ref in `repo`."""
    result = await run_git(
        ["for-each-ref", "--format=%(refname)", SNAPSHOT_REF_PREFIX], cwd=repo.root
    )
    return result.stdout.split()
