"""Verdicts: what each run says about its hypothesis, each hypothesis' verdict and
confidence, the control's verdict, and `analyze_session`, which fills them all into a
session document (with each verdict's caveats and the summary's counts, advice and
timing).

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
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

from refute.analysis.advice import UNFINISHED_STATUSES, in_rank_order, recommend
from refute.analysis.caveats import (
    CONTROL_UNRELIABLE_REASON,
    checkout_reason,
    different_failure_reason,
)
from refute.analysis.statistics import (
    confidence_bound,
    reproduction_fields,
    round_share,
    run_duration,
    session_timing,
)
from refute.document import (
    CONTROL_NOT_REPRODUCED,
    CONTROL_PENDING,
    CONTROL_REPRODUCED,
    EXIT_CODES,
    NOT_RUN,
    OUTCOME_KEYS,
    SUPPORTED_IF_VALUES,
    VERDICT_KEYS,
)
from refute.model import HypothesisStatus, TestResult
from refute.model import seed_confidence as _seed_rule

__all__ = [
    "EXIT_CONTROL_NOT_REPRODUCED",
    "Evidence",
    "analyze_session",
    "control_verdict",
    "count_outcomes",
    "hypothesis_verdict",
    "run_evidence",
    "seed_confidence",
    "session_exit_code",
]

#: Exit code of a session whose control did not reproduce the bug.
EXIT_CONTROL_NOT_REPRODUCED: Final = EXIT_CODES["control_not_reproduced"]

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
# The same for a candidate fix (`supported_if: passes`): its test runs with the change.
_FIX_OUTCOME_MEANING: Final = {
    TestResult.FAIL: "still failed with the fix (the bug remains)",
    TestResult.PASS: "passed with the fix (the bug is gone)",
}
# Outcomes that are not evidence, in the order reasons list them.
_NOT_EVIDENCE_KEYS: Final = tuple(key for key in OUTCOME_KEYS if key not in {"pass", "fail"})


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
    return NOT_RUN if _is_not_run(run) else _outcome(run["result"]).value


def count_outcomes(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many runs had each outcome; not-run results count as "not_run", not "skip"."""
    counts: dict[str, int] = dict.fromkeys(OUTCOME_KEYS, 0)
    for run in runs:
        counts[_run_key(run)] += 1
    return counts


def seed_confidence(run: Mapping[str, Any]) -> float:
    """The seed's single-run confidence: TIMEOUT 0.3, ERROR 0.2, PASS/FAIL 0.6 under 5 s
    and 0.85 from 5 s; SKIP and not-run results 0.0 (they are no evidence at all).

    The seed's contract for one run (what the engine writes as `metrics.confidence`), kept
    for its callers; a hypothesis' `confidence` is `confidence_bound`, never this."""
    outcome = _outcome(run["result"])
    if _is_not_run(run) or outcome is TestResult.SKIP:
        return 0.0
    return _seed_rule(outcome, run_duration(run))


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


def hypothesis_verdict(
    runs: Sequence[Mapping[str, Any]], supported_if: str = "fails"
) -> dict[str, Any]:
    """The analysis fields of one hypothesis from its run dicts.

    Returns `verdict` (a `HypothesisStatus` value), `confidence`, `counts`, `runs_total`,
    `runs_valid`, `reproduction_rate` (FAIL / (PASS + FAIL), None without a valid run),
    `wilson_95` ([low, high] of that rate, or None) and `reason` (one sentence).

    `confidence` is `confidence_bound(agreeing, valid)`: the one-sided 95 % Wilson lower
    bound of the share of valid runs that agree with the verdict (for FLAKY, with the
    majority); 0 without a valid run. Durations and runs that are no evidence (timeout,
    error, skip, not run) do not enter it.
    """
    _check_supported_if(supported_if)
    counts = count_outcomes(runs)
    total = len(runs)
    finished = total - counts["not_run"]
    valid = counts["pass"] + counts["fail"]
    supporting = "fail" if supported_if == "fails" else "pass"
    opposing = "pass" if supporting == "fail" else "fail"
    n_for, n_against = counts[supporting], counts[opposing]
    meanings = _FIX_OUTCOME_MEANING if supported_if == "passes" else _OUTCOME_MEANING

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
            f"the test {meanings[outcome]} in {valid} of {valid} valid runs", counts
        )
        agreeing = valid
    else:
        verdict = _FLAKY
        reason = _with_not_counted(f"valid runs disagree: {_disagreement(counts)}", counts)
        agreeing = max(n_for, n_against)

    return {
        "verdict": verdict,
        "confidence": round_share(confidence_bound(agreeing, valid)),
        "counts": counts,
        "runs_total": total,
        "runs_valid": valid,
        **reproduction_fields(counts),
        "reason": reason,
    }


# -- the control ----------------------------------------------------------------------------


def control_verdict(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the control (the test on the unmodified base) reproduced the bug.

    "reproduced": at least one valid run FAIL (an intermittent bug reproduces in some runs
    only); "pending": no run finished; otherwise "not_reproduced" (no valid run, or every
    valid run passed). Returns `verdict`, `counts`, `reproduction_rate` (FAIL / (PASS +
    FAIL), None without a valid run), `wilson_95` (its 95 % Wilson interval) and `reason`.
    """
    counts = count_outcomes(runs)
    finished = len(runs) - counts["not_run"]
    valid = counts["pass"] + counts["fail"]
    rates = reproduction_fields(counts)
    if finished == 0:
        verdict = CONTROL_PENDING
        reason = (
            f"no control run finished: {counts['not_run']} not run"
            if runs
            else "the control has not run yet"
        )
    elif counts["fail"]:
        verdict = CONTROL_REPRODUCED
        low, high = rates["wilson_95"]
        rate = (
            ""
            if counts["fail"] == valid
            else f" (reproduction rate {rates['reproduction_rate']:.0%},"
            f" 95 % interval {low:.0%}-{high:.0%})"
        )
        reason = _with_not_counted(
            f"the control failed (bug reproduced) in {counts['fail']} of {valid} valid runs"
            f" on the unmodified base{rate}",
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
    return {"verdict": verdict, "counts": counts, **rates, "reason": reason}


# -- the session ----------------------------------------------------------------------------


def _caveats(
    hyp: Mapping[str, Any],
    control_runs: Sequence[Mapping[str, Any]],
    repo: str,
    *,
    control_unreliable: bool,
) -> dict[str, Any]:
    """`unreliable`, `unreliable_reasons`, `names_checkout`, `failed_differently`, and the
    `reason` with the caveats added (`refute.analysis.caveats`)."""
    runs: Sequence[Mapping[str, Any]] = hyp.get("runs") or []
    reasons = [CONTROL_UNRELIABLE_REASON] if control_unreliable else []
    reason = str(hyp.get("reason") or "")
    named = checkout_reason(runs, repo)
    if named is not None:
        reasons.append(named)
        reason += f"; unreliable: {named}"
    # A failure_pattern already decided which failures count (the others are errors).
    different = (
        different_failure_reason(runs, control_runs) if hyp.get("failure_pattern") is None else None
    )
    if different is not None:
        reason += f"; {different}"
    return {
        "reason": reason,
        "unreliable": bool(reasons),
        "unreliable_reasons": reasons,
        "names_checkout": named is not None,
        "failed_differently": different is not None,
    }


def _unfinished(fields: dict[str, Any]) -> dict[str, Any]:
    """The verdict fields of a hypothesis (or the control) whose runs were cut short by the
    session's end (interrupted, failed): "pending", whatever its finished runs said."""
    counts = fields["counts"]
    total = fields["runs_total"] if "runs_total" in fields else sum(counts.values())
    finished = total - counts["not_run"]
    so_far = ", ".join(
        f"{counts[key]} {key}"
        for key in ("fail", "pass", "timeout", "error", "skip")
        if counts.get(key)
    )
    reason = f"unfinished: {finished} of {total} runs finished before the session stopped" + (
        f" ({so_far} so far)" if so_far else ""
    )
    return {**fields, "verdict": _PENDING, "confidence": 0.0, "reason": reason}


def analyze_session(doc: Mapping[str, Any], *, wall_seconds: float | None = None) -> dict[str, Any]:
    """A copy of the session document with the analysis filled in.

    Every hypothesis gets the fields of `hypothesis_verdict` plus its caveats:
    `unreliable` (True when the control ran and did not reproduce the bug, or when a run's
    output names a path inside `session.repo`), `unreliable_reasons` (one sentence per
    cause), `names_checkout`, and `failed_differently` (its failing runs failed on a test
    the control's did not; the reason says which); a control gets the fields of
    `control_verdict`; `summary` gets `counts`, `survivors` (supported ids in rank order),
    `recommendation` ({action, message, next_steps}) and `timing` ({wall_seconds,
    sum_run_seconds, speedup}). `wall_seconds` overrides the session's
    `finished_at - started_at`. The input is not modified.
    """
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    session: Mapping[str, Any] = out.get("session") or {}

    cut_short = session.get("status") in UNFINISHED_STATUSES
    control = out.get("control")
    if control is not None:
        control.update(control_verdict(control.get("runs") or []))
        if cut_short and control["counts"]["not_run"]:
            control.update(verdict=CONTROL_PENDING, reason=_unfinished(control)["reason"])
    unreliable = control is not None and control["verdict"] == CONTROL_NOT_REPRODUCED

    control_runs: list[dict[str, Any]] = (control or {}).get("runs") or []
    repo = str(session.get("repo") or "")
    hypotheses: list[dict[str, Any]] = out.get("hypotheses") or []
    for hyp in hypotheses:
        fields = hypothesis_verdict(hyp.get("runs") or [], hyp.get("supported_if") or "fails")
        if cut_short and fields["counts"]["not_run"]:
            fields = _unfinished(fields)
        hyp.update(fields)
        hyp.update(_caveats(hyp, control_runs, repo, control_unreliable=unreliable))

    counts = dict.fromkeys(VERDICT_KEYS, 0)
    for hyp in hypotheses:
        counts[hyp["verdict"]] += 1
    summary = dict(out.get("summary") or {})
    summary.update(
        {
            "counts": counts,
            "survivors": [
                hyp["id"] for hyp in in_rank_order(hypotheses) if hyp["verdict"] == _SUPPORTED
            ],
            "recommendation": recommend(hypotheses, control, session),
            "timing": session_timing(hypotheses, control, session, wall_seconds),
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
