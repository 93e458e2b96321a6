"""The Markdown format: a pull-request comment with collapsible details per hypothesis."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final

from refute.reports._common import (
    MESSAGE_LIMIT,
    UNRELIABLE_NOTE,
    bug_text,
    caveat_lines,
    control_runs,
    control_text,
    hypothesis_rows,
    is_unreliable,
    one_line_text,
    parse,
    recommendation,
    seconds_text,
    session_line,
    share_text,
    tail_lines,
    timing_text,
)

__all__ = ["render_markdown"]

_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#])")


def _md(value: object) -> str:
    """Inline Markdown: one line, HTML-escaped, Markdown punctuation (`|` too) escaped."""
    text = html.escape(one_line_text(value, limit=10 * MESSAGE_LIMIT), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code_block(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """A pull-request comment: verdict table, recommendation, timing, collapsible details."""
    document = parse(doc)
    rows = hypothesis_rows(document)
    lines = [f"## refute: {_md(bug_text(document))}", "", _md(session_line(document)), ""]
    if is_unreliable(document):
        lines += [
            (
                f"> **{_md(UNRELIABLE_NOTE)} the bug on the unmodified base**: "
                "no verdict below is evidence. Fix the control test first."
            ),
            "",
        ]
    lines += [f"**Control:** {_md(control_text(document))}", ""]
    lines += [
        "| # | Hypothesis | Description | Verdict | Confidence | Runs | Time |",
        "|--:|---|---|---|--:|---|--:|",
    ]
    for row in rows:
        notes = row.notes
        verdict = f"**{row.verdict}**" + (f" ({_md('; '.join(notes))})" if notes else "")
        cells = [
            "-" if row.rank is None else str(row.rank),
            _md(row.id),
            _md(row.description),
            verdict,
            share_text(row.confidence),
            _md(row.runs_cell),
            seconds_text(row.seconds),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    caveats = [caveat for row in rows for caveat in caveat_lines(row)]
    if caveats:
        lines.append("")
        lines += [
            f"- {'**' if bad else ''}{_md(line)}{'**' if bad else ''}" for bad, line in caveats
        ]
    action, message, steps = recommendation(document)
    lines += ["", f"**Recommendation ({_md(action)}):** {_md(message)}", ""]
    lines += [f"{number}. {_md(step.text)}" for number, step in enumerate(steps, start=1)]
    lines += ["", f"**Timing:** {_md(timing_text(document))}", ""]
    for owner, verdict, reason, runs in [("control", "", "", control_runs(document))] + [
        (row.id, row.verdict_label, row.reason, row.runs) for row in rows
    ]:
        if not runs and owner == "control":
            continue
        title = f"{owner}: {verdict}" if verdict else owner
        lines += ["<details>", f"<summary>{html.escape(one_line_text(title))}</summary>", ""]
        if reason:
            lines += [_md(reason), ""]
        for run in runs:
            lines.append(f"- run {run.attempt}: {_md(run.summary())}")
            lines += [f"  - {name} log: {_md(path)}" for name, path in run.logs()]
        for run in runs:
            stderr = tail_lines(run.text("stderr"))
            if stderr.strip():
                lines += [
                    "",
                    f"Last lines of stderr, run {run.attempt}:",
                    "",
                    *_md_code_block(stderr),
                ]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
