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
from pathlib import Path

__all__ = [
    "MARKER_FILE",
    "cache_dir",
    "inside",
    "is_owned_dir",
    "make_owned_dir",
    "refute_home",
    "repo_id",
    "state_dir",
]


#: The file that marks a directory as created by refute; cleanup deletes nothing without it.
MARKER_FILE = ".refute-owned"


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
    """Create `path` (and parents) and mark it as refute's."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER_FILE
    if not marker.exists():
        marker.write_text(
            "created by refute; safe for `refute clean` to remove\n", encoding="utf-8"
        )
    return path


def is_owned_dir(path: Path) -> bool:
    return (path / MARKER_FILE).is_file()


def inside(path: Path, root: Path) -> bool:
    """True when the real path of `path` is `root` or below it (no substring tricks)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False
