"""`refute.workspace.leaks`: which interpreter a command runs (through shells, `env`, pyenv's
shims and shebangs), which of its words and environment entries are inside the checkout, and
whether a setup would install outside its worktree. Fake executables and directories in
tmp_path; nothing is run. The redirect itself is proven with real venvs in test_pythonenv.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refute.workspace.leaks import interpreter_of, path_leaks, setup_writes_outside, shell_commands

# -- interpreter_of ---------------------------------------------------------------------------


def executable(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "python3")
    executable(bin_dir / "python3.12")
    executable(bin_dir / "pytest", "#!/x/venv/bin/python\nimport pytest\n")
    executable(bin_dir / "py.test", "#!/usr/bin/env python3\n")
    executable(bin_dir / "tox", "#!/usr/bin/env -S python3.12 -u\n")
    executable(
        bin_dir / "long", "#!/bin/sh\n'''exec' '/very long/bin/python3' \"$0\" \"$@\"\n' '''\n"
    )
    executable(bin_dir / "make", "#!/bin/bash\necho\n")
    executable(bin_dir / "elf", "\x7fELF")
    return bin_dir


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python3", "-m", "pytest"], "BIN/python3"),
        (["python3.12"], "BIN/python3.12"),
        (["pytest", "-x"], "/x/venv/bin/python"),
        (["py.test"], "BIN/python3"),
        (["tox"], "BIN/python3.12"),
        (["long"], "/very long/bin/python3"),
        (["./venv/bin/python", "-c", "1"], "CWD/venv/bin/python"),
        (["/bin/sh", "-c", "FOO=1 pytest -q tests"], "/x/venv/bin/python"),
        (["bash", "-ec", "cd sub && exec python3 -m pytest; echo done"], "BIN/python3"),
        (["env", "-u", "X", "A=1", "python3"], "BIN/python3"),
        (["sh", "-c", "echo start && make && pytest"], "/x/venv/bin/python"),
        (["sh", "-c", "make test"], None),
        (["make", "test"], None),
        (["elf"], None),
        (["python2.7"], None),
        (["missing"], None),
        (["sh", "script.sh"], None),
        ([], None),
    ],
)
def test_interpreter_of(bin_dir: Path, tmp_path: Path, argv: list[str], expected: str | None):
    cwd = tmp_path / "cwd"
    executable(cwd / "venv" / "bin" / "python")
    env = {"PATH": f"{bin_dir}{os.pathsep}/nonexistent"}
    found = interpreter_of(argv, env, cwd)
    if expected is None:
        assert found is None
    else:
        assert found == Path(expected.replace("BIN", str(bin_dir)).replace("CWD", str(cwd)))


def test_interpreter_behind_pyenv_shims(bin_dir: Path, tmp_path: Path):
    """pyenv's shims are shell scripts; the version they run is read as pyenv reads it."""
    root = tmp_path / "pyenv"
    for name in ("python3", "pytest"):
        executable(root / "shims" / name, "#!/usr/bin/env bash\nexec pyenv exec ...\n")
    for version in ("3.12.1", "3.10.0"):
        executable(root / "versions" / version / "bin" / "python3")
    interpreter = root / "versions" / "3.12.1" / "bin" / "python3.12"
    executable(root / "versions" / "3.12.1" / "bin" / "pytest", f"#!{interpreter}\n")
    (root / "version").write_text("3.12.1\n", "utf-8")
    cwd = tmp_path / "project" / "sub"
    cwd.mkdir(parents=True)
    env = {"PATH": f"{root / 'shims'}{os.pathsep}{bin_dir}"}
    chosen = root / "versions" / "3.12.1" / "bin" / "python3"
    assert interpreter_of(["python3"], env, cwd) == chosen
    assert interpreter_of(["pytest"], env, cwd) == interpreter
    older = root / "versions" / "3.10.0" / "bin" / "python3"
    assert interpreter_of(["python3"], {**env, "PYENV_VERSION": "3.10.0"}, cwd) == older
    (tmp_path / "project" / ".python-version").write_text("# local\n3.10.0\n", "utf-8")
    assert interpreter_of(["python3"], env, cwd) == older
    assert interpreter_of(["python3"], {**env, "PYENV_VERSION": "system"}, cwd) == (
        bin_dir / "python3"
    )


def test_shell_commands():
    assert shell_commands("a 'b c' && d; e | f\ng || h &") == [
        ["a", "b c"],
        ["d"],
        ["e"],
        ["f"],
        ["g"],
        ["h"],
    ]
    assert shell_commands("echo 'unbalanced") == []


# -- path_leaks -------------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "bin").mkdir()
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n", "utf-8")
    worktree = tmp_path / "copy"
    worktree.mkdir()
    return checkout, worktree


def test_path_leaks_name_each_variable_and_path(layout: tuple[Path, Path]):
    checkout, worktree = layout
    env = {
        "PYTHONPATH": f"src{os.pathsep}{checkout / 'src'}",
        "PATH": f"{checkout / 'bin'}{os.pathsep}/usr/bin",
        "PWD": str(checkout),  # the shell's, reset by every shell: not a path to use
        "NAME": "plain value",
    }
    leaks = path_leaks(
        [str(checkout / "bin" / "run"), f"--data={checkout / 'src'}"], env, checkout, worktree
    )
    assert len(leaks) == 4, leaks
    assert leaks[0].startswith(f"command {checkout / 'bin' / 'run'} is inside your checkout")
    assert leaks[1].startswith(f"argument --data={checkout / 'src'}")
    assert leaks[2].startswith(f"PATH entry {checkout / 'bin'} is inside your checkout")
    assert leaks[3].startswith(f"PYTHONPATH entry {checkout / 'src'} is inside")
    assert all("relative to the worktree" in leak for leak in leaks)


def test_what_does_not_leak(layout: tuple[Path, Path]):
    checkout, worktree = layout
    venv = checkout / ".venv"
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin",
        "VIRTUAL_ENV": str(venv),
        "PYTHONPATH": f"src{os.pathsep}{worktree / 'src'}",
    }
    assert (
        path_leaks([str(venv / "bin" / "python"), "-m", "pytest", "tests"], env, checkout, worktree)
        == []
    )
    script = f"{worktree / 'run.sh'} && {checkout / 'bin' / 'x'}"
    assert len(path_leaks(["sh", "-c", script], {}, checkout, worktree)) == 1


# -- setup_writes_outside ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["pip", "install", "-e", "."], True),
        (["pip3", "install", "-r", "requirements.txt"], True),
        (["/home/u/venv/bin/pip", "install", "-e", "."], True),
        (["python", "-m", "pip", "install", "-e", "."], True),
        (["python3", "-m", "pip", "install", "--user", "x"], True),
        (["pip", "install", "--target", "/opt/site", "x"], True),
        (["pip", "install", "--prefix=/usr/local", "x"], True),
        (["pip", "--python", "/usr/bin/python3", "install", "x"], True),
        (["uv", "pip", "install", "--system", "x"], True),
        (["poetry", "install"], True),  # VIRTUAL_ENV is active below
        (["pdm", "install"], True),
        (["python", "setup.py", "develop"], True),
        (["sh", "-c", "python -m venv .venv && pip install -e ."], True),
        (["sh", "-c", "python -m venv .venv && .venv/bin/pip install -e ."], False),
        (["sh", "-c", "python -m venv v && . v/bin/activate && pip install -e ."], False),
        ([".venv/bin/python", "-m", "pip", "install", "-e", "."], False),
        (["pip", "install", "--target", "vendor", "x"], False),
        (["pip", "download", "x"], False),
        (["pip", "--version"], False),
        (["python", "-m", "venv", ".venv"], False),
        (["make", "build"], False),
    ],
)
def test_setup_writes_outside(argv: list[str], refused: bool):
    env = {"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": "/home/u/venv"}
    message = setup_writes_outside(argv, env)
    assert (message is not None) == refused, message
    if message:
        assert "modifying your environment" in message
        assert ".venv/bin/pip install -e ." in message
        assert "\n" not in message


def test_setup_relative_and_worktree_paths(tmp_path: Path):
    worktree = tmp_path / "copy"
    (worktree / ".venv" / "bin").mkdir(parents=True)
    inside = [str(worktree / ".venv" / "bin" / "pip"), "install", "-e", "."]
    assert setup_writes_outside(inside, {}, worktree=worktree) is None
    assert setup_writes_outside(inside, {}) is not None  # without the worktree, absolute is outside
    relative = [".venv/bin/pip", "install", "-e", "."]
    assert setup_writes_outside(relative, {}, worktree_relative_ok=False) is not None
    assert setup_writes_outside(["uv", "pip", "install", "-e", "."], {}) is None  # worktree's .venv
