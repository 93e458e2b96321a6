"""Setup benchmark: a plan with a per-worktree venv, warm, against the same tests by hand.

A small src-layout package in a git repository (made in a temporary directory). The plan's
setup creates a venv in each worktree and installs the package editable into it (offline:
`--system-site-packages`, `--no-build-isolation --no-index`); 4 hypotheses each run a test
that imports the package and sleeps `--sleep` seconds (default 1) with that venv's python.

  by-hand     the user's way: the 4 tests one after another in the checkout, with a venv
              that already exists (the baseline: no setup at all)
  refute-cold `refute run` on an empty pool: every worktree is created and set up
  refute-warm `refute run` again: the pool is warm and the setup is skipped (its inputs
              did not change)

Each phase is repeated --repeat times (warm runs alternate with by-hand runs); medians and
the warm/by-hand ratio are printed (Step 2's goal: within 1.5x).
Usage: python bench/bench_setup.py [--repeat 3] [--sleep 1] [-j auto] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REFUTE = Path(sys.executable).parent / "refute"
PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "humble"
version = "0.1"
"""


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@invalid",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def make_project(root: Path) -> Path:
    repo = root / "humble"
    (repo / "src" / "humble").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "src" / "humble" / "__init__.py").write_text("VALUE = 1\n")
    (repo / ".gitignore").write_text(".venv/\n*.egg-info/\n__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    return repo


def venv_commands(python: str) -> str:
    purelib = sysconfig.get_paths()["purelib"]
    return (
        f"{python} -m venv --without-pip .venv"
        f" && PYTHONPATH={purelib} .venv/bin/python -m pip install -q --no-index"
        " --no-build-isolation --no-deps -e ."
    )


def write_plan(root: Path, sleep: float, jobs: str) -> Path:
    test = f".venv/bin/python -c 'import humble, time; time.sleep({sleep})'"
    plan = {
        "version": 1,
        "bug": "bench",
        "concurrency": jobs if jobs == "auto" else int(jobs),
        "setup": {"command": venv_commands(sys.executable), "shell": True},
        "hypotheses": [
            {"id": f"h{i}", "description": "sleeps", "test": test, "shell": True}
            for i in range(4)
        ],
    }
    path = root / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def timed(argv: list[str], cwd: Path, env: dict[str, str], *, shell: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv if not shell else " ".join(argv),
        cwd=cwd,
        env=env,
        shell=shell,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def by_hand(repo: Path, sleep: float, env: dict[str, str]) -> float:
    python = repo / ".venv" / "bin" / "python"
    start = time.perf_counter()
    for _ in range(4):
        code = f"import humble, time; time.sleep({sleep})"
        subprocess.run([str(python), "-c", code], cwd=repo, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("-j", "--jobs", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refute-bench-setup-") as tmp:
        root = Path(tmp)
        repo = make_project(root)
        env = {**os.environ, "REFUTE_HOME": str(root / "home")}
        # The user's own venv in the checkout, made once (the by-hand baseline has it).
        subprocess.run(venv_commands(sys.executable), shell=True, cwd=repo, check=True, env=env)  # noqa: S602
        plan = write_plan(root, args.sleep, args.jobs)
        run = [str(REFUTE), "run", str(plan), "--format", "json"]
        cold = timed(run, repo, env)
        warm: list[float] = []
        hand: list[float] = []
        for _ in range(args.repeat):
            warm.append(timed(run, repo, env))
            hand.append(by_hand(repo, args.sleep, env))
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "jobs": args.jobs,
            "sleep": args.sleep,
            "refute_cold_seconds": round(cold, 3),
            "refute_warm_seconds": [round(w, 3) for w in warm],
            "by_hand_seconds": [round(h, 3) for h in hand],
            "refute_warm_median": round(statistics.median(warm), 3),
            "by_hand_median": round(statistics.median(hand), 3),
        }
        result["ratio_warm_to_by_hand"] = round(
            result["refute_warm_median"] / result["by_hand_median"], 3
        )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
