"""Editable installs of the user's checkout, found by reading files and redirected to a
worktree — proven with real venvs and real `pip install -e` of each build backend, offline.

The proof for each install kind: the venv's python, run in a copy of the repository (a `git
worktree add`, whose package says WHERE = "worktree"), imports the package from the
checkout (WHERE = "checkout") — the silent failure — and, with the PYTHONPATH `redirection`
returns, from the copy. Kinds the running backends cannot make offline (old `setup.py
develop`, `flit install --symlink`, a mechanism only direct_url.json tells of) are written by
hand in the format those tools write. All venvs are made once per module, installed
concurrently (venv creation takes ~0.2 s; each `pip install -e` ~3 s of CPU).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import TAG_VARIABLE
from gitutil import git, make_repo
from refute.workspace.leaks import redirect_command
from refute.workspace.pythonenv import (
    Editable,
    EditableKind,
    editable_installs,
    redirection,
    site_dirs,
)

pytestmark = pytest.mark.slow

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
HAS_EDITABLES = importlib.util.find_spec("editables") is not None
NO_EDITABLES = (
    "hatchling builds editable wheels with the `editables` package (and dev-mode-exact needs "
    "it at run time too); it is not installed here, so this backend mode cannot be exercised "
    "offline: add `editables` to the dev extras"
)

BACKENDS = {
    "setuptools": ("setuptools>=70.1", "setuptools.build_meta"),
    "hatchling": ("hatchling", "hatchling.build"),
    "flit": ("flit_core>=3.9", "flit_core.buildapi"),
}
FINDER, LINKS = EditableKind.SETUPTOOLS_FINDER, EditableKind.LINK_TREE
DEV_MODE_DIRS = '[tool.hatch.build]\ndev-mode-dirs = ["src"]\n'  # hatchling writes the .pth
DEV_MODE_EXACT = "[tool.hatch.build]\ndev-mode-exact = true\n"  # editables' redirector


@dataclass(frozen=True)
class Case:
    """One editable install, named after its case: the project directory is the name with
    `_`, the distribution the name, the module the name without `-`; `layout` says where the
    module lives (src/<module>, <module>, a namespace <module>.inner, or renamed lib/other)."""

    backend: str  # a key of BACKENDS, or "" for an install written by hand below
    kind: EditableKind = EditableKind.PTH_PATH
    layout: str = "src"
    extra: str = ""  # more pyproject.toml
    pip_args: tuple[str, ...] = ()
    refused: bool = False
    needs_editables: bool = False


CASES = {
    # setuptools' default ("lenient") mode; a src layout gets a .pth with the src directory.
    "setuptools-src": Case("setuptools"),
    "setuptools-flat": Case("setuptools", FINDER, "flat"),  # a PEP 660 finder, MAPPING
    "setuptools-namespace": Case("setuptools", FINDER, "namespace"),  # + NAMESPACES, path hook
    "setuptools-strict": Case("setuptools", LINKS, pip_args=("-C", "editable_mode=strict")),
    "setuptools-renamed": Case("setuptools", FINDER, "renamed", refused=True),  # package-dir
    "hatchling-dirs": Case("hatchling", extra=DEV_MODE_DIRS),
    "hatchling": Case("hatchling", needs_editables=True),
    "hatchling-exact": Case(
        "hatchling", EditableKind.EDITABLES_REDIRECT, extra=DEV_MODE_EXACT, needs_editables=True
    ),
    "flit": Case("flit"),  # flit_core's PEP 660 wheel: <module>.pth, the module's directory
    # By hand: old `setup.py develop` (egg-link + easy-install.pth with the sys.__plen trick),
    # setuptools >= 49's (without it), and `flit install --symlink`.
    "egg-link-plen": Case("", EditableKind.EASY_INSTALL, refused=True),
    "egg-link": Case("", EditableKind.EASY_INSTALL),
    "symlink": Case("", EditableKind.SYMLINK),
}
PROVEN = [name for name, case in CASES.items() if not case.refused]


def project(name: str) -> str:
    return name.replace("-", "_")


def module_of(name: str) -> str:
    base = name.replace("-", "")
    return f"{base}.inner" if CASES[name].layout == "namespace" else base


def package_dir(name: str) -> str:
    layout, module = CASES[name].layout, module_of(name).replace(".", "/")
    if layout == "renamed":
        return f"{project(name)}/lib/other"
    return f"{project(name)}/src/{module}" if layout == "src" else f"{project(name)}/{module}"


def path_entry(name: str) -> Path | None:
    layout = CASES[name].layout
    return None if layout == "renamed" else Path(project(name), "src" if layout == "src" else "")


def pyproject(name: str) -> str:
    case, module = CASES[name], name.replace("-", "")
    requires, backend = BACKENDS[case.backend]
    text = f'[build-system]\nrequires = ["{requires}"]\nbuild-backend = "{backend}"\n'
    text += f'[project]\nname = "{name}"\nversion = "0.1"\ndescription = "test package"\n'
    if case.backend == "hatchling":
        text += f'[tool.hatch.build.targets.wheel]\npackages = ["src/{module}"]\n'
    elif case.backend == "flit":
        text += f'[tool.flit.module]\nname = "{module}"\n'
    elif case.layout == "namespace":
        text += f'[tool.setuptools.packages.find]\ninclude = ["{module}*"]\nnamespaces = true\n'
    elif case.layout in {"flat", "renamed"}:
        text += f'[tool.setuptools]\npackages = ["{module}"]\n'
    if case.layout == "renamed":
        text += f'package-dir = {{"{module}" = "lib/other"}}\n'
    return text + case.extra


# As setuptools < 49 wrote it: the entries between the two lines move to the front.
PLEN_PTH = (
    "import sys; sys.__plen = len(sys.path)\n{entry}\n"
    "import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; "
    "p = getattr(sys, '__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)\n"
)


@dataclass
class Installed:
    checkout: Path
    worktree: Path
    venvs: dict[str, Path] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def python(self, name: str) -> Path:
        if name in self.failures:
            pytest.fail(f"installing {name} failed:\n{self.failures[name]}")
        return self.venvs[name] / "bin" / "python"


def site_of(venv: Path) -> Path:
    return venv / "lib" / f"python{VERSION}" / "site-packages"


def clean_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **extra}
    env[TAG_VARIABLE] = os.environ.get(TAG_VARIABLE, "")
    return env


def make_venv(path: Path, *options: str) -> Path:
    venv = [sys.executable, "-m", "venv", "--without-pip", *options, str(path)]
    subprocess.run(venv, check=True, capture_output=True, timeout=60)
    return path


def hand_made(name: str, checkout: Path, site: Path) -> None:
    if name == "symlink":
        (site / module_of(name)).symlink_to(checkout / package_dir(name))
        return
    entry = checkout / project(name) / "src"
    (site / f"{name}.egg-link").write_text(f"{entry}\n../\n", encoding="utf-8")
    text = PLEN_PTH.format(entry=entry) if name == "egg-link-plen" else f"{entry}\n"
    (site / "easy-install.pth").write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("environments")
    files = {"README.md": "projects\n"}
    for name, case in CASES.items():
        files[f"{package_dir(name)}/__init__.py"] = 'WHERE = "checkout"\n'
        if case.backend:
            files[f"{project(name)}/pyproject.toml"] = pyproject(name)
    checkout = make_repo(root / "checkout", files).resolve()
    worktree = root / "copy"
    git(checkout, "worktree", "add", "-q", "--detach", str(worktree), "HEAD")
    for name in CASES:  # the copy is "patched": its code says where it is
        (worktree / package_dir(name) / "__init__.py").write_text('WHERE = "worktree"\n', "utf-8")
    result = Installed(checkout, worktree.resolve())
    # pip and the build backends of the running environment, visible only while installing.
    backends = clean_env(
        PYTHONPATH=sysconfig.get_paths()["purelib"], PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    pip = ["-m", "pip", "install", "-q", "--no-index", "--no-cache-dir", "--no-build-isolation"]
    pip.append("--no-deps")
    running: dict[str, subprocess.Popen[bytes]] = {}
    for name, case in CASES.items():
        if case.needs_editables and not HAS_EDITABLES:
            continue
        venv = result.venvs[name] = make_venv(root / "venvs" / name)
        if not case.backend:
            hand_made(name, checkout, site_of(venv))
            continue
        running[name] = subprocess.Popen(
            [venv / "bin" / "python", *pip, *case.pip_args, "-e", checkout / project(name)],
            env=backends,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    for name, proc in running.items():  # concurrently: each takes ~3 s of CPU
        output, _ = proc.communicate(timeout=110)
        if proc.returncode != 0:
            result.failures[name] = output.decode(errors="replace")
    if "hatchling-exact" in result.venvs:  # its .pth imports editables' redirector at startup
        editables = Path(str(importlib.util.find_spec("editables").origin)).parent
        shutil.copytree(editables, site_of(result.venvs["hatchling-exact"]) / "editables")
    return result


def imported(python: Path, module: str, cwd: Path, env: dict[str, str]) -> tuple[Path, str]:
    """Where `module` is imported from, and what its WHERE says. `-P`: no cwd on sys.path,
    as for a console script such as pytest (so a flat layout cannot pass by accident)."""
    code = f"import {module} as m; print(m.__file__); print(m.WHERE)"
    argv = [python, "-P", "-c", code]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    file, where = proc.stdout.split()
    return Path(file).resolve(), where


def found_in(installed: Installed, name: str) -> list[Editable]:
    if CASES[name].needs_editables and not HAS_EDITABLES:
        pytest.skip(NO_EDITABLES)
    return editable_installs(site_dirs(installed.python(name), clean_env()), installed.checkout)


# -- every kind is found, and the redirect makes the copy's code imported --------------------


@pytest.mark.parametrize("name", list(CASES))
def test_editable_install_is_found(installed: Installed, name: str):
    case = CASES[name]
    found = found_in(installed, name)
    plen = name == "egg-link-plen"
    entry = path_entry(name)
    assert [(e.kind, e.path_entry, e.front) for e in found] == [(case.kind, entry, plen)]
    [editable] = found
    assert editable.carrier.parent == site_of(installed.venvs[name])
    assert editable.target.is_relative_to(installed.checkout / project(name))
    assert editable.distribution == (None if name == "symlink" else name)


@pytest.mark.parametrize("name", PROVEN)
def test_redirect_imports_the_worktree_copy(installed: Installed, name: str):
    found = found_in(installed, name)
    redirect = redirection(found, installed.checkout, installed.worktree)
    assert redirect.refusal is None
    assert redirect.pythonpath == (installed.worktree / str(path_entry(name)),)
    assert redirect.reasons[0].startswith(str(CASES[name].kind))
    python, module = installed.python(name), module_of(name)
    # Without the redirect the copy imports the user's checkout: the failure this prevents.
    file, where = imported(python, module, installed.worktree, clean_env())
    assert (file.parent, where) == (installed.checkout / package_dir(name), "checkout")
    file, where = imported(python, module, installed.worktree, redirect.apply(clean_env()))
    assert (file.parent, where) == (installed.worktree / package_dir(name), "worktree")


def test_old_develop_is_refused_because_no_pythonpath_can_win(installed: Installed):
    """The sys.__plen trick puts the checkout ahead of PYTHONPATH: refused, and rightly so."""
    found = found_in(installed, "egg-link-plen")
    redirect = redirection(found, installed.checkout, installed.worktree)
    assert redirect.pythonpath == ()
    assert redirect.refusal is not None
    for part in ("egg-link-plen (", "easy-install.pth)", "sys.__plen", "per-worktree venv"):
        assert part in redirect.refusal
    naive = clean_env(PYTHONPATH=str(installed.worktree / path_entry("egg-link-plen")))
    python = installed.python("egg-link-plen")
    assert imported(python, "egglinkplen", installed.worktree, naive)[1] == "checkout"


def test_renamed_package_is_refused(installed: Installed):
    found = found_in(installed, "setuptools-renamed")
    refusal = redirection(found, installed.checkout, installed.worktree).refusal
    assert refusal is not None
    for part in ("setuptools-renamed (", "__editable___setuptools_renamed_0_1_finder.py)"):
        assert part in refusal
    assert "maps setuptoolsrenamed to" in refusal


def test_redirect_command_from_a_console_script(installed: Installed):
    """The whole path from argv: `pytest`-like console script on PATH -> its shebang's venv
    -> the editable install -> the env a worktree's test needs."""
    venv = installed.venvs["setuptools-src"]
    script = venv / "bin" / "show-where"
    code = "import setuptoolssrc as m\nprint(m.WHERE)\n"
    script.write_text(f"#!{venv / 'bin' / 'python'}\n{code}", encoding="utf-8")
    script.chmod(0o755)
    env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    redirect = redirect_command(
        ["show-where"], env, checkout=installed.checkout, worktree=installed.worktree
    )
    assert redirect.refusal is None
    run = subprocess.run(
        ["show-where"],
        cwd=installed.worktree,
        env=redirect.apply(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert run.stdout.strip() == "worktree"
    isolated = redirect_command(
        [str(venv / "bin" / "python"), "-I", "-m", "pytest"],
        env,
        checkout=installed.checkout,
        worktree=installed.worktree,
    )
    assert isolated.refusal is not None
    assert "-I or -E" in isolated.refusal


def test_hand_written_editables_redirector_is_found(tmp_path: Path):
    """The files `editables` 0.6 writes for hatchling's dev-mode-exact, also where it is not
    installed: the .pth imports a bootstrap module that calls map_module (parsed, not run)."""
    checkout = make_repo(tmp_path / "checkout", {"src/pkg/__init__.py": ""}).resolve()
    site = tmp_path / "site"
    site.mkdir()
    (site / "_editable_impl_my_pkg.pth").write_text("import _editable_impl_my_pkg", "utf-8")
    (site / "_editable_impl_my_pkg.py").write_text(
        "from editables.redirector import RedirectingFinder as F\nF.install()\n"
        f"F.map_module('pkg', {str(checkout / 'src/pkg/__init__.py')!r})\n"
        "F.map_module('outside', '/nowhere/outside.py')",
        encoding="utf-8",
    )
    [editable] = editable_installs([site], checkout)
    assert editable.kind is EditableKind.EDITABLES_REDIRECT
    assert (editable.module, editable.path_entry) == ("pkg", Path("src"))
    assert editable.carrier == site / "_editable_impl_my_pkg.py"


def test_direct_url_alone_is_refused(tmp_path: Path):
    """The catch-all: pip says "editable from your checkout" but no mechanism is visible."""
    checkout = make_repo(tmp_path / "checkout").resolve()
    dist = tmp_path / "site" / "mesonish-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mesonish\n\n", "utf-8")
    (dist / "direct_url.json").write_text(
        f'{{"dir_info": {{"editable": true}}, "url": "{checkout.as_uri()}"}}', "utf-8"
    )
    [editable] = editable_installs([dist.parent], checkout)
    assert (editable.kind, editable.distribution) == (EditableKind.DIRECT_URL, "mesonish")
    refusal = redirection([editable], checkout, tmp_path).refusal
    assert refusal is not None
    assert "mesonish" in refusal
    assert "cannot see through" in refusal
    # A .pth no RECORD names, into that project, explains it: no catch-all then.
    (dist.parent / "by-hand.pth").write_text(f"{checkout / 'src'}\n", "utf-8")
    [editable] = editable_installs([dist.parent], checkout)
    assert (editable.kind, editable.distribution) == (EditableKind.PTH_PATH, None)


def test_an_entry_the_worktree_lacks_is_refused(tmp_path: Path):
    checkout = make_repo(tmp_path / "checkout").resolve()
    (checkout / "generated").mkdir()  # untracked: a worktree of HEAD does not have it
    site = tmp_path / "site"
    site.mkdir()
    (site / "gen.pth").write_text(f"{checkout / 'generated'}\n", "utf-8")
    worktree = tmp_path / "copy"
    git(checkout, "worktree", "add", "-q", "--detach", str(worktree), "HEAD")
    found = editable_installs([site], checkout)
    assert [e.path_entry for e in found] == [Path("generated")]
    refusal = redirection(found, checkout, worktree).refusal
    assert refusal is not None
    assert "worktree lacks" in refusal


def test_paths_outside_the_checkout_are_not_editable_installs(tmp_path: Path):
    checkout = make_repo(tmp_path / "checkout").resolve()
    site = tmp_path / "site"
    (site / "elsewhere").mkdir(parents=True)
    (site / "x.pth").write_text(f"{tmp_path}\n# comment\nelsewhere\nimport os\n", "utf-8")
    assert editable_installs([site], checkout) == []
    assert redirection([], checkout, tmp_path).pythonpath == ()


# -- site directories, compared with what the interpreter itself says -------------------------

REPORT_SITES = (
    "import json, os, site; print(json.dumps([os.path.realpath(p) for p in "
    "([site.getusersitepackages()] if site.ENABLE_USER_SITE else []) + site.getsitepackages() "
    "if os.path.isdir(p)]))"
)


def reported_sites(python: Path, env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [str(python), "-c", REPORT_SITES],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(proc.stdout)


@pytest.mark.parametrize("kind", ["venv", "system-site-venv", "base"])
def test_site_dirs_match_the_interpreters_own(tmp_path: Path, kind: str):
    user = tmp_path / "userbase"
    (user / "lib" / f"python{VERSION}" / "site-packages").mkdir(parents=True)
    env = clean_env(PYTHONUSERBASE=str(user))
    if kind == "base":
        python = Path(sys.base_prefix) / "bin" / f"python{VERSION}"
    else:
        options = ("--system-site-packages",) if kind == "system-site-venv" else ()
        python = make_venv(tmp_path / "venv", *options) / "bin" / "python"
    found = [os.path.realpath(p) for p in site_dirs(python, env)]
    assert found == reported_sites(python, env)
    assert (str(user.resolve() / "lib" / f"python{VERSION}" / "site-packages") in found) == (
        kind != "venv"
    )
    assert site_dirs(python, {**env, "PYTHONNOUSERSITE": "1"}) == [
        p for p in site_dirs(python, env) if not p.is_relative_to(user)
    ]


def test_site_dirs_of_a_debian_like_prefix_and_uv_venv(tmp_path: Path):
    prefix = tmp_path / "usr"
    (prefix / "lib" / "python3.12").mkdir(parents=True)
    (prefix / "lib" / "python3.12" / "os.py").write_text("", "utf-8")
    for site in ("lib/python3/dist-packages", "local/lib/python3.12/dist-packages"):
        (prefix / site).mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python3.12").write_text("", "utf-8")
    (prefix / "bin" / "python3").symlink_to("python3.12")
    env = clean_env(HOME=str(tmp_path / "home"))
    expected = [prefix / "local/lib/python3.12/dist-packages", prefix / "lib/python3/dist-packages"]
    assert site_dirs(prefix / "bin" / "python3", env) == expected
    venv = tmp_path / "uvvenv"  # uv writes version_info, and include-system-site-packages
    (venv / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(prefix / "bin" / "python3")
    (venv / "pyvenv.cfg").write_text(
        f"home = {prefix / 'bin'}\nimplementation = CPython\nversion_info = 3.12.4\n"
        "include-system-site-packages = true\n",
        "utf-8",
    )
    assert site_dirs(venv / "bin" / "python", env) == [
        venv / "lib" / "python3.12" / "site-packages",
        *expected,
    ]


def test_editable_is_a_plain_record():
    editable = Editable(None, EditableKind.SYMLINK, Path("/s/p"), Path("/c/p"), Path("."), "p")
    assert editable.front is False
    assert redirection([editable], Path("/c"), Path("/nonexistent/copy")).pythonpath == (
        Path("/nonexistent/copy"),
    )
