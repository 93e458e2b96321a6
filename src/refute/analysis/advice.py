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

from refute.document import CONTROL_NOT_REPRODUCED, VERDICT_KEYS, FailureKind
from refute.document.failures import failure_kind_of
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


#: Statuses of a session that stopped before its runs were done: `refute resume` finishes it.
UNFINISHED_STATUSES: Final = ("interrupted", "failed")


def _step(
    text: str,
    action: str | None = None,
    *,
    hypothesis: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """One next step (`refute.document.NextStep`): the prose, and what it is in data."""
    return {"action": action, "hypothesis": hypothesis, "command": command, "text": text}


def resume_command(session: Mapping[str, Any]) -> str:
    return f"refute resume {shlex.quote(str(session.get('id') or '<session>'))}"


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


def _pending_step(
    pending: Sequence[Mapping[str, Any]], session: Mapping[str, Any]
) -> list[dict[str, Any]]:
    if not pending:
        return []
    ids = _join_and([str(h["id"]) for h in pending])
    noun = _plural(len(pending), "hypothesis", "hypotheses")
    command = resume_command(session)
    return [
        _step(
            f"Resume the session to run the pending {noun}: {ids}.",
            "resume",
            command=command,
        )
    ]


def _checkout_step(hypotheses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
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
    return [_step(step, "fix_isolation", hypothesis=str(named[0]["id"]))]


def _failures(hyp: Mapping[str, Any]) -> list[FailureKind]:
    """The failure kinds of a hypothesis' runs that gave no evidence, most frequent first."""
    kinds: dict[FailureKind, int] = {}
    for run in hyp.get("runs") or []:
        kind = failure_kind_of(run)
        if kind is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    return sorted(kinds, key=lambda kind: -kinds[kind])


def _first_message(hyp: Mapping[str, Any], kind: FailureKind) -> str:
    for run in hyp.get("runs") or []:
        if failure_kind_of(run) == kind:
            message = str(run.get("error_message") or "").strip().splitlines()
            return message[0][:300] if message else ""
    return ""


#: Per failure kind: the next step's action, and the advice ("{said}" is the run's message).
_FAILURE_ADVICE: Final[dict[FailureKind, tuple[str, str]]] = {
    "patch": (
        "fix_patch",
        (
            "its patch does not apply to the base{said}: rebase the patch onto the session's base"
            " commit (or set the hypothesis' base to where it applies)"
        ),
    ),
    "setup": (
        "fix_setup",
        (
            "the setup failed in a fresh worktree{said}: run the setup by hand in a clean clone,"
            " fix it, and run again"
        ),
    ),
    "command": (
        "fix_command",
        (
            "its command could not be run{said}: check that the program exists on PATH inside a"
            " fresh worktree and is executable (exit 126/127 is no evidence)"
        ),
    ),
    "harness": (
        "fix_harness",
        (
            "the test harness failed, not the test{said}: run the command by hand and fix its"
            " usage (arguments, test names, collection errors)"
        ),
    ),
    "timeout": ("raise_timeout", "it timed out: raise its timeout{now} or make it faster"),
    "pattern": (
        "fix_pattern",
        (
            "it failed, but not the way the bug does{said}: check the failure_pattern, or whether"
            " the test hits another failure first"
        ),
    ),
    "error": ("fix_test", "its run could not be carried out{said}"),
}


def _failure_hint(
    hyp: Mapping[str, Any], kind: FailureKind, session: Mapping[str, Any]
) -> tuple[str, str, str | None]:
    """(action, advice, command to copy) for runs of `hyp` that failed this way."""
    message = _first_message(hyp, kind)
    timeout = hyp.get("timeout")
    now = (
        f" (now {timeout:g} s)"
        if isinstance(timeout, int | float) and not isinstance(timeout, bool)
        else ""
    )
    action, template = _FAILURE_ADVICE[kind]
    text = template.format(said=f" ({message})" if message else "", now=now)
    test, patch = hyp.get("test"), hyp.get("patch")
    setup = (session.get("settings") or {}).get("setup")
    command: str | None = _command(test) if test else None
    if kind == "patch":
        command = f"git apply --check {shlex.quote(str(patch))}" if patch else None
    elif kind == "setup":
        command = _command(setup) if setup else None
    elif kind == "timeout":
        command = None
    return action, text, command


def _fix_test_step(hyp: Mapping[str, Any], session: Mapping[str, Any]) -> dict[str, Any]:
    hid, counts = str(hyp["id"]), hyp["counts"]
    if hyp["verdict"] == _FLAKY:
        rate, interval = hyp["reproduction_rate"], hyp["wilson_95"]
        text = (
            f"Stabilise the test of {hid}: {hyp['reason']}; the bug reproduced in"
            f" {rate:.0%} of valid runs (95 % interval {interval[0]:.0%}-{interval[1]:.0%})."
            " Remove the nondeterminism (seeds, timing, shared state) or, if the hypothesis"
            " is itself about timing, make the test force the interleaving."
        )
        return _step(text, "stabilise", hypothesis=hid)
    hints: list[str] = []
    action, command = "fix_test", None
    for kind in _failures(hyp):
        kind_action, hint, kind_command = _failure_hint(hyp, kind, session)
        if not hints:
            action, command = kind_action, kind_command
        hints.append(hint)
    if counts["skip"]:
        hints.append("it exited 125 (cannot test here): make it runnable in a worktree")
    if counts["not_run"] and not hints:
        hints.append("resume the session to run it")
        action, command = "resume", resume_command(session)
    tail = f"; {'; '.join(hints)}" if hints else ""
    return _step(
        f"Fix the test of {hid}: {hyp['reason']}{tail}.",
        action,
        hypothesis=hid,
        command=command,
    )


def _rerun_command(session: Mapping[str, Any]) -> str | None:
    settings: Mapping[str, Any] = session.get("settings") or {}
    if settings.get("rerun"):
        return str(settings["rerun"])
    plan = session.get("plan_path")
    return f"refute run {shlex.quote(str(plan))}" if plan else None


def _resume(
    pending: Sequence[Mapping[str, Any]], session: Mapping[str, Any], others: Sequence[str]
) -> dict[str, Any]:
    """The advice of a session that stopped before its runs were done: resume it."""
    ids = _join_and([str(h["id"]) for h in pending])
    n = len(pending)
    command = resume_command(session)
    what = _plural(n, "the unfinished hypothesis", f"the {n} unfinished hypotheses")
    how = "was interrupted" if session.get("status") == "interrupted" else "stopped early"
    steps = [
        _step(
            f"Resume the session to finish {what} ({ids}).",
            "resume",
            command=command,
        )
    ]
    if others:
        steps.append(
            _step(
                f"Decided before the stop: {_join_and(list(others))}; their verdicts stand,"
                " but the recommendation waits for the rest."
            )
        )
    return {
        "action": "resume",
        "message": f"The session {how} before {ids} finished:"
        f" {_plural(n, 'its verdict is', 'their verdicts are')} pending. Resume it with"
        f" `{command}`.",
        "next_steps": steps,
    }


def _fix_control(control: Mapping[str, Any], session: Mapping[str, Any]) -> dict[str, Any]:
    base = session.get("base") or {}
    where = " ".join(str(part) for part in (base.get("ref"), (base.get("sha") or "")[:12]) if part)
    steps = []
    if control.get("test"):
        on = f" on the base ({where})" if where else " on the base"
        command = _command(control["test"])
        steps.append(_step(f"Run the control by hand{on}.", "run_control", command=command))
    reason = control.get("reason", "it did not reproduce the bug")
    steps += [
        _step(f"The control's result: {reason}."),
        _step(
            "Make the control fail reliably on the unmodified base: a test that does not"
            " reproduce the bug can neither support nor falsify a hypothesis.",
            "fix_control",
        ),
        _step(
            "Run the session again; until then every verdict is marked unreliable.",
            "rerun",
            command=_rerun_command(session),
        ),
    ]
    return {
        "action": "fix_control",
        "message": "The control did not reproduce the bug on the unmodified base,"
        " so no verdict of this session can be trusted.",
        "next_steps": steps,
    }


def recommend(
    hypotheses: Sequence[dict[str, Any]],
    control: Mapping[str, Any] | None,
    session: Mapping[str, Any],
) -> dict[str, Any]:
    """The session's `summary.recommendation`: `action`, `message` and `next_steps` (each
    {action, hypothesis, command, text}), from the analysed hypotheses (their verdict
    fields filled in), the control and the session (its status, id and plan)."""
    ordered = in_rank_order(hypotheses)
    by_verdict: dict[str, list[dict[str, Any]]] = {v: [] for v in VERDICT_KEYS}
    for hyp in ordered:
        by_verdict[hyp["verdict"]].append(hyp)
    survivors = by_verdict[_SUPPORTED]
    survivor_ids = [str(h["id"]) for h in survivors]
    pending = by_verdict[_PENDING]
    control_pending = control is not None and control.get("verdict") == "pending"
    if (pending or control_pending) and session.get("status") in UNFINISHED_STATUSES:
        decided = [f"{h['id']} {h['verdict']}" for h in ordered if h["verdict"] != _PENDING]
        unfinished = ([{"id": "the control"}] if control_pending else []) + pending
        return _resume(unfinished, session, decided)
    pending_steps = _checkout_step(ordered) + _pending_step(pending, session)

    if control is not None and control.get("verdict") == CONTROL_NOT_REPRODUCED:
        return _fix_control(control, session)

    unclear = [h for h in ordered if h["verdict"] in (_INCONCLUSIVE, _FLAKY)]
    if unclear:
        n = len(unclear)
        listed = ", ".join(f"{h['id']} {h['verdict']}" for h in unclear)
        steps = [_fix_test_step(h, session) for h in unclear]
        if survivor_ids:
            steps.append(
                _step(
                    f"Meanwhile supported: {_join_and(survivor_ids)}"
                    " (provisional until the tests above give a clear answer)."
                )
            )
        steps += pending_steps
        steps.append(
            _step(
                "Run the session again once the tests are fixed.",
                "rerun",
                command=_rerun_command(session),
            )
        )
        return {
            "action": "fix_inconclusive",
            "message": f"{n} {_plural(n, 'hypothesis', 'hypotheses')} gave no clear answer"
            f" ({listed}): fix {_plural(n, 'its test', 'their tests')} before drawing"
            " conclusions.",
            "next_steps": steps,
        }

    if not survivors:
        return _none_survived(by_verdict, control, pending_steps)
    if len(survivors) == 1:
        return _focus(survivors[0], pending_steps)
    return _refine(survivors, pending_steps)


def _none_survived(
    by_verdict: Mapping[str, list[dict[str, Any]]],
    control: Mapping[str, Any] | None,
    pending_steps: list[dict[str, Any]],
) -> dict[str, Any]:
    tally = ", ".join(f"{len(by_verdict[v])} {v}" for v in (_FALSIFIED, _PENDING) if by_verdict[v])
    falsified_ids = [str(h["id"]) for h in by_verdict[_FALSIFIED]]
    steps = list(pending_steps)
    if falsified_ids:
        steps += [
            _step(
                f"Write new hypotheses about the cause; ruled out: {_join_and(falsified_ids)}.",
                "new_hypotheses",
            ),
            _step(
                "Before discarding them, read the falsified tests' output: a test that gets"
                " its outcome for an unrelated reason (wrong target, missing setup) falsifies"
                " nothing.",
                "read_output",
            ),
        ]
    else:
        steps.append(
            _step(
                "Write hypotheses about the cause, each with a falsification test.",
                "new_hypotheses",
            )
        )
    if control is None:
        steps.append(
            _step(
                "Add a control to the plan (the reproduction test on the unmodified base) to"
                " confirm the tests can see the bug at all.",
                "add_control",
            )
        )
    return {
        "action": "new_hypotheses",
        "message": f"No hypothesis survived ({tally})."
        if tally
        else "No hypothesis survived: the session tested none.",
        "next_steps": steps,
    }


def _focus(top: Mapping[str, Any], pending_steps: list[dict[str, Any]]) -> dict[str, Any]:
    hid = str(top["id"])
    description = str(top.get("description") or "").strip()
    about = f"{description}; {top['reason']}" if description else top["reason"]
    steps = [_step(f"Focus on {hid}: {about}.", "focus", hypothesis=hid)]
    if top["runs_valid"] < FEW_RUNS:
        steps.append(
            _step(
                f"Confirm it with repeated runs (repeat: {SUGGESTED_REPEAT} for {hid}): the"
                f" confidence rests on {top['runs_valid']} valid"
                f" {_plural(top['runs_valid'], 'run', 'runs')}.",
                "confirm",
                hypothesis=hid,
            )
        )
    if top.get("supported_if") == "passes":
        patch = top.get("patch")
        steps.append(
            _step(
                f"Its candidate fix{f' ({patch})' if patch else ''} made the reproduction"
                " pass: review it as the fix and keep the test as a regression test.",
                "review_fix",
                hypothesis=hid,
            )
        )
    else:
        steps.append(
            _step(
                f"Write a candidate fix for {hid} as a patch and test it as a hypothesis with"
                " supported_if: passes; then keep the test as a regression test.",
                "write_fix",
                hypothesis=hid,
            )
        )
    steps += pending_steps
    return {
        "action": "focus",
        "message": f"Focus on {hid}: the only surviving hypothesis"
        f" (confidence {top['confidence']:.2f}).",
        "next_steps": steps,
    }


def _refine(
    survivors: Sequence[Mapping[str, Any]], pending_steps: list[dict[str, Any]]
) -> dict[str, Any]:
    survivor_ids = [str(h["id"]) for h in survivors]
    top = survivors[0]
    steps = [
        _step(
            f"Write tests that separate {_join_and(survivor_ids)}: each should reproduce the"
            " bug under one hypothesis only (e.g. apply one hypothesis' candidate fix as a"
            " patch and check whether the bug is gone).",
            "separate",
        ),
        _step(
            f"Start with {top['id']}, the highest-ranked survivor"
            f" (confidence {top['confidence']:.2f}).",
            "focus",
            hypothesis=str(top["id"]),
        ),
    ]
    few = [str(h["id"]) for h in survivors if h["runs_valid"] < FEW_RUNS]
    if few:
        steps.append(
            _step(
                f"Repeat the tests of {_join_and(few)} (repeat: {SUGGESTED_REPEAT}) to compare"
                " the survivors' confidence on more runs.",
                "confirm",
            )
        )
    steps += pending_steps
    return {
        "action": "refine_tests",
        "message": f"{len(survivors)} hypotheses survive ({', '.join(survivor_ids)}):"
        " write tests that tell them apart.",
        "next_steps": steps,
    }
