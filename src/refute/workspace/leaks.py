"""What a command would run and which paths it names, read from its argv and environment
before anything runs: the leaks of the user's checkout into a test, checked in one call.

`redirect_command` checks one test (or setup) command: `path_leaks` (a command word, or a
PATH/PYTHONPATH-like environment entry, inside the checkout) are refused first; then
`interpreter_of` finds the Python it runs (through `sh -c`, `env`, pyenv's shims and
console scripts' shebangs) and `refute.workspace.pythonenv` the redirect of that
interpreter's editable installs of the checkout, refused when the command runs `python -I`
or `-E`, which ignore it. `setup_writes_outside` finds a setup that would install into the
user's environment. Only files are read, no process is started: shell scripts are split
with `shlex` (`shell_commands`), never run.

A venv inside the checkout (`<checkout>/.venv/bin/python`) is not a leak by itself: git
ignores it, so it is environment like a venv anywhere else, the same for every worktree and
never part of what a hypothesis patches. What can leak through it is an editable install of
the checkout, judged like any venv's by `editable_installs` and `redirection`; so
`path_leaks` lets paths inside a venv (a directory with pyvenv.cfg) pass.

Not seen, so neither redirected nor refused: PYTHONPATH, `cd` or sys.path set inside the
test (tox, a Makefile, the commands of a shell script after the first that runs Python, a
script file handed to a shell); shims other than pyenv's (asdf's are shell scripts, not
followed).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from refute.workspace.pythonenv import (
    Editable,
    Redirect,
    editable_installs,
    redirection,
    site_dirs,
)

__all__ = [
    "interpreter_of",
    "path_leaks",
    "redirect_command",
    "setup_writes_outside",
    "shell_commands",
]

_PYTHON = re.compile(r"python(?:\d+(?:\.\d+)?)?")
_PIP = re.compile(r"pip(?:\d+(?:\.\d+)?)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=.*", re.DOTALL)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_WRAPPERS = frozenset({"exec", "command", "nice", "time", "nohup"})  # they run the next word
_SHELL_STEPS = frozenset({"cd", "pushd", "export", "set", "source", ".", "umask", "ulimit"})
_OPERATORS = frozenset(";&|()\n")
# The shell's bookkeeping (reset by shells), and pyenv's shims, which set PYENV_DIR to the
# directory they were started from: none of them says where a test's code comes from.
_NOT_PATHS = frozenset({"PWD", "OLDPWD", "_", "PYENV_DIR"})
_VENV_FIX = (
    "create a venv in the worktree instead (`python -m venv .venv && .venv/bin/pip install "
    "-e .` with shell: true, and run the tests with .venv/bin/python)"
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script, split at `;`, `&&`, `||`, `|`, `&`, newlines;
    [] when it does not parse (unbalanced quotes). `$(...)` and functions are not followed."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars="".join(sorted(_OPERATORS)))
    lexer.whitespace, lexer.whitespace_split, lexer.commenters = " \t\r", True, ""
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token and set(token) <= _OPERATORS:
                commands.append([])
            else:
                commands[-1].append(token)
    except ValueError:
        return []
    return [command for command in commands if command]


def _command_words(words: Sequence[str]) -> list[str]:
    """`words` without leading `VAR=value`s, `exec`-like wrappers and `env [options]`."""
    rest, index = list(words), 0
    while index < len(rest):
        word = rest[index]
        if _ASSIGNMENT.fullmatch(word) or word in _WRAPPERS:
            index += 1
        elif Path(word).name == "env":
            index += 1
            while index < len(rest) and rest[index].startswith("-"):
                index += 2 if rest[index] in {"-u", "--unset", "-C", "--chdir"} else 1
        else:
            break
    return rest[index:]


def _commands(argv: Sequence[str]) -> list[list[str]]:
    """The simple commands `argv` runs: itself, or those of its `sh [options] -c SCRIPT`."""
    words = _command_words(argv)
    if not words or Path(words[0]).name not in _SHELLS:
        return [words] if words else []
    flags = [i for i, w in enumerate(words) if re.fullmatch(r"-[a-z]*c[a-z]*", w)]
    if not flags or flags[0] + 1 >= len(words):
        return []  # `sh script.sh`: the script's file is not read
    return [_command_words(c) for c in shell_commands(words[flags[0] + 1])]


def _which(name: str, env: Mapping[str, str], cwd: Path) -> Path | None:
    if os.sep in name:
        return cwd / name if _executable(cwd / name) else None
    for entry in env.get("PATH", os.defpath).split(os.pathsep):
        if _executable(cwd / entry / name):  # an empty or relative entry is relative to cwd
            return cwd / entry / name
    return None


def interpreter_of(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Path | None:
    """The Python interpreter `argv` would run (of a shell script: its first command that
    runs Python), or None. The path is as found, symlinks kept: a venv's `bin/python` is a
    symlink, and the venv is found beside it, not beside the interpreter it points to."""
    for words in _commands(argv):
        path = None if words[0] in _SHELL_STEPS else _which(words[0], env, Path(cwd))
        path = (_pyenv(path, env, Path(cwd)) or path) if path is not None else None
        if path is not None and _PYTHON.fullmatch(path.name):
            return path
        if path is not None and (named := _shebang(path, env, Path(cwd))) is not None:
            return named
    return None


def _words_of(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [w for line in lines if not line.startswith("#") for w in line.split()]


def _pyenv(shim: Path, env: Mapping[str, str], cwd: Path) -> Path | None:
    """What a pyenv shim (a shell script) runs, chosen as pyenv chooses: PYENV_VERSION, else
    the nearest .python-version, else the global `version` file; "system" is the next one
    on PATH."""
    root = Path(env.get("PYENV_ROOT") or shim.parent.parent)
    if shim.parent != root / "shims" or not (root / "versions").is_dir():
        return None
    chosen = env.get("PYENV_VERSION", "").replace(":", " ").split()
    for directory in [] if chosen else [cwd, *cwd.parents]:
        if chosen := _words_of(directory / ".python-version"):
            break
    for version in chosen or _words_of(root / "version") or ["system"]:
        if version == "system":
            rest = [e for e in env.get("PATH", "").split(os.pathsep) if Path(e) != shim.parent]
            return _which(shim.name, {"PATH": os.pathsep.join(rest)}, cwd)
        if _executable(root / "versions" / version / "bin" / shim.name):
            return root / "versions" / version / "bin" / shim.name
    return None


def _shebang(script: Path, env: Mapping[str, str], cwd: Path) -> Path | None:
    """The interpreter a console script's `#!` names: `env python3` is looked up on PATH,
    and pip's `#!/bin/sh` + `'''exec' /long/path/python` (for overlong paths) followed."""
    try:
        with script.open("rb") as handle:
            lines = handle.read(1024).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    words = lines[0][2:].split() if lines and lines[0].startswith("#!") else []
    named: Path | None = None
    if words and Path(words[0]).name == "env":
        rest = _command_words(words)
        named = _which(rest[0], env, cwd) if rest else None
    elif words and Path(words[0]).name in _SHELLS and lines[1:2]:
        _, exec_trick, after = lines[1].partition("'''exec' ")
        try:
            found = shlex.split(after) if exec_trick else []
        except ValueError:
            found = []
        named = Path(found[0]) if found else None
    elif words:
        named = Path(words[0])
    return named if named is not None and _PYTHON.fullmatch(named.name) else None


def _in_venv(path: Path, top: Path) -> bool:
    parents = [p for p in [path, *path.parents] if p != top and p.is_relative_to(top)]
    return any((p / "pyvenv.cfg").is_file() for p in parents)


def path_leaks(
    argv: Sequence[str], env: Mapping[str, str], checkout: Path, worktree: Path | None = None
) -> list[str]:
    """One message per command word or path-like environment entry (a value with os.sep,
    split on os.pathsep) inside the user's checkout: the test would use the checkout's
    files. Relative paths (the worktree's), paths in `worktree` or in a venv are fine."""
    top = _real(checkout)
    own = _real(worktree) if worktree is not None else None

    def leak(value: str) -> Path | None:
        path = _real(value) if value and Path(value).is_absolute() else None
        if path is None or not path.is_relative_to(top) or (own and path.is_relative_to(own)):
            return None
        return None if _in_venv(path, top) else path.relative_to(top)

    why = f"is inside your checkout {top}: the test would use its files, not the worktree's"
    messages = []
    words = [w for command in _commands(argv) for w in command] or list(argv)
    for index, word in enumerate(words):
        rel = leak(word) or leak(word.partition("=")[2])
        if rel is not None:
            what = "command" if index == 0 else "argument"
            messages.append(f"{what} {word} {why}; give it relative to the worktree ({rel})")
    for name in sorted(env):
        if name in _NOT_PATHS or os.sep not in env[name]:
            continue
        messages.extend(
            f"{name} entry {piece} {why}; drop it or give it relative to the worktree ({rel})"
            for piece in env[name].split(os.pathsep)
            if (rel := leak(piece)) is not None
        )
    return messages


def _option(args: Sequence[str], *names: str) -> str | None:
    """The value of the first of `names` in `args` (`--name value`, `--name=value`, `-n v`)."""
    for index, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if eq and name.startswith("--") and name in names:
            return value
        if arg in names and index + 1 < len(args):
            return args[index + 1]
    return None


def _active_env(env: Mapping[str, str]) -> Path | None:
    active = env.get("VIRTUAL_ENV") or env.get("CONDA_PREFIX")
    return Path(active) if active else None


def _located(word: str, env: Mapping[str, str], activated: str | None) -> Path | str:
    """Where the executable `word` is: as written, in a venv the script activated, on PATH."""
    if os.sep in word:
        return Path(word)
    if activated is not None:
        return Path(activated) / word
    found = [Path(e) / word for e in env.get("PATH", os.defpath).split(os.pathsep) if e]
    return next((p for p in found if _executable(p)), f"the environment of the {word} on PATH")


def _installs_into(  # noqa: PLR0911 -- one return per installer reads best
    words: Sequence[str], env: Mapping[str, str], activated: str | None
) -> Path | str | None:
    """Where one command would install: a path, a description of a place that is always
    outside the worktree, or None when it installs nothing (or only into the worktree)."""
    tool, args = Path(words[0]).name, list(words[1:])
    if _PYTHON.fullmatch(tool) and args[:2] == ["-m", "pip"]:
        tool, args = "pip", args[2:]
    if _PIP.fullmatch(tool) and {"install", "uninstall"} & set(args):
        if "--user" in args:
            return "your user site-packages (--user)"
        explicit = _option(args, "--target", "-t", "--prefix", "--root", "--python")
        return Path(explicit) if explicit is not None else _located(words[0], env, activated)
    if _PYTHON.fullmatch(tool) and args[:1] and Path(args[0]).name == "setup.py":
        return _located(words[0], env, activated) if {"install", "develop"} & set(args) else None
    if tool == "uv" and args[:1] == ["pip"] and {"install", "sync", "uninstall"} & set(args[1:2]):
        if "--system" in args:
            return "the system Python (--system)"
        # Without an active venv uv uses .venv in the worktree (or above), never the system's.
        explicit = _option(args, "--target", "--prefix", "--python", "-p")
        return Path(explicit) if explicit is not None else _active_env(env)
    if tool in {"poetry", "pdm", "pipenv"} and {"install", "sync", "add", "remove"} & {*args[:1]}:
        # Without an active venv these make one of their own, not the user's.
        pdm_python = env.get("PDM_PYTHON") if tool == "pdm" else None
        return _active_env(env) or (Path(pdm_python) if pdm_python else None)
    return None


def setup_writes_outside(
    setup_argv: Sequence[str],
    env: Mapping[str, str],
    worktree_relative_ok: bool = True,
    *,
    worktree: Path | None = None,
) -> str | None:
    """A one-line refusal when the setup command would install into an environment outside
    its worktree (the user's), else None. Relative paths are the worktree's (setup runs
    there), fine while `worktree_relative_ok`; absolute ones only inside `worktree`."""

    def _in_worktree(path: Path) -> bool:
        if not path.is_absolute():
            return worktree_relative_ok
        return worktree is not None and _real(path).is_relative_to(_real(worktree))

    activated: str | None = None
    for words in _commands(setup_argv):
        if words[0] in {"source", "."} and words[1:] and words[1].endswith("/activate"):
            activated = str(Path(words[1]).parent)
            continue
        where = _installs_into(words, env, activated)
        if where is None or (isinstance(where, Path) and _in_worktree(where)):
            continue
        return (
            f"setup `{shlex.join(words)}` would install into {where}, outside its worktree, "
            f"modifying your environment: {_VENV_FIX}, or drop the setup: refute redirects "
            "your editable install to each worktree"
        )
    return None


def _ignores_pythonpath(words: Sequence[str]) -> bool:
    """`python -I` and `python -E` ignore PYTHONPATH: no redirect can work for them."""
    index = 1 if words and _PYTHON.fullmatch(Path(words[0]).name) else len(words)
    while index < len(words) and re.fullmatch(r"-[A-Za-z]+", words[index]):
        flags = words[index][1:]
        if flags[0] in "WX":  # -W and -X take a value
            index += 2 if len(flags) == 1 else 1
        elif "I" in flags or "E" in flags:
            return True
        elif "m" in flags or "c" in flags:
            return False
        else:
            index += 1
    return False


def redirect_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    checkout: Path,
    worktree: Path,
    cwd: Path | None = None,
    memo: dict[object, list[Editable]] | None = None,
) -> Redirect:
    """All of the above for one test (or setup) command run in `worktree`: the redirect of
    its interpreter's editable installs of `checkout`, or one refusal (path leaks first).

    `memo` (one dict for the commands of one plan) keeps each interpreter's editable
    installs: reading them takes a fifth of a second, and a plan may have 10,000 tests."""
    leaks = path_leaks(argv, env, checkout, worktree)
    interpreter = None if leaks else interpreter_of(argv, env, cwd or worktree)
    if leaks or interpreter is None:
        return Redirect(refusal="; ".join(leaks) if leaks else None)
    key = (str(interpreter), tuple(sorted(env.items())), str(checkout))
    found = memo.get(key) if memo is not None else None
    if found is None:
        found = editable_installs(site_dirs(interpreter, env), checkout)
        if memo is not None:
            memo[key] = found
    redirect = redirection(found, checkout, worktree)
    if redirect.pythonpath and any(_ignores_pythonpath(c) for c in _commands(argv)):
        return Redirect(
            refusal=f"`{shlex.join(argv)}` runs python with -I or -E, which ignore the "
            "PYTHONPATH that redirects the editable install of your checkout: drop the flag"
        )
    return redirect
