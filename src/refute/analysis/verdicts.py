"""Verdicts, confidence, repeat statistics and the session recommendation.

Pure functions over plain data (the *session document* of docs/report.md and
`TestExecutionResult.to_dict()` run dicts): no I/O, no processes, no clock. The session
runner calls `analyze_session` once the runs are in; `store` and `reports` only ever see
its output.

Reading of a run (`supported_if: fails`, the default): FAIL is evidence FOR the
hypothesis, PASS is evidence AGAINST it; TIMEOUT, ERROR, SKIP and not-run results are no
evidence. `supported_if: passes` swaps PASS and FAIL.
"""

from __future__ import annotations

import copy
import math
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

from refute.document import EXIT_CODES
from refute.model import HypothesisStatus, TestResult
from refute.model import seed_confidence as _seed_rule

#: z for a two-sided 95 % interval.
Z_95: Final = 1.959963984540054

#: The two readings of a test's outcome a hypothesis can declare.
SUPPORTED_IF_VALUES: Final = ("fails", "passes")

#: Keys of every `counts` mapping, in display order.
OUTCOME_KEYS: Final = ("pass", "fail", "timeout", "error", "skip", "not_run")

#: Keys of `summary.counts`, in display order.
VERDICT_KEYS: Final = ("falsified", "supported", "inconclusive", "flaky", "pending")

#: Control verdicts.
CONTROL_REPRODUCED: Final = "reproduced"
CONTROL_NOT_REPRODUCED: Final = "not_reproduced"
CONTROL_PENDING: Final = "pending"

#: Exit code of a session whose control did not reproduce the bug.
EXIT_CONTROL_NOT_REPRODUCED: Final = EXIT_CODES["control_not_reproduced"]

#: Below this many valid runs, a lone survivor's next steps suggest repeating its test.
_FEW_RUNS: Final = 3
#: The repeat count the next steps suggest.
_SUGGESTED_REPEAT: Final = 5
#: Digits kept for rates, intervals and confidences in the document.
_DIGITS: Final = 4

Evidence: TypeAlias = Literal["for", "against"] | None

_SUPPORTED = HypothesisStatus.SUPPORTED.value
_FALSIFIED = HypothesisStatus.FALSIFIED.value
_INCONCLUSIVE = HypothesisStatus.INCONCLUSIVE.value
_FLAKY = HypothesisStatus.FLAKY.value
_PENDING = HypothesisStatus.PENDING.value

# What an outcome says about the bug, independent of the hypothesis' reading.
_OUTCOME_MEANING: Final = {
    TestResult.FAIL: "failed (bug reproduced)",
    TestResult.PASS: "passed (bug not reproduced)",
}
# Outcomes that are not evidence, in the order reasons list them.
_NOT_EVIDENCE_KEYS: Final = ("timeout", "error", "skip", "not_run")


# -- statistics -----------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion `successes / n` (95 % by default).

    Returns None when `n == 0` (no observation, no interval). The bounds are clamped to
    [0, 1] and are exact at the edges (0 successes: lower bound 0; n successes: upper 1).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a finite number > 0, got {z!r}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


# -- one run --------------------------------------------------------------------------------


def _outcome(result: TestResult | str) -> TestResult:
    return result if isinstance(result, TestResult) else TestResult(result)


def _check_supported_if(supported_if: str) -> None:
    if supported_if not in SUPPORTED_IF_VALUES:
        raise ValueError(f"supported_if must be 'fails' or 'passes', got {supported_if!r}")


def run_evidence(result: TestResult | str, supported_if: str) -> Evidence:
    """What one run's outcome says about its hypothesis: "for", "against" or None.

    With `supported_if="fails"`, FAIL is evidence for and PASS against; `"passes"` swaps
    them. TIMEOUT, ERROR and SKIP are no evidence (a not-run result is a SKIP).
    """
    _check_supported_if(supported_if)
    outcome = _outcome(result)
    if outcome not in (TestResult.PASS, TestResult.FAIL):
        return None
    supporting = TestResult.FAIL if supported_if == "fails" else TestResult.PASS
    return "for" if outcome is supporting else "against"


def _is_not_run(run: Mapping[str, Any]) -> bool:
    metrics = run.get("metrics") or {}
    return bool(metrics.get("not_run", False))


def _run_key(run: Mapping[str, Any]) -> str:
    """The `counts` key of one run: its outcome, or "not_run"."""
    return "not_run" if _is_not_run(run) else _outcome(run["result"]).value


def _duration(run: Mapping[str, Any]) -> float:
    value = run.get("duration") or 0.0
    return float(value) if math.isfinite(float(value)) else 0.0


def count_outcomes(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many runs had each outcome; not-run results count as "not_run", not "skip"."""
    counts = dict.fromkeys(OUTCOME_KEYS, 0)
    for run in runs:
        counts[_run_key(run)] += 1
    return counts


def seed_confidence(run: Mapping[str, Any]) -> float:
    """The seed's single-run confidence: TIMEOUT 0.3, ERROR 0.2, PASS/FAIL 0.6 under 5 s
    and 0.85 from 5 s; SKIP and not-run results 0.0 (they are no evidence at all)."""
    outcome = _outcome(run["result"])
    if _is_not_run(run) or outcome is TestResult.SKIP:
        return 0.0
    return _seed_rule(outcome, _duration(run))


# -- one hypothesis -------------------------------------------------------------------------


def _not_counted(counts: Mapping[str, int]) -> list[str]:
    return [f"{counts[k]} {k.replace('_', ' ')}" for k in _NOT_EVIDENCE_KEYS if counts[k]]


def _with_not_counted(sentence: str, counts: Mapping[str, int]) -> str:
    extra = _not_counted(counts)
    return f"{sentence}; not counted: {', '.join(extra)}" if extra else sentence


def _disagreement(counts: Mapping[str, int]) -> str:
    # Majority first; on a tie, "fail" (the bug reproducing) first.
    parts = sorted(("fail", "pass"), key=lambda k: -counts[k])
    return ", ".join(f"{counts[k]} {k}" for k in parts)


def _round(value: float) -> float:
    return round(value, _DIGITS)


def _rate_fields(counts: Mapping[str, int]) -> dict[str, Any]:
    valid = counts["pass"] + counts["fail"]
    interval = wilson_interval(counts["fail"], valid)
    return {
        "reproduction_rate": _round(counts["fail"] / valid) if valid else None,
        "wilson_95": [_round(interval[0]), _round(interval[1])] if interval else None,
    }


def hypothesis_verdict(
    runs: Sequence[Mapping[str, Any]], supported_if: str = "fails"
) -> dict[str, Any]:
    """The analysis fields of one hypothesis from its run dicts.

    Returns `verdict` (a `HypothesisStatus` value), `confidence`, `counts`, `runs_total`,
    `runs_valid`, `reproduction_rate` (FAIL / (PASS + FAIL), None without a valid run),
    `wilson_95` ([low, high] of that rate, or None) and `reason` (one sentence).
    """
    _check_supported_if(supported_if)
    counts = count_outcomes(runs)
    total = len(runs)
    finished = total - counts["not_run"]
    valid = counts["pass"] + counts["fail"]
    supporting = "fail" if supported_if == "fails" else "pass"
    opposing = "pass" if supporting == "fail" else "fail"
    n_for, n_against = counts[supporting], counts[opposing]

    if finished == 0:
        verdict = _PENDING
        reason = f"no run finished: {counts['not_run']} not run" if total else "no run yet"
        agreeing = 0
    elif valid == 0:
        verdict = _INCONCLUSIVE
        reason = f"no valid run: {', '.join(_not_counted(counts))}"
        agreeing = 0
    elif n_against == 0 or n_for == 0:
        verdict = _SUPPORTED if n_against == 0 else _FALSIFIED
        outcome = TestResult(supporting if n_against == 0 else opposing)
        reason = _with_not_counted(
            f"the test {_OUTCOME_MEANING[outcome]} in {valid} of {valid} valid runs", counts
        )
        agreeing = valid
    else:
        verdict = _FLAKY
        reason = _with_not_counted(f"valid runs disagree: {_disagreement(counts)}", counts)
        agreeing = max(n_for, n_against)

    if total == 1:
        confidence = seed_confidence(runs[0])
    else:
        interval = wilson_interval(agreeing, valid)
        confidence = interval[0] * valid / total if interval and agreeing else 0.0

    return {
        "verdict": verdict,
        "confidence": _round(confidence),
        "counts": counts,
        "runs_total": total,
        "runs_valid": valid,
        **_rate_fields(counts),
        "reason": reason,
    }


# -- the control ----------------------------------------------------------------------------


def control_verdict(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the control (the test on the unmodified base) reproduced the bug.

    "reproduced": at least one valid run and every valid run FAIL; "pending": no run
    finished; otherwise "not_reproduced". Returns `verdict`, `counts` and `reason`.
    """
    counts = count_outcomes(runs)
    finished = len(runs) - counts["not_run"]
    valid = counts["pass"] + counts["fail"]
    if finished == 0:
        verdict = CONTROL_PENDING
        reason = (
            f"no control run finished: {counts['not_run']} not run"
            if runs
            else "the control has not run yet"
        )
    elif valid and counts["pass"] == 0:
        verdict = CONTROL_REPRODUCED
        reason = _with_not_counted(
            f"the control failed (bug reproduced) in {valid} of {valid} valid runs"
            " on the unmodified base",
            counts,
        )
    elif valid == 0:
        verdict = CONTROL_NOT_REPRODUCED
        reason = (
            f"no valid control run ({', '.join(_not_counted(counts))}):"
            " the bug was not shown to reproduce on the unmodified base"
        )
    else:
        verdict = CONTROL_NOT_REPRODUCED
        reason = _with_not_counted(
            f"the control passed (bug not reproduced) in {counts['pass']} of {valid}"
            " valid runs on the unmodified base",
            counts,
        )
    return {"verdict": verdict, "counts": counts, "reason": reason}


# -- the session ----------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _join_and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _command(test: object) -> str:
    if isinstance(test, list):
        return shlex.join(str(part) for part in test)
    return str(test)


def _in_rank_order(hypotheses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hypotheses sorted by `rank` (missing ranks last), document order among equals."""

    def key(item: tuple[int, dict[str, Any]]) -> tuple[bool, float, int]:
        index, hyp = item
        rank: object = hyp.get("rank")
        if isinstance(rank, int | float) and not isinstance(rank, bool):
            return (False, float(rank), index)
        return (True, 0.0, index)

    return [hyp for _, hyp in sorted(enumerate(hypotheses), key=key)]


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _session_wall_seconds(session: Mapping[str, Any]) -> float | None:
    started = _parse_time(session.get("started_at"))
    finished = _parse_time(session.get("finished_at"))
    if started is None or finished is None:
        return None
    try:
        return (finished - started).total_seconds()
    except TypeError:  # one naive, one aware: not comparable
        return None


def _timing(
    hypotheses: Sequence[Mapping[str, Any]],
    control: Mapping[str, Any] | None,
    session: Mapping[str, Any],
    wall_seconds: float | None,
) -> dict[str, Any]:
    wall = wall_seconds if wall_seconds is not None else _session_wall_seconds(session)
    if wall is not None and not (math.isfinite(wall) and wall >= 0):
        wall = None
    runs = [run for hyp in hypotheses for run in hyp.get("runs") or []]
    if control is not None:
        runs.extend(control.get("runs") or [])
    total = sum(_duration(run) for run in runs)
    return {
        "wall_seconds": round(wall, 3) if wall is not None else None,
        "sum_run_seconds": round(total, 3),
        "speedup": round(total / wall, 2) if wall else None,
    }


def _pending_step(pending: Sequence[Mapping[str, Any]]) -> list[str]:
    if not pending:
        return []
    ids = _join_and([str(h["id"]) for h in pending])
    noun = _plural(len(pending), "hypothesis", "hypotheses")
    return [f"Resume the session to run the pending {noun}: {ids}."]


def _fix_test_step(hyp: Mapping[str, Any]) -> str:
    hid, counts = hyp["id"], hyp["counts"]
    if hyp["verdict"] == _FLAKY:
        rate, interval = hyp["reproduction_rate"], hyp["wilson_95"]
        return (
            f"Stabilise the test of {hid}: {hyp['reason']}; the bug reproduced in"
            f" {rate:.0%} of valid runs (95 % interval {interval[0]:.0%}-{interval[1]:.0%})."
            " Remove the nondeterminism (seeds, timing, shared state) or, if the hypothesis"
            " is itself about timing, make the test force the interleaving."
        )
    hints = []
    if counts["timeout"]:
        timeout = hyp.get("timeout")
        now = (
            f" (now {timeout:g} s)"
            if isinstance(timeout, int | float) and not isinstance(timeout, bool)
            else ""
        )
        hints.append(f"raise its timeout{now} or make the test faster")
    if counts["error"]:
        hints.append(
            "check that the command exists and runs in a fresh worktree"
            " (setup, paths; exit 126/127 or a crash is an error, not evidence)"
        )
    if counts["skip"]:
        hints.append("it exited 125 (cannot test here): make it runnable in a worktree")
    if counts["not_run"] and not (counts["timeout"] or counts["error"] or counts["skip"]):
        hints.append("resume the session to run it")
    tail = f"; {'; '.join(hints)}" if hints else ""
    return f"Fix the test of {hid}: {hyp['reason']}{tail}."


def _recommend(
    hypotheses: Sequence[dict[str, Any]],
    control: Mapping[str, Any] | None,
    session: Mapping[str, Any],
) -> dict[str, Any]:
    ordered = _in_rank_order(hypotheses)
    by_verdict: dict[str, list[dict[str, Any]]] = {v: [] for v in VERDICT_KEYS}
    for hyp in ordered:
        by_verdict[hyp["verdict"]].append(hyp)
    survivors = by_verdict[_SUPPORTED]
    survivor_ids = [str(h["id"]) for h in survivors]
    pending_steps = _pending_step(by_verdict[_PENDING])

    if control is not None and control.get("verdict") == CONTROL_NOT_REPRODUCED:
        base = session.get("base") or {}
        where = " ".join(
            str(part) for part in (base.get("ref"), (base.get("sha") or "")[:12]) if part
        )
        steps = []
        if control.get("test"):
            on = f" on the base ({where})" if where else " on the base"
            steps.append(f"Run the control by hand{on}: {_command(control['test'])}")
        steps += [
            f"The control's result: {control.get('reason', 'it did not reproduce the bug')}.",
            (
                "Make the control fail reliably on the unmodified base: a test that does not"
                " reproduce the bug can neither support nor falsify a hypothesis."
            ),
            "Run the session again; until then every verdict is marked unreliable.",
        ]
        return {
            "action": "fix_control",
            "message": "The control did not reproduce the bug on the unmodified base,"
            " so no verdict of this session can be trusted.",
            "next_steps": steps,
        }

    unclear = [h for h in ordered if h["verdict"] in (_INCONCLUSIVE, _FLAKY)]
    if unclear:
        n = len(unclear)
        listed = ", ".join(f"{h['id']} {h['verdict']}" for h in unclear)
        steps = [_fix_test_step(h) for h in unclear]
        if survivor_ids:
            steps.append(
                f"Meanwhile supported: {_join_and(survivor_ids)}"
                " (provisional until the tests above give a clear answer)."
            )
        steps += pending_steps
        steps.append("Run the session again once the tests are fixed.")
        return {
            "action": "fix_inconclusive",
            "message": f"{n} {_plural(n, 'hypothesis', 'hypotheses')} gave no clear answer"
            f" ({listed}): fix {_plural(n, 'its test', 'their tests')} before drawing"
            " conclusions.",
            "next_steps": steps,
        }

    if not survivors:
        tally = ", ".join(
            f"{len(by_verdict[v])} {v}" for v in (_FALSIFIED, _PENDING) if by_verdict[v]
        )
        falsified_ids = [str(h["id"]) for h in by_verdict[_FALSIFIED]]
        steps = list(pending_steps)
        if falsified_ids:
            steps += [
                f"Write new hypotheses about the cause; ruled out: {_join_and(falsified_ids)}.",
                (
                    "Before discarding them, read the falsified tests' output: a test that"
                    " gets its outcome for an unrelated reason (wrong target, missing setup)"
                    " falsifies nothing."
                ),
            ]
        else:
            steps.append("Write hypotheses about the cause, each with a falsification test.")
        if control is None:
            steps.append(
                "Add a control to the plan (the reproduction test on the unmodified base)"
                " to confirm the tests can see the bug at all."
            )
        return {
            "action": "new_hypotheses",
            "message": f"No hypothesis survived ({tally})."
            if tally
            else "No hypothesis survived: the session tested none.",
            "next_steps": steps,
        }

    if len(survivors) == 1:
        top = survivors[0]
        hid = top["id"]
        description = str(top.get("description") or "").strip()
        about = f"{description}; {top['reason']}" if description else top["reason"]
        steps = [f"Focus on {hid}: {about}."]
        if top["runs_valid"] < _FEW_RUNS:
            steps.append(
                f"Confirm it with repeated runs (repeat: {_SUGGESTED_REPEAT} for {hid}):"
                f" the confidence rests on {top['runs_valid']} valid"
                f" {_plural(top['runs_valid'], 'run', 'runs')}."
            )
        if top.get("supported_if") == "passes":
            patch = top.get("patch")
            steps.append(
                f"Its candidate fix{f' ({patch})' if patch else ''} made the test pass:"
                " review it as the fix and keep the test as a regression test."
            )
        else:
            steps.append(
                f"Write a candidate fix for {hid} as a patch and test it as a hypothesis"
                " with supported_if: passes; then keep the test as a regression test."
            )
        steps += pending_steps
        return {
            "action": "focus",
            "message": f"Focus on {hid}: the only surviving hypothesis"
            f" (confidence {top['confidence']:.2f}).",
            "next_steps": steps,
        }

    top = survivors[0]
    steps = [
        (
            f"Write tests that separate {_join_and(survivor_ids)}: each should reproduce the"
            " bug under one hypothesis only (e.g. apply one hypothesis' candidate fix as a"
            " patch and check whether the bug is gone)."
        ),
        (
            f"Start with {top['id']}, the highest-ranked survivor"
            f" (confidence {top['confidence']:.2f})."
        ),
    ]
    few = [str(h["id"]) for h in survivors if h["runs_valid"] < _FEW_RUNS]
    if few:
        steps.append(
            f"Repeat the tests of {_join_and(few)} (repeat: {_SUGGESTED_REPEAT}) to compare"
            " the survivors' confidence on more runs."
        )
    steps += pending_steps
    return {
        "action": "refine_tests",
        "message": f"{len(survivors)} hypotheses survive ({', '.join(survivor_ids)}):"
        " write tests that tell them apart.",
        "next_steps": steps,
    }


def analyze_session(doc: Mapping[str, Any], *, wall_seconds: float | None = None) -> dict[str, Any]:
    """A copy of the session document with the analysis filled in.

    Every hypothesis gets the fields of `hypothesis_verdict` plus `unreliable` (True when
    the control ran and did not reproduce the bug); a control gets the fields of
    `control_verdict`; `summary` gets `counts`, `survivors` (supported ids in rank order),
    `recommendation` ({action, message, next_steps}) and `timing` ({wall_seconds,
    sum_run_seconds, speedup}). `wall_seconds` overrides the session's
    `finished_at - started_at`. The input is not modified.
    """
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    session: Mapping[str, Any] = out.get("session") or {}

    control = out.get("control")
    if control is not None:
        control.update(control_verdict(control.get("runs") or []))
    unreliable = control is not None and control["verdict"] == CONTROL_NOT_REPRODUCED

    hypotheses: list[dict[str, Any]] = out.get("hypotheses") or []
    for hyp in hypotheses:
        hyp.update(hypothesis_verdict(hyp.get("runs") or [], hyp.get("supported_if") or "fails"))
        hyp["unreliable"] = unreliable

    counts = dict.fromkeys(VERDICT_KEYS, 0)
    for hyp in hypotheses:
        counts[hyp["verdict"]] += 1
    summary = dict(out.get("summary") or {})
    summary.update(
        {
            "counts": counts,
            "survivors": [
                hyp["id"] for hyp in _in_rank_order(hypotheses) if hyp["verdict"] == _SUPPORTED
            ],
            "recommendation": _recommend(hypotheses, control, session),
            "timing": _timing(hypotheses, control, session, wall_seconds),
        }
    )
    out["summary"] = summary
    return out


def session_exit_code(doc: Mapping[str, Any]) -> int:
    """0, or 3 when the document has a control that ran and did not reproduce the bug.

    Uses the control's `verdict` when present, otherwise derives it from its runs.
    (Interruptions and failures have their own exit codes, decided by the runner.)
    """
    control = doc.get("control")
    if control is None:
        return 0
    verdict = control.get("verdict") or control_verdict(control.get("runs") or [])["verdict"]
    return EXIT_CONTROL_NOT_REPRODUCED if verdict == CONTROL_NOT_REPRODUCED else 0
