"""Live progress of a session: a rich table on a terminal, plain lines on stderr otherwise.

The table keeps its shape while it changes: every column but the last has a fixed width
(the longest id, the widest state, the widest `done/total`), so nothing jumps as states and
times change. Above it one line says how far the whole session is, as GNU parallel's
`--bar` does: `12/40 runs  30%  elapsed 0:42  ETA 1:38`. Not on a terminal, each run's
start and end is one plain line with its run number, for logs and CI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import click
from rich.console import Console, Group
from rich.text import Text

from refute.cli.progress_rows import (
    STATES,
    Row,
    clock_text,
    elapsed_text,
    eta_seconds,
    record_of,
)
from refute.document import CONTROL_ID
from refute.reports._common import FAILURE_KINDS, TONE_STYLE, one_line_text

if TYPE_CHECKING:  # the live view's classes are imported only when it is shown
    from rich.live import Live
    from rich.table import Table

    from refute.engine.protocol import RunEvent

__all__ = ["Progress"]

#: Width of the elapsed column: "59:59" and "9:59:59" fit.
_ELAPSED_WIDTH: Final = 7
#: Characters of a run's error message on its plain `finished` line.
_MESSAGE_LIMIT: Final = 300
#: The outcomes column: at least this wide (it folds), at most this (it stays compact).
_OUTCOMES_MIN: Final = 16
_OUTCOMES_MAX: Final = 48
#: Columns the table's padding and dividers take: 5 columns, 1 on each side but the edges,
#: and a divider between two.
_TABLE_OVERHEAD: Final = 2 * 5 - 2 + 4


class Progress:
    """Live progress: a rich table on a terminal, plain lines on stderr otherwise.

    The CLI builds it with `live` (stderr is a terminal) only; `console` (where the table
    is drawn) and `clock` (monotonic seconds) are there so that tests can read what it
    draws at a time they choose.
    """

    def __init__(
        self,
        *,
        live: bool,
        concurrency: int = 1,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live_enabled = live
        self.concurrency = max(1, concurrency)
        self.console = console if console is not None else Console(stderr=True)
        self.clock = clock
        self.rows: dict[str, Row] = {}
        self.start = clock()
        self.stopped_at: float | None = None
        self.interrupted = False
        self.live: Live | None = None
        self.session_id = ""
        self.has_setup = False
        # Events arrive on the session's thread while the live view redraws on its own.
        self.lock = threading.Lock()

    def created(self, doc: dict[str, Any]) -> None:
        """The session exists: one row per hypothesis and the control; a resumed
        session's runs that already have a result count as done."""
        self.session_id = doc["session"]["id"]
        settings = doc["session"].get("settings") or {}
        self.has_setup = bool(settings.get("setup"))
        if isinstance(settings.get("concurrency"), int):
            self.concurrency = max(1, settings["concurrency"])
        entries = list(doc["hypotheses"])
        if doc.get("control"):
            entries.append({**doc["control"], "id": CONTROL_ID, "supported_if": "fails"})
        with self.lock:
            self.start = self.clock()
            self.rows = {str(entry["id"]): _row_of(entry) for entry in entries}
        click.echo(f"refute: session {self.session_id}", err=True)
        if self.live_enabled:
            from rich.live import Live  # noqa: PLC0415 - lazy: only on a terminal

            self.live = Live(
                console=self.console,
                refresh_per_second=4,
                get_renderable=self.renderable,  # re-rendered at each refresh: times tick
            )
            self.live.start()

    def event(self, event: RunEvent) -> None:
        """One run was placed, started or finished (`refute.engine.protocol.RunEvent`)."""
        with self.lock:
            row = self.rows.get(event.hypothesis_id)
            if row is None or self.stopped_at is not None:
                return
            line = self._apply(row, event)
        if self.live is None and line:
            click.echo(line, err=True)

    def _apply(self, row: Row, event: RunEvent) -> str:
        """Record `event` in `row`; the plain line it prints ("" for none)."""
        now = self.clock()
        attempt = row.attempt(event.attempt)
        run = f"run {event.attempt}/{row.total}"
        stamp = f"[{event.elapsed:7.2f}s]"
        if attempt.began is None and event.kind != "finished":  # a slot was taken for it
            attempt.began = now
        if event.kind == "preparing":  # worktree, patch and setup: shown in the live view only
            attempt.state = "setup" if self.has_setup else "preparing"
            return ""
        if event.kind == "started":
            attempt.state, attempt.started = "running", True
            return f"{stamp} started   {row.id} ({run})"
        attempt.ended = now
        result = event.result
        if result is None or result.not_run:
            stopped = ", stopped while it ran" if attempt.active else ""
            attempt.state = "cancelled" if attempt.active else "not_run"
            return f"{stamp} finished  {row.id}: not run ({run}{stopped})"
        attempt.state, attempt.outcome = "finished", result.result.value
        attempt.record = record_of(result.to_dict())
        outcome = result.result.value
        kind = attempt.kind
        if kind is not None and kind != "timeout":
            outcome += f", {FAILURE_KINDS[kind]}"
        line = f"{stamp} finished  {row.id}: {outcome}"
        line += f" ({run}, exit {result.exit_code}, {result.duration:.2f}s)"
        message = one_line_text(result.error_message, _MESSAGE_LIMIT)
        if message and result.result.value in ("error", "timeout"):
            line += f": {message}"
        return line

    # -- the live view -----------------------------------------------------------------------

    def summary(self) -> str:
        """The one line of the whole session: runs done of all, share, elapsed, ETA."""
        rows = list(self.rows.values())
        now = self.stopped_at if self.stopped_at is not None else self.clock()
        total = sum(row.total for row in rows)
        done = sum(row.done for row in rows)
        share = 100 * done // total if total else 100
        parts = [f"{done}/{total} runs", f"{share}%", f"elapsed {clock_text(now - self.start)}"]
        if self.interrupted:
            parts.append("interrupted")
        elif self.stopped_at is None:
            parts.append(f"ETA {clock_text(eta_seconds(rows, self.concurrency, now))}")
        unrun = sum(a.state == "not_run" for row in rows for a in row.attempts.values())
        if unrun:
            parts.append(f"{unrun} not run")
        return "  ".join(parts)

    def renderable(self) -> Group:
        """What the live view shows now: the session's line and the table of its rows."""
        with self.lock:
            return Group(Text(self.summary()), self._table())

    def _table(self) -> Table:
        from rich import box  # noqa: PLC0415 - lazy: only on a terminal
        from rich.table import Table  # noqa: PLC0415 - lazy: only on a terminal

        now = self.stopped_at if self.stopped_at is not None else self.clock()
        rows = list(self.rows.values())
        fixed = {
            "state": max(map(len, STATES)),
            "elapsed": _ELAPSED_WIDTH,
            "runs": max([len("runs"), *(len(f"{row.total}/{row.total}") for row in rows)]),
        }
        # What is left of the terminal goes to the id (whole if it fits, else folded) and
        # the outcomes; set once from the longest id, so no column moves while text changes.
        left = self.console.width - sum(fixed.values()) - _TABLE_OVERHEAD
        longest = max([len("hypothesis"), *(len(row.id) for row in rows)])
        id_width = max(len("hypothesis"), min(longest, left - _OUTCOMES_MIN))
        outcomes_width = max(_OUTCOMES_MIN, min(_OUTCOMES_MAX, left - id_width))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
        table.add_column("hypothesis", width=id_width, overflow="fold")
        table.add_column("state", width=fixed["state"], no_wrap=True)
        table.add_column("elapsed", width=fixed["elapsed"], justify="right", no_wrap=True)
        table.add_column("runs", width=fixed["runs"], justify="right", no_wrap=True)
        table.add_column("outcomes", width=outcomes_width, overflow="fold")
        for row in rows:
            table.add_row(
                Text(row.id),  # Text: an id is never read as rich markup
                row.state,
                elapsed_text(row.elapsed(now)),
                f"{row.done}/{row.total}",
                _outcomes(row),
            )
        return table

    def stop(self, *, interrupted: bool = False) -> None:
        """The session is over: times freeze, and what had not ended says how it ended.

        Interrupted (Ctrl-C), a run that was running, or stopped after it started, is
        `interrupted`; otherwise (the session failed) a running one is `cancelled`. A run
        that never started is `not run`. The table is drawn once more and stays on screen.
        A second call changes nothing.
        """
        with self.lock:
            if self.stopped_at is None and self.rows:
                self.stopped_at = self.clock()
                self.interrupted = interrupted
                for row in self.rows.values():
                    row.interrupted = interrupted
                    for attempt in row.attempts.values():
                        if attempt.active or (interrupted and attempt.state == "cancelled"):
                            attempt.state = "interrupted" if interrupted else "cancelled"
                            attempt.ended = attempt.ended or self.stopped_at
                        elif attempt.state == "queued":
                            attempt.state = "not_run"
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None


def _outcomes(row: Row) -> Text:
    """A row's tallies ("3 pass 1 fail 1 timeout"), each in its tone, then what went wrong
    with its runs that are no evidence ("the patch did not apply")."""
    text = Text()
    for number, (tally, tone) in enumerate(row.tallies()):
        text.append(" " if number else "")
        text.append(tally, style=TONE_STYLE[tone])
    failures = row.failures()
    if failures:
        text.append(": " + "; ".join(failures))
    return text


def _row_of(entry: dict[str, Any]) -> Row:
    """The row of a hypothesis (or the control) of the document; a run it already has
    (a resumed session's) counts as done."""
    row = Row(
        id=str(entry["id"]),
        total=int(entry.get("repeat") or 1),
        supported_if="passes" if entry.get("supported_if") == "passes" else "fails",
    )
    for run in entry.get("runs") or []:
        record = record_of(run)
        if record is None or record.metrics.not_run:
            continue
        attempt = row.attempt(record.metrics.attempt or 1)
        attempt.state, attempt.outcome, attempt.started = "finished", record.result, True
        attempt.record = record
    return row
