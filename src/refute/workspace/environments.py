"""Which code a command would import, read from files before anything runs.

Why: most Python developers install their checkout editable into a venv and run the tests
with that venv's python. Run in a worktree, such a test still imports the package from the
USER'S CHECKOUT: every hypothesis' patch has no effect and every verdict is silently wrong.
`interpreter_of` -> `site_dirs` -> `editable_installs` find that; `redirection` makes each
worktree import its own code with the user's environment unchanged (a PYTHONPATH of worktree
directories), or refuses in one line saying what leaks and how to fix it. `path_leaks` finds
plainer leaks (a word or a PATH/PYTHONPATH entry inside the checkout), `setup_writes_outside`
a setup that would install into the user's environment; `redirect_command` chains them.

Only files are read: no process is started (the workspace starts none but git) and no
finder is imported or run (they are parsed with `ast`). Why a PYTHONPATH wins: sys.path is
[script dir, PYTHONPATH, stdlib, site-packages, .pth path entries], and sys.meta_path asks
PathFinder (which walks sys.path) before the finders setuptools and editables *append* to
it. Only easy-install.pth's `sys.__plen` trick moves entries ahead of PYTHONPATH: refused.

A venv inside the checkout (`<checkout>/.venv/bin/python`) is not a leak by itself: git
ignores it, so it is environment like a venv anywhere else, the same for every worktree and
never part of what a hypothesis patches. What can leak through it is an editable install of
the checkout, judged like any venv's by `editable_installs` and `redirection`; so
`path_leaks` lets paths inside a venv (a directory with pyvenv.cfg) pass.

Not seen, so neither redirected nor refused: code that edits sys.path or sys.meta_path at
startup by itself (sitecustomize, usercustomize, .pth import lines other than setuptools'
and editables' finders, a conftest or plugin inserting the checkout); PYTHONPATH, `cd` or
sys.path set inside the test (tox, a Makefile, the commands of a shell script after the
first that runs Python); shims other than pyenv's (asdf's are shell scripts, not followed);
non-standard site layouts (conda, PyPy, `site.addsitedir`); a site-packages package whose
`__path__` points into the checkout. Once redirected, a top-level module the worktree lacks
(deleted by the patch, untracked) is still found in the checkout further down sys.path,
setuptools' finder serves a submodule the worktree lacks from the checkout, and metadata
(versions, entry points) still comes from the install.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = [
    "Editable",
    "EditableKind",
    "Redirect",
    "editable_installs",
    "interpreter_of",
    "path_leaks",
    "redirect_command",
    "redirection",
    "setup_writes_outside",
    "shell_commands",
    "site_dirs",
]

_FIX = (
    "reinstall it with a modern pip (`pip install -e .`), or give the plan a per-worktree venv "
    "in setup (`python -m venv .venv && .venv/bin/pip install -e .`, shell: true) and run the "
    "tests with .venv/bin/python"
)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, top: Path) -> bool:
    return path.is_relative_to(top)


# -- environments: site directories, editable installs, the redirect -------------------------


class EditableKind(StrEnum):
    """How an editable install makes the checkout's code importable."""

    PTH_PATH = "pth-path"  # a path line in a .pth: setuptools lenient, hatchling, flit
    LINK_TREE = "setuptools-links"  # setuptools strict: a .pth path to a tree of symlinks
    SETUPTOOLS_FINDER = "setuptools-finder"  # __editable___<name>_finder.py, MAPPING
    EDITABLES_REDIRECT = "editables-redirect"  # hatchling dev-mode-exact: map_module(...)
    EASY_INSTALL = "easy-install"  # an easy-install.pth entry (old `setup.py develop`)
    EGG_LINK = "egg-link"  # a <name>.egg-link that no easy-install.pth entry goes with
    SYMLINK = "symlink"  # site-packages/<pkg> -> the checkout (`flit install --symlink`)
    DIRECT_URL = "direct-url"  # only direct_url.json says it is editable: mechanism unseen


@dataclass(frozen=True)
class Editable:
    """One editable install of code inside the checkout: `carrier` is the file that makes it
    importable, `target` the path in the checkout it points at, `path_entry` the directory
    (relative to the checkout) that would have to be on sys.path instead, None when none
    can stand in for it; `front`: its entries go to the front of sys.path (`sys.__plen`)."""

    distribution: str | None
    kind: EditableKind
    carrier: Path
    target: Path
    path_entry: Path | None
    module: str | None = None
    front: bool = False


@dataclass(frozen=True)
class Redirect:
    """How a worktree's command imports the worktree's code: a PYTHONPATH that goes first,
    with why it works for each kind seen; or a one-line `refusal`."""

    pythonpath: tuple[Path, ...] = ()
    reasons: tuple[str, ...] = ()
    refusal: str | None = None

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with the worktree's directories leading PYTHONPATH (existing entries follow)."""
        out = dict(env)
        if self.pythonpath:
            kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            out["PYTHONPATH"] = os.pathsep.join([*map(str, self.pythonpath), *kept])
        return out


_PATH_FIRST = "appended to sys.path after site-packages, and PYTHONPATH comes first"
_META_LAST = "appended to sys.meta_path, after PathFinder, which finds it on PYTHONPATH first"
_WHY = {
    EditableKind.PTH_PATH: f"a .pth path entry is {_PATH_FIRST}",
    EditableKind.LINK_TREE: f"the link tree is a .pth path entry, {_PATH_FIRST}",
    EditableKind.SETUPTOOLS_FINDER: f"setuptools' finder is {_META_LAST}",
    EditableKind.EDITABLES_REDIRECT: f"editables' RedirectingFinder is {_META_LAST}",
    EditableKind.EASY_INSTALL: f"an easy-install.pth entry without sys.__plen is {_PATH_FIRST}",
    EditableKind.EGG_LINK: "an .egg-link is not on sys.path, it only points pkg_resources there",
    EditableKind.SYMLINK: "the link is in site-packages, which comes after PYTHONPATH",
}


def _venv_config(interpreter: Path) -> tuple[Path, dict[str, str]] | None:
    """The venv, where CPython finds `pyvenv.cfg`: beside the executable or one up."""
    for root in (interpreter.parent, interpreter.parent.parent):
        try:
            text = (root / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pairs = (line.partition("=") for line in text.splitlines())
        return root, {key.strip().lower(): value.strip() for key, eq, value in pairs if eq}
    return None


def _prefix(directory: Path) -> Path | None:
    """The installation prefix at or above `directory`, by CPython's landmark `os.py`."""
    real = _real(directory)
    return next((p for p in [real, *real.parents][:4] if any(p.glob("lib/python3*/os.py"))), None)


def _versions(interpreter: Path, config: Mapping[str, str], prefix: Path | None) -> list[str]:
    """X.Y: from pyvenv.cfg (`version`, uv's `version_info`), else the interpreter's name,
    else every lib/pythonX.Y under the prefix."""
    for text in (config.get("version", ""), config.get("version_info", "")):
        if found := re.match(r"(\d+\.\d+)", text):
            return [found[1]]
    for name in (interpreter.name, _real(interpreter).name):
        if found := re.fullmatch(r"python(\d+\.\d+)", name):
            return [found[1]]
    lib = prefix / "lib" if prefix else None
    return sorted(p.name.removeprefix("python") for p in lib.glob("python3.*")) if lib else []


def site_dirs(interpreter: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """The existing site directories of `interpreter` in sys.path order, found statically:
    the user site (unless a venv hides it, or PYTHONNOUSERSITE; PYTHONUSERBASE honoured),
    a venv's site-packages, the base interpreter's (also Debian's dist-packages) when the
    venv includes them. `env` is the command's (HOME, PYTHONUSERBASE, PYTHONNOUSERSITE)."""
    env = {} if env is None else env
    interpreter = Path(interpreter).absolute()
    venv = _venv_config(interpreter)
    found: list[Path] = []
    if venv is not None:
        root, config = venv
        versions = _versions(interpreter, config, root)
        found = [root / "lib" / f"python{v}" / "site-packages" for v in versions]
        if config.get("include-system-site-packages", "").lower() != "true":
            return _existing(found)
        base = _prefix(Path(config["home"])) if config.get("home") else None
    else:
        base = _prefix(_real(interpreter).parent)
        versions = _versions(interpreter, {}, base)
    if not env.get("PYTHONNOUSERSITE"):
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        user = Path(env["PYTHONUSERBASE"]) if env.get("PYTHONUSERBASE") else home / ".local"
        found = [*(user / "lib" / f"python{v}" / "site-packages" for v in versions), *found]
    return _existing([*found, *(_prefix_sites(base, versions) if base else [])])


def _prefix_sites(prefix: Path, versions: Sequence[str]) -> list[Path]:
    """A prefix's site directories, also Debian's dist-packages (/usr/local, python3)."""
    libs = [prefix / lib / f"python{v}" for v in versions for lib in ("lib", "lib64")]
    sites = [lib / name for lib in libs for name in ("site-packages", "dist-packages")]
    local = [prefix / "local" / "lib" / f"python{v}" / "dist-packages" for v in versions]
    return [*sites, *local, prefix / "lib" / "python3" / "dist-packages"]


def _existing(paths: Iterable[Path]) -> list[Path]:
    real: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            real.setdefault(_real(path), path)
    return list(real.values())


def _dist_name(dist_info: Path) -> str:
    try:
        text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    headers = text.partition("\n\n")[0].splitlines()
    named = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("name:")]
    return named[0] if named else dist_info.name.partition("-")[0]


def _owners(site: Path) -> dict[str, str]:
    """Top-level file name in `site` -> the distribution whose RECORD lists it."""
    owners: dict[str, str] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        try:
            rows = list(csv.reader(record.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        name = _dist_name(record.parent)
        owners.update((row[0], name) for row in rows if row and "/" not in row[0])
    return owners


def _path_entry(module: str, target: Path, top: Path) -> Path | None:
    """The directory in the checkout from which `module` imports as `target`, if any."""
    parts = tuple(module.split("."))
    path = target.parent if target.name == "__init__.py" else target
    stem = path.name.split(".")[0]  # mod.py, mod.cpython-311-x86_64-linux-gnu.so
    path = path.with_name(stem) if stem else path
    root = Path(*path.parts[: -len(parts)])
    ok = path.parts[-len(parts) :] == parts and _inside(root, top)
    return root.relative_to(top) if ok else None


def editable_installs(site_dirs: Iterable[Path], checkout: Path) -> list[Editable]:
    """Every editable install in `site_dirs` whose code lives inside `checkout`."""
    top = _real(checkout)
    found: list[Editable] = []
    for site in site_dirs:
        if not site.is_dir():
            continue
        owners = _owners(site)
        here = [e for pth in sorted(site.glob("*.pth")) for e in _from_pth(pth, top, owners)]
        here = _with_egg_links(site, top, here) + _symlinks(site, top, owners)
        found += here + _unexplained(site, top, here)
    return list(dict.fromkeys(found))  # setuptools lists a namespace in MAPPING and NAMESPACES


def _from_pth(pth: Path, top: Path, owners: Mapping[str, str]) -> list[Editable]:
    """What one .pth adds, read as `site.addpackage` reads it: path lines are joined to the
    site directory and added when they exist; `import` lines are parsed, never run."""
    try:
        text = pth.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    kind = EditableKind.EASY_INSTALL if pth.name == "easy-install.pth" else EditableKind.PTH_PATH
    dist, front, out = owners.get(pth.name), "sys.__plen" in text, []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            out += _from_import_line(line, pth, top, dist)
            continue
        entry = _real(pth.parent / raw.rstrip())
        if not entry.exists() or not _inside(entry, top):
            continue
        if entry.name.startswith("__editable__."):
            out += _link_tree(entry, pth, top, dist)
        else:
            out.append(Editable(dist, kind, pth, entry, entry.relative_to(top), front=front))
    return out


def _from_import_line(line: str, pth: Path, top: Path, dist: str | None) -> list[Editable]:
    """An import line's own map_module calls, and those of the modules it imports."""
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return []
    out = _from_code(tree, pth, top, dist)
    for node in ast.walk(tree):
        for alias in node.names if isinstance(node, ast.Import) else []:
            module = pth.parent / f"{alias.name}.py"
            try:
                code = ast.parse(module.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                continue
            out += _from_code(code, module, top, dist)
    return out


def _from_code(tree: ast.AST, carrier: Path, top: Path, dist: str | None) -> list[Editable]:
    """setuptools' `MAPPING`/`NAMESPACES` literals and editables' `map_module(name, path)`."""
    pairs: list[tuple[EditableKind, object, object]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if {"MAPPING", "NAMESPACES"} & {t.id for t in targets if isinstance(t, ast.Name)}:
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for module, paths in value.items() if isinstance(value, dict) else []:
                    listed = paths if isinstance(paths, list) else [paths]
                    pairs += [(EditableKind.SETUPTOOLS_FINDER, module, path) for path in listed]
        elif isinstance(node, ast.Call) and len(node.args) == 2:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            if name == "map_module":
                pairs.append((EditableKind.EDITABLES_REDIRECT, args[0], args[1]))
    out = []
    for kind, module, path in pairs:
        target = _real(path) if isinstance(path, str) and isinstance(module, str) else None
        if target is not None and isinstance(module, str) and _inside(target, top):
            entry = _path_entry(module, target, top)
            out.append(Editable(dist, kind, carrier, target, entry, module))
    return out


def _link_tree(tree: Path, pth: Path, top: Path, dist: str | None) -> list[Editable]:
    """setuptools strict mode: real directories of symlinks into the checkout, in its
    `build/`. Each top-level module is traced through one of its links; hard links (made
    where symlinks fail) cannot be traced, so no directory is known to stand in for them."""
    out = []
    for child in sorted(tree.iterdir()):
        if child.name == "__pycache__" or child.name.endswith(("-info", ".pth")):
            continue
        walked = (Path(d) / n for d, dirs, files in os.walk(child) for n in dirs + files)
        link = next((p for p in [child, *walked] if p.is_symlink()), None)
        entry, where = None, child
        if link is not None:  # <tree>/pkg/mod.py -> <checkout>/src/pkg/mod.py: src
            where, inner = _real(link), link.relative_to(tree).parts
            root = Path(*where.parts[: -len(inner)])
            if where.parts[-len(inner) :] == inner and _inside(root, top):
                entry, where = root.relative_to(top), root / child.name
        module = child.name.split(".")[0]
        out.append(Editable(dist, EditableKind.LINK_TREE, pth, where, entry, module))
    return out


def _with_egg_links(site: Path, top: Path, found: list[Editable]) -> list[Editable]:
    """`<name>.egg-link` (old `setup.py develop`): its first line is the directory that
    easy-install.pth puts on sys.path; it names the distribution of that entry."""
    out = list(found)
    for link in sorted(site.glob("*.egg-link")):
        try:
            target = _real(site / link.read_text(encoding="utf-8").splitlines()[0].strip())
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        same = [i for i, e in enumerate(out) if e.kind is EditableKind.EASY_INSTALL]
        same = [i for i in same if out[i].target == target]
        for index in same:
            out[index] = replace(out[index], distribution=out[index].distribution or link.stem)
        if not same and _inside(target, top):
            entry = target.relative_to(top)
            out.append(Editable(link.stem, EditableKind.EGG_LINK, link, target, entry))
    return out


def _symlinks(site: Path, top: Path, owners: Mapping[str, str]) -> list[Editable]:
    """Entries of site-packages that are links into the checkout (`flit install --symlink`)."""
    out = []
    for entry in sorted(site.iterdir()):
        if not entry.is_symlink() or entry.name.endswith(("-info", ".pth", ".egg-link")):
            continue
        target, module = _real(entry), entry.name.split(".")[0]
        if _inside(target, top):
            where = _path_entry(module, target, top)
            kind = EditableKind.SYMLINK
            out.append(Editable(owners.get(entry.name), kind, entry, target, where, module))
    return out


def _unexplained(site: Path, top: Path, found: list[Editable]) -> list[Editable]:
    """The catch-all: a distribution whose direct_url.json says "editable, from inside the
    checkout" but whose mechanism none of the above saw (meson-python's loader, say). An
    install seen above explains it by its name, or (unnamed) by pointing into the project."""
    explained = {re.sub(r"[-_.]+", "-", e.distribution).lower() for e in found if e.distribution}
    unnamed = [e.target for e in found if e.distribution is None]
    out = []
    for direct in sorted(site.glob("*.dist-info/direct_url.json")):
        try:
            info = json.loads(direct.read_text(encoding="utf-8"))
            url = urlparse(info["url"]) if info["dir_info"]["editable"] is True else None
        except (OSError, ValueError, KeyError, TypeError):
            continue
        project = _real(unquote(url.path)) if url is not None and url.scheme == "file" else None
        name = _dist_name(direct.parent)
        known = re.sub(r"[-_.]+", "-", name).lower() in explained or any(
            project is not None and target.is_relative_to(project) for target in unnamed
        )
        if project is not None and _inside(project, top) and not known:
            out.append(Editable(name, EditableKind.DIRECT_URL, direct, project, None))
    return out


def redirection(editables: Iterable[Editable], checkout: Path, worktree: Path) -> Redirect:
    """The PYTHONPATH that makes a command in `worktree` import the worktree's code instead
    of the checkout's, or a refusal. Call it with the worktree checked out: an entry the
    worktree lacks (untracked or ignored in the checkout) is refused too."""
    entries: dict[Path, None] = {}
    reasons: dict[str, None] = {}
    refusals: dict[str, None] = {}
    for editable in editables:
        problem = _problem(editable, Path(checkout), Path(worktree))
        if problem is not None:
            refusals[problem] = None
            continue
        entries[Path(os.path.normpath(Path(worktree) / (editable.path_entry or ".")))] = None
        reasons[f"{editable.kind}: {_WHY[editable.kind]}"] = None
    if refusals:
        return Redirect(refusal="; ".join(refusals))
    return Redirect(tuple(entries), tuple(reasons))


def _problem(editable: Editable, checkout: Path, worktree: Path) -> str | None:
    who = f"{editable.distribution or 'an editable install'} ({editable.carrier})"
    if editable.front:
        return (
            f"{who} puts {editable.target} at the front of sys.path (the sys.__plen trick of "
            f"old `setup.py develop`), ahead of any PYTHONPATH: {_FIX}"
        )
    if editable.kind is EditableKind.DIRECT_URL:
        return (
            f"{who} is editable from {editable.target} in a way refute cannot see through: {_FIX}"
        )
    if editable.path_entry is None:
        what = f"{editable.module or editable.target.name} to {editable.target}"
        return f"{who} maps {what}, which no directory on PYTHONPATH can stand in for: {_FIX}"
    entry = worktree / editable.path_entry
    module = editable.module.replace(".", "/") if editable.module else None
    present = entry.is_dir() and (
        module is None or (entry / module).exists() or any(entry.glob(f"{module}.*"))
    )
    if worktree.is_dir() and not present:
        return (
            f"{who} imports from {checkout / editable.path_entry}, which the worktree lacks "
            f"(untracked or ignored in your checkout?): commit it, or {_FIX}"
        )
    return None


# -- commands: what a command runs, and which paths it names ---------------------------------

_PYTHON = re.compile(r"python(?:\d+(?:\.\d+)?)?")
_PIP = re.compile(r"pip(?:\d+(?:\.\d+)?)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=.*", re.DOTALL)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_WRAPPERS = frozenset({"exec", "command", "nice", "time", "nohup"})  # they run the next word
_SHELL_STEPS = frozenset({"cd", "pushd", "export", "set", "source", ".", "umask", "ulimit"})
_OPERATORS = frozenset(";&|()\n")
_NOT_PATHS = frozenset({"PWD", "OLDPWD", "_"})  # the shell's bookkeeping, reset by shells
_VENV_FIX = (
    "create a venv in the worktree instead (`python -m venv .venv && .venv/bin/pip install "
    "-e .` with shell: true, and run the tests with .venv/bin/python)"
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


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
    parents = [p for p in [path, *path.parents] if p != top and _inside(p, top)]
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
        if path is None or not _inside(path, top) or (own and _inside(path, own)):
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
        return worktree is not None and _inside(_real(path), _real(worktree))

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
) -> Redirect:
    """All of the above for one test (or setup) command run in `worktree`: the redirect of
    its interpreter's editable installs of `checkout`, or one refusal (path leaks first)."""
    leaks = path_leaks(argv, env, checkout, worktree)
    interpreter = None if leaks else interpreter_of(argv, env, cwd or worktree)
    if leaks or interpreter is None:
        return Redirect(refusal="; ".join(leaks) if leaks else None)
    found = editable_installs(site_dirs(interpreter, env), checkout)
    redirect = redirection(found, checkout, worktree)
    if redirect.pythonpath and any(_ignores_pythonpath(c) for c in _commands(argv)):
        return Redirect(
            refusal=f"`{shlex.join(argv)}` runs python with -I or -E, which ignore the "
            "PYTHONPATH that redirects the editable install of your checkout: drop the flag"
        )
    return redirect
