"""Reading a session document: the cleaning and formatting every format shares.

`parse` validates the document into `refute.document.SessionDocument` once; everything
else reads its typed fields. A partial document (a session still running, not analysed
yet) reads as its defaults: a missing verdict is "pending", missing counts are counted
from the runs, a missing confidence or time shows as "-". `hypothesis_rows` and `Run` give every
format the same view of the hypotheses and their runs.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from refute.document import (
    CONTROL_ID,
    CONTROL_NOT_REPRODUCED,
    CONTROL_REPRODUCED,
    FAILURE_KINDS,
    OUTCOME_KEYS,
    CountKey,
    FailureKind,
    HypothesisEntry,
    OutcomeCounts,
    RunRecord,
    SessionDocument,
    SupportedIf,
    Timing,
    Verdict,
    explain,
)
from refute.document.failures import failure_kind_of
from refute.errors import ConfigError

__all__ = [
    "CHECKOUT_NOTE",
    "DIFFERENT_NOTE",
    "FAILURE_KINDS",
    "MESSAGE_LIMIT",
    "TAIL_LINES",
    "TONES",
    "TONE_CSS",
    "TONE_STYLE",
    "UNRELIABLE_NOTE",
    "VERDICT_TONE",
    "RunText",
    "clean_text",
    "parse",
]

UNRELIABLE_NOTE: Final = "unreliable: control did not reproduce"
#: The note of a verdict whose run named the user's checkout (`names_checkout`).
CHECKOUT_NOTE: Final = "unreliable: a run named your checkout"
#: The note of a verdict whose test failed on other tests than the control's.
DIFFERENT_NOTE: Final = "maybe a different failure"
#: How the speedup is judged (`summary.timing.speedup` = sum of run times / wall time).
_ESTIMATE: Final = "an estimate: the sum of run times"

#: Lines of a stream shown in Markdown/HTML details (the full output is in the run's log).
TAIL_LINES: Final = 20
#: Characters kept of a one-line message (JUnit `message` attributes, table cells).
MESSAGE_LIMIT: Final = 500

# CSI, OSC and two-byte escape sequences: a terminal would act on them, a report must not.
_ANSI: Final = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[@-_])")
# Everything XML 1.0 forbids (C0 controls but tab/newline, lone surrogates, U+FFFE/U+FFFF),
# plus DEL and the C1 controls (0x9b is an 8-bit CSI).
_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: What a colour means, in every format: a verdict and the runs behind it share a tone.
#: "survives": SUPPORTED, and a run whose outcome supports its hypothesis; "ruled_out":
#: FALSIFIED, and a run whose outcome opposes it; "unclear": INCONCLUSIVE/FLAKY, and a run
#: that is no evidence (timeout, error, skip); "pending": not decided / not run.
Tone = Literal["survives", "ruled_out", "unclear", "pending"]
TONES: Final[tuple[Tone, ...]] = ("survives", "ruled_out", "unclear", "pending")
VERDICT_TONE: Final[dict[Verdict, Tone]] = {
    "supported": "survives",
    "falsified": "ruled_out",
    "inconclusive": "unclear",
    "flaky": "unclear",
    "pending": "pending",
    "testing": "pending",
}
#: The rich style (text format) and CSS colour (HTML) of each tone.
TONE_STYLE: Final[dict[Tone, str]] = {
    "survives": "bold red",
    "ruled_out": "green",
    "unclear": "yellow",
    "pending": "dim",
}
TONE_CSS: Final[dict[Tone, str]] = {
    "survives": "#c62828",
    "ruled_out": "#2e7d32",
    "unclear": "#b26a00",
    "pending": "#757575",
}

#: How each `supported_if` reads a hypothesis' test, in every format.
READINGS: Final[dict[SupportedIf, str]] = {
    "fails": "probe: the test fails (reproduces the bug) if the hypothesis holds",
    "passes": "candidate fix: the reproduction passes with the patch",
}

#: The text fields of a run a report shows.
RunText = Literal["stdout", "stderr", "stdout_log", "stderr_log"]


def parse(doc: Mapping[str, Any]) -> SessionDocument:
    """The document as a `SessionDocument`; ConfigError (field "document") if it is not one.

    Partial documents pass (see the module docstring); a wrong type, an unknown top-level
    key or a missing `session.id` do not.
    """
    if not isinstance(doc, Mapping):
        raise ConfigError("document", f"must be a dict, got {type(doc).__name__}")
    try:
        return SessionDocument.model_validate(dict(doc))
    except ValidationError as exc:
        raise ConfigError("document", f"not a session document: {explain(exc)}") from exc


def clean_text(value: object) -> str:
    """`value` as text without escape sequences or characters XML 1.0 forbids.

    CRLF and lone CR become LF; tab and LF stay. Every format but JSON shows only this.
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _FORBIDDEN.sub("", _ANSI.sub("", text))


def one_line_text(value: object, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(clean_text(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def seconds_text(value: float | None) -> str:
    seconds = _finite(value)
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def share_text(value: float | None) -> str:
    share = _finite(value)
    return "-" if share is None else f"{share:.2f}"


def _command(test: list[str] | str | None) -> str:
    if isinstance(test, str):
        return test
    if isinstance(test, list):
        return shlex.join(test)
    return "(the seed's script .falsification/test_<id>.sh)"


def command_text(test: list[str] | str | None) -> str:
    """A command as every format shows it: an argv shell-quoted on one line, a shell
    command line as written (newlines folded)."""
    return one_line_text(_command(test), limit=2000)


def patch_source(hyp: HypothesisEntry) -> str:
    """Where a hypothesis' change comes from ("" for none): the patch file, an inline
    patch, a commit to apply or revert; and the base it is tested on if not the session's."""
    parts = []
    if hyp.patch:
        parts.append(f"patch {clean_text(hyp.patch)}")
    elif hyp.patch_text:
        lines = len(hyp.patch_text.splitlines())
        parts.append(f"inline patch ({lines} line{'s' if lines != 1 else ''})")
    if hyp.commit:
        parts.append(f"the change of commit {clean_text(hyp.commit)}")
    if hyp.revert:
        parts.append(f"the revert of commit {clean_text(hyp.revert)}")
    if hyp.base:
        parts.append(f"tested at {clean_text(hyp.base)}")
    return "; ".join(parts)


def reading_text(supported_if: SupportedIf, has_change: bool) -> str:
    """How the hypothesis' test is read (`READINGS`); a candidate fix without a patch
    source reads its own test passing."""
    if supported_if == "passes" and not has_change:
        return "candidate fix: the test passes if the hypothesis holds"
    return READINGS[supported_if]


def verdict_meaning(verdict: Verdict, supported_if: SupportedIf) -> str:
    """What the verdict says, in the words of the hypothesis' reading."""
    fix = supported_if == "passes"
    meanings: dict[Verdict, str] = {
        "supported": "the fix works: the reproduction passes with it"
        if fix
        else "the test reproduced the bug: the hypothesis stands",
        "falsified": "the fix does not work: the bug still reproduces with it"
        if fix
        else "the test did not reproduce the bug: ruled out",
        "inconclusive": "no valid run: no evidence either way",
        "flaky": "the runs disagree",
        "pending": "not finished: resume the session",
        "testing": "running",
    }
    return meanings[verdict]


def failure_kind(run: RunRecord) -> FailureKind | None:
    """How a run that is no evidence failed, or None (`refute.document.failures`)."""
    fields = {
        "metrics": run.metrics.model_dump(),
        "result": run.result,
        "exit_code": run.exit_code,
        "error_message": run.error_message,
    }
    return failure_kind_of(fields)


def run_tone(run: RunRecord, supported_if: SupportedIf) -> Tone:
    """A run's colour: the tone of the verdict its outcome speaks for (`VERDICT_TONE`)."""
    if run.metrics.not_run:
        return "pending"
    if run.result in ("pass", "fail"):
        supports = (run.result == "fail") == (supported_if == "fails")
        return "survives" if supports else "ruled_out"
    return "unclear"


def _counts(given: OutcomeCounts | None, runs: list[RunRecord]) -> dict[CountKey, int]:
    """The counts the document gives (when it gives any), else those of its runs."""
    if given is not None and (given.model_fields_set or given.model_extra):
        return given.as_dict()
    return OutcomeCounts.of(runs).as_dict()


def _runs_cell(counts: Mapping[CountKey, int], total: int) -> str:
    parts = [f"{n}/{total} {key.replace('_', ' ')}" for key in OUTCOME_KEYS if (n := counts[key])]
    return ", ".join(parts) or "no runs"


@dataclass(frozen=True)
class Run:
    owner: str  # hypothesis id, or "control"
    attempt: int
    data: RunRecord

    @property
    def label(self) -> str:
        return f"{self.owner} #{self.attempt}"

    def command(self, fallback: str) -> str:
        """The command this run ran (`command_text`); `fallback` (its hypothesis') for
        documents written before runs recorded their own."""
        return command_text(self.data.command) if self.data.command is not None else fallback

    @property
    def outcome(self) -> CountKey:
        """The run's outcome key: a result, or "not_run" for a run cancelled before finishing."""
        return self.data.count_key

    @property
    def duration(self) -> float:
        return _finite(self.data.duration) or 0.0

    @property
    def started_at(self) -> float:
        return _finite(self.data.started_at) or 0.0

    @property
    def slot(self) -> int | None:
        return self.data.metrics.slot

    def text(self, key: RunText) -> str:
        value: str = getattr(self.data, key)
        return clean_text(value)

    def summary(self) -> str:
        """One line: outcome, exit code, duration, slot, message."""
        outcome = self.outcome.replace("_", " ")
        parts = [outcome] if self.outcome == "not_run" else [outcome, f"exit {self.data.exit_code}"]
        parts.append(seconds_text(self.duration))
        if self.slot is not None:
            parts.append(f"slot {self.slot}")
        message = one_line_text(self.data.error_message)
        return ", ".join(parts) + (f": {message}" if message else "")

    def logs(self) -> list[tuple[str, str]]:
        logs = [("stdout", self.text("stdout_log")), ("stderr", self.text("stderr_log"))]
        setup = self.data.metrics.setup
        if setup is not None and not setup.cached:
            logs += [(f"setup {_stream(path)}", clean_text(path)) for path in setup.logs]
        return [(name, path) for name, path in logs if path]


def _stream(path: str) -> str:
    return "stderr" if path.endswith("stderr.log") else "stdout"


def _make_runs(owner: str, runs: list[RunRecord]) -> list[Run]:
    return [
        Run(owner, run.metrics.attempt or index, run) for index, run in enumerate(runs, start=1)
    ]


@dataclass(frozen=True)
class Row:
    """One hypothesis as every format shows it."""

    id: str
    rank: int | None
    description: str
    verdict: Verdict
    unreliable: bool
    confidence: float | None
    counts: dict[CountKey, int]
    runs_cell: str
    seconds: float
    reason: str
    runs: list[Run]
    unreliable_reasons: list[str]
    names_checkout: bool
    failed_differently: bool
    control_failed: bool  # the session's control did not reproduce the bug
    supported_if: SupportedIf = "fails"
    reading: str = ""  # `reading_text`: probe or candidate fix, in words
    patch_source: str = ""  # `patch_source`: "" when the test runs on the unchanged base
    command: str = ""  # `command_text` of its test

    @property
    def tone(self) -> Tone:
        return VERDICT_TONE[self.verdict]

    @property
    def meaning(self) -> str:
        """`verdict_meaning` of the row's verdict and reading."""
        return verdict_meaning(self.verdict, self.supported_if)

    @property
    def notes(self) -> list[str]:
        """Short notes on the verdict's caveats (the reason has the details)."""
        notes = []
        # An unreliable verdict without another cause is one of a failed control (the only
        # cause documents had before `names_checkout`).
        if self.unreliable and (self.control_failed or not self.names_checkout):
            notes.append(UNRELIABLE_NOTE)
        if self.names_checkout:
            notes.append(CHECKOUT_NOTE)
        if self.failed_differently:
            notes.append(DIFFERENT_NOTE)
        return notes

    @property
    def verdict_label(self) -> str:
        notes = self.notes
        return f"{self.verdict} ({'; '.join(notes)})" if notes else self.verdict


def _control_failed(doc: SessionDocument) -> bool:
    return doc.control is not None and doc.control.verdict == CONTROL_NOT_REPRODUCED


def hypothesis_rows(doc: SessionDocument) -> list[Row]:
    """The hypotheses in rank order (unranked ones last), document order among equals."""
    rows = []
    control_failed = _control_failed(doc)
    for hyp in doc.hypotheses:
        hid = clean_text(hyp.id)
        runs = _make_runs(hid, hyp.runs)
        counts = _counts(hyp.counts, hyp.runs)
        rows.append(
            Row(
                id=hid,
                rank=hyp.rank,
                description=clean_text(hyp.description),
                verdict=hyp.verdict,
                unreliable=hyp.unreliable,
                confidence=hyp.confidence,
                counts=counts,
                runs_cell=_runs_cell(counts, hyp.runs_total or len(runs)),
                seconds=sum(run.duration for run in runs),
                reason=clean_text(hyp.reason),
                runs=runs,
                unreliable_reasons=[clean_text(text) for text in hyp.unreliable_reasons],
                names_checkout=hyp.names_checkout,
                failed_differently=hyp.failed_differently,
                control_failed=control_failed,
                supported_if=hyp.supported_if,
                reading=reading_text(hyp.supported_if, bool(patch_source(hyp))),
                patch_source=patch_source(hyp),
                command=command_text(hyp.test),
            )
        )
    ranked = sorted(
        enumerate(rows), key=lambda pair: (pair[1].rank is None, pair[1].rank or 0, pair[0])
    )
    return [row for _, row in ranked]


def control_runs(doc: SessionDocument) -> list[Run]:
    return _make_runs(CONTROL_ID, doc.control.runs) if doc.control is not None else []


def is_unreliable(doc: SessionDocument) -> bool:
    """Whether the banner "the control did not reproduce" shows: the control says so, or a
    verdict is unreliable for no other cause (`names_checkout` marks its own rows)."""
    if _control_failed(doc):
        return True
    return any(hyp.unreliable and not hyp.names_checkout for hyp in doc.hypotheses)


def caveat_lines(row: Row) -> list[tuple[bool, str]]:
    """(makes the verdict unreliable, one line) per caveat of a row that the banner does
    not cover: a run that named the user's checkout, a failure other than the control's.
    The formats list them under their verdicts."""
    lines = []
    if row.names_checkout:
        why = "; ".join(row.unreliable_reasons) or row.reason
        lines.append((True, f"{row.id} is unreliable: {why}"))
    if row.failed_differently:
        lines.append((False, f"{row.id}: {row.reason}"))  # it ends with DIFFERENT_NOTE
    return lines


def control_text(doc: SessionDocument) -> str:
    """What the control showed (each format prefixes its own "Control:" label)."""
    control = doc.control
    if control is None or not (control.model_fields_set or control.model_extra):
        return "none (the plan has no control test; verdicts assume the tests reproduce the bug)"
    counts = _runs_cell(_counts(control.counts, control.runs), len(control.runs))
    command = one_line_text(_command(control.test))
    if control.verdict == CONTROL_REPRODUCED:
        what = "reproduced the bug on the unmodified base"
    elif control.verdict == CONTROL_NOT_REPRODUCED:
        what = "did NOT reproduce the bug on the unmodified base, so every verdict is unreliable"
    else:
        what = "pending"
    rate, interval = _finite(control.reproduction_rate), control.wilson_95
    if rate is not None and control.verdict != "pending":
        what += f", reproduction rate {rate:.0%} of valid runs"
        if interval is not None:
            what += f" (95 % Wilson interval {interval[0]:.0%}-{interval[1]:.0%})"
    return f"{what} [{counts}] $ {command}"


@dataclass(frozen=True)
class Step:
    """A next step as every format shows it: the prose, and the command to copy (if any)."""

    text: str
    command: str = ""
    action: str = ""
    hypothesis: str = ""


def recommendation(doc: SessionDocument) -> tuple[str, str, list[Step]]:
    """The action, the message and the next steps of the session's recommendation."""
    rec = doc.summary.recommendation if doc.summary is not None else None
    if rec is None:
        return "none", "", []
    steps = [
        Step(
            text=one_line_text(step.text),
            command=one_line_text(step.command or "", limit=2000),
            action=one_line_text(step.action or ""),
            hypothesis=one_line_text(step.hypothesis or ""),
        )
        for step in rec.next_steps
    ]
    return one_line_text(rec.action or "none"), one_line_text(rec.message), steps


def timing_text(doc: SessionDocument) -> str:
    """Wall time, the sum of run times, and the speedup, labelled as the estimate it is:
    the runs would not have taken exactly their durations one after another."""
    timing = doc.summary.timing if doc.summary is not None else Timing()
    speedup = _finite(timing.speedup)
    wall, total = seconds_text(timing.wall_seconds), seconds_text(timing.sum_run_seconds)
    head = f"wall {wall}, sum of run time {total}"
    if timing.setup_seconds is not None:
        cached = f", {timing.setups_cached} cached" if timing.setups_cached else ""
        head += f", setup {seconds_text(timing.setup_seconds)}{cached}"
    if speedup is None:
        return f"{head}; no speedup estimate (no wall time)"
    if speedup < 1:
        return (
            f"{head}; no faster than running them one after another (about {speedup:.1f}x;"
            f" {_ESTIMATE})"
        )
    return f"{head}; about {speedup:.1f}x faster than running them one after another ({_ESTIMATE})"


def base_text(doc: SessionDocument) -> str:
    """The commit the session tested, as every format names it: the ref and its sha, and
    for a snapshot of uncommitted changes, the commit it was taken on."""
    base = doc.session.base
    sha = clean_text(base.sha or "")[:12]
    where = clean_text(base.ref or "?") + (f" ({sha})" if sha else "")
    if base.snapshot_of:
        where += f", a snapshot of your uncommitted changes on {clean_text(base.snapshot_of)[:12]}"
    return where


def session_line(doc: SessionDocument) -> str:
    session = doc.session
    where = base_text(doc)
    parts = [
        f"session {clean_text(session.id)}",
        f"status {clean_text(session.status)}",
        f"exit code {session.exit_code}",
        f"base {where}",
        f"started {clean_text(session.started_at or '?')}",
    ]
    error = one_line_text(session.error or "")
    return ", ".join(parts) + (f"; error: {error}" if error else "")


def bug_text(doc: SessionDocument) -> str:
    return one_line_text(doc.session.bug or "(no bug description)")


def tail_lines(text: str, lines: int = TAIL_LINES, limit: int = 4000) -> str:
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept if len(kept) <= limit else "…" + kept[-limit:]
