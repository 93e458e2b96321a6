"""The Python environment a command would run, read from files: its site directories, the
editable installs of the user's checkout in them, and how to redirect those to a worktree.

Why: most Python developers install their checkout editable into a venv and run the tests
with that venv's python. Run in a worktree, such a test still imports the package from the
USER'S CHECKOUT: every hypothesis' patch has no effect and every verdict is silently wrong.
`site_dirs` -> `editable_installs` find that; `redirection` makes each worktree import its
own code with the user's environment unchanged (a PYTHONPATH of worktree directories), or
refuses in one line saying what leaks and how to fix it. Which interpreter a command runs,
and the leaks that are not editable installs, are `refute.workspace.leaks`'.

Only files are read: no process is started (the workspace starts none but git) and no
finder is imported or run (they are parsed with `ast`). Why a PYTHONPATH wins: sys.path is
[script dir, PYTHONPATH, stdlib, site-packages, .pth path entries], and sys.meta_path asks
PathFinder (which walks sys.path) before the finders setuptools and editables *append* to
it. Only easy-install.pth's `sys.__plen` trick moves entries ahead of PYTHONPATH: refused.

Not seen, so neither redirected nor refused: code that edits sys.path or sys.meta_path at
startup by itself (sitecustomize, usercustomize, .pth import lines other than setuptools'
and editables' finders, a conftest or plugin inserting the checkout); non-standard site
layouts (conda, PyPy, `site.addsitedir`); a site-packages package whose `__path__` points
into the checkout. Once redirected, a top-level module the worktree lacks (deleted by the
patch, untracked) is still found in the checkout further down sys.path, setuptools' finder
serves a submodule the worktree lacks from the checkout, and metadata (versions, entry
points) still comes from the install.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
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
    "redirection",
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
