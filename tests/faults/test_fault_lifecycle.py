"""SIGKILL of a real `refute run` at seeded random moments, then `show`, `history`, `resume`.

Each trial is a fresh repository with uncommitted work (a dirty tracked file and an
untracked one), so the session's base is a snapshot. Every test of the plan exits 1 (the
bug "reproduces", so the hypothesis is supported and the control reproduces) only when it
sees the snapshot's content, and 0 otherwise: a resume that ran on anything but the
recorded snapshot would show as a falsified hypothesis and a control that does not
reproduce (exit 3), never as the expected all-supported, exit-0 session.

Moments (spread over the session): at start-up (the session may not exist yet), as soon as
the session exists (before or at its first test), after some runs finished, right after
every run was stored, and a moment later (during the analysis, or after it finished).
After the kill the user commits something new (HEAD and the working tree change), then
`refute resume` must run on the original base and snapshot, finish the session with a
verdict per hypothesis, and leave the stored base as it was. The user's checkout must be
byte-identical before and after every refute invocation.

Orphans (test processes still alive 10 s after their refute was SIGKILLed) must be 0
without any `refute clean`: the watchdog stops them (test_fault_sigkill.py measures how
fast).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from checkout_fingerprint import checkout_fingerprint

from conftest import wait_until_gone
from gitutil import git, make_repo
from refute import app

TIMEOUT = 120.0
SEED = 20261202
PY = sys.executable
ENTRY = "import sys; from refute.cli.main import main; main(sys.argv[1:])"
SNAPSHOT_README = "dirty, only in the snapshot\n"
SNAPSHOT_NEW = "untracked, only in the snapshot\n"

# Exits 1 ("reproduced") only when the worktree holds the snapshot's two files.
CHECK = (
    "import sys, time; time.sleep(float(sys.argv[1]));"
    " same = lambda n, c: open(n, encoding='utf-8').read() == c;"
    f" sys.exit(1 if same('README.md', {SNAPSHOT_README!r}) and same('new.txt', {SNAPSHOT_NEW!r})"
    " else 0)"
)

MOMENTS = ("startup", "session_created", "mid_tests", "all_stored", "analysis")
TRIALS_PER_MOMENT = 4  # 20 trials in all


def refute(*args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-c", ENTRY, *args],
        cwd=cwd,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_plan(path: Path) -> Path:
    def test(delay: float) -> list[str]:
        return [PY, "-c", CHECK, str(delay)]

    plan = {
        "version": 1,
        "bug": "a bug only the uncommitted work has",
        "include_uncommitted": True,
        "concurrency": 2,
        "defaults": {"timeout": 60},
        "control": {"test": test(0.15)},
        "hypotheses": [
            {"id": "first", "description": "first", "test": test(0.1), "probability": 0.9},
            {"id": "second", "description": "second", "test": test(0.2), "probability": 0.8},
            {
                "id": "third",
                "description": "third, twice",
                "test": test(0.05),
                "repeat": 2,
                "probability": 0.7,
            },
        ],
    }
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


TOTAL_RUNS = 5  # control 1 + first 1 + second 1 + third 2


def database() -> Path:
    return Path(os.environ["REFUTE_HOME"]) / "state" / "refute.sqlite3"


def query(sql: str, *params: object) -> list[tuple[Any, ...]]:
    if not database().exists():
        return []
    conn = sqlite3.connect(f"file:{database()}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def session_of(repo: Path) -> str | None:
    rows = query("SELECT id FROM sessions WHERE repo = ?", str(repo.resolve()))
    return rows[0][0] if rows else None


def finished_runs(session_id: str) -> set[tuple[str, int, float]]:
    rows = query(
        "SELECT hypothesis_id, attempt, started_at FROM runs WHERE session_id = ? AND not_run = 0",
        session_id,
    )
    return {(h, a, s) for h, a, s in rows}


@dataclass
class Trial:
    moment: str
    number: int
    repo: Path
    plan: Path
    session: str | None = None
    orphans: int = 0
    status_after_kill: str | None = None
    stored_runs: set[tuple[str, int, float]] = field(default_factory=set)
    base: dict[str, Any] | None = None


def wait_for(predicate: Any, proc: subprocess.Popen[str], what: str) -> bool:
    """Wait until `predicate()`; False when refute ended first (it finished too soon)."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"hang: waiting for {what}"
        time.sleep(0.005)
    return True


def run_and_kill(trial: Trial, rng: random.Random, stderr_path: Path) -> None:
    before = checkout_fingerprint(trial.repo)
    with open(stderr_path, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [PY, "-c", ENTRY, "run", str(trial.plan), "--format", "json"],
            cwd=trial.repo,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    try:
        stderr = lambda: stderr_path.read_text(encoding="utf-8")  # noqa: E731
        if trial.moment == "startup":
            time.sleep(rng.uniform(0.2, 1.6))
        elif trial.moment == "session_created":
            wait_for(lambda: "refute: session " in stderr(), proc, "the session")
            time.sleep(rng.uniform(0.0, 0.03))
        elif trial.moment == "mid_tests":
            count = rng.randint(1, TOTAL_RUNS - 1)
            wait_for(lambda: len(re.findall(r"finished\s", stderr())) >= count, proc, "runs")
            time.sleep(rng.uniform(0.0, 0.05))
        else:

            def all_stored() -> bool:
                sid = session_of(trial.repo)
                return sid is not None and len(finished_runs(sid)) >= TOTAL_RUNS

            wait_for(all_stored, proc, "every run stored")
            if trial.moment == "analysis":
                time.sleep(rng.uniform(0.0, 0.008))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    assert "Traceback" not in stderr_path.read_text(encoding="utf-8")
    # The watchdog stops a killed refute's tests within about a second; no `refute clean`.
    trial.orphans = len(wait_until_gone(os.environ["REFUTE_TEST_TAG"], timeout=10))
    assert checkout_fingerprint(trial.repo) == before, "refute run changed the checkout"
    trial.session = session_of(trial.repo)
    if trial.session is not None:
        trial.stored_runs = finished_runs(trial.session)


def stale_leases() -> list[tuple[str, str, bool]]:
    """Pool leases not "free" (or unreadable): (lease file, its text, slot dir exists)."""
    stale = []
    for lease in (Path(os.environ["REFUTE_HOME"]) / "cache" / "worktrees").glob("*/leases/*.json"):
        text = lease.read_text(encoding="utf-8")
        try:
            state = json.loads(text).get("state")
        except ValueError:
            state = None
        if state != "free":
            slot = lease.parent.parent / "slots" / lease.stem
            stale.append((str(lease), text, slot.exists()))
    return stale


def move_on(repo: Path) -> None:
    """The user commits something new: HEAD and every file of the snapshot change."""
    (repo / "README.md").write_text("moved on\n", encoding="utf-8")
    (repo / "new.txt").write_text("moved on too\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "moved on")


def stored_document(trial: Trial) -> dict[str, Any]:
    """`refute show` of the trial's session (in-process for most trials: the same
    `app.show`, without a second of interpreter start-up each)."""
    assert trial.session is not None
    if trial.number:
        return asyncio.run(app.show(trial.session))
    shown = refute("show", trial.session, "--format", "json", cwd=trial.repo)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    doc: dict[str, Any] = json.loads(shown.stdout)
    return doc


def resume_and_check(trial: Trial) -> None:
    """The user moves on; `refute resume` finishes the session on its recorded snapshot."""
    move_on(trial.repo)
    before = checkout_fingerprint(trial.repo)
    if trial.session is None:
        # Killed before its session existed: nothing to resume; clean removes the
        # snapshot ref such a refute may have made.
        cleaned = refute("clean", cwd=trial.repo)
        assert cleaned.returncode == 0, cleaned.stderr
        assert git(trial.repo, "for-each-ref", "refs/refute/") == ""
        assert checkout_fingerprint(trial.repo) == before
        return
    resumed = refute("resume", trial.session, "--format", "json", cwd=trial.repo)
    assert resumed.returncode == 0, (trial, resumed.stderr)
    assert "Traceback" not in resumed.stderr
    assert checkout_fingerprint(trial.repo) == before, "refute resume changed the checkout"
    doc = json.loads(resumed.stdout)
    session = doc["session"]
    assert session["id"] == trial.session
    assert session["status"] == "completed"
    assert session["exit_code"] == 0
    assert session["base"] == trial.base, "the stored base was overwritten"
    assert doc["control"]["verdict"] == "reproduced"
    for hyp in doc["hypotheses"]:
        assert hyp["verdict"] == "supported", (trial, hyp["id"], hyp["runs"])
        assert [run["result"] for run in hyp["runs"]] == ["fail"] * hyp["repeat"]
    after = finished_runs(trial.session)
    assert trial.stored_runs <= after, "a run stored before the kill was lost"
    assert len(after) == TOTAL_RUNS
    assert git(trial.repo, "for-each-ref", "refs/refute/") == ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_then_resume_on_the_recorded_snapshot(
    tmp_path: Path, test_tag: str
) -> None:
    rng = random.Random(SEED)
    trials = [
        Trial(
            moment,
            number,
            tmp_path / f"repo-{moment}-{number}",
            tmp_path / f"plan-{moment}-{number}.json",
        )
        for moment in MOMENTS
        for number in range(TRIALS_PER_MOMENT)
    ]
    for trial in trials:
        make_repo(trial.repo, {"README.md": "committed\n", "src/app.py": "print('app')\n"})
        (trial.repo / "README.md").write_text(SNAPSHOT_README, encoding="utf-8")
        (trial.repo / "new.txt").write_text(SNAPSHOT_NEW, encoding="utf-8")
        write_plan(trial.plan)
        run_and_kill(trial, rng, tmp_path / f"run-{trial.moment}-{trial.number}.stderr")

    # `history` reports every session its refute did not finish as interrupted (owner dead).
    history = refute("history", "--all", "-n", "100", cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    # One line per session: its id first, then start, status and exit code.
    rows = {
        line.split()[0]: line
        for line in history.stdout.splitlines()
        if re.match(r"\d{8}T\d{6}-[0-9a-f]+ ", line)
    }
    unfinished = []
    for trial in trials:
        if trial.session is None:
            continue
        doc = stored_document(trial)  # `refute show`
        trial.status_after_kill = doc["session"]["status"]
        trial.base = doc["session"]["base"]
        assert trial.status_after_kill in {"interrupted", "completed"}, trial
        assert trial.session in rows, history.stdout
        assert trial.status_after_kill in rows[trial.session], rows[trial.session]
        # Stored before the first test started: the base and its snapshot.
        assert trial.base["sha"]
        assert trial.base["snapshot_of"]
        assert trial.base["snapshot_ref"]
        assert git(trial.repo, "show", f"{trial.base['sha']}:new.txt") == SNAPSHOT_NEW
        if trial.status_after_kill == "interrupted":
            unfinished.append(trial)
            assert doc["session"]["exit_code"] is None

    # Two resumes at a time (separate repositories, one state directory, as two users'
    # terminals would): the module stays near a minute on a loaded two-core machine.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(resume_and_check, trial) for trial in trials]:
            done.result()

    leftover = len(wait_until_gone(test_tag, timeout=30))
    assert leftover == 0, "tests outlived their SIGKILLed refute (no `refute clean` was run)"
    assert all(t.orphans == 0 for t in trials), [(t.moment, t.orphans) for t in trials]
    stale = stale_leases()
    assert stale == [], stale
    figures = {
        moment: {
            "trials": sum(t.moment == moment for t in trials),
            "no_session": sum(t.moment == moment and t.session is None for t in trials),
            "interrupted": sum(t.moment == moment and t in unfinished for t in trials),
            "orphans": sum(t.orphans for t in trials if t.moment == moment),
        }
        for moment in MOMENTS
    }
    print(f"\nrefute-fault-lifecycle figures: {json.dumps(figures)} leftover_at_end={leftover}")
    assert sum(len(t.stored_runs) for t in trials) > 0
    assert len(unfinished) >= len(trials) // 2
