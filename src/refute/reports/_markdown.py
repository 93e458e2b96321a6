"""The Markdown format: a pull-request comment with collapsible details per hypothesis.

A comment is read on GitHub, not on the machine that ran the session, so it names no local
path: logs are named by their file names (`token-race.run1.stderr`), worktrees as
`<worktree>`. Commands are code spans, to copy as they are. And it always fits in one
comment (GitHub refuses a body over 65,536 characters): what does not fit is left out, most
important first kept, with a note that says how much is missing and where to read it all.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Final

from refute.document import SessionDocument
from refute.reports._common import (
    MESSAGE_LIMIT,
    UNRELIABLE_NOTE,
    Row,
    Run,
    bug_text,
    caveat_lines,
    clean_text,
    command_text,
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

__all__ = ["COMMENT_LIMIT", "render_markdown"]

#: GitHub's limit on a comment's body, in characters (counted here in UTF-16 code units,
#: never fewer than code points, so the bound holds whichever way it is counted).
COMMENT_LIMIT: Final = 65_536
#: Room kept for the truncation note and the line that says the table was cut.
_NOTE_ROOM: Final = 1_000
#: Characters of a description in the verdict table (the details have room for more).
_CELL_LIMIT: Final = 300

#: Characters at the end of a stream read for its last lines (`tail_lines` keeps 4,000).
_TAIL_SOURCE: Final = 64_000

_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#])")


def _md(value: object, limit: int = 10 * MESSAGE_LIMIT) -> str:
    """Inline Markdown: one line, HTML-escaped, Markdown punctuation (`|` too) escaped."""
    text = html.escape(one_line_text(value, limit=limit), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(value: object) -> str:
    """A code span: the text as it is, between more backticks than any run inside it (and
    a space inside each fence when the text starts or ends with a backtick)."""
    text = one_line_text(value, limit=2000)
    if not text:
        return "(none)"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_code_block(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _size(lines: Iterable[str]) -> int:
    """Characters of `lines` joined by newlines, in UTF-16 code units."""
    return sum(len(line.encode("utf-16-le")) // 2 + 1 for line in lines)


class _Paths:
    """Replaces the session's local paths in text: a file in a log directory by its name
    (a log is named by its run: `token-race.run1.stderr`), a run's worktree by `<worktree>`.

    One regular expression for all of them: a session may have thousands of runs."""

    def __init__(self, document: SessionDocument) -> None:
        runs = [run for hyp in document.hypotheses for run in hyp.runs]
        runs += document.control.runs if document.control is not None else []
        logs: set[str] = set()
        worktrees: set[PurePath] = set()
        for run in runs:
            logs.update(path for path in (run.stdout_log, run.stderr_log) if path)
            if run.metrics.setup is not None:
                logs.update(run.metrics.setup.logs)
            if run.worktree_path:
                worktrees.add(PurePath(clean_text(run.worktree_path)))
        folders = {str(PurePath(clean_text(path)).parent) for path in logs} - {".", "/"}
        # Worktrees share a parent (the pool's directory): any directory in it is one. A
        # worktree right under the root is matched by itself, or every path would be.
        parents = {str(tree.parent) for tree in worktrees if len(tree.parts) > 2}
        exact = {str(tree) for tree in worktrees if len(tree.parts) <= 2} - {"/"}
        options = [(re.escape(folder) + "/", "folder") for folder in folders]
        options += [(re.escape(parent) + r"/[^/\s'\"`]+", "tree") for parent in parents]
        options += [(re.escape(tree) + r"(?![^/\s'\"`])", "tree") for tree in exact]
        options.sort(key=lambda option: len(option[0]), reverse=True)
        self._pattern = (
            re.compile("|".join(f"(?P<{kind}{n}>{text})" for n, (text, kind) in enumerate(options)))
            if options
            else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    return "" if (match.lastgroup or "").startswith("folder") else "<worktree>"


def _log_name(path: str) -> str:
    return PurePath(path).name


@dataclass
class _Budget:
    """What is left of the comment's characters; `take` spends them if they suffice."""

    left: int

    def take(self, lines: Sequence[str]) -> bool:
        cost = _size(lines)
        if cost > self.left:
            return False
        self.left -= cost
        return True


@dataclass
class _Details:
    """The collapsible section of the control or one hypothesis: `head` and `tail` (its
    opening and closing lines) go together; then each run's line, then each output group,
    as long as they fit."""

    head: list[str]
    runs: list[tuple[int, list[str]]]  # (attempt, lines)
    outputs: list[tuple[list[int], list[str]]]  # (attempts, lines)
    tail: list[str] = field(default_factory=lambda: ["", "</details>", ""])


def _run_lines(run: Run, command: str, paths: _Paths) -> list[str]:
    line = f"- run {run.attempt}: {_md(paths(run.summary()))}"
    logs = [_code(_log_name(path)) for _, path in run.logs()]
    if logs:
        line += f"; logs {', '.join(logs)}"
    lines = [line]
    own = run.command(command)
    if own != command:
        lines.append(f"  - command: {_code(own)}")
    return lines


def _tail(output: str) -> str:
    """`tail_lines` of a stream, cleaned: only its end is read (a run's output may be
    megabytes), enough of it that the tail is the same unless cleaning drops most of it."""
    return tail_lines(clean_text(output[-_TAIL_SOURCE:]))


def _group_label(attempts: list[int], same_text: bool) -> str:
    if len(attempts) == 1:
        return f"run {attempts[0]}"
    numbers = ", ".join(str(attempt) for attempt in attempts)
    same = "same output" if same_text else "same last lines"
    return f"runs {numbers} ({len(attempts)} runs): {same}"


def _output_groups(runs: Sequence[Run], paths: _Paths) -> list[tuple[list[int], list[str]]]:
    """The last lines of each run's stdout and stderr; runs whose shown lines are the same
    are shown once, with their numbers and count."""
    shown: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        key = (_tail(run.data.stdout), _tail(run.data.stderr))
        if key[0].strip() or key[1].strip():
            shown.setdefault(key, []).append(run)
    groups = []
    for (stdout, stderr), group in shown.items():
        full = {(run.data.stdout, run.data.stderr) for run in group}
        attempts = [run.attempt for run in group]
        lines = ["", f"**{_group_label(attempts, len(full) == 1)}**"]
        for name, text in (("stdout", stdout), ("stderr", stderr)):
            if text.strip():
                lines += ["", f"Last lines of {name}:", "", *_md_code_block(paths(text))]
        groups.append((attempts, lines))
    return groups


def _about(row: Row) -> list[str]:
    """What a hypothesis is and how it is tested."""
    patch = _md(row.patch_source) if row.patch_source else "none (the unchanged base)"
    return [
        f"- **Description:** {_md(row.description)}",
        f"- **Reading:** {_md(row.reading)}",
        f"- **Patch source:** {patch}",
        f"- **Command:** {_code(row.command)}",
    ]


def _details(document: SessionDocument, rows: Sequence[Row], paths: _Paths) -> list[_Details]:
    sections = []
    control = document.control
    runs = control_runs(document)
    if control is not None and runs:
        command = command_text(control.test)
        head = ["<details>", "<summary>control</summary>", ""]
        head += [f"- **Command:** {_code(command)}"]
        if control.reason:
            head += ["", _md(paths(clean_text(control.reason)))]
        head.append("")
        sections.append(
            _Details(
                head,
                [(run.attempt, _run_lines(run, command, paths)) for run in runs],
                _output_groups(runs, paths),
            )
        )
    for row in rows:
        title = f"{row.id}: {row.verdict_label}"
        head = ["<details>", f"<summary>{html.escape(one_line_text(title))}</summary>", ""]
        head += _about(row)
        if row.reason:
            head += ["", _md(paths(row.reason))]
        head.append("")
        sections.append(
            _Details(
                head,
                [(run.attempt, _run_lines(run, row.command, paths)) for run in row.runs],
                _output_groups(row.runs, paths),
            )
        )
    return sections


def _row_line(row: Row) -> str:
    notes = row.notes
    verdict = f"**{row.verdict}**" + (f" ({_md('; '.join(notes))})" if notes else "")
    cells = [
        "-" if row.rank is None else str(row.rank),
        _md(row.id),
        _md(row.description, limit=_CELL_LIMIT),
        f"{verdict}<br>{_md(row.meaning)}",
        share_text(row.confidence),
        _md(row.runs_cell),
        seconds_text(row.seconds),
    ]
    return "| " + " | ".join(cells) + " |"


def _head(document: SessionDocument) -> list[str]:
    lines = [f"## refute: {_md(bug_text(document))}", "", _md(session_line(document)), ""]
    base = document.session.base
    if base.include_uncommitted or base.snapshot_of:
        snapshot, on = _code(base.sha or "?"), _code(base.snapshot_of or "?")
        lines += [f"**Base:** {snapshot}, a snapshot of uncommitted work on top of {on}", ""]
    if is_unreliable(document):
        lines += [
            (
                f"> **{_md(UNRELIABLE_NOTE)} the bug on the unmodified base**: "
                "no verdict below is evidence. Fix the control test first."
            ),
            "",
        ]
    # control_text ends with " $ <command>" when there is a control; what comes before
    # never holds " $ ".
    what, dollar, _ = control_text(document).partition(" $ ")
    control = document.control
    command = f" {_code(command_text(control.test))}" if control is not None and dollar else ""
    lines += [f"**Control:** {_md(what)}{command}", ""]
    return lines


def _recommendation(document: SessionDocument) -> tuple[list[str], list[list[str]]]:
    action, message, steps = recommendation(document)
    head = ["", f"**Recommendation ({_md(action)}):** {_md(message)}", ""]
    items = []
    for number, step in enumerate(steps, start=1):
        command = f" — {_code(step.command)}" if step.command else ""
        items.append([f"{number}. {_md(step.text)}{command}"])
    return head, items


def _fill(budget: _Budget, items: Sequence[list[str]]) -> int:
    """How many of `items`, from the first, fit in the budget (they are then spent)."""
    for count, item in enumerate(items):
        if not budget.take(item):
            return count
    return len(items)


def _keep(budget: _Budget, section: _Details) -> tuple[list[str], int]:
    """The lines of a details section that fit, and how many of its runs are left out (a
    run whose line or output did not fit)."""
    if not budget.take([*section.head, *section.tail]):
        return [], len(section.runs)
    shown_runs = section.runs[: _fill(budget, [lines for _, lines in section.runs])]
    shown_outputs = section.outputs[: _fill(budget, [lines for _, lines in section.outputs])]
    cut = {attempt for attempts, _ in section.outputs[len(shown_outputs) :] for attempt in attempts}
    shown = {attempt for attempt, _ in shown_runs} - cut
    lines = list(section.head)
    lines += [line for _, run_lines in shown_runs for line in run_lines]
    lines += [line for _, output in shown_outputs for line in output]
    return lines + section.tail, len(section.runs) - len(shown)


def _joined(items: Sequence[list[str]]) -> list[str]:
    return [line for item in items for line in item]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """A pull-request comment: verdict table, recommendation, timing, collapsible details;
    at most `COMMENT_LIMIT` characters, whatever the session."""
    document = parse(doc)
    rows = hypothesis_rows(document)
    paths = _Paths(document)

    head = _head(document)
    table = [
        "| # | Hypothesis | Description | Verdict | Confidence | Runs | Time |",
        "|--:|---|---|---|--:|---|--:|",
    ]
    row_lines = [[_row_line(row)] for row in rows]
    caveats = [
        [f"- {'**' if bad else ''}{_md(paths(line))}{'**' if bad else ''}"]
        for row in rows
        for bad, line in caveat_lines(row)
    ]
    if caveats:
        caveats[0].insert(0, "")  # a blank line between the table and the list
    rec_head, steps = _recommendation(document)
    timing = ["", f"**Timing:** {_md(timing_text(document))}", ""]
    show = _code(f"refute show {clean_text(document.session.id)}")
    if any(run.logs() for run in [*control_runs(document), *(r for row in rows for r in row.runs)]):
        where = f"{show} on the machine that ran the session says where they are"
        timing += [f"Logs are named by file below; {where}.", ""]

    # Decide what fits, most important first; then write it out in reading order.
    budget = _Budget(COMMENT_LIMIT - _NOTE_ROOM)
    budget.take([*head, *table, *rec_head, *timing])
    shown_rows = _fill(budget, row_lines)
    shown_caveats = _fill(budget, caveats)
    shown_steps = _fill(budget, steps)
    details, omitted_runs = [], 0
    for section in _details(document, rows, paths):
        lines, omitted = _keep(budget, section)
        details += lines
        omitted_runs += omitted

    left_out = len(rows) - shown_rows
    lines = head + table + _joined(row_lines[:shown_rows])
    if left_out:
        lines += ["", f"… {left_out} more hypotheses not shown here (truncated, see below)"]
    lines += _joined(caveats[:shown_caveats]) + rec_head + _joined(steps[:shown_steps])
    lines += timing + details
    cut_lists = shown_caveats < len(caveats) or shown_steps < len(steps)
    if omitted_runs or left_out or cut_lists:
        what = f"{omitted_runs} runs omitted"
        if left_out:
            what += f" (and {left_out} of {len(rows)} hypotheses from the table)"
        if cut_lists:
            what += " (and some caveats or next steps)"
        lines += ["", f"**… truncated: {what}; see the full report with {show}**"]
    return "\n".join(lines).rstrip("\n") + "\n"
