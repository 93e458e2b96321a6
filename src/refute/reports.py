"""Reports: one session document rendered as text, JSON, Markdown, JUnit XML or HTML.

Every renderer reads only the plain *session document* (`refute.session/1`, described
field by field in docs/report.md and checked by `REPORT_JSON_SCHEMA`), never live
objects, so a stored session renders exactly like a fresh one. Renderers return strings;
printing is the front end's job. Text taken from a document (test output above all) is
untrusted: every format escapes it for its own syntax, and all but JSON drop terminal
escape sequences and the control characters XML 1.0 forbids.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import math
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from refute.errors import ConfigError

SCHEMA_VERSION: Final = "refute.session/1"
FORMATS: Final = ("text", "json", "markdown", "junit", "html")

OUTCOMES: Final = ("pass", "fail", "timeout", "error", "skip")
#: Keys of a `counts` object: the outcomes, plus runs cancelled before they finished.
COUNT_KEYS: Final = (*OUTCOMES, "not_run")
VERDICTS: Final = ("pending", "testing", "falsified", "supported", "inconclusive", "flaky")
ACTIONS: Final = ("fix_control", "fix_inconclusive", "new_hypotheses", "focus", "refine_tests")
UNRELIABLE_NOTE: Final = "unreliable: control did not reproduce"

#: Lines of a stream shown in Markdown/HTML details (the full output is in the run's log).
TAIL_LINES: Final = 20
#: Characters of one stream of one run kept in a JUnit system-out/system-err block.
JUNIT_STREAM_LIMIT: Final = 16_000
#: Characters kept of a one-line message (JUnit `message` attributes, table cells).
MESSAGE_LIMIT: Final = 500


# --- the schema -----------------------------------------------------------------------

_STRING: Final[dict[str, Any]] = {"type": "string"}
_BOOLEAN: Final[dict[str, Any]] = {"type": "boolean"}
_SECONDS: Final[dict[str, Any]] = {"type": "number", "minimum": 0}
_SHARE: Final[dict[str, Any]] = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT: Final[dict[str, Any]] = {"type": "integer", "minimum": 0}
_STRINGS: Final[dict[str, Any]] = {"type": "array", "items": {"type": "string"}}
_COMMAND: Final[dict[str, Any]] = {"type": ["array", "string", "null"], "items": _STRING}


def _object(
    required: Mapping[str, Any], optional: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An object schema: `required` keys must be present; other keys are allowed."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/$defs/{name}"}}


REPORT_JSON_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"refute session document ({SCHEMA_VERSION})",
    "description": "What refute stores for one session and every report renders.",
    "type": "object",
    "required": ["schema", "session", "control", "hypotheses", "summary"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "session": {"$ref": "#/$defs/session"},
        "control": {"anyOf": [{"$ref": "#/$defs/control"}, {"type": "null"}]},
        "hypotheses": _array_of("hypothesis"),
        "summary": {"$ref": "#/$defs/summary"},
    },
    "$defs": {
        "counts": _object(dict.fromkeys(COUNT_KEYS, _COUNT)),
        "run": _object(
            {
                "hypothesis_id": _STRING,
                "result": {"enum": list(OUTCOMES)},
                "duration": _SECONDS,
                "stdout": _STRING,
                "stderr": _STRING,
                "exit_code": {"type": "integer"},
                "worktree_path": _STRING,
                "error_message": _STRING,
                "metrics": _object(
                    {},
                    {
                        "confidence": _SHARE,
                        "attempt": {"type": "integer", "minimum": 1},
                        "slot": {"type": ["integer", "null"], "minimum": 0},
                        "not_run": _BOOLEAN,
                    },
                ),
                "stdout_log": _STRING,
                "stderr_log": _STRING,
                "started_at": _SECONDS,
            }
        ),
        "hypothesis": _object(
            {
                "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
                "description": _STRING,
                "rank": {"type": "integer", "minimum": 1},
                "score": {"type": "number"},
                "probability": _SHARE,
                "impact": _SHARE,
                "test_complexity": _SHARE,
                "estimated_test_time": _SECONDS,
                "supported_if": {"enum": ["fails", "passes"]},
                "test": _COMMAND,
                "shell": _BOOLEAN,
                "patch": {"type": ["string", "null"]},
                "depends_on": _STRINGS,
                "repeat": {"type": "integer", "minimum": 1},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "verdict": {"enum": list(VERDICTS)},
                "confidence": _SHARE,
                "unreliable": _BOOLEAN,
                "reason": _STRING,
                "counts": {"$ref": "#/$defs/counts"},
                "runs_total": _COUNT,
                "runs_valid": _COUNT,
                "reproduction_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "wilson_95": {
                    "type": ["array", "null"],
                    "prefixItems": [_SHARE, _SHARE],
                    "minItems": 2,
                    "items": False,
                },
                "runs": _array_of("run"),
            }
        ),
        "control": _object(
            {
                "test": _COMMAND,
                "verdict": {"enum": ["reproduced", "not_reproduced", "pending"]},
                "counts": {"$ref": "#/$defs/counts"},
                "runs": _array_of("run"),
            }
        ),
        "session": _object(
            {
                "id": {"type": "string", "minLength": 1},
                "repo": _STRING,
                "plan_path": _STRING,
                "bug": _STRING,
                "status": {"enum": ["running", "completed", "interrupted", "failed"]},
                "started_at": _STRING,
                "finished_at": {"type": ["string", "null"]},
                "base": _object(
                    {
                        "ref": _STRING,
                        "sha": {
                            "type": ["string", "null"],
                            "pattern": "^[0-9a-f]{40}([0-9a-f]{24})?$",
                        },
                        "snapshot_of": {"type": ["string", "null"]},
                        "include_uncommitted": _BOOLEAN,
                    }
                ),
                "settings": _object(
                    {
                        "concurrency": {"type": "integer", "minimum": 1},
                        "timeout": {"type": "number", "exclusiveMinimum": 0},
                        "repeat": {"type": "integer", "minimum": 1},
                        "parallel": _BOOLEAN,
                        "max_hypotheses": {"type": ["integer", "null"], "minimum": 1},
                    }
                ),
                "parallel_decision": {
                    "anyOf": [
                        _object(
                            {
                                "parallel": _BOOLEAN,
                                "sequential_time": _SECONDS,
                                "longest_test": _SECONDS,
                                "overhead": _SECONDS,
                                "cost_source": _STRING,
                                "reason": _STRING,
                            }
                        ),
                        {"type": "null"},
                    ]
                },
                "exit_code": {"type": ["integer", "null"]},
                "error": {"type": ["string", "null"]},
            }
        ),
        "summary": _object(
            {
                "counts": _object({key: _COUNT for key in VERDICTS if key != "testing"}),
                "survivors": _STRINGS,
                "recommendation": {
                    "anyOf": [
                        _object(
                            {
                                "action": {"enum": list(ACTIONS)},
                                "message": _STRING,
                                "next_steps": _STRINGS,
                            }
                        ),
                        {"type": "null"},
                    ]
                },
                "timing": _object(
                    {
                        "wall_seconds": _SECONDS,
                        "sum_run_seconds": _SECONDS,
                        "speedup": {"type": ["number", "null"], "minimum": 0},
                    }
                ),
            }
        ),
    },
}


# --- entry point ----------------------------------------------------------------------


def render(doc: dict[str, Any], fmt: str, *, color: bool = False, width: int = 100) -> str:
    """Render a session document in one of `FORMATS`.

    `color` and `width` only concern the text format. Raises `ConfigError` (field
    "format") for an unknown format.
    """
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "text": lambda d: render_text(d, color=color, width=width),
        "json": render_json,
        "markdown": render_markdown,
        "junit": render_junit,
        "html": render_html,
    }
    renderer = renderers.get(fmt)
    if renderer is None:
        raise ConfigError("format", f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    return renderer(doc)


def render_json(doc: dict[str, Any]) -> str:
    """The document itself, as JSON (what `REPORT_JSON_SCHEMA` describes)."""
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)


# --- reading a document ---------------------------------------------------------------

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


# --- text -----------------------------------------------------------------------------

_VERDICT_STYLE: Final = {
    "supported": "bold red",
    "falsified": "green",
    "inconclusive": "yellow",
    "flaky": "magenta",
    "pending": "dim",
    "testing": "dim",
}


def render_text(doc: dict[str, Any], *, color: bool = False, width: int = 100) -> str:
    """A terminal report: the verdict table, control, recommendation, timing and logs.

    Plain text unless `color` (then ANSI styles, for a terminal). `width` is in columns.
    """
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        force_jupyter=False,
        force_interactive=False,
        legacy_windows=False,
        markup=False,
        emoji=False,
        highlight=False,
    )

    def say(*parts: str | tuple[str, str], style: str = "") -> None:
        # Prose is not wrapped at `width` (soft_wrap): ids, commands and log paths stay
        # whole on one line, to be searched and copied; only the table fits the width.
        console.print(Text.assemble(*parts, style=style), soft_wrap=True)

    rows = _rows(doc)
    say(("refute: ", "bold"), (_bug(doc), "bold"))
    say(_session_line(doc))
    if _is_unreliable(doc):
        say(
            f"!! {UNRELIABLE_NOTE} the bug on the unmodified base:"
            " no verdict marked (unreliable) is evidence; fix the control first",
            style="bold red",
        )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    longest = max((len(row.id) for row in rows), default=10)
    table.add_column("Hypothesis", min_width=min(longest, 64), overflow="fold")
    table.add_column("Verdict", min_width=len("INCONCLUSIVE"))
    table.add_column("Conf.", justify="right", no_wrap=True, min_width=5)
    table.add_column("Time", justify="right", no_wrap=True, min_width=len("59.99s"))
    table.add_column("Runs")
    for row in rows:
        verdict = Text(row.verdict.upper(), style=_VERDICT_STYLE[row.verdict])
        if row.unreliable:  # the banner above the table says why
            verdict.append(" (unreliable)", style="bold red")
        table.add_row(
            "-" if row.rank is None else str(row.rank),
            Text(row.id),
            verdict,
            _share(row.confidence),
            _seconds(row.seconds),
            Text(row.runs_cell),
        )
    console.print()
    console.print(table)
    console.print()
    say(("Control: ", "bold"), _control_text(doc))
    action, message, steps = _recommendation(doc)
    say("Recommendation (", (action, "bold"), f"): {message}")
    for number, step in enumerate(steps, start=1):
        say(f"  {number}. {step}")
    say(("Timing: ", "bold"), _timing_text(doc))
    console.print()
    say(("Runs and logs", "bold"))
    control = _control_runs(doc)
    groups = [("control", "", control)] if control else []
    groups += [(row.id, row.reason, row.runs) for row in rows]
    for owner, reason, runs in groups:
        say(f"{owner}: {reason}" if reason else f"{owner}:")
        for run in runs:
            say(f"  run {run.attempt}: {run.summary()}")
            for name, path in run.logs():
                say(f"    {name} log: {path}")
    text = buffer.getvalue()
    if color:
        return text
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


# --- markdown -------------------------------------------------------------------------

_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#])")


def _md(value: object) -> str:
    """Inline Markdown: one line, HTML-escaped, Markdown punctuation (`|` too) escaped."""
    text = html.escape(_one_line(value, limit=10 * MESSAGE_LIMIT), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code_block(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def render_markdown(doc: dict[str, Any]) -> str:
    """A pull-request comment: verdict table, recommendation, timing, collapsible details."""
    rows = _rows(doc)
    lines = [f"## refute: {_md(_bug(doc))}", "", _md(_session_line(doc)), ""]
    if _is_unreliable(doc):
        lines += [
            (
                f"> **{_md(UNRELIABLE_NOTE)} the bug on the unmodified base**: "
                "no verdict below is evidence. Fix the control test first."
            ),
            "",
        ]
    lines += [f"**Control:** {_md(_control_text(doc))}", ""]
    lines += [
        "| # | Hypothesis | Description | Verdict | Confidence | Runs | Time |",
        "|--:|---|---|---|--:|---|--:|",
    ]
    for row in rows:
        verdict = f"**{row.verdict}**" + (f" ({_md(UNRELIABLE_NOTE)})" if row.unreliable else "")
        cells = [
            "-" if row.rank is None else str(row.rank),
            _md(row.id),
            _md(row.description),
            verdict,
            _share(row.confidence),
            _md(row.runs_cell),
            _seconds(row.seconds),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    action, message, steps = _recommendation(doc)
    lines += ["", f"**Recommendation ({_md(action)}):** {_md(message)}", ""]
    lines += [f"{number}. {_md(step)}" for number, step in enumerate(steps, start=1)]
    lines += ["", f"**Timing:** {_md(_timing_text(doc))}", ""]
    for owner, verdict, reason, runs in [("control", "", "", _control_runs(doc))] + [
        (row.id, row.verdict_label, row.reason, row.runs) for row in rows
    ]:
        if not runs and owner == "control":
            continue
        title = f"{owner}: {verdict}" if verdict else owner
        lines += ["<details>", f"<summary>{html.escape(_one_line(title))}</summary>", ""]
        if reason:
            lines += [_md(reason), ""]
        for run in runs:
            lines.append(f"- run {run.attempt}: {_md(run.summary())}")
            lines += [f"  - {name} log: {_md(path)}" for name, path in run.logs()]
        for run in runs:
            stderr = _tail(run.text("stderr"))
            if stderr.strip():
                lines += [
                    "",
                    f"Last lines of stderr, run {run.attempt}:",
                    "",
                    *_md_code_block(stderr),
                ]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- junit ----------------------------------------------------------------------------


def _junit_result(row: _Row) -> tuple[str | None, str]:
    """(element, message) for a hypothesis; element None means the testcase passed."""
    note = f" [{UNRELIABLE_NOTE}]" if row.unreliable else ""
    reason = row.reason or row.runs_cell
    if row.verdict == "falsified":
        return None, ""
    if row.verdict in {"supported", "flaky"}:
        return "failure", f"{row.verdict}: {reason}{note}"
    if row.verdict == "inconclusive":
        invalid = row.counts["timeout"] + row.counts["error"]
        return ("error" if invalid else "skipped"), f"inconclusive: {reason}{note}"
    return "skipped", f"{row.verdict}: {reason or 'not run yet'}{note}"


def _bounded(text: str, limit: int = JUNIT_STREAM_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return (
        f"{text[:half]}\n[... refute: {len(text) - limit} characters left out ...]\n{text[-half:]}"
    )


def _streams(runs: Sequence[_Run], key: str) -> str:
    blocks = []
    for run in runs:
        text = run.text(key)
        if text:
            blocks.append(f"--- {run.label}: {run.summary()} ---\n{_bounded(text).rstrip()}\n")
    return "".join(blocks)


def _add_streams(parent: ET.Element, runs: Sequence[_Run]) -> None:
    for tag, key in (("system-out", "stdout"), ("system-err", "stderr")):
        text = _streams(runs, key)
        if text:
            ET.SubElement(parent, tag).text = text


def render_junit(doc: dict[str, Any]) -> str:
    """JUnit XML: one testsuite, one testcase per hypothesis (docs/report.md's mapping)."""
    session = _mapping(doc.get("session"))
    rows = _rows(doc)
    results = [_junit_result(row) for row in rows]
    elements = [element for element, _ in results]
    failures, errors = elements.count("failure"), elements.count("error")
    skipped = elements.count("skipped")
    total_time = sum(row.seconds for row in rows)
    counts = {
        "tests": str(len(rows)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{total_time:.3f}",
    }
    root = ET.Element("testsuites", {"name": "refute", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": f"refute: {_bug(doc)}",
            **counts,
            "timestamp": clean_text(session.get("started_at") or ""),
        },
    )
    properties = ET.SubElement(suite, "properties")
    action, message, _ = _recommendation(doc)
    for name, value in (
        ("session", session.get("id")),
        ("status", session.get("status")),
        ("exit_code", session.get("exit_code")),
        ("control", _control_text(doc)),
        ("recommendation", f"{action}: {message}"),
        ("timing", _timing_text(doc)),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _one_line(value)})
    classname = f"refute.{clean_text(session.get('id') or 'session')}"
    for row, (element, text) in zip(rows, results, strict=True):
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": classname, "name": row.id, "time": f"{row.seconds:.3f}"},
        )
        if element is not None:
            child = ET.SubElement(case, element, {"message": _one_line(text), "type": row.verdict})
            details = [
                row.description,
                *(f"run {run.attempt}: {run.summary()}" for run in row.runs),
            ]
            child.text = "\n".join(part for part in details if part)
        _add_streams(case, row.runs)
    _add_streams(suite, _control_runs(doc))
    ET.indent(root)
    # Every value went through clean_text, so the tree holds only characters XML 1.0 allows.
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- html -----------------------------------------------------------------------------

_CSS: Final = """
body{margin:2rem auto;max-width:75rem;padding:0 1rem;font-family:system-ui,sans-serif;
color:#1f2328;background:#fff;line-height:1.45}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin-top:1.75rem}
.meta{color:#59636e;font-size:.9rem}
.banner{border:2px solid #c62828;background:#fdecea;padding:.6rem .9rem;border-radius:6px;
font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:0 .45rem;border-radius:999px;font-weight:600;
font-size:.85rem;color:#fff}
.v-supported{background:#c62828}.v-falsified{background:#2e7d32}
.v-inconclusive{background:#9a6700}.v-flaky{background:#6a1b9a}
.v-pending,.v-testing{background:#6e7781}
.unreliable{color:#c62828;font-weight:600;font-size:.85rem}
.lane{display:flex;align-items:center;margin:.25rem 0}
.lane-label{flex:0 0 6rem;font-size:.85rem;color:#59636e}
.track{position:relative;flex:1;height:1.6rem;background:#f6f8fa;border:1px solid #d1d9e0;
border-radius:4px}
.run{position:absolute;top:2px;bottom:2px;min-width:3px;box-sizing:border-box;
border-radius:3px;padding:0 .25rem;font-size:.75rem;line-height:1.35rem;color:#fff;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.axis{position:relative;height:1.2rem;margin-left:6rem;font-size:.75rem;color:#59636e}
.tick{position:absolute;white-space:nowrap}
.o-pass{background:#2e7d32}.o-fail{background:#c62828}.o-timeout{background:#ef6c00}
.o-error{background:#6a1b9a}.o-skip{background:#8c959f}
.o-not_run{background:#d0d7de;color:#1f2328}
.legend{font-size:.8rem}.legend span{margin-right:.9rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;
vertical-align:middle;margin-right:.25rem}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap;
word-break:break-word;font-size:.8rem}
"""


def _h(value: object) -> str:
    """Text for HTML content or a quoted attribute: cleaned, then escaped."""
    return html.escape(clean_text(value), quote=True)


def _anchor(hid: str) -> str:
    return "hyp-" + re.sub(r"[^A-Za-z0-9._-]", "-", hid)


def _badge(verdict: str) -> str:
    return f'<span class="verdict v-{verdict}">{_h(verdict)}</span>'


def _html_table(rows: Sequence[_Row]) -> list[str]:
    out = [
        "<table>",
        (
            "<thead><tr><th>#</th><th>Hypothesis</th><th>Description</th><th>Verdict</th>"
            "<th>Confidence</th><th>Runs</th><th>Time</th><th>Reason</th></tr></thead>"
        ),
        "<tbody>",
    ]
    for row in rows:
        verdict = _badge(row.verdict)
        if row.unreliable:
            verdict += f' <span class="unreliable">{_h(UNRELIABLE_NOTE)}</span>'
        out.append(
            f'<tr><td class="num">{"-" if row.rank is None else row.rank}</td>'
            f'<td><a href="#{_h(_anchor(row.id))}">{_h(row.id)}</a></td>'
            f"<td>{_h(row.description)}</td><td>{verdict}</td>"
            f'<td class="num">{_share(row.confidence)}</td><td>{_h(row.runs_cell)}</td>'
            f'<td class="num">{_seconds(row.seconds)}</td><td>{_h(row.reason)}</td></tr>'
        )
    out += ["</tbody>", "</table>"]
    return out


def _run_id(run: _Run, seen: set[str]) -> str:
    base = "run-" + re.sub(r"[^A-Za-z0-9._-]", "-", f"{run.owner}-{run.attempt}")
    candidate, suffix = base, 2
    while candidate in seen:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    seen.add(candidate)
    return candidate


def _timeline(runs: Sequence[_Run]) -> list[str]:
    placed = [run for run in runs if run.slot is not None and run.started_at > 0]
    on_timeline = {id(run) for run in placed}
    unplaced = [run for run in runs if id(run) not in on_timeline]
    out = ['<div class="timeline">']
    if placed:
        start = min(run.started_at for run in placed)
        end = max(run.started_at + run.duration for run in placed)
        span = end - start if end > start else 1.0
        seen: set[str] = set()
        for slot in sorted({run.slot for run in placed if run.slot is not None}):
            out.append(f'<div class="lane" data-slot="{slot}">')
            out.append(f'<div class="lane-label">slot {slot}</div><div class="track">')
            for run in sorted((r for r in placed if r.slot == slot), key=lambda r: r.started_at):
                left = min(max((run.started_at - start) / span * 100, 0.0), 100.0)
                width = min(run.duration / span * 100, 100.0 - left)
                when = dt.datetime.fromtimestamp(run.started_at, dt.UTC).isoformat(
                    timespec="milliseconds"
                )
                title = (
                    f"{run.label}: {run.summary()}\n"
                    f"started +{run.started_at - start:.2f}s ({when}), slot {slot}"
                )
                out.append(
                    f'<div class="run o-{run.outcome}" id="{_run_id(run, seen)}" '
                    f'data-run="{_h(run.label)}" style="left:{left:.3f}%;width:{width:.3f}%" '
                    f'title="{_h(title)}">{_h(run.label)}</div>'
                )
            out.append("</div></div>")
        ticks = "".join(
            f'<span class="tick" style="left:{share * 100:.0f}%">+{_seconds(span * share)}</span>'
            for share in (0.0, 0.25, 0.5, 0.75)
        )
        ticks += f'<span class="tick" style="right:0">+{_seconds(span)}</span>'
        out.append(f'<div class="axis">{ticks}</div>')
    else:
        out.append("<p>No run has a start time and a concurrency slot.</p>")
    out.append("</div>")
    legend = "".join(
        f'<span><i class="swatch o-{key}"></i>{_h(key.replace("_", " "))}</span>'
        for key in COUNT_KEYS
    )
    out.append(f'<p class="legend">{legend}</p>')
    if unplaced:
        out.append("<p>Runs without a slot or a start time (not on the timeline):</p><ul>")
        out += [f"<li>{_h(run.label)}: {_h(run.summary())}</li>" for run in unplaced]
        out.append("</ul>")
    return out


def _html_runs(owner: str, anchor: str, title: str, reason: str, runs: Sequence[_Run]) -> list[str]:
    out = [f'<section id="{_h(anchor)}">', f"<h3>{title}</h3>"]
    if reason:
        out.append(f"<p>{_h(reason)}</p>")
    if runs:
        out.append(
            "<table><thead><tr><th>Run</th><th>Outcome</th><th>Exit</th><th>Time</th>"
            "<th>Slot</th><th>Message</th><th>Logs</th></tr></thead><tbody>"
        )
        for run in runs:
            logs = "<br>".join(f"{_h(name)}: <code>{_h(path)}</code>" for name, path in run.logs())
            out.append(
                f'<tr><td>{run.attempt}</td><td><span class="swatch o-{run.outcome}"></span>'
                f"{_h(run.outcome.replace('_', ' '))}</td><td>{_h(run.data.get('exit_code'))}</td>"
                f'<td class="num">{_seconds(run.duration)}</td>'
                f"<td>{'-' if run.slot is None else run.slot}</td>"
                f"<td>{_h(run.data.get('error_message') or '')}</td><td>{logs}</td></tr>"
            )
        out.append("</tbody></table>")
    for run in runs:
        for key in ("stderr", "stdout"):
            text = _tail(run.text(key))
            if text.strip():
                out.append(
                    f"<details><summary>{_h(owner)} run {run.attempt}: last lines of {key}"
                    f"</summary><pre>{_h(text)}</pre></details>"
                )
    out.append("</section>")
    return out


def render_html(doc: dict[str, Any]) -> str:
    """One self-contained page (inline CSS, no script, no external URL) with a timeline."""
    rows = _rows(doc)
    control = _control_runs(doc)
    action, message, steps = _recommendation(doc)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>refute: {_h(_bug(doc))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>refute: {_h(_bug(doc))}</h1>",
        f'<p class="meta">{_h(_session_line(doc))}</p>',
    ]
    if _is_unreliable(doc):
        out.append(
            f'<p class="banner">{_h(UNRELIABLE_NOTE)} the bug on the unmodified base: '
            "no verdict below is evidence. Fix the control test first.</p>"
        )
    out.append(f"<p><strong>Control:</strong> {_h(_control_text(doc))}</p>")
    out.append("<h2>Verdicts</h2>")
    out += _html_table(rows)
    out.append(f"<h2>Recommendation: {_h(action)}</h2>")
    out.append(f"<p>{_h(message)}</p>")
    if steps:
        out.append("<ol>" + "".join(f"<li>{_h(step)}</li>" for step in steps) + "</ol>")
    out.append(f"<p><strong>Timing:</strong> {_h(_timing_text(doc))}</p>")
    out.append("<h2>Timeline</h2>")
    out += _timeline(control + [run for row in rows for run in row.runs])
    out.append("<h2>Runs</h2>")
    if control:
        out += _html_runs("control", "control", "control", "", control)
    for row in rows:
        title = f"{_h(row.id)} {_badge(row.verdict)}"
        if row.unreliable:
            title += f' <span class="unreliable">{_h(UNRELIABLE_NOTE)}</span>'
        out += _html_runs(row.id, _anchor(row.id), title, row.reason, row.runs)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
