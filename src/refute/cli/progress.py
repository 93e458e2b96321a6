"""Live progress of a session: a rich table on a terminal, plain lines on stderr otherwise."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from refute.document import CONTROL_ID

if TYPE_CHECKING:  # the live view's classes are imported only when it is shown
    from rich.live import Live
    from rich.table import Table

    from refute.engine.protocol import RunEvent

__all__ = ["Progress"]


class Progress:
    """Live progress: a rich table on a terminal, plain lines on stderr otherwise."""

    def __init__(self, *, live: bool, concurrency: int = 1) -> None:
        self.live_enabled = live
        self.concurrency = max(1, concurrency)
        self.console = Console(stderr=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.start = time.monotonic()
        self.live: Live | None = None
        self.session_id = ""
        self.has_setup = False

    def created(self, doc: dict[str, Any]) -> None:
        self.session_id = doc["session"]["id"]
        settings = doc["session"].get("settings") or {}
        self.has_setup = bool(settings.get("setup"))
        if isinstance(settings.get("concurrency"), int):
            self.concurrency = max(1, settings["concurrency"])
        entries = list(doc["hypotheses"])
        if doc.get("control"):
            entries.append(
                {"id": CONTROL_ID, "repeat": doc["control"]["repeat"], "estimated_test_time": 0}
            )
        for entry in entries:
            self.rows[entry["id"]] = {
                "state": "queued",
                "done": 0,
                "total": int(entry.get("repeat") or 1),
                "estimate": float(entry.get("estimated_test_time") or 0.0),
                "outcomes": [],
                "started": None,
            }
        click.echo(f"refute: session {self.session_id}", err=True)
        if self.live_enabled:
            from rich.live import Live  # noqa: PLC0415 - lazy: only on a terminal

            self.live = Live(
                console=self.console,
                refresh_per_second=4,
                get_renderable=self._table,  # re-rendered at each refresh: elapsed keeps ticking
            )
            self.live.start()

    def event(self, event: RunEvent) -> None:
        row = self.rows.get(event.hypothesis_id)
        if row is None:
            return
        if event.kind == "preparing":  # worktree, patch and setup: shown in the live view only
            row["state"] = "setup" if self.has_setup else "preparing"
            return
        if event.kind == "started":
            row["state"] = "running"
            row["started"] = time.monotonic()
            run = f"run {event.attempt}/{row['total']}"
            line = f"[{event.elapsed:7.2f}s] started   {event.hypothesis_id} ({run})"
        else:
            result = event.result
            outcome = "not run" if result is None or result.not_run else result.result.value
            row["done"] += 1
            row["outcomes"].append(outcome)
            row["state"] = "done" if row["done"] >= row["total"] else "running"
            detail = ""
            if result is not None and not result.not_run:
                detail = f" (exit {result.exit_code}, {result.duration:.2f}s)"
            line = f"[{event.elapsed:7.2f}s] finished  {event.hypothesis_id}: {outcome}{detail}"
        if self.live is None:
            click.echo(line, err=True)

    def _eta(self) -> str:
        remaining = sum(r["estimate"] * (r["total"] - r["done"]) for r in self.rows.values())
        if remaining <= 0:
            return "—"
        return f"~{remaining / self.concurrency:.0f}s"

    def _table(self) -> Table:
        from rich.table import Table  # noqa: PLC0415 - lazy: only on a terminal

        elapsed = time.monotonic() - self.start
        table = Table(
            title=f"refute session {self.session_id}  elapsed {elapsed:.1f}s  ETA {self._eta()}"
        )
        for column in ("hypothesis", "state", "elapsed", "runs", "outcomes"):
            table.add_column(column)
        for hid, row in self.rows.items():
            since = (
                f"{time.monotonic() - row['started']:.1f}s"
                if row["started"] and row["state"] != "done"
                else ""
            )
            table.add_row(
                hid,
                row["state"],
                since,
                f"{row['done']}/{row['total']}",
                ", ".join(row["outcomes"][-5:]),
            )
        return table

    def stop(self) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None
