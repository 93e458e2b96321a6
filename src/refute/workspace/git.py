"""A small async git layer: argv only, `git -C <dir>`, a clean environment, typed errors.

What must stay true:

* Every git child gets an environment without the variables `git rev-parse
  --local-env-vars` lists (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, ...), so a `GIT_DIR`
  inherited from the user's shell (or a hook) can never redirect a `reset --hard` into
  the user's repository. Callers that need one of them (the snapshot's temporary
  index) pass it explicitly in `env`.
* Hooks never run (`-c core.hooksPath=/dev/null`), nor do terminal prompts.
* Callers put `--end-of-options` before positionals that come from users (refs, paths).
* Each git runs in its own session: a Ctrl-C at the terminal reaches refute, which then
  finishes or stops its git commands itself instead of having them die mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refute.errors import GitError

__all__ = [
    "DEFAULT_TIMEOUT",
    "GIT",
    "GitResult",
    "git_env",
    "git_out",
    "local_env_vars",
    "run_git",
    "without_local_vars",
]

GIT = "git"
_FALLBACK_LOCAL_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
)
#: Default limit for one git command; worktree creation of a big repo stays well below.
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class GitResult:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""  # stdout as git wrote it (diffs of non-UTF-8 files)


_local_vars: frozenset[str] | None = None


async def local_env_vars() -> frozenset[str]:
    """The variables git treats as repository-local (asked once per process)."""
    global _local_vars  # noqa: PLW0603 - one answer per process (per git on PATH)
    if _local_vars is None:
        fallback = frozenset(_FALLBACK_LOCAL_VARS)
        try:
            result = await _exec(
                [GIT, "rev-parse", "--local-env-vars"],
                cwd=Path("/"),
                env=_strip(os.environ, fallback),
                stdin=None,
                timeout=30,
            )
            names = frozenset(result.stdout.split()) if result.exit_code == 0 else frozenset()
        except GitError:
            names = frozenset()
        _local_vars = names | fallback
    return _local_vars


def _strip(environ: Mapping[str, str], names: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in names}


async def without_local_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without git's repository-local variables (GIT_DIR, GIT_WORK_TREE, ...)."""
    return _strip(environ, await local_env_vars())


async def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git child gets (see the module docstring)."""
    env = await without_local_vars(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",  # read-only commands must not take the user's index.lock
        LC_ALL="C",  # stable messages for error matching
        GIT_ASKPASS="/bin/false",
    )
    if extra:
        env.update(extra)
    return env


async def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> GitResult:
    """Run `git -C <cwd> -c core.hooksPath=/dev/null <args>`; raise GitError on failure."""
    argv = [GIT, "-C", str(cwd), "-c", "core.hooksPath=/dev/null", *args]
    result = await _exec(
        argv, cwd=None, env=await git_env(env), stdin=stdin, timeout=timeout, shown=list(args)
    )
    if check and result.exit_code != 0:
        raise GitError(list(args), result.exit_code, result.stderr)
    return result


async def _exec(
    argv: list[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    stdin: bytes | None,
    timeout: float,
    shown: list[str] | None = None,
) -> GitResult:
    """The one place a git process is started: own session, killed and reaped on timeout
    or cancellation. `shown` is how errors name the command (default: argv without git)."""
    shown = shown if shown is not None else argv[1:]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError(shown, 127, str(exc), f"cannot run git: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        _kill(proc)
        await _reap(proc)
        raise GitError(
            shown, 124, "", f"git {' '.join(shown)}: timed out after {timeout:g}s"
        ) from None
    except asyncio.CancelledError:
        _kill(proc)
        await asyncio.shield(_reap(proc))
        raise
    return GitResult(
        shown,
        proc.returncode if proc.returncode is not None else -1,
        out.decode("utf-8", errors="replace"),
        err.decode("utf-8", errors="replace"),
        raw_stdout=out,
    )


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(Exception):
        await proc.wait()


async def git_out(args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """stdout of a successful git command, stripped of its trailing newline."""
    return (await run_git(args, cwd=cwd, env=env)).stdout.rstrip("\n")
