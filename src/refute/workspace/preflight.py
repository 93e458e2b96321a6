"""Checks against the repository at the base commit, before any worktree is made.

Each check answers "will this work in a worktree of the base?" with None or one line that
says what is wrong and how to fix it: a patch that does not apply, a command that cannot
be found or is not executable there, a missing seed script.

What must stay true: the user's index, working tree and refs are never written, and no
lock of theirs is taken. Git is only asked to read (`ls-tree`, `cat-file`, `check-ignore`,
`apply --summary`); a patch is checked with `git apply --check --cached` against a
temporary index that `read-tree <base>` fills, under refute's state directory (named like
the snapshot's, so reconciliation removes it after a crash) and removed afterwards. A
held `index.lock` is therefore irrelevant. Git failing for another reason (a base that is
not a commit) raises `GitError`.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from refute.owners import process_token
from refute.paths import make_owned_dir, state_dir
from refute.workspace.git import run_git
from refute.workspace.snapshot import TMP_PREFIX
from refute.workspace.worktrees import Repository

__all__ = [
    "command_problem",
    "diff_problem",
    "patch_problem",
    "seed_script_path",
    "seed_script_problem",
]

_EXECUTABLE, _LINK, _TREE, _SUBMODULE = "100755", "120000", "040000", "160000"
_MAX_LINKS = 8  # as many symlinks as we follow in the tree before calling it a loop
_HOST = "host"  # an _Entry's mode for a link to an absolute path: checked on this machine
_LS_TREE = ("--literal-pathspecs", "ls-tree", "-z", "--full-tree")
_NOT_FILES = {_TREE: "a directory", _SUBMODULE: "a submodule"}
_INTERPRETERS = {".sh": "sh", ".bash": "bash", ".py": "python3"}


def seed_script_path(hypothesis_id: str) -> str:
    """The seed's script a hypothesis without `test` runs, relative to its worktree."""
    return f".falsification/test_{hypothesis_id}.sh"


# -- patches ----------------------------------------------------------------------------------


async def patch_problem(
    repo: Repository, base_sha: str, patch_path: Path | str, *, uncommitted: bool = False
) -> str | None:
    """None if the patch file applies to `base_sha`, else why not, in one line.

    With `uncommitted`, the patch is checked against the working tree instead (a plan with
    `include_uncommitted: true` patches a snapshot of it).
    """
    patch = Path(patch_path)
    try:
        diff = patch.read_bytes()
    except FileNotFoundError:
        return f"patch {patch} not found"
    except OSError as exc:
        return f"patch {patch} cannot be read ({exc.strerror or exc})"
    return await diff_problem(repo, base_sha, diff, f"patch {patch.name}", uncommitted=uncommitted)


async def diff_problem(
    repo: Repository,
    base_sha: str,
    diff: bytes,
    what: str,
    *,
    reverse: bool = False,
    uncommitted: bool = False,
) -> str | None:
    """`patch_problem` for a diff in memory (`patch_text`, a commit's change); `what` names
    it in the message ("the inline patch_text"); `reverse` checks its revert."""
    args = ["apply", "--check", "--whitespace=nowarn", *(["--reverse"] if reverse else [])]
    if uncommitted:
        result = await run_git([*args, "-"], cwd=repo.root, stdin=diff, check=False)
        against = "your working tree"
    else:
        against = _short(base_sha)
        async with _base_index(repo, base_sha) as env:
            result = await run_git(
                [*args, "--cached", "-"], cwd=repo.root, env=env, stdin=diff, check=False
            )
    if result.exit_code == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line]
    if not uncommitted:  # the index git speaks of is the temporary one: the base's tree
        lines = [_name_the_base(line, against) for line in lines]
    detail = "; ".join(lines) or f"git apply exited with {result.exit_code}"
    return f"{what} does not apply to {against}: {detail}"


def _name_the_base(line: str, short: str) -> str:
    """git's "x: does not exist in index" is about the temporary index, i.e. the base."""
    for ending in (" in index", " match index"):
        if line.endswith(ending):
            return f"{line.removesuffix('index')}{short}"
    return line


@contextlib.asynccontextmanager
async def _base_index(repo: Repository, base: str) -> AsyncIterator[dict[str, str]]:
    """The environment of a git that sees the base's tree as its index (a temporary file)."""
    tmp_root = make_owned_dir(state_dir() / "tmp")
    # The owner's token after the snapshot's prefix lets reconciliation remove it after a
    # SIGKILL, exactly as it removes a snapshot's.
    prefix = f"{TMP_PREFIX}{process_token()}-preflight-"
    tmp_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root))
    try:
        env = {"GIT_INDEX_FILE": str(tmp_dir / "index")}
        await run_git(["read-tree", "--end-of-options", base], cwd=repo.root, env=env)
        yield env
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


async def _patch_modes(repo: Repository, diff: bytes, *, reverse: bool) -> dict[str, str | None]:
    """Paths a diff creates, deletes or changes the mode of: path -> new mode (None: deleted).

    From `git apply --summary`, which reads the diff only. Renames and copies are not
    followed (their summary lines abbreviate the paths); names git quotes are skipped.
    """
    args = ["-c", "core.quotePath=false", "apply", "--summary"]
    result = await run_git(
        [*args, *(["--reverse"] if reverse else []), "-"], cwd=repo.root, stdin=diff, check=False
    )
    modes: dict[str, str | None] = {}
    if result.exit_code != 0:
        return modes  # a broken diff: diff_problem says so
    for line in result.stdout.splitlines():
        words = line.split(" ")[1:]  # each summary line starts with a space
        if words[:2] == ["create", "mode"] and len(words) > 3:
            modes[" ".join(words[3:])] = words[2]
        elif words[:2] == ["delete", "mode"] and len(words) > 3:
            modes[" ".join(words[3:])] = None
        elif words[:2] == ["mode", "change"] and len(words) > 5:
            modes[" ".join(words[5:])] = words[4]
    return {path: mode for path, mode in modes.items() if not path.startswith('"')}


# -- commands ---------------------------------------------------------------------------------


async def command_problem(
    repo: Repository,
    base_sha: str,
    argv: Sequence[str],
    env_path: str,
    *,
    patch: Path | bytes | None = None,
    reverse: bool = False,
    uncommitted: bool = False,
) -> str | None:
    """None if `argv[0]` will be found, as exec resolves it in a worktree of `base_sha`.

    A relative path with a `/` is looked up in the base's tree (the test's current
    directory is the worktree's top level) and must be executable there: it is exec'd
    directly. An absolute path must be an executable on this machine. A bare name must be
    on `env_path`, the PATH the test gets. `patch` (a file or a diff) is the hypothesis'
    change: a script it adds (or makes executable) counts; `reverse` reads it backwards.
    `uncommitted` looks in the working tree instead of the base's tree (what a snapshot
    of uncommitted work records).
    """
    if not argv or not argv[0]:
        return "the command is empty"
    name = argv[0]
    if name.startswith("/"):
        problem = _host_problem(name)
        return f"command {name!r} {problem}" if problem else None
    if "/" not in name:
        if shutil.which(name, path=env_path) is not None:
            return None
        hint = _suggestion(name, env_path)
        if not hint and await _tracked(repo, base_sha, name, uncommitted=uncommitted):
            hint = f" (a bare name is looked up on PATH; to run the repository's {name}: ./{name})"
        return f"command {name!r} not found on PATH{hint}"
    path = posixpath.normpath(name)
    if path == ".." or path.startswith("../"):
        return (
            f"command {name!r} points outside the worktree (tests run in a worktree of the"
            " base, with its top level as their current directory)"
        )
    problem = await _file_problem(
        repo, base_sha, path, patch=patch, reverse=reverse, uncommitted=uncommitted
    )
    return f"command {name!r} {problem}" if problem else None


async def seed_script_problem(
    repo: Repository,
    base_sha: str,
    hypothesis_id: str,
    *,
    patch: Path | bytes | None = None,
    reverse: bool = False,
    uncommitted: bool = False,
) -> str | None:
    """None if the seed's script of a hypothesis without `test` is at the base, executable.

    `patch`, `reverse` and `uncommitted` as for `command_problem`.
    """
    script = seed_script_path(hypothesis_id)
    problem = await _file_problem(
        repo, base_sha, script, patch=patch, reverse=reverse, uncommitted=uncommitted
    )
    if problem is None:
        return None
    return (
        f"hypothesis {hypothesis_id!r} has no `test`, so it runs {script}, which {problem};"
        " or give the hypothesis a `test`"
    )


# -- one file, as the worktree will have it ----------------------------------------------------


async def _file_problem(
    repo: Repository,
    base: str,
    path: str,
    *,
    patch: Path | bytes | None,
    reverse: bool,
    uncommitted: bool,
) -> str | None:
    """Why `path` (relative, normalized) will not be an executable file in the worktree:
    a clause after its name ("is not in abc1234; ..."), or None."""
    if patch is not None:
        diff = patch if isinstance(patch, bytes) else _read_or_empty(patch)
        modes = await _patch_modes(repo, diff, reverse=reverse)
        if path in modes:
            return _patched_problem(path, modes[path])
    if uncommitted:
        return await _disk_problem(repo, path)
    return await _tree_problem(repo, base, path)


def _patched_problem(path: str, mode: str | None) -> str | None:
    """`_file_problem` for a path the hypothesis' patch creates, deletes or changes the mode of."""
    if mode is None:
        return "is deleted by the hypothesis' patch"
    if mode in (_EXECUTABLE, _LINK):  # a link the patch adds: its target is not known here
        return None
    return f"is not executable after the hypothesis' patch (mode {mode}){_run_hint(path)}"


async def _tree_problem(repo: Repository, base: str, path: str) -> str | None:
    """`_file_problem` for the base's tree."""
    short = _short(base)
    entry = await _resolve(repo, base, path)
    full = repo.root / path
    if entry.note:
        problem: str | None = entry.note
    elif entry.mode is None:
        problem = f"is not in {short} (tests run in a worktree of it)"
        if full.exists():
            problem += (
                "; it is in your working tree but not committed (worktrees are made from the"
                " base): commit it, or set `include_uncommitted: true`"
            )
    elif entry.mode == _HOST:
        host = _host_problem(entry.path)
        problem = f"is a link to {entry.path}, which {host}" if host else None
    elif entry.mode in _NOT_FILES:
        problem = f"is {_NOT_FILES[entry.mode]} in {short}, not a file"
    elif entry.mode != _EXECUTABLE:
        problem = f"is not executable in {short} (mode {entry.mode})"
        if full.is_file() and full.stat().st_mode & stat.S_IXUSR:
            problem += " (it is executable in your working tree, but that is not committed)"
        problem += _run_hint(path)
    else:
        problem = None
    return problem


def _run_hint(path: str) -> str:
    interpreter = _INTERPRETERS.get(posixpath.splitext(path)[1], "<interpreter>")
    return (
        f": it is exec'd directly, so it needs the executable bit (`git update-index"
        f" --chmod=+x {path}`, then commit), or run it through its interpreter"
        f" (`{interpreter} {path}`)"
    )


@dataclass(frozen=True)
class _Entry:
    """What a path names in a tree after following symlinks."""

    mode: str | None  # git's mode; None: not in the tree; _HOST: a link to an absolute path
    path: str
    note: str = ""  # why it cannot be followed (a loop, a link out of the repository)


async def _resolve(repo: Repository, base: str, path: str) -> _Entry:
    """The tree entry `path` names at `base`, through symlinks (also of directories on the
    way, `bin -> scripts`), as exec would follow them in a checkout of it."""
    for _ in range(_MAX_LINKS + 1):
        entry = await _ls_tree(repo, base, path)
        if entry is not None and entry[0] != _LINK:
            return _Entry(entry[0], path)
        link = await _first_link(repo, base, path, entry)
        if link is None:
            return _Entry(None, path)
        prefix, target, rest = link
        if target.startswith("/"):
            return _Entry(_HOST, posixpath.join(target, *rest))
        path = posixpath.normpath(posixpath.join(posixpath.dirname(prefix), target, *rest))
        if path == ".." or path.startswith("../"):
            return _Entry(None, path, f"is a link out of the repository ({prefix} -> {target})")
    return _Entry(None, path, f"is a link loop in {_short(base)}")


async def _first_link(
    repo: Repository, base: str, path: str, leaf: tuple[str, str] | None
) -> tuple[str, str, list[str]] | None:
    """The first symlink on the way to `path` (`leaf`: its own entry, known already) as
    (the link's path, its target, the parts after it), or None when the way is broken."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        found = leaf if depth == len(parts) else await _ls_tree(repo, base, prefix)
        if found is None or (found[0] not in (_LINK, _TREE)):
            return None  # not there, or a file where a directory should be
        if found[0] == _LINK:
            target = (await run_git(["cat-file", "blob", found[1]], cwd=repo.root)).stdout
            return prefix, target, parts[depth:]
    return None


async def _ls_tree(repo: Repository, base: str, path: str) -> tuple[str, str] | None:
    """(mode, object) of the entry at exactly `path` in `base`'s tree, or None."""
    result = await run_git(
        [*_LS_TREE, "--end-of-options", base, "--", path],
        cwd=repo.root,
    )
    for record in result.stdout.split("\0"):
        meta, _, name = record.partition("\t")
        if name == path and len(meta.split()) == 3:
            mode, _kind, obj = meta.split()
            return mode, obj
    return None


async def _tracked(repo: Repository, base: str, path: str, *, uncommitted: bool) -> bool:
    if uncommitted:
        return (repo.root / path).is_file()
    entry = await _ls_tree(repo, base, path)
    return entry is not None and entry[0] != _TREE


async def _disk_problem(repo: Repository, path: str) -> str | None:
    """`_file_problem` for a snapshot of the working tree: what is on disk and not ignored."""
    full = repo.root / path
    try:
        info = full.stat()
    except FileNotFoundError:
        return "is not in your working tree"
    except OSError as exc:
        return f"cannot be read in your working tree ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory in your working tree, not a file"
    ignored = await run_git(["check-ignore", "-q", "--", path], cwd=repo.root, check=False)
    if ignored.exit_code == 0:
        return (
            "is ignored by git, so the snapshot of uncommitted work leaves it out of the worktree"
        )
    if not info.st_mode & stat.S_IXUSR:
        return f"is not executable in your working tree{_run_hint(path)}"
    return None


def _host_problem(path: str) -> str | None:
    """Why an absolute path is not an executable file on this machine, or None."""
    target = Path(path)
    if not target.exists():
        return "not found on this machine"
    if target.is_dir():
        return "is a directory, not a file"
    if not os.access(target, os.X_OK):
        return "is not executable (it is exec'd directly)"
    return None


def _suggestion(name: str, env_path: str) -> str:
    """ " (did you mean 'pytest'?)" for a close executable on `env_path`, or ""."""
    names: set[str] = set()
    for directory in env_path.split(os.pathsep):
        if not directory:
            continue
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            names.update(entry.name for entry in entries)
    for candidate in difflib.get_close_matches(name, sorted(names), n=5, cutoff=0.75):
        if shutil.which(candidate, path=env_path) is not None:
            return f" (did you mean {candidate!r}?)"
    return ""


def _read_or_empty(patch: Path) -> bytes:
    try:
        return patch.read_bytes()
    except OSError:
        return b""  # patch_problem reports the unreadable patch


def _short(sha: str) -> str:
    return sha[:7]
