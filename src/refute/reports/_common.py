"""Reading a session document: the cleaning and formatting every format shares.

Fields are read defensively (`_mapping`, `_number`, ...): a missing or mistyped value
shows as empty or "-". `_rows` and `_Run` give every format the same view of the
hypotheses and their runs.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from refute.reports._schema import COUNT_KEYS, OUTCOMES, VERDICTS

UNRELIABLE_NOTE: Final = "unreliable: control did not reproduce"

#: Lines of a stream shown in Markdown/HTML details (the full output is in the run's log).
TAIL_LINES: Final = 20
#: Characters kept of a one-line message (JUnit `message` attributes, table cells).
MESSAGE_LIMIT: Final = 500

# CSI, OSC and two-byte escape sequences: a terminal would act on them, a report must not.
_ANSI: Final = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[@-_])")
# Everything XML 1.0 forbids (C0 controls but tab/newline, lone surrogates, U+FFFE/U+FFFF),
# plus DEL and the C1 controls (0x9b is an 8-bit CSI).
_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: object) -> str:
    """`value` as text without escape sequences or characters XML 1.0 forbids.

    CRLF and lone CR become LF; tab and LF stay. Every format but JSON shows only this.
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _FORBIDDEN.sub("", _ANSI.sub("", text))


def _one_line(value: object, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(clean_text(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: object) -> str:
    seconds = _number(value)
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def _share(value: object) -> str:
    share = _number(value)
    return "-" if share is None else f"{share:.2f}"


def _command(test: object) -> str:
    if isinstance(test, str):
        return test
    if isinstance(test, list | tuple):
        return shlex.join(str(part) for part in test)
    return "(the seed's script .falsification/test_<id>.sh)"


def _outcome(run: Mapping[str, Any]) -> str:
    """The run's outcome key: a result, or "not_run" for a run cancelled before finishing."""
    if _mapping(run.get("metrics")).get("not_run"):
        return "not_run"
    result = run.get("result")
    return result if isinstance(result, str) and result in OUTCOMES else "error"


def _attempt(run: Mapping[str, Any], fallback: int) -> int:
    attempt = _integer(_mapping(run.get("metrics")).get("attempt"))
    return attempt if attempt is not None else fallback


def _counts(item: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    given = _mapping(item.get("counts"))
    if given:
        return {key: _integer(given.get(key)) or 0 for key in COUNT_KEYS}
    counted = dict.fromkeys(COUNT_KEYS, 0)
    for run in runs:
        counted[_outcome(run)] += 1
    return counted


def _runs_cell(counts: Mapping[str, int], total: int) -> str:
    parts = [f"{n}/{total} {key.replace('_', ' ')}" for key in COUNT_KEYS if (n := counts[key])]
    return ", ".join(parts) or "no runs"


@dataclass(frozen=True)
class _Run:
    owner: str  # hypothesis id, or "control"
    attempt: int
    data: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.owner} #{self.attempt}"

    @property
    def outcome(self) -> str:
        return _outcome(self.data)

    @property
    def duration(self) -> float:
        return max(_number(self.data.get("duration")) or 0.0, 0.0)

    @property
    def started_at(self) -> float:
        return _number(self.data.get("started_at")) or 0.0

    @property
    def slot(self) -> int | None:
        return _integer(_mapping(self.data.get("metrics")).get("slot"))

    def text(self, key: str) -> str:
        return clean_text(self.data.get(key) or "")

    def summary(self) -> str:
        """One line: outcome, exit code, duration, slot, message."""
        outcome = self.outcome.replace("_", " ")
        parts = (
            [outcome]
            if self.outcome == "not_run"
            else [outcome, f"exit {self.data.get('exit_code')}"]
        )
        parts.append(_seconds(self.duration))
        if self.slot is not None:
            parts.append(f"slot {self.slot}")
        message = _one_line(self.data.get("error_message"))
        return ", ".join(parts) + (f": {message}" if message else "")

    def logs(self) -> list[tuple[str, str]]:
        return [
            (name, self.text(f"{name}_log"))
            for name in ("stdout", "stderr")
            if self.text(f"{name}_log")
        ]


def _make_runs(owner: str, runs: object) -> list[_Run]:
    items = [run for run in _sequence(runs) if isinstance(run, Mapping)]
    return [_Run(owner, _attempt(run, index), run) for index, run in enumerate(items, start=1)]


@dataclass(frozen=True)
class _Row:
    """One hypothesis as every format shows it."""

    id: str
    rank: int | None
    description: str
    verdict: str
    unreliable: bool
    confidence: float | None
    counts: dict[str, int]
    runs_cell: str
    seconds: float
    reason: str
    runs: list[_Run]

    @property
    def verdict_label(self) -> str:
        return f"{self.verdict} ({UNRELIABLE_NOTE})" if self.unreliable else self.verdict


def _rows(doc: Mapping[str, Any]) -> list[_Row]:
    rows = []
    for item in _sequence(doc.get("hypotheses")):
        hyp = _mapping(item)
        hid = clean_text(hyp.get("id") or "?")
        runs = _make_runs(hid, hyp.get("runs"))
        counts = _counts(hyp, [run.data for run in runs])
        total = _integer(hyp.get("runs_total")) or len(runs)
        verdict = hyp.get("verdict")
        rows.append(
            _Row(
                id=hid,
                rank=_integer(hyp.get("rank")),
                description=clean_text(hyp.get("description") or ""),
                verdict=verdict if isinstance(verdict, str) and verdict in VERDICTS else "pending",
                unreliable=bool(hyp.get("unreliable")),
                confidence=_number(hyp.get("confidence")),
                counts=counts,
                runs_cell=_runs_cell(counts, total),
                seconds=sum(run.duration for run in runs),
                reason=clean_text(hyp.get("reason") or ""),
                runs=runs,
            )
        )
    ranked = sorted(
        enumerate(rows), key=lambda pair: (pair[1].rank is None, pair[1].rank or 0, pair[0])
    )
    return [row for _, row in ranked]


def _control_runs(doc: Mapping[str, Any]) -> list[_Run]:
    return _make_runs("control", _mapping(doc.get("control")).get("runs"))


def _is_unreliable(doc: Mapping[str, Any]) -> bool:
    if _mapping(doc.get("control")).get("verdict") == "not_reproduced":
        return True
    return any(_mapping(hyp).get("unreliable") for hyp in _sequence(doc.get("hypotheses")))


def _control_text(doc: Mapping[str, Any]) -> str:
    """What the control showed (each format prefixes its own "Control:" label)."""
    control = _mapping(doc.get("control"))
    if not control:
        return "none (the plan has no control test; verdicts assume the tests reproduce the bug)"
    runs = _make_runs("control", control.get("runs"))
    counts = _runs_cell(_counts(control, [run.data for run in runs]), len(runs))
    command = _one_line(_command(control.get("test")))
    verdict = control.get("verdict")
    if verdict == "reproduced":
        what = "reproduced the bug on the unmodified base"
    elif verdict == "not_reproduced":
        what = "did NOT reproduce the bug on the unmodified base, so every verdict is unreliable"
    else:
        what = "pending"
    return f"{what} [{counts}] $ {command}"


def _recommendation(doc: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    rec = _mapping(_mapping(doc.get("summary")).get("recommendation"))
    steps = [_one_line(step) for step in _sequence(rec.get("next_steps"))]
    return _one_line(rec.get("action") or "none"), _one_line(rec.get("message") or ""), steps


def _timing_text(doc: Mapping[str, Any]) -> str:
    timing = _mapping(_mapping(doc.get("summary")).get("timing"))
    speedup = _number(timing.get("speedup"))
    faster = "-" if speedup is None else f"{speedup:.2f}x"
    return (
        f"wall {_seconds(timing.get('wall_seconds'))}, "
        f"sum of run time {_seconds(timing.get('sum_run_seconds'))}, speedup {faster}"
    )


def _session_line(doc: Mapping[str, Any]) -> str:
    session = _mapping(doc.get("session"))
    base = _mapping(session.get("base"))
    sha = clean_text(base.get("sha") or "")[:12]
    where = clean_text(base.get("ref") or "?") + (f" ({sha})" if sha else "")
    parts = [
        f"session {clean_text(session.get('id') or '?')}",
        f"status {clean_text(session.get('status') or '?')}",
        f"exit code {session.get('exit_code')}",
        f"base {where}",
        f"started {clean_text(session.get('started_at') or '?')}",
    ]
    error = _one_line(session.get("error") or "")
    return ", ".join(parts) + (f"; error: {error}" if error else "")


def _bug(doc: Mapping[str, Any]) -> str:
    return _one_line(_mapping(doc.get("session")).get("bug") or "(no bug description)")


def _tail(text: str, lines: int = TAIL_LINES, limit: int = 4000) -> str:
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept if len(kept) <= limit else "…" + kept[-limit:]
