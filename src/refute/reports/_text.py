"""The text format: a terminal report drawn with rich (plain unless color is asked for).

The order is pytest's: details first, the summary last, so that the last screen of a
terminal shows the outcome. From the top: the bug and the session; the runs that need
attention, with their logs (every run with `verbose`); what each hypothesis tests and what
its verdict means; the caveats; the verdict table; the control; the recommendation with
the commands of its next steps; the timing. Every line fits `width` (see `_text_layout`).
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Mapping
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from refute.document import (
    CONTROL_NOT_REPRODUCED,
    OUTCOME_KEYS,
    CountKey,
    SessionDocument,
    SupportedIf,
)
from refute.reports._common import (
    CHECKOUT_NOTE,
    DIFFERENT_NOTE,
    FAILURE_KINDS,
    TONE_STYLE,
    UNRELIABLE_NOTE,
    Row,
    Run,
    bug_text,
    caveat_lines,
    clean_text,
    command_text,
    control_runs,
    control_text,
    failure_kind,
    hypothesis_rows,
    is_unreliable,
    parse,
    recommendation,
    run_tone,
    seconds_text,
    session_line,
    share_text,
    timing_text,
)
from refute.reports._text_layout import Writer, column_widths, pack_parts

__all__ = ["render_text"]

#: How a candidate fix is marked under its id in the table (probes are the default).
FIX_MARK: Final = "(candidate fix)"
#: What `command_text` says of a test the document has no command of (a seed's script).
NO_COMMAND: Final = command_text(None)
#: Why a run that skipped itself is listed: it gave no evidence, its log may say why.
SKIP_NOTE: Final = "the test skipped itself, no evidence"


def render_text(
    doc: Mapping[str, Any], *, color: bool = False, width: int = 100, verbose: bool = False
) -> str:
    """A terminal report whose last lines are the verdict table, the control, the
    recommendation and the timing (see the module docstring).

    Plain text unless `color` (then ANSI styles, for a terminal). `width` is in columns:
    no line is longer. The log listing shows only the runs that need attention unless
    `verbose`, and says how many it left out.
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
    out = Writer(console, width)
    rows = hypothesis_rows(document)
    out.say(("refute: ", "bold"), (bug_text(document), "bold"))
    out.say(session_line(document))
    _runs(out, document, rows, verbose=verbose)
    _hypotheses(out, rows)
    _caveats(out, document, rows)
    out.blank()
    _verdicts(out, rows)
    out.blank()
    _control(out, document)
    _recommendation(out, document)
    out.say(("Timing: ", "bold"), timing_text(document))
    text = buffer.getvalue()
    if color:
        return text
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


# -- the runs and their logs ---------------------------------------------------------------


def _attention(run: Run, row: Row | None, control_failed: bool) -> str:
    """Why a run needs a look at its logs, in words ("" when it does not): it failed to
    give evidence (`failure_kind`), skipped itself, or its verdict has a caveat; a run of
    the control when the control did not reproduce the bug. `row` is None for the control."""
    kind = failure_kind(run.data)
    if kind is not None:
        return FAILURE_KINDS[kind]
    if run.outcome == "not_run":
        return ""
    if row is None:
        return "the control did not reproduce the bug" if control_failed else ""
    notes = [
        (run.outcome == "skip", SKIP_NOTE),
        (row.names_checkout, CHECKOUT_NOTE),
        (row.failed_differently, DIFFERENT_NOTE),
        (row.unreliable and not row.control_failed, UNRELIABLE_NOTE),  # an older document's
    ]
    return next((note for applies, note in notes if applies), "")


def _runs(out: Writer, doc: SessionDocument, rows: list[Row], *, verbose: bool) -> None:
    """The runs that need attention with their log paths (every run if `verbose`), and
    one line on how many were left out and how to list them."""
    control_failed = doc.control is not None and doc.control.verdict == CONTROL_NOT_REPRODUCED
    groups: list[tuple[str, str, SupportedIf, Run, str]] = [
        ("control", "", "fails", run, _attention(run, None, control_failed))
        for run in control_runs(doc)
    ]
    groups += [
        (row.id, row.reason, row.supported_if, run, _attention(run, row, control_failed))
        for row in rows
        for run in row.runs
    ]
    if not groups:
        return
    shown = [group for group in groups if verbose or group[-1]]
    out.blank()
    if shown:
        out.say(("Runs and logs" if verbose else "Runs that need attention", "bold"))
    owner = None
    for hid, reason, supported_if, run, why in shown:
        if hid != owner:
            out.say(f"{hid}: {reason}" if reason else f"{hid}:")
            owner = hid
        label = Text(f"run {run.attempt}", style=TONE_STYLE[run_tone(run.data, supported_if)])
        if why:
            label.append(f" ({why})")
        out.prose(Text.assemble(label, f": {run.summary()}"), indent=2, hang=4)
        for name, path in run.logs():
            out.say(f"{name} log: {path}", indent=4)
    omitted = [run for _, _, _, run, why in groups if not why]
    if omitted and not verbose:
        out.say(_omitted_line(omitted, listed=bool(shown)))
        out.command(f"refute show {shlex.quote(clean_text(doc.session.id))} -v")


def _omitted_line(omitted: list[Run], *, listed: bool) -> str:
    """How many runs the listing left out and what they were (a plain pass or fail, or
    not run: every other run is listed)."""
    count = len(omitted)
    if not listed:
        runs = f"{count} run{'s' if count != 1 else ''}"
        return f"Runs and logs: none of the {runs} needs attention; to list them and their logs:"
    not_run = sum(run.outcome == "not_run" for run in omitted)
    plain = count - not_run
    kinds = [f"{plain} run{'s' if plain != 1 else ''} with a plain pass or fail"] if plain else []
    kinds += [f"{not_run} {'run ' if not plain else ''}not run"] if not_run else []
    return f"Not listed: {' and '.join(kinds)}; to list every run and its logs:"


# -- the hypotheses ------------------------------------------------------------------------


def _hypotheses(out: Writer, rows: list[Row]) -> None:
    """Per hypothesis: what it is, how its test is read, its change, its command, and its
    verdict in the words of its reading (a candidate fix's SUPPORTED says the fix works)."""
    if not rows:
        return
    out.blank()
    out.say(("Hypotheses", "bold"))
    for row in rows:
        head = f"{'-' if row.rank is None else row.rank}. "
        description = " ".join(row.description.split())
        indent = len(head)
        out.say(
            (head, ""),
            (row.id, "bold"),
            (f": {description}" if description else ""),
            hang=indent + 2,
        )
        out.say(row.reading, indent=indent)
        if row.patch_source:
            out.say(f"change: {row.patch_source}", indent=indent)
        _command(out, row.command, indent)
        reason = " ".join(row.reason.split())
        out.prose(
            Text.assemble(
                (row.verdict.upper(), TONE_STYLE[row.tone]),
                f": {row.meaning}" + (f" ({reason})" if reason else ""),
            ),
            indent=indent,
        )


def _caveats(out: Writer, doc: SessionDocument, rows: list[Row]) -> None:
    lines = [caveat for row in rows for caveat in caveat_lines(row)]
    if is_unreliable(doc):
        banner = (
            f"{UNRELIABLE_NOTE} the bug on the unmodified base: no verdict marked"
            " (unreliable) is evidence; fix the control first"
        )
        lines.insert(0, (True, banner))
    if lines:
        out.blank()
    for unreliable, line in lines:
        out.say(f"!! {line}", style="bold red" if unreliable else "yellow")


# -- the verdict table ---------------------------------------------------------------------


def _verdict_cell(row: Row) -> Text:
    verdict = Text(row.verdict.upper(), style=TONE_STYLE[row.tone])
    if row.unreliable:  # the banner or a caveat line says why
        verdict.append(" (unreliable)", style="bold red")
    if row.failed_differently:
        verdict.append(f" ({DIFFERENT_NOTE})", style="yellow")
    return verdict


def _count_key(part: str) -> CountKey | None:
    """The outcome key of one count of a runs cell ("2/3 not run" -> "not_run")."""
    word = part.partition(" ")[2].replace(" ", "_")
    return next((key for key in OUTCOME_KEYS if key == word), None)


def _runs_cell(row: Row, parts: list[str], width: int) -> Text:
    """The counts, each in the tone of the runs it counts, broken only between counts."""
    cell = Text()
    for number, line in enumerate(pack_parts(parts, width)):
        if number:
            cell.append("\n")
        for index in line:
            key = _count_key(parts[index])
            run = next((run for run in row.runs if run.outcome == key), None)
            style = TONE_STYLE[run_tone(run.data, row.supported_if)] if run else ""
            cell.append(parts[index], style=style)
            if index < len(parts) - 1:
                cell.append("," if index == line[-1] else ", ")
    return cell


def _verdicts(out: Writer, rows: list[Row]) -> None:
    """The verdict table; in a terminal too narrow for its columns (under about 60
    columns), one wrapped line per hypothesis instead, so that nothing is cut."""
    table = _table(rows, out.width)
    if table is not None:
        out.console.print(table)
        return
    for row in rows:
        rank = "-" if row.rank is None else str(row.rank)
        fields = [
            f"confidence {share_text(row.confidence)}",
            seconds_text(row.seconds),
            row.runs_cell,
        ]
        mark = f" {FIX_MARK}" if _is_fix(row) else ""
        out.prose(
            Text.assemble(
                f"{rank}. {row.id}{mark}: ", _verdict_cell(row), f"; {'; '.join(fields)}"
            ),
            hang=len(rank) + 2,
        )


def _table(rows: list[Row], width: int) -> Table | None:
    """The verdict table, its columns sized to `width` by `column_widths` (its cells are
    ASCII: ids by the plan's rules, verdicts and counts by refute's words); None when it
    does not fit."""
    parts = {row.id: row.runs_cell.split(", ") for row in rows}
    ids = [len(row.id) for row in rows] + [len(FIX_MARK) for row in rows if _is_fix(row)]
    verdicts = [_verdict_cell(row).plain for row in rows]
    counts = [part for row_parts in parts.values() for part in row_parts]
    cols = column_widths(
        width,
        rank=max([1] + [len(str(row.rank)) for row in rows if row.rank is not None]),
        hypothesis=(len("Hypothesis"), max([*ids, len("Hypothesis")])),
        verdict=(
            max([len("Verdict")] + [len(word) for text in verdicts for word in text.split()]),
            max([len("Verdict")] + [len(text) for text in verdicts]),
        ),
        time=max([len("Time")] + [len(seconds_text(row.seconds)) for row in rows]),
        runs=(
            max([len("Runs")] + [len(part) + 1 for part in counts]),
            max([len("Runs")] + [len(row.runs_cell) for row in rows]),
        ),
    )
    if cols is None:
        return None
    table = Table(
        box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False, expand=False
    )
    table.add_column("#", justify="right", no_wrap=True, width=cols.rank)
    table.add_column("Hypothesis", overflow="fold", width=cols.hypothesis)
    table.add_column("Verdict", width=cols.verdict)
    table.add_column("Conf.", justify="right", no_wrap=True, width=cols.confidence)
    table.add_column("Time", justify="right", no_wrap=True, width=cols.time)
    table.add_column("Runs", no_wrap=True, width=cols.runs)
    for row in rows:
        hypothesis = Text(row.id)
        if _is_fix(row):
            hypothesis.append(f"\n{FIX_MARK}", style="dim")
        table.add_row(
            "-" if row.rank is None else str(row.rank),
            hypothesis,
            _verdict_cell(row),
            share_text(row.confidence),
            seconds_text(row.seconds),
            _runs_cell(row, parts[row.id], cols.runs),
        )
    return table


def _is_fix(row: Row) -> bool:
    return row.supported_if == "passes"


# -- the control and the recommendation ----------------------------------------------------


def _control(out: Writer, doc: SessionDocument) -> None:
    """The control line, its command on a line of its own (to copy)."""
    text = control_text(doc)
    what, dollar, command = text.partition("] $ ")
    if dollar:
        out.say(("Control: ", "bold"), what + "]")
        _command(out, command, 2)
    else:
        out.say(("Control: ", "bold"), text)


def _command(out: Writer, command: str, indent: int) -> None:
    """A test's command to copy; a seed's test, which has none in the document, in words."""
    if command == NO_COMMAND:
        out.say(f"test: {command}", indent=indent)
    else:
        out.command(command, indent=indent, style="")


def _recommendation(out: Writer, doc: SessionDocument) -> None:
    """The action and its message, then each next step with its command to copy."""
    action, message, steps = recommendation(doc)
    out.say(("Recommendation", "bold"), f" ({action})" + (f": {message}" if message else ""))
    for number, step in enumerate(steps, start=1):
        head = f"{number}. "
        out.say(f"{head}{step.text}", indent=2, hang=len(head))
        if step.command:
            out.command(step.command, indent=2 + len(head))
