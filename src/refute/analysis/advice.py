"""The advice of a session: what to do next, from its verdicts (`summary.recommendation`).

One action per session, chosen in this order: fix the control (it did not reproduce the
bug), fix the tests that gave no clear answer, write new hypotheses (none survived), focus
on the one survivor, or write tests that tell several survivors apart. The next steps name
hypotheses, commands and numbers so that each can be acted on as written.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Final

from refute.document import CONTROL_NOT_REPRODUCED, VERDICT_KEYS
from refute.model import HypothesisStatus

__all__ = ["FEW_RUNS", "SUGGESTED_REPEAT", "in_rank_order", "recommend"]

#: Below this many valid runs, a lone survivor's next steps suggest repeating its test.
FEW_RUNS: Final = 3
#: The repeat count the next steps suggest.
SUGGESTED_REPEAT: Final = 5

_SUPPORTED = HypothesisStatus.SUPPORTED.value
_FALSIFIED = HypothesisStatus.FALSIFIED.value
_INCONCLUSIVE = HypothesisStatus.INCONCLUSIVE.value
_FLAKY = HypothesisStatus.FLAKY.value
_PENDING = HypothesisStatus.PENDING.value


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


def in_rank_order(hypotheses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hypotheses sorted by `rank` (missing ranks last), document order among equals."""

    def key(item: tuple[int, dict[str, Any]]) -> tuple[bool, float, int]:
        index, hyp = item
        rank: object = hyp.get("rank")
        if isinstance(rank, int | float) and not isinstance(rank, bool):
            return (False, float(rank), index)
        return (True, 0.0, index)

    return [hyp for _, hyp in sorted(enumerate(hypotheses), key=key)]


def _pending_step(pending: Sequence[Mapping[str, Any]]) -> list[str]:
    if not pending:
        return []
    ids = _join_and([str(h["id"]) for h in pending])
    noun = _plural(len(pending), "hypothesis", "hypotheses")
    return [f"Resume the session to run the pending {noun}: {ids}."]


def _checkout_step(hypotheses: Sequence[Mapping[str, Any]]) -> list[str]:
    """A step for the hypotheses whose runs named the user's checkout (`names_checkout`)."""
    named = [h for h in hypotheses if h.get("names_checkout")]
    if not named:
        return []
    ids = _join_and([str(h["id"]) for h in named])
    reasons = [str(r) for r in named[0].get("unreliable_reasons") or []]
    example = f" ({named[0]['id']}: {reasons[-1]})" if reasons else ""
    tests = _plural(len(named), f"the test of {ids}", f"the tests of {ids}")
    step = (
        f"Make {tests} use {_plural(len(named), 'its', 'their')} worktree, not your"
        f" checkout{example}: an editable install, an absolute path or a `cd` can point a"
        " test at your checkout; until then those verdicts are unreliable."
    )
    return [step]


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


def recommend(
    hypotheses: Sequence[dict[str, Any]],
    control: Mapping[str, Any] | None,
    session: Mapping[str, Any],
) -> dict[str, Any]:
    """The session's `summary.recommendation`: `action`, `message` and `next_steps`, from
    the analysed hypotheses (their verdict fields filled in) and the control."""
    ordered = in_rank_order(hypotheses)
    by_verdict: dict[str, list[dict[str, Any]]] = {v: [] for v in VERDICT_KEYS}
    for hyp in ordered:
        by_verdict[hyp["verdict"]].append(hyp)
    survivors = by_verdict[_SUPPORTED]
    survivor_ids = [str(h["id"]) for h in survivors]
    pending_steps = _checkout_step(ordered) + _pending_step(by_verdict[_PENDING])

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
        if top["runs_valid"] < FEW_RUNS:
            steps.append(
                f"Confirm it with repeated runs (repeat: {SUGGESTED_REPEAT} for {hid}):"
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
    few = [str(h["id"]) for h in survivors if h["runs_valid"] < FEW_RUNS]
    if few:
        steps.append(
            f"Repeat the tests of {_join_and(few)} (repeat: {SUGGESTED_REPEAT}) to compare"
            " the survivors' confidence on more runs."
        )
    steps += pending_steps
    return {
        "action": "refine_tests",
        "message": f"{len(survivors)} hypotheses survive ({', '.join(survivor_ids)}):"
        " write tests that tell them apart.",
        "next_steps": steps,
    }
