"""Shared by the SIGKILL and signal fault tests: a project whose tests linger, spawn
children, double-fork a daemon and ignore SIGTERM; refute run as a real subprocess.

Every test program remembers its parent (refute) and, if it finds itself orphaned after
its short work, sleeps 300 s more: a test that refute's death did not stop stays visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conftest import TAG_VARIABLE
from gitutil import fingerprint, git, make_repo
from scripts import DOUBLE_FORK_DAEMON

PY = sys.executable
REFUTE = [PY, "-m", "refute.cli"]

# Work for `seconds`, then, if refute (our parent) is gone, linger as an orphan would.
_LINGER = r"""
import os, signal, subprocess, sys, time
parent = os.getppid()
def linger(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
    if os.getppid() != parent:
        time.sleep(300)
"""


def program(body: str) -> list[str]:
    return [PY, "-c", _LINGER + body]


SLEEPER = "linger(1.0)\nsys.exit(1)\n"
STUBBORN = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nlinger(1.0)\nsys.exit(1)\n"
# Three children that sleep 300 s in the test's process group (also ignoring SIGTERM).
SPAWNER = (
    "kids = [subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'])"
    " for _ in range(3)]\n"
    "linger(1.0)\nsys.exit(0)\n"
)
QUICK = "sys.exit(1)\n"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def checkout_fingerprint(repo: Path) -> dict[str, object]:
    """HEAD, branch, status, every file's bytes (untracked and ignored ones too), refs,
    the stash and the index bytes (tests/gitutil.fingerprint), plus .git's config and HEAD
    file bytes."""
    found = fingerprint(repo)
    found["config"] = file_digest(repo / ".git" / "config")
    found["head_file"] = file_digest(repo / ".git" / "HEAD")
    return found


@dataclass
class Project:
    root: Path
    repo: Path
    home: Path
    #: The process tag of everything this project's refute starts (conftest.live_tagged).
    tag: str

    def plan(
        self, name: str, *, daemon_pidfile: Path, extra: list[dict[str, Any]] | None = None
    ) -> Path:
        hypotheses: list[dict[str, Any]] = [
            {"id": "sleeper", "description": "sleeps", "test": program(SLEEPER)},
            {"id": "stubborn", "description": "ignores SIGTERM", "test": program(STUBBORN)},
            {"id": "spawner", "description": "spawns children", "test": program(SPAWNER)},
            {
                "id": "daemon",
                "description": "double-forks a daemon that sleeps 300 s",
                "test": [PY, "-c", DOUBLE_FORK_DAEMON, "exit", str(daemon_pidfile)],
            },
            {"id": "quick", "description": "fails at once", "test": program(QUICK), "repeat": 3},
            *(extra or []),
        ]
        for number, hyp in enumerate(hypotheses):
            hyp.setdefault("probability", round(0.9 - number * 0.1, 2))
        plan = {
            "version": 1,
            "bug": "a bug whose tests misbehave",
            "concurrency": 8,
            "defaults": {"timeout": 60},
            "control": {"test": program("linger(0.3)\nsys.exit(1)\n")},
            "hypotheses": hypotheses,
        }
        path = self.root / "plans" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(plan, sort_keys=False, width=1000), encoding="utf-8")
        return path

    def start(
        self, plan: Path, stderr: Path, stdout: Path | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "REFUTE_HOME": str(self.home), TAG_VARIABLE: self.tag}
        with (
            open(stderr, "wb") as err,
            open(stdout or os.devnull, "wb") as out,
        ):
            return subprocess.Popen(
                [*REFUTE, "run", str(plan), "--format", "json"],
                cwd=self.repo,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )


def make_project(tmp_path: Path, lane: int = 0) -> Project:
    """A repository with uncommitted work of every kind: a modified tracked file, a staged
    change, an untracked file and an ignored one; its own refute home, and a process tag
    that extends the test's (so conftest's check after the test still covers it)."""
    root = tmp_path / f"lane{lane}"
    repo = make_repo(
        root / "repo",
        {"calc.py": "def add(a, b):\n    return a - b\n", ".gitignore": "*.log\n", "b.txt": "b\n"},
    )
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b  # edited\n", encoding="utf-8")
    (repo / "b.txt").write_text("b staged\n", encoding="utf-8")
    git(repo, "add", "b.txt")
    (repo / "notes.txt").write_text("untracked\n", encoding="utf-8")
    (repo / "debug.log").write_text("ignored\n", encoding="utf-8")
    tag = f"{os.environ[TAG_VARIABLE]}lane{lane}x"
    return Project(root, repo, root / "refute-home", tag)


def wait_for(predicate: Any, timeout: float) -> float | None:
    """Seconds until `predicate()` is true, or None after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def held_leases(home: Path) -> int:
    """Leases of the warm pool not free (held, or left by a dead refute)."""
    leases = sorted((home / "cache" / "worktrees").glob("*/leases/*.json"))
    states = []
    for path in leases:
        try:
            states.append(json.loads(path.read_text(encoding="utf-8"))["state"])
        except (OSError, ValueError, KeyError):
            states.append("unreadable")
    return sum(1 for state in states if state != "free")
