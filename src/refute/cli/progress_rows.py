"""What the live progress knows about each hypothesis and each of its runs.

Kept apart from the drawing (`refute.cli.progress`) so that the states, tallies, elapsed
times and the ETA are plain data: the rich table and the plain lines read the same
answers. Times are readings of the progress' clock (seconds, monotonic), taken when an
event arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import ValidationError

from refute.document import FAILURE_KINDS, OUTCOME_KEYS, FailureKind, RunRecord, SupportedIf
from refute.reports._common import Tone, failure_kind, run_tone

__all__ = [
    "STATES",
    "Attempt",
    "Row",
    "clock_text",
    "elapsed_text",
    "eta_seconds",
]

#: Where one run is: waiting for a slot, its worktree being made (`preparing`, or `setup`
#: when the plan has a setup), its command running, or ended. `cancelled`: stopped after
#: it started (a halt); `interrupted`: running when the session was interrupted;
#: `not_run`: ended before it started (a halt, Ctrl-C).
AttemptState = Literal[
    "queued", "preparing", "setup", "running", "finished", "cancelled", "interrupted", "not_run"
]
_ACTIVE: Final = ("preparing", "setup", "running")

#: Every state a hypothesis' row can show, the widest sets the state column's width.
STATES: Final = (
    "queued",
    "preparing",
    "setup",
    "running",
    "done",
    "error",
    "cancelled",
    "interrupted",
    "not run",
)


@dataclass
class Attempt:
    """One run of a hypothesis: where it is, when it began and ended, what it gave."""

    state: AttemptState = "queued"
    began: float | None = None  # the first preparing/started event
    started: bool = False  # its command started (a `started` event came)
    ended: float | None = None
    outcome: str = ""  # a finished run's result: pass, fail, timeout, error, skip
    record: RunRecord | None = None  # the finished run, as the session document has it

    @property
    def active(self) -> bool:
        return self.state in _ACTIVE

    @property
    def label(self) -> str:
        """The word this run adds to its row's tally: an outcome, or how it ended early."""
        if self.state in ("cancelled", "interrupted"):
            return self.state
        if self.state != "finished":
            return "not run"
        return self.outcome

    @property
    def kind(self) -> FailureKind | None:
        """How the run failed when it is no evidence (the patch, the setup, ...), or None."""
        if self.record is None or self.state != "finished":
            return None
        return failure_kind(self.record)

    @property
    def failed_before_start(self) -> bool:
        """An error before its command started: the checkout, patch or setup failed."""
        return not self.started and self.state == "finished" and self.outcome == "error"


@dataclass
class Row:
    """One hypothesis (or the control): its runs by attempt number."""

    id: str
    total: int
    supported_if: SupportedIf = "fails"
    attempts: dict[int, Attempt] = field(default_factory=dict)
    interrupted: bool = False  # the session was interrupted (Ctrl-C) before it ended

    def __post_init__(self) -> None:
        for number in range(1, self.total + 1):
            self.attempts.setdefault(number, Attempt())

    def attempt(self, number: int) -> Attempt:
        """Attempt `number` (one beyond `total` is added: a row never drops an event)."""
        if number not in self.attempts:
            self.attempts[number] = Attempt()
            self.total = max(self.total, number)
        return self.attempts[number]

    @property
    def done(self) -> int:
        """Runs that ended with a result (not those stopped before they could finish)."""
        return sum(1 for a in self.attempts.values() if a.state == "finished")

    @property
    def state(self) -> str:
        """The row's state: its most telling run's (running over setup over queued ...).

        A run that failed before its command started (the checkout, patch or setup) makes
        the row an `error` at once, also while its other runs wait: not `queued`. After
        Ctrl-C a row with runs that never came is `interrupted` (`not run` if none ran)."""
        runs = list(self.attempts.values())
        states = {a.state for a in runs}
        outcomes = {a.outcome for a in runs if a.state == "finished"}
        checks: list[tuple[bool, str]] = [
            ("running" in states, "running"),
            ("setup" in states, "setup"),
            ("preparing" in states, "preparing"),
            ("interrupted" in states, "interrupted"),
            ("queued" in states and any(a.failed_before_start for a in runs), "error"),
            ("queued" in states, "queued"),
            (states == {"not_run"}, "not run"),
            (self.interrupted and "not_run" in states, "interrupted"),
            ("cancelled" in states, "cancelled"),
            (outcomes == {"error"}, "error"),
        ]
        return next((state for holds, state in checks if holds), "done")

    def elapsed(self, now: float) -> float | None:
        """From its first run's start to its last run's end, or to `now` while one is active."""
        began = [a.began for a in self.attempts.values() if a.began is not None]
        if not began:
            return None
        if any(a.active for a in self.attempts.values()):
            end = now
        else:
            end = max((a.ended for a in self.attempts.values() if a.ended is not None), default=now)
        return max(0.0, end - min(began))

    def tallies(self) -> list[tuple[str, Tone]]:
        """Counts of what its runs gave, in the documents' order, each with its tone:
        ("3 pass", "ruled_out"), ("1 timeout", "unclear"), ..."""
        counts: dict[str, list[Tone]] = {}
        for attempt in self.attempts.values():
            if attempt.state not in ("finished", "cancelled", "interrupted", "not_run"):
                continue
            label = attempt.label
            tone: Tone = "pending"
            if attempt.state == "finished" and attempt.record is not None:
                tone = run_tone(attempt.record, self.supported_if)
            counts.setdefault(label, []).append(tone)
        order = [*(k.replace("_", " ") for k in OUTCOME_KEYS), "cancelled", "interrupted"]
        return [(f"{len(counts[key])} {key}", counts[key][0]) for key in order if key in counts]

    def failures(self) -> list[str]:
        """What went wrong with its runs that are no evidence, each kind once (a timeout is
        already said by its tally)."""
        kinds = [a.kind for a in self.attempts.values()]
        seen = dict.fromkeys(k for k in kinds if k is not None and k != "timeout")
        return [FAILURE_KINDS[kind] for kind in seen]


def record_of(data: dict[str, object]) -> RunRecord | None:
    """A finished run as the session document reads it (None if it does not validate:
    the progress then shows it without a tone or a failure kind, never fails)."""
    try:
        return RunRecord.model_validate(data)
    except ValidationError:
        return None


def eta_seconds(rows: list[Row], concurrency: int, now: float) -> float | None:
    """Seconds until every queued or running run is done, or None before any run finished.

    The mean time of a finished run (from its slot being taken, worktree and setup
    included, to its end) times the runs left, less what the running ones already spent
    (at most a mean each), over the runs that go at once (the concurrency, or fewer when
    fewer are left).
    """
    spans = [
        a.ended - a.began
        for row in rows
        for a in row.attempts.values()
        if a.state == "finished" and a.started and a.began is not None and a.ended is not None
    ]
    if not spans:
        return None
    mean = sum(spans) / len(spans)
    left = [a for row in rows for a in row.attempts.values() if a.state == "queued" or a.active]
    if not left:
        return 0.0
    spent = sum(min(mean, now - a.began) for a in left if a.active and a.began is not None)
    work = max(0.0, mean * len(left) - spent)
    return work / min(max(1, concurrency), len(left))


def clock_text(seconds: float | None) -> str:
    """A duration as a clock reads it: 0:42, 12:05, 1:02:03 ("-" when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def elapsed_text(seconds: float | None) -> str:
    """A row's elapsed time: tenths of a second under a minute (most tests take seconds,
    and "0:00" would say nothing), a clock above."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    return f"{seconds:.1f}s" if seconds < 60 else clock_text(seconds)
