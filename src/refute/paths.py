"""Where refute keeps things, and the marker that makes a directory refute's own.

Nothing lives inside the user's working tree. State (SQLite, logs, calibration) lives under
`$XDG_STATE_HOME/refute` (default `~/.local/state/refute`), worktrees under
`$XDG_CACHE_HOME/refute/worktrees/<repo-id>/`. `REFUTE_HOME` overrides both
(`$REFUTE_HOME/state`, `$REFUTE_HOME/cache`); the tests use it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from refute.errors import NotOwnedError

__all__ = [
    "MARKER_FILE",
    "cache_dir",
    "inside",
    "is_owned_dir",
    "is_real_dir",
    "make_owned_dir",
    "owned_chain",
    "refute_home",
    "repo_id",
    "state_dir",
]


#: The file that marks a directory as created by refute; cleanup deletes nothing without it.
MARKER_FILE = ".refute-owned"
_MARKER_TEXT = b"created by refute; safe for `refute clean` to remove\n"


def refute_home() -> Path | None:
    home = os.environ.get("REFUTE_HOME")
    return Path(home).expanduser().resolve() if home else None


def state_dir() -> Path:
    home = refute_home()
    if home is not None:
        return home / "state"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser().resolve() / "refute"


def cache_dir() -> Path:
    override = os.environ.get("REFUTE_CACHE_DIR")  # the demo's throwaway worktrees
    if override:
        return Path(override).expanduser().resolve()
    home = refute_home()
    if home is not None:
        return home / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "refute"


def repo_id(common_git_dir: Path) -> str:
    """A stable directory name for a repository: its name plus a hash of its git dir."""
    real = common_git_dir.resolve()
    name = real.parent.name if real.name == ".git" else real.name
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")[:32] or "repo"
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:12]
    return f"{slug}-{digest}"


def make_owned_dir(path: Path) -> Path:
    """Create `path` (and parents) and mark it as refute's.

    `path` itself must then be a real directory, not a symlink to one: a test that swaps
    one of refute's directories for a symlink into the user's checkout must not make
    refute write its marker, or anything else, there. Only the two top directories
    (`state_dir()`, `cache_dir()`), which a user may point elsewhere, are followed. The
    marker is created without following symlinks.
    """
    follow = path in (state_dir(), cache_dir())
    path.mkdir(parents=True, exist_ok=True)
    if not follow and not is_real_dir(path):
        raise NotOwnedError(f"refusing {path}: it is not a directory of refute's (a symlink?)")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        dir_fd = os.open(path, flags)
    except OSError as exc:
        raise NotOwnedError(f"refusing {path}: {exc.strerror or exc}") from exc
    try:
        fd = os.open(
            MARKER_FILE,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=dir_fd,
        )
    except FileExistsError:
        pass
    except OSError as exc:
        raise NotOwnedError(f"cannot mark {path} as refute's: {exc.strerror or exc}") from exc
    else:
        try:
            os.write(fd, _MARKER_TEXT)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
    return path


def is_real_dir(path: Path) -> bool:
    """`path` is a directory, not a symlink to one (lstat)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def is_owned_dir(path: Path) -> bool:
    """`path` is a real directory (not a symlink) holding refute's marker as a regular file."""
    if not is_real_dir(path):
        return False
    try:
        return stat.S_ISREG(os.lstat(path / MARKER_FILE).st_mode)
    except OSError:
        return False


def owned_chain(path: Path, top: Path) -> bool:
    """`path` is `top` or below it, and every directory from `top` down to `path`'s parent is
    a real directory of refute's (marked, no symlink): the test for "may refute delete or
    write `path`". `path` itself is only required not to escape (it may be a symlink or a
    file, which deleting removes without following)."""
    try:
        relative = path.relative_to(top)
    except ValueError:
        return False
    if ".." in relative.parts:
        return False
    current = top
    if not is_owned_dir(current):
        return False
    for part in relative.parts[:-1]:
        current = current / part
        if not is_owned_dir(current):
            return False
    return True


def inside(path: Path, root: Path) -> bool:
    """True when the real path of `path` is `root` or below it (no substring tricks)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False
