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
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refute.errors import GitError

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


@functools.cache
def local_env_vars() -> frozenset[str]:
    """The variables git treats as repository-local (asked once per process)."""
    try:
        out = subprocess.run(
            [GIT, "rev-parse", "--local-env-vars"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=_strip(os.environ, frozenset(_FALLBACK_LOCAL_VARS)),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset(_FALLBACK_LOCAL_VARS)
    names = frozenset(out.split())
    return names | frozenset(_FALLBACK_LOCAL_VARS)


def _strip(environ: Mapping[str, str], names: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in names}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git child gets (see the module docstring)."""
    env = _strip(os.environ, local_env_vars())
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
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError(list(args), 127, str(exc), f"cannot run git: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        _kill(proc)
        await _reap(proc)
        raise GitError(
            list(args), 124, "", f"git {' '.join(args)}: timed out after {timeout:g}s"
        ) from None
    except asyncio.CancelledError:
        _kill(proc)
        await asyncio.shield(_reap(proc))
        raise
    result = GitResult(
        list(args),
        proc.returncode if proc.returncode is not None else -1,
        out.decode("utf-8", errors="replace"),
        err.decode("utf-8", errors="replace"),
    )
    if check and result.exit_code != 0:
        raise GitError(list(args), result.exit_code, result.stderr)
    return result


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(Exception):
        await proc.wait()


async def git_out(args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """stdout of a successful git command, stripped of its trailing newline."""
    return (await run_git(args, cwd=cwd, env=env)).stdout.rstrip("\n")
