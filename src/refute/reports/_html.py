"""The HTML format: one self-contained page (inline CSS, no script) with a run timeline."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from refute.document import OUTCOME_KEYS
from refute.reports._common import (
    DIFFERENT_NOTE,
    UNRELIABLE_NOTE,
    Row,
    Run,
    bug_text,
    caveat_lines,
    clean_text,
    control_runs,
    control_text,
    hypothesis_rows,
    is_unreliable,
    parse,
    recommendation,
    seconds_text,
    session_line,
    share_text,
    tail_lines,
    timing_text,
)

__all__ = ["render_html"]

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
.different{color:#9a6700;font-weight:600;font-size:.85rem}
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


def _notes(row: Row) -> str:
    spans = []
    for note in row.notes:
        kind = "different" if note == DIFFERENT_NOTE else "unreliable"
        spans.append(f' <span class="{kind}">{_h(note)}</span>')
    return "".join(spans)


def _html_table(rows: Sequence[Row]) -> list[str]:
    out = [
        "<table>",
        (
            "<thead><tr><th>#</th><th>Hypothesis</th><th>Description</th><th>Verdict</th>"
            "<th>Confidence</th><th>Runs</th><th>Time</th><th>Reason</th></tr></thead>"
        ),
        "<tbody>",
    ]
    for row in rows:
        verdict = _badge(row.verdict) + _notes(row)
        out.append(
            f'<tr><td class="num">{"-" if row.rank is None else row.rank}</td>'
            f'<td><a href="#{_h(_anchor(row.id))}">{_h(row.id)}</a></td>'
            f"<td>{_h(row.description)}</td><td>{verdict}</td>"
            f'<td class="num">{share_text(row.confidence)}</td><td>{_h(row.runs_cell)}</td>'
            f'<td class="num">{seconds_text(row.seconds)}</td><td>{_h(row.reason)}</td></tr>'
        )
    out += ["</tbody>", "</table>"]
    return out


def _run_id(run: Run, seen: set[str]) -> str:
    base = "run-" + re.sub(r"[^A-Za-z0-9._-]", "-", f"{run.owner}-{run.attempt}")
    candidate, suffix = base, 2
    while candidate in seen:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    seen.add(candidate)
    return candidate


def _timeline(runs: Sequence[Run]) -> list[str]:
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
            f'<span class="tick" style="left:{share * 100:.0f}%">'
            f"+{seconds_text(span * share)}</span>"
            for share in (0.0, 0.25, 0.5, 0.75)
        )
        ticks += f'<span class="tick" style="right:0">+{seconds_text(span)}</span>'
        out.append(f'<div class="axis">{ticks}</div>')
    else:
        out.append("<p>No run has a start time and a concurrency slot.</p>")
    out.append("</div>")
    legend = "".join(
        f'<span><i class="swatch o-{key}"></i>{_h(key.replace("_", " "))}</span>'
        for key in OUTCOME_KEYS
    )
    out.append(f'<p class="legend">{legend}</p>')
    if unplaced:
        out.append("<p>Runs without a slot or a start time (not on the timeline):</p><ul>")
        out += [f"<li>{_h(run.label)}: {_h(run.summary())}</li>" for run in unplaced]
        out.append("</ul>")
    return out


def _html_runs(owner: str, anchor: str, title: str, reason: str, runs: Sequence[Run]) -> list[str]:
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
                f"{_h(run.outcome.replace('_', ' '))}</td><td>{_h(run.data.exit_code)}</td>"
                f'<td class="num">{seconds_text(run.duration)}</td>'
                f"<td>{'-' if run.slot is None else run.slot}</td>"
                f"<td>{_h(run.data.error_message)}</td><td>{logs}</td></tr>"
            )
        out.append("</tbody></table>")
    for run in runs:
        for key in ("stderr", "stdout"):
            text = tail_lines(run.text(key))
            if text.strip():
                out.append(
                    f"<details><summary>{_h(owner)} run {run.attempt}: last lines of {key}"
                    f"</summary><pre>{_h(text)}</pre></details>"
                )
    out.append("</section>")
    return out


def render_html(doc: Mapping[str, Any]) -> str:
    """One self-contained page (inline CSS, no script, no external URL) with a timeline."""
    document = parse(doc)
    rows = hypothesis_rows(document)
    control = control_runs(document)
    action, message, steps = recommendation(document)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>refute: {_h(bug_text(document))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>refute: {_h(bug_text(document))}</h1>",
        f'<p class="meta">{_h(session_line(document))}</p>',
    ]
    if is_unreliable(document):
        out.append(
            f'<p class="banner">{_h(UNRELIABLE_NOTE)} the bug on the unmodified base: '
            "no verdict below is evidence. Fix the control test first.</p>"
        )
    out.append(f"<p><strong>Control:</strong> {_h(control_text(document))}</p>")
    out.append("<h2>Verdicts</h2>")
    out += _html_table(rows)
    caveats = [caveat for row in rows for caveat in caveat_lines(row)]
    if caveats:
        out.append(
            '<ul class="caveats">'
            + "".join(
                f'<li class="{"unreliable" if bad else "different"}">{_h(line)}</li>'
                for bad, line in caveats
            )
            + "</ul>"
        )
    out.append(f"<h2>Recommendation: {_h(action)}</h2>")
    out.append(f"<p>{_h(message)}</p>")
    if steps:
        out.append("<ol>" + "".join(f"<li>{_h(step.text)}</li>" for step in steps) + "</ol>")
    out.append(f"<p><strong>Timing:</strong> {_h(timing_text(document))}</p>")
    out.append("<h2>Timeline</h2>")
    out += _timeline(control + [run for row in rows for run in row.runs])
    out.append("<h2>Runs</h2>")
    if control:
        out += _html_runs("control", "control", "control", "", control)
    for row in rows:
        title = f"{_h(row.id)} {_badge(row.verdict)}{_notes(row)}"
        out += _html_runs(row.id, _anchor(row.id), title, row.reason, row.runs)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
