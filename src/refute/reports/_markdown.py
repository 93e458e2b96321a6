"""The Markdown format: a pull-request comment with collapsible details per hypothesis."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final

from refute.reports._common import (
    MESSAGE_LIMIT,
    UNRELIABLE_NOTE,
    _bug,
    _caveats,
    _control_runs,
    _control_text,
    _is_unreliable,
    _one_line,
    _recommendation,
    _rows,
    _seconds,
    _session_line,
    _share,
    _tail,
    _timing_text,
    parse,
)

__all__ = ["render_markdown"]

_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#])")


def _md(value: object) -> str:
    """Inline Markdown: one line, HTML-escaped, Markdown punctuation (`|` too) escaped."""
    text = html.escape(_one_line(value, limit=10 * MESSAGE_LIMIT), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code_block(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """A pull-request comment: verdict table, recommendation, timing, collapsible details."""
    document = parse(doc)
    rows = _rows(document)
    lines = [f"## refute: {_md(_bug(document))}", "", _md(_session_line(document)), ""]
    if _is_unreliable(document):
        lines += [
            (
                f"> **{_md(UNRELIABLE_NOTE)} the bug on the unmodified base**: "
                "no verdict below is evidence. Fix the control test first."
            ),
            "",
        ]
    lines += [f"**Control:** {_md(_control_text(document))}", ""]
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
            _share(row.confidence),
            _md(row.runs_cell),
            _seconds(row.seconds),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    caveats = [caveat for row in rows for caveat in _caveats(row)]
    if caveats:
        lines.append("")
        lines += [
            f"- {'**' if bad else ''}{_md(line)}{'**' if bad else ''}" for bad, line in caveats
        ]
    action, message, steps = _recommendation(document)
    lines += ["", f"**Recommendation ({_md(action)}):** {_md(message)}", ""]
    lines += [f"{number}. {_md(step)}" for number, step in enumerate(steps, start=1)]
    lines += ["", f"**Timing:** {_md(_timing_text(document))}", ""]
    for owner, verdict, reason, runs in [("control", "", "", _control_runs(document))] + [
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
