"""SIGKILL of refute at random moments: its tests die with it, without `refute clean`.

A real `python -m refute.cli run plan.yaml` runs a plan whose tests linger, spawn children
that ignore SIGTERM, double-fork a setsid daemon and ignore SIGTERM themselves (see
procfaults.py: a test that finds itself orphaned sleeps 300 s more). refute is SIGKILLed
at seeded random moments spread over a whole session; then, running nothing, the test
asserts that every process carrying the test's tag is gone within a bound, that refute's
watchdog is gone too, and that the user's checkout (with uncommitted work of every kind)
is byte-identical. Leases a dead refute left are counted (the next start reconciles them;
the last step checks that it does).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from procfaults import (
    Project,
    checkout_fingerprint,
    held_leases,
    make_project,
    program,
    wait_for,
)

from conftest import live_tagged, watchdogs_of

SEED = 20261201
TRIALS = 20
LANES = 2
#: Generous bound for the tests of a dead refute to be gone (the goal is < 5 s).
GONE_BOUND = 30.0
#: What the figures in docs/decisions.md §17.3 were measured with.
FIGURES: dict[str, object] = {}


def _session(project: Project, name: str, kill_at: float | None) -> dict[str, object]:
    """One run of refute; SIGKILL it `kill_at` seconds after start (None: let it finish)."""
    plan = project.plan(f"{name}.yaml", daemon_pidfile=project.root / f"{name}.daemon.pid")
    stderr = project.root / f"{name}.stderr"
    proc = project.start(plan, stderr)
    start = time.monotonic()
    if kill_at is not None:
        try:
            proc.wait(timeout=kill_at)
        except subprocess.TimeoutExpired:  # still running, as intended
            os.kill(proc.pid, signal.SIGKILL)
    code = proc.wait(timeout=120)
    return {
        "pid": proc.pid,
        "code": code,
        "seconds": time.monotonic() - start,
        "stderr": stderr.read_text(encoding="utf-8", errors="replace"),
    }


def _aftermath(project: Project, refute_pid: int) -> dict[str, object]:
    gone_after = wait_for(lambda: not live_tagged(project.tag), GONE_BOUND)
    watchdog_gone = wait_for(lambda: not watchdogs_of(refute_pid), GONE_BOUND)
    left = live_tagged(project.tag)
    for proc in left:  # do not leave them to the next trial (counted as orphans)
        proc.kill()
    return {
        "orphans": len(left),
        "gone_after": gone_after,
        "watchdog_left": watchdog_gone is None,
        "held_leases": held_leases(project.home),
    }


def _lane(project: Project, seed: int, kills: int) -> list[dict[str, object]]:
    """Sessions of one project, each SIGKILLed at a seeded random moment, until `kills` of
    them were caught running (a moment past the end of a warm session kills nothing and is
    drawn again). The first, undisturbed session says how long a session lasts."""
    before = checkout_fingerprint(project.repo)
    calm = _session(project, "calm", None)
    assert calm["code"] == 0, calm["stderr"]
    assert wait_for(lambda: not live_tagged(project.tag), GONE_BOUND) is not None
    duration = float(calm["seconds"])  # type: ignore[arg-type]
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    while sum(1 for r in rows if r["code"] == -signal.SIGKILL) < kills:
        assert len(rows) < 3 * kills, rows
        number, moment = len(rows), rng.uniform(0.0, duration)
        run = _session(project, f"kill{number}", moment)
        after = _aftermath(project, int(run["pid"]))  # type: ignore[call-overload]
        changed = checkout_fingerprint(project.repo) != before
        rows.append({"moment": round(moment, 3), "duration": duration, **run, **after})
        rows[-1]["checkout_changed"] = changed
    # What dead refutes left is reconciled by the next start, still without `refute clean`.
    final = _session(project, "final", None)
    rows.append({"final": True, **final, "held_leases": held_leases(project.home)})
    rows[-1]["gone_after"] = wait_for(lambda: not live_tagged(project.tag), GONE_BOUND)
    rows[-1]["checkout_changed"] = checkout_fingerprint(project.repo) != before
    return rows


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_leaves_no_test_running(tmp_path: Path) -> None:
    # Two projects (repository, refute home, process tag) side by side halve the wall time.
    projects = [make_project(tmp_path, lane) for lane in range(LANES)]
    with ThreadPoolExecutor(LANES) as pool:
        lanes = list(
            pool.map(lambda lane: _lane(projects[lane], SEED + lane, TRIALS // LANES), range(LANES))
        )
    rows = [row for lane in lanes for row in lane if not row.get("final")]
    finals = [lane[-1] for lane in lanes]
    FIGURES.update(
        trials=len(rows),
        killed=sum(1 for r in rows if r["code"] == -signal.SIGKILL),
        orphans=sum(int(r["orphans"]) for r in rows),  # type: ignore[call-overload]
        watchdogs_left=sum(1 for r in rows if r["watchdog_left"]),
        checkout_changes=sum(1 for r in rows if r["checkout_changed"]),
        tracebacks=sum(1 for r in rows if "Traceback" in str(r["stderr"])),
        max_gone_after=max(float(r["gone_after"] or GONE_BOUND) for r in rows),  # type: ignore[arg-type]
        trials_leaving_leases=sum(1 for r in rows if r["held_leases"]),
        leases_after_next_start=sum(int(f["held_leases"]) for f in finals),  # type: ignore[call-overload]
    )
    print("sigkill figures:", FIGURES)
    for row in rows:
        print({k: v for k, v in row.items() if k != "stderr"})
    assert FIGURES["killed"] >= TRIALS
    bad = [r for r in rows if r["orphans"] or r["watchdog_left"] or r["checkout_changed"]]
    assert not bad, bad
    assert FIGURES["tracebacks"] == 0
    for final in finals:
        assert final["code"] == 0, final["stderr"]
        assert final["held_leases"] == 0
        assert final["gone_after"] is not None
        assert not final["checkout_changed"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_test_that_sigkills_refute_takes_the_others_with_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    before = checkout_fingerprint(project.repo)
    ready = project.root / "ready"
    ready.mkdir()
    # The killer waits until the other slow tests run, then SIGKILLs its parent: refute.
    killer = program(
        f"ready = {str(ready)!r}\n"
        "deadline = time.monotonic() + 60\n"
        "while len(os.listdir(ready)) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "os.kill(parent, signal.SIGKILL)\n"
        "linger(1.0)\n"
    )
    waiter = f"open(os.path.join({str(ready)!r}, str(os.getpid())), 'w').close()\nlinger(3)\n"
    plan = project.plan(
        "killer.yaml",
        daemon_pidfile=project.root / "killer.daemon.pid",
        extra=[
            {"id": "killer", "description": "kills refute", "test": killer, "probability": 0.95},
            {"id": "waiter", "description": "waits", "test": program(waiter), "probability": 0.94},
            {"id": "waiter2", "description": "waits", "test": program(waiter), "probability": 0.93},
        ],
    )
    stderr = project.root / "killer.stderr"
    proc = project.start(plan, stderr)
    assert proc.wait(timeout=120) == -signal.SIGKILL, stderr.read_text(encoding="utf-8")
    after = _aftermath(project, proc.pid)
    assert len(os.listdir(ready)) >= 2
    assert after["orphans"] == 0, after
    assert not after["watchdog_left"]
    assert checkout_fingerprint(project.repo) == before
