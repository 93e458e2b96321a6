"""Concurrent refute processes on one repository (issue step 3, point 6).

Four `refute run` processes (the real CLI, in subprocesses), several rounds each, every
round a session with a control and several hypotheses at -j 2 (so the shared pool churns:
slots are created, reused and evicted by the others all the time), while `refute clean`
runs in a loop beside them. Before the admin lock and the atomic leases, `git worktree add`
failed with `failed to read .git/worktrees/<other>/commondir`, and one process' start-up
cleanup removed another's brand-new worktree (`cannot change to .../slots/<name>`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import faultutil
import pytest
from checkout_fingerprint import assert_same, checkout_fingerprint, make_busy_checkout

from gitutil import git, make_repo

PY = sys.executable
PROCESSES = 4
ROUNDS = 4
HYPOTHESES = 8
TIMEOUT = 240.0


def refute(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faultutil.refute(*args, cwd=cwd, timeout=TIMEOUT, clean="none")  # counted below


def plan_for(path: Path, process: int) -> Path:
    hypotheses = [
        {
            "id": f"p{process}-h{n}",
            "description": f"hypothesis {n} of process {process}",
            "test": [PY, "-c", f"raise SystemExit({n % 2})"],
        }
        for n in range(HYPOTHESES)
    ]
    plan = {
        "version": 1,
        "bug": "a bug",
        "defaults": {"timeout": 120},
        "control": {"test": [PY, "-c", "raise SystemExit(1)"]},
        "hypotheses": hypotheses,
    }
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def problems_of(proc: subprocess.CompletedProcess[str], label: str) -> list[str]:
    found = []
    if "Traceback" in proc.stderr or "internal error" in proc.stderr:
        found.append(f"{label}: traceback: {proc.stderr[-800:]}")
    if proc.returncode != 0:
        found.append(f"{label}: exit {proc.returncode}: {proc.stderr[-800:]}")
    try:
        document: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        return [*found, f"{label}: no JSON report"]
    runs = sum(len(entry["runs"]) for entry in (document["control"], *document["hypotheses"]))
    if runs != HYPOTHESES + 1:
        found.append(f"{label}: {runs} runs recorded, not {HYPOTHESES + 1}")
    found.extend(
        f"{label}: {run['hypothesis_id']} ERROR: {run['error_message']}"
        for entry in (document["control"], *document["hypotheses"])
        for run in entry["runs"]
        if run["result"] == "error"
    )
    return found


@pytest.mark.slow
def test_concurrent_sessions_and_cleans_never_break_each_other(tmp_path: Path) -> None:
    files = {f"file{n}.txt": f"{n}\n" for n in range(40)}
    repo = make_repo(tmp_path / "repo", {**files, "README.md": "hi\n", "src/app.py": "pass\n"})
    make_busy_checkout(repo)
    before = checkout_fingerprint(repo)
    plans = [plan_for(tmp_path / f"plan{n}.json", n) for n in range(PROCESSES)]
    problems: list[str] = []
    sessions = 0
    lock = threading.Lock()
    done = threading.Event()

    def sessions_of(process: int) -> None:
        nonlocal sessions
        for round_ in range(ROUNDS):
            proc = refute("run", plans[process], "-j", "2", "--format", "json", cwd=repo)
            with lock:
                sessions += 1
                problems.extend(problems_of(proc, f"process {process} round {round_}"))

    def cleans() -> None:
        while not done.is_set():
            proc = refute("clean", cwd=repo)
            if proc.returncode != 0 or "Traceback" in proc.stderr:
                with lock:
                    problems.append(f"clean: exit {proc.returncode}: {proc.stderr[-800:]}")
            time.sleep(0.05)

    started = time.monotonic()
    threads = [threading.Thread(target=sessions_of, args=(n,)) for n in range(PROCESSES)]
    cleaner = threading.Thread(target=cleans)
    for thread in (*threads, cleaner):
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    cleaner.join()
    elapsed = time.monotonic() - started

    assert sessions == PROCESSES * ROUNDS
    assert problems == [], f"{len(problems)} problems in {elapsed:.0f} s:\n" + "\n".join(problems)

    # Nothing stale: git's worktrees under refute's home are exactly the slots with a
    # lease, all free; a clean has nothing to do; the user's checkout is untouched.
    final = refute("clean", cwd=repo)
    assert final.returncode == 0, final.stderr
    assert "nothing to clean" in final.stdout, final.stdout
    listing = git(repo, "worktree", "list", "--porcelain")
    assert "prunable" not in listing, listing
    home = Path(os.environ["REFUTE_HOME"])
    registered = sorted(
        Path(line.split(" ", 1)[1]).name
        for line in listing.splitlines()
        if line.startswith("worktree ") and Path(line.split(" ", 1)[1]).is_relative_to(home)
    )
    (pool,) = (p for p in (home / "cache" / "worktrees").iterdir() if p.is_dir())
    leases = sorted(p.name.removesuffix(".json") for p in (pool / "leases").glob("*.json"))
    slots = sorted(p.name for p in (pool / "slots").iterdir() if not p.name.startswith("."))
    assert registered == leases == slots, (registered, leases, slots)
    for lease in (pool / "leases").glob("*.json"):
        assert json.loads(lease.read_text(encoding="utf-8"))["state"] == "free", lease
    assert_same(before, checkout_fingerprint(repo))
