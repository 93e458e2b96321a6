"""Submodules of a worktree, checked out from the user's own clones of them.

No network and no shared config: each submodule is a `--shared` clone of the user's
checkout of it. A test may have swapped a submodule (or a directory above it) for a
symlink, or pointed its `.git` elsewhere; refute's git runs in a submodule only after
checking that it is a clone of its own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from refute.paths import is_real_dir
from refute.workspace.git import run_git
from refute.workspace.worktrees import force_rmtree

__all__ = ["init_submodules"]


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
        _no_symlink_on_the_way(path, sub_path)
        if not await _is_own_clone(target):
            force_rmtree(target)
            await run_git(
                ["clone", "--quiet", "--shared", "--no-checkout", str(source), str(target)],
                cwd=path,
                env={"GIT_ALLOW_PROTOCOL": "file"},
            )
        await run_git(["reset", "--quiet", "--hard", sha], cwd=target)
        await run_git(["clean", "-ffdxq"], cwd=target)
        await init_submodules(source, target)


def _no_symlink_on_the_way(top: Path, relative: str) -> None:
    """Unlink whatever is not a real directory on the way from `top` to `top/relative` (a
    test may have swapped a submodule, or a directory above it, for a symlink to the user's
    checkout); unlinking a symlink never touches what it points at."""
    current = top
    for part in Path(relative).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            current.unlink()
            return


async def _is_own_clone(target: Path) -> bool:
    """`target` is a clone of its own: a real `.git` directory that git takes for the git
    directory of `target` itself (not a `.git` file or a `core.worktree` naming elsewhere)."""
    if not is_real_dir(target / ".git"):
        return False
    result = await run_git(
        ["rev-parse", "--path-format=absolute", "--show-toplevel", "--absolute-git-dir"],
        cwd=target,
        check=False,
    )
    lines = result.stdout.splitlines()
    if result.exit_code != 0 or len(lines) < 2:
        return False
    real = target.resolve()
    return Path(lines[0]).resolve() == real and Path(lines[1]).resolve() == real / ".git"
