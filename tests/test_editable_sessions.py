"""The headline case of Step 2: the user's own venv with an editable install of the
repository, tests run with that venv's python. Before, every test imported the USER'S
CHECKOUT, every patch had no effect, and the real cause was reported FALSIFIED. Now the
real-cause patch is SUPPORTED, a wrong one FALSIFIED, and the venv and the checkout are
byte-identical afterwards. Real venv, real `pip install -e`, offline; the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gitutil import fingerprint, git, make_repo

REFUTE = Path(sys.executable).parent / "refute"
PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "humble"
version = "0.1"
"""
BUGGY = "def natural(n):\n    return str(n - 1)  # the bug: off by one\n"
REAL_FIX = """\
--- a/src/humble/__init__.py
+++ b/src/humble/__init__.py
@@ -1,2 +1,2 @@
 def natural(n):
-    return str(n - 1)  # the bug: off by one
+    return str(n)
"""
WRONG_FIX = """\
--- a/src/humble/__init__.py
+++ b/src/humble/__init__.py
@@ -1,2 +1,3 @@
 def natural(n):
+    n = int(n)  # "the bug is a type problem": not it
     return str(n - 1)  # the bug: off by one
"""


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def user(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout of a src-layout project and the user's venv with it installed editable."""
    repo = make_repo(
        tmp_path / "humble",
        {
            "pyproject.toml": PYPROJECT,
            "src/humble/__init__.py": BUGGY,
            ".gitignore": "*.egg-info/\n__pycache__/\n",
        },
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # pip and setuptools from the running environment, visible only while installing.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index"]
    install += ["--no-build-isolation", "--no-deps", "-e", str(repo)]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    return repo, venv


def test_the_users_editable_venv_gives_the_right_verdicts(user: tuple[Path, Path]):
    repo, venv = user
    python = str(venv / "bin" / "python")
    reproduce = [python, "-c", "from humble import natural; assert natural(3) == '3'"]
    plan = repo.parent / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "natural(3) is '2'",
                "control": {"test": reproduce},
                "hypotheses": [
                    {
                        "id": "off-by-one",
                        "description": "natural() subtracts one",
                        "test": reproduce,
                        "patch_text": REAL_FIX,
                        "supported_if": "passes",
                    },
                    {
                        "id": "types",
                        "description": "natural() mishandles types",
                        "test": reproduce,
                        "patch_text": WRONG_FIX,
                        "supported_if": "passes",
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    before, venv_before = fingerprint(repo), tree_digest(venv)
    check = subprocess.run(
        [str(REFUTE), "check", str(plan)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr
    assert "refute: note:" in check.stderr
    assert "instead of your checkout's" in check.stderr
    proc = subprocess.run(
        [str(REFUTE), "run", str(plan), "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    verdicts = {h["id"]: h["verdict"] for h in doc["hypotheses"]}
    assert verdicts == {"off-by-one": "supported", "types": "falsified"}, proc.stderr
    assert doc["control"]["verdict"] == "reproduced"
    assert fingerprint(repo) == before
    assert tree_digest(venv) == venv_before


def test_a_setup_that_would_install_into_the_users_venv_is_refused(user: tuple[Path, Path]):
    repo, venv = user
    plan = repo.parent / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "b",
                "setup": [str(venv / "bin" / "python"), "-m", "pip", "install", "-e", "."],
                "hypotheses": [
                    {"id": "h", "description": "d", "test": [str(venv / "bin" / "python"), "-V"]}
                ],
            }
        ),
        encoding="utf-8",
    )
    venv_before = tree_digest(venv)
    for command in ("check", "run"):
        proc = subprocess.run(
            [str(REFUTE), command, str(plan)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert "refute: error: setup:" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert tree_digest(venv) == venv_before


def test_a_test_command_inside_the_checkout_is_refused(user: tuple[Path, Path]):
    repo, _ = user
    script = repo / "run-tests.sh"
    plan = repo.parent / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "b",
                "hypotheses": [{"id": "h", "description": "d", "test": [str(script)]}],
            }
        ),
        encoding="utf-8",
    )
    script.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    script.chmod(0o755)
    proc = subprocess.run(
        [str(REFUTE), "check", str(plan)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "(h).test:" in proc.stderr
    assert str(repo) in proc.stderr
