"""The text format: a terminal report drawn with rich (plain unless color is asked for)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from refute.document import Verdict
from refute.reports._common import (
    DIFFERENT_NOTE,
    UNRELIABLE_NOTE,
    bug_text,
    caveat_lines,
    control_runs,
    control_text,
    hypothesis_rows,
    is_unreliable,
    parse,
    recommendation,
    seconds_text,
    session_line,
    share_text,
    timing_text,
)

__all__ = ["render_text"]

_VERDICT_STYLE: Final[dict[Verdict, str]] = {
    "supported": "bold red",
    "falsified": "green",
    "inconclusive": "yellow",
    "flaky": "magenta",
    "pending": "dim",
    "testing": "dim",
}


def render_text(doc: Mapping[str, Any], *, color: bool = False, width: int = 100) -> str:
    """A terminal report: the verdict table, control, recommendation, timing and logs.

    Plain text unless `color` (then ANSI styles, for a terminal). `width` is in columns.
    """
    document = parse(doc)
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

    rows = hypothesis_rows(document)
    say(("refute: ", "bold"), (bug_text(document), "bold"))
    say(session_line(document))
    if is_unreliable(document):
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
        if row.unreliable:  # the banner above or a line below the table says why
            verdict.append(" (unreliable)", style="bold red")
        if row.failed_differently:
            verdict.append(f" ({DIFFERENT_NOTE})", style="yellow")
        table.add_row(
            "-" if row.rank is None else str(row.rank),
            Text(row.id),
            verdict,
            share_text(row.confidence),
            seconds_text(row.seconds),
            Text(row.runs_cell),
        )
    console.print()
    console.print(table)
    caveats = [caveat for row in rows for caveat in caveat_lines(row)]
    if caveats:
        console.print()
    for unreliable, line in caveats:
        say(f"!! {line}", style="bold red" if unreliable else "yellow")
    console.print()
    say(("Control: ", "bold"), control_text(document))
    action, message, steps = recommendation(document)
    say("Recommendation (", (action, "bold"), f"): {message}")
    for number, step in enumerate(steps, start=1):
        say(f"  {number}. {step.text}")
    say(("Timing: ", "bold"), timing_text(document))
    console.print()
    say(("Runs and logs", "bold"))
    control = control_runs(document)
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
