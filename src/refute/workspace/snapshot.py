"""A commit of the user's uncommitted work, made without touching any of it.

Staged, unstaged and untracked (not ignored) changes, deletions included, are recorded
as they are on disk, through a temporary index file: the user's index, working files,
stash list and branches are never written, and the user's `index.lock` is never taken
(so this works while another process holds it). The commit is kept alive by a ref under
`refs/refute/snapshots/`, deleted when the session ends (or by reconciliation after a
crash: the ref's name carries the owner's pid and start time).
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
    "SNAPSHOT_REF_PREFIX",
    "TMP_PREFIX",
    "Snapshot",
    "delete_snapshot",
    "snapshot_uncommitted",
]


SNAPSHOT_REF_PREFIX = "refs/refute/snapshots/"
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


async def snapshot_uncommitted(repo: Repository, base: str) -> Snapshot:
    """Commit the working tree's state on top of `base` (a SHA) without touching it."""
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
        ref = f"{SNAPSHOT_REF_PREFIX}{process_token()}-{os.urandom(3).hex()}"
        await run_git(["update-ref", ref, sha], cwd=repo.root)
        return Snapshot(sha=sha, ref=ref, base=base)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


async def delete_snapshot(repo: Repository, snapshot: Snapshot) -> None:
    with contextlib.suppress(Exception):
        await run_git(["update-ref", "-d", snapshot.ref], cwd=repo.root)
