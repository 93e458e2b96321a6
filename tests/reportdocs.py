"""Session documents for report tests: a realistic session built by hand, field by field.

Shared by the report test modules (text, JSON, Markdown, JUnit, HTML). The documents are
written out literally, not produced by refute, so a renderer is checked against a
document it did not make.
"""

from __future__ import annotations

import re
from typing import Any

T0 = 1_795_000_000.0  # epoch seconds of the first start
SESSION_ID = "20261128T011500-3f9a2c"
LOG_DIR = f"/state/refute/logs/{SESSION_ID}"
NASTY = "ünïcødé ✓ <script>alert('x')</script> & a|b `tick` \x00nul \x1b[31mred\x1b[0m"
SPEEDUP_1_44 = (
    "about 1.4x faster than running them one after another (an estimate: the sum of run times)"
)
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def make_run(
    hid: str,
    result: str,
    *,
    attempt: int = 1,
    slot: int | None = 0,
    start: float = 0.0,
    duration: float = 1.0,
    exit_code: int | None = None,
    stdout: str = "",
    stderr: str = "",
    message: str = "",
    not_run: bool = False,
) -> dict[str, Any]:
    codes = {"pass": 0, "fail": 1, "timeout": 124, "error": 127, "skip": 125}
    metrics: dict[str, Any] = {"confidence": 0.6, "attempt": attempt}
    if not_run:
        metrics = {"not_run": True, "attempt": attempt, "confidence": 0.0}
    else:
        metrics["slot"] = slot
    stem = f"{LOG_DIR}/{hid}.run{attempt}"
    return {
        "hypothesis_id": hid,
        "result": result,
        "duration": 0.0 if not_run else duration,
        "stdout": stdout,
        "stderr": stderr,
        "exit_code": -1 if not_run else (codes[result] if exit_code is None else exit_code),
        "worktree_path": f"/cache/refute/worktrees/abc/{hid}",
        "error_message": message or f"the test exited with {codes[result]}",
        "metrics": metrics,
        "stdout_log": "" if not_run else f"{stem}.stdout",
        "stderr_log": "" if not_run else f"{stem}.stderr",
        "started_at": 0.0 if not_run else T0 + start,
    }


def counts_of(runs: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("pass", "fail", "timeout", "error", "skip", "not_run"), 0)
    for run in runs:
        counts["not_run" if run["metrics"].get("not_run") else run["result"]] += 1
    return counts


def make_hypothesis(
    hid: str,
    rank: int,
    verdict: str,
    runs: list[dict[str, Any]],
    *,
    description: str = "",
    reason: str = "",
    confidence: float = 0.6,
) -> dict[str, Any]:
    counts = counts_of(runs)
    valid = counts["pass"] + counts["fail"]
    return {
        "id": hid,
        "description": description or f"{hid} is the cause",
        "rank": rank,
        "score": 0.5 - rank / 10,
        "probability": 0.5,
        "impact": 0.5,
        "test_complexity": 0.5,
        "estimated_test_time": 2,
        "supported_if": "fails",
        "test": ["pytest", "-x", f"tests/test_{hid}.py"],
        "shell": False,
        "patch": None,
        "depends_on": [],
        "repeat": len(runs),
        "timeout": 120,
        "verdict": verdict,
        "confidence": confidence,
        "unreliable": False,
        "reason": reason or f"{verdict} after {len(runs)} runs",
        "unreliable_reasons": [],
        "names_checkout": False,
        "failed_differently": False,
        "counts": counts,
        "runs_total": len(runs),
        "runs_valid": valid,
        "reproduction_rate": counts["fail"] / valid if valid else None,
        "wilson_95": [0.1, 0.9] if valid else None,
        "runs": runs,
    }


def make_document() -> dict[str, Any]:
    """4 hypotheses (supported, falsified, inconclusive by skip, flaky x3), a control."""
    control_runs = [make_run("control", "fail", slot=0, start=0.0, duration=1.0)]
    token = [
        make_run(
            "token-race",
            "fail",
            slot=0,
            start=1.2,
            duration=2.0,
            stdout="collected 1 item\n",
            stderr=f"Traceback (most recent call last):\nAssertionError: {NASTY}\n",
            message="the test failed | exit `1`",
        )
    ]
    cache = [make_run("cache-stale", "pass", slot=1, start=1.2, duration=1.5)]
    clock = [
        make_run("clock-skew", "skip", slot=1, start=2.8, duration=0.2, message="cannot test"),
        make_run(
            "clock-skew",
            "skip",
            attempt=2,
            not_run=True,
            message="not run: the run was cancelled before this test finished",
        ),
    ]
    retry = [
        make_run("retry-storm", "fail", attempt=1, slot=0, start=3.3, duration=0.5),
        make_run("retry-storm", "pass", attempt=2, slot=1, start=3.3, duration=0.6),
        make_run("retry-storm", "fail", attempt=3, slot=0, start=3.9, duration=0.4),
    ]
    hypotheses = [
        make_hypothesis(
            "token-race",
            1,
            "supported",
            token,
            description="Token expiry | races with `refresh` & <b>",
            reason="the test failed (bug reproduced) in 1 of 1 valid runs",
        ),
        make_hypothesis("cache-stale", 2, "falsified", cache, confidence=0.6),
        make_hypothesis("clock-skew", 3, "inconclusive", clock, confidence=0.0),
        make_hypothesis("retry-storm", 4, "flaky", retry, confidence=0.12),
    ]
    return {
        "schema": "refute.session/1",
        "session": {
            "id": SESSION_ID,
            "repo": "/abs/repo",
            "plan_path": "/abs/repo/plan.yaml",
            "bug": "Auth service randomly rejects valid sessions (ünïcødé)",
            "status": "completed",
            "started_at": "2026-11-28T01:15:00+00:00",
            "finished_at": "2026-11-28T01:15:05+00:00",
            "base": {
                "ref": "HEAD",
                "sha": "a" * 40,
                "snapshot_of": None,
                "include_uncommitted": False,
            },
            "settings": {
                "concurrency": 2,
                "timeout": 120,
                "repeat": 1,
                "parallel": True,
                "max_hypotheses": 5,
            },
            "parallel_decision": {
                "parallel": True,
                "hypotheses": 4,
                "sequential_time": 8,
                "longest_test": 2,
                "overhead": 3,
                "cost_source": "measured",
                "reason": "sequential 8s > longest 2s + overhead 3s (measured costs)",
            },
            "exit_code": 0,
            "error": None,
        },
        "control": {
            "test": ["pytest", "-x", "tests/test_session.py"],
            "verdict": "reproduced",
            "counts": counts_of(control_runs),
            "reproduction_rate": 1.0,
            "wilson_95": [0.2065, 1.0],
            "runs": control_runs,
        },
        "hypotheses": hypotheses,
        "summary": {
            "counts": {
                "falsified": 1,
                "supported": 1,
                "inconclusive": 1,
                "flaky": 1,
                "pending": 0,
            },
            "survivors": ["token-race"],
            "recommendation": {
                "action": "fix_inconclusive",
                "message": "Fix the inconclusive and flaky tests before trusting the survivors",
                "next_steps": [
                    {
                        "action": "fix_test",
                        "hypothesis": "clock-skew",
                        "command": None,
                        "text": "make clock-skew's test runnable here (it exited 125)",
                    },
                    {
                        "action": "fix_test",
                        "hypothesis": "retry-storm",
                        "command": None,
                        "text": "stabilise retry-storm's test (2 of 3 runs failed)",
                    },
                ],
            },
            "timing": {"wall_seconds": 4.3, "sum_run_seconds": 6.2, "speedup": 1.44},
        },
    }


def make_unreliable_document() -> dict[str, Any]:
    doc = make_document()
    control = doc["control"]
    control["runs"] = [make_run("control", "pass", slot=0, start=0.0)]
    control["counts"] = counts_of(control["runs"])
    control["verdict"] = "not_reproduced"
    control.update(reproduction_rate=0.0, wilson_95=[0.0, 0.7935])
    for hyp in doc["hypotheses"]:
        hyp["unreliable"] = True
        hyp["unreliable_reasons"] = ["the control did not reproduce the bug"]
    doc["session"]["exit_code"] = 3
    doc["summary"]["recommendation"] = {
        "action": "fix_control",
        "message": "The control test did not reproduce the bug on the base commit",
        "next_steps": [{"text": "check that the control test fails on the unmodified base"}],
    }
    return doc


def all_runs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    runs = list(doc["control"]["runs"]) if doc["control"] else []
    for hyp in doc["hypotheses"]:
        runs.extend(hyp["runs"])
    return runs
