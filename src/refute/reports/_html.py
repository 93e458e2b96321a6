"""The HTML format: one self-contained page (inline CSS, no script) with a run timeline.

It must read at a glance in a narrow window: nothing scrolls sideways at 700 px (long
commands and log paths break anywhere, a long id breaks only between its parts), a short
id is never broken at its hyphen, and a colour means one thing everywhere: the tone of
`refute.reports._common` (`TONE_CSS`), shared by a verdict's badge and the runs behind it.
The timeline's geometry (a broken axis when one long run dominates, round ticks) is in
`refute.reports._timeline`.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from refute.document import CONTROL_ID
from refute.reports._common import (
    DIFFERENT_NOTE,
    TONE_CSS,
    TONES,
    UNRELIABLE_NOTE,
    Row,
    Run,
    Tone,
    bug_text,
    caveat_lines,
    clean_text,
    control_runs,
    control_text,
    hypothesis_rows,
    is_unreliable,
    parse,
    recommendation,
    run_tone,
    seconds_text,
    session_line,
    share_text,
    tail_lines,
    timing_text,
)
from refute.reports._timeline import Axis, time_label

__all__ = ["render_html"]

#: An id this long or shorter is never broken; a longer one breaks only between its parts.
ID_NOWRAP: Final = 32
#: The longest part of a long id between two break points.
_ID_CHUNK: Final = 16

_TONE_CLASSES: Final = "".join(
    f".t-{tone}{{background:{colour};color:#fff}}" for tone, colour in TONE_CSS.items()
)

_CSS: Final = (
    """
*,*::before,*::after{box-sizing:border-box}
body{margin:1.5rem auto;max-width:75rem;padding:0 1rem;font-family:system-ui,sans-serif;
color:#1f2328;background:#fff;line-height:1.45;hyphens:none;overflow-wrap:break-word}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin-top:1.75rem}
h3{font-size:1.05rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
code.id{white-space:nowrap}
code.id.long{white-space:normal;overflow-wrap:anywhere}
code.id.long span{display:inline-block;white-space:nowrap}
code.cmd,code.path{overflow-wrap:anywhere}
.meta{color:#59636e;font-size:.9rem}
.banner{border:2px solid #9a4f00;background:#fff4e5;padding:.6rem .9rem;border-radius:6px;
font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
td{overflow-wrap:anywhere}td.runs{overflow-wrap:normal}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .4rem;text-align:left;vertical-align:top}
th.c-hyp{width:46%}th.c-verdict{width:32%}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{display:inline-block;padding:0 .45rem;border-radius:999px;font-weight:600;
font-size:.85rem;white-space:nowrap}
.facts,.why{font-size:.82rem;color:#424a53;margin-top:.2rem}
.facts .k{color:#59636e;font-weight:600}
.unreliable,.different{color:#9a4f00;font-weight:600;font-size:.85rem}
.legend{list-style:none;padding:0;margin:.5rem 0;font-size:.82rem}
.legend li{margin:.15rem 0}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;
vertical-align:middle;margin-right:.3rem}
.lane{display:flex;align-items:center;margin:.25rem 0}
.lane-label{flex:0 0 3.5rem;font-size:.8rem;color:#59636e;white-space:nowrap}
.track{position:relative;flex:1;min-width:0;height:1.6rem;background:#f6f8fa;
border:1px solid #d1d9e0;border-radius:4px}
.run{position:absolute;top:2px;bottom:2px;min-width:4px;border-radius:3px;
padding:0 .2rem;font-size:.75rem;line-height:1.35rem;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;border-right:1px solid #fff}
.cut{position:absolute;top:-1px;bottom:-1px;width:6px;margin-left:-3px;background:#fff;
border-left:2px dotted #59636e;border-right:2px dotted #59636e;z-index:1}
.axis{position:relative;height:1.5rem;margin-left:3.5rem;font-size:.75rem;color:#59636e}
.tick{position:absolute;top:0;height:.3rem;border-left:1px solid #8c959f}
.tick-label{position:absolute;top:.25rem;white-space:nowrap;transform:translateX(-50%)}
.tick-label.start{transform:translateX(3px)}
.tick-label.end{transform:translateX(calc(-100% - 3px))}
.cut-mark{position:absolute;top:0;height:.3rem;width:6px;margin-left:-3px;
border-left:2px dotted #59636e;border-right:2px dotted #59636e}
.note{font-size:.82rem;color:#59636e}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap;
overflow-wrap:anywhere;font-size:.8rem}
"""
    + _TONE_CLASSES
    + "\n"
)

#: What each tone means, for the legend (the words of `refute.reports._common.TONES`).
_TONE_LEGEND: Final[dict[Tone, tuple[str, str]]] = {
    "survives": (
        "survives",
        (
            "a supported hypothesis, and each run that speaks for its hypothesis"
            " (for the control: a run that reproduced the bug)"
        ),
    ),
    "ruled_out": (
        "ruled out",
        (
            "a falsified hypothesis, and each run that speaks against its hypothesis"
            " (for the control: a run that did not reproduce the bug)"
        ),
    ),
    "unclear": (
        "unclear",
        (
            "an inconclusive or flaky hypothesis, and each run that is no evidence"
            " (a timeout, an error, a skip)"
        ),
    ),
    "pending": ("pending", "not decided yet, and each run that did not run"),
}


def _h(value: object) -> str:
    """Text for HTML content or a quoted attribute: cleaned, then escaped."""
    return html.escape(clean_text(value), quote=True)


def _anchor(hid: str) -> str:
    return "hyp-" + re.sub(r"[^A-Za-z0-9._-]", "-", hid)


def id_parts(hid: str) -> list[str]:
    """A long id cut at its explicit break points: after each `-`, `_`, `.` or `/`, and
    every `_ID_CHUNK` characters of a part without them."""
    parts = []
    for piece in re.findall(r"[^-_./]*[-_./]?", hid):
        parts += [piece[i : i + _ID_CHUNK] for i in range(0, len(piece), _ID_CHUNK)]
    return [part for part in parts if part]


def _id(hid: str) -> str:
    """An id in `<code>`: unbroken when it fits (ID_NOWRAP), else broken only between the
    parts of `id_parts` (each part a no-wrap span; no hyphen is ever added)."""
    if len(hid) <= ID_NOWRAP:
        return f'<code class="id">{_h(hid)}</code>'
    spans = "".join(f"<span>{_h(part)}</span>" for part in id_parts(hid))
    return f'<code class="id long">{spans}</code>'


def _badge(row: Row) -> str:
    return f'<span class="verdict v-{row.verdict} t-{row.tone}">{_h(row.verdict)}</span>'


def _notes(row: Row) -> str:
    spans = []
    for note in row.notes:
        kind = "different" if note == DIFFERENT_NOTE else "unreliable"
        spans.append(f' <span class="{kind}">{_h(note)}</span>')
    return "".join(spans)


def _facts(row: Row) -> str:
    """How the hypothesis is tested: its reading, its change, its command."""
    lines = [f'<div><span class="k">reads as:</span> {_h(row.reading)}</div>']
    if row.patch_source:
        lines.append(f'<div><span class="k">change:</span> {_h(row.patch_source)}</div>')
    lines.append(
        f'<div><span class="k">command:</span> <code class="cmd">{_h(row.command)}</code></div>'
    )
    return f'<div class="facts">{"".join(lines)}</div>'


def _html_table(rows: Sequence[Row]) -> list[str]:
    out = [
        "<table>",
        (
            '<thead><tr><th>#</th><th class="c-hyp">Hypothesis</th>'
            '<th class="c-verdict">Verdict</th><th>Runs</th><th>Time</th></tr></thead>'
        ),
        "<tbody>",
    ]
    for row in rows:
        verdict = (
            f"{_badge(row)}{_notes(row)}"
            f'<div class="why">{_h(row.meaning)}; confidence {share_text(row.confidence)}'
            f'</div><div class="why">{_h(row.reason)}</div>'
        )
        out.append(
            f'<tr><td class="num">{"-" if row.rank is None else row.rank}</td>'
            f'<td><a href="#{_h(_anchor(row.id))}">{_id(row.id)}</a>'
            f"<div>{_h(row.description)}</div>{_facts(row)}</td><td>{verdict}</td>"
            f'<td class="runs">{_h(row.runs_cell)}</td>'
            f'<td class="num">{seconds_text(row.seconds)}</td></tr>'
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


def _box(run: Run, tone: Tone, axis: Axis, seen: set[str]) -> str:
    """A run's box, coloured by its tone. Its visible label puts the attempt first ("#3
    retry-storm"), so a narrow box still shows which run it is: the id is the part cut
    off (the title has everything)."""
    left, width = axis.box(run.started_at, run.duration)
    when = dt.datetime.fromtimestamp(run.started_at, dt.UTC).isoformat(timespec="milliseconds")
    title = (
        f"{run.label}: {run.summary()}\n"
        f"started +{seconds_text(run.started_at - axis.origin)} ({when}), slot {run.slot}"
    )
    return (
        f'<div class="run o-{run.outcome} t-{tone}" id="{_run_id(run, seen)}" '
        f'data-run="{_h(run.label)}" style="left:{left * 100:.3f}%;width:{width * 100:.3f}%" '
        f'title="{_h(title)}"><span class="att">#{run.attempt}</span> {_h(run.owner)}</div>'
    )


def _axis(axis: Axis) -> str:
    parts = [
        f'<span class="tick" style="left:{tick.share * 100:.3f}%" '
        f'data-seconds="{tick.seconds:g}"><span class="tick-label {tick.align}">'
        f"{_h(tick.label)}</span></span>"
        for tick in axis.ticks()
    ]
    parts += [
        f'<span class="cut-mark" style="left:{cut.at * 100:.3f}%" '
        f'title="{_h(time_label(round(cut.seconds), 1.0))} not drawn"></span>'
        for cut in axis.cuts
    ]
    return f'<div class="axis">{"".join(parts)}</div>'


def _legend() -> str:
    items = "".join(
        f'<li><i class="swatch t-{tone}"></i><strong>{_h(_TONE_LEGEND[tone][0])}</strong>: '
        f"{_h(_TONE_LEGEND[tone][1])}</li>"
        for tone in TONES
    )
    return f'<ul class="legend">{items}</ul>'


def _timeline(runs: Sequence[tuple[Run, Tone]]) -> list[str]:
    placed = [(run, tone) for run, tone in runs if run.slot is not None and run.started_at > 0]
    on_timeline = {id(run) for run, _ in placed}
    unplaced = [run for run, _ in runs if id(run) not in on_timeline]
    out = [_legend(), '<div class="timeline">']
    axis = None
    if placed:
        axis = Axis([(run.started_at, run.started_at + run.duration) for run, _ in placed])
        cuts = "".join(f'<i class="cut" style="left:{c.at * 100:.3f}%"></i>' for c in axis.cuts)
        seen: set[str] = set()
        for slot in sorted({run.slot for run, _ in placed if run.slot is not None}):
            out.append(f'<div class="lane" data-slot="{slot}">')
            out.append(f'<div class="lane-label">slot {slot}</div><div class="track">')
            lane = sorted((p for p in placed if p[0].slot == slot), key=lambda p: p[0].started_at)
            out += [_box(run, tone, axis, seen) for run, tone in lane]
            out.append(f"{cuts}</div></div>")
        out.append(_axis(axis))
    else:
        out.append("<p>No run has a start time and a concurrency slot.</p>")
    out.append("</div>")
    if axis is not None and axis.cuts:
        left_out = seconds_text(sum(cut.seconds for cut in axis.cuts))
        out.append(
            '<p class="note">The time axis is cut (the dotted bands) where nothing started'
            f" or ended for a long stretch ({left_out} left out in all), so that short"
            " runs stay visible: a box that crosses a cut is drawn shorter than it ran."
            " Outside the cuts the axis is linear; each box's title and the tables below"
            " give the real times.</p>"
        )
    if unplaced:
        out.append("<p>Runs without a slot or a start time (not on the timeline):</p><ul>")
        out += [f"<li>{_h(run.label)}: {_h(run.summary())}</li>" for run in unplaced]
        out.append("</ul>")
    return out


def _html_runs(
    owner: str, anchor: str, title: str, intro: str, runs: Sequence[tuple[Run, Tone]]
) -> list[str]:
    out = [f'<section id="{_h(anchor)}">', f"<h3>{title}</h3>", intro]
    if runs:
        out.append(
            "<table><thead><tr><th>Run</th><th>Outcome</th><th>Exit</th><th>Time</th>"
            "<th>Slot</th><th>Message</th><th>Logs</th></tr></thead><tbody>"
        )
        for run, tone in runs:
            logs = "<br>".join(
                f'{_h(name)}: <code class="path">{_h(path)}</code>' for name, path in run.logs()
            )
            out.append(
                f'<tr><td>{run.attempt}</td><td><span class="swatch t-{tone}"></span>'
                f"{_h(run.outcome.replace('_', ' '))}</td><td>{_h(run.data.exit_code)}</td>"
                f'<td class="num">{seconds_text(run.duration)}</td>'
                f"<td>{'-' if run.slot is None else run.slot}</td>"
                f"<td>{_h(run.data.error_message)}</td><td>{logs}</td></tr>"
            )
        out.append("</tbody></table>")
    for run, _ in runs:
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
    # The control is read as a probe: a run that reproduced the bug speaks for it.
    control = [(run, run_tone(run.data, "fails")) for run in control_runs(document)]
    toned = {
        row.id: [(run, run_tone(run.data, row.supported_if)) for run in row.runs] for row in rows
    }
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
        items = "".join(
            f"<li>{_h(step.text)}"
            + (f'<div><code class="cmd">{_h(step.command)}</code></div>' if step.command else "")
            + "</li>"
            for step in steps
        )
        out.append(f"<ol>{items}</ol>")
    out.append(f"<p><strong>Timing:</strong> {_h(timing_text(document))}</p>")
    out.append("<h2>Timeline</h2>")
    out += _timeline(control + [pair for row in rows for pair in toned[row.id]])
    out.append("<h2>Runs</h2>")
    if control:
        out += _html_runs(CONTROL_ID, "control", "control", "", control)
    for row in rows:
        title = f"{_id(row.id)} {_badge(row)}{_notes(row)}"
        intro = f"<p>{_h(row.reason)}</p>{_facts(row)}"
        out += _html_runs(row.id, _anchor(row.id), title, intro, toned[row.id])
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
