"""What the commands print beyond the reports: one-line errors, the JSON of `check`, the
report on stdout or to a file, the live view around a session, the closed-stream guard."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from refute.document import EXIT_CODES
from refute.errors import Interrupted

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from rich.console import Console
    from rich.table import Table

    from refute.app import CheckReport
    from refute.cli.progress import Progress

__all__ = [
    "add_plain_row",
    "check_json",
    "console",
    "emit_report",
    "fail",
    "one_line",
    "run_with_progress",
    "say_if_failed",
    "say_if_halted",
    "seconds_words",
    "standard_streams",
]

EXIT_USAGE = EXIT_CODES["usage"]
EXIT_INFRASTRUCTURE = EXIT_CODES["infrastructure"]
EXIT_INTERRUPTED = EXIT_CODES["interrupted"]


def console() -> Console:
    """A console for stdout: a terminal's width; when it is not a terminal, $COLUMNS if
    set (tables fold, they never cut an id), else wide enough that ids never wrap."""
    from rich.console import Console  # noqa: PLC0415 - lazy: start-up

    if sys.stdout.isatty():
        return Console()
    return Console(width=plain_width(200))


def add_plain_row(table: Table, *cells: str) -> None:
    """A table row whose cells are shown as they are (user text is never rich markup)."""
    from rich.text import Text  # noqa: PLC0415 - lazy: start-up

    table.add_row(*(Text(cell) for cell in cells))


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr and the exit code; the CLI never shows a traceback for input."""
    click.echo(f"refute: error: {one_line(message)}", err=True)
    raise SystemExit(code)


def check_json(plan: Path, report: CheckReport) -> str:
    """`refute check --format json`: what is wrong, and what would run."""
    from refute.reports import dump_json  # noqa: PLC0415 - lazy: start-up

    spec = report.spec
    data = {
        "plan": str(plan),
        "valid": report.valid,
        "problems": [finding.to_dict() for finding in report.findings.problems],
        "warnings": [finding.to_dict() for finding in report.findings.warnings],
        "notes": [finding.to_dict() for finding in report.findings.notes],
        "bug": spec.bug,
        "hypotheses": [
            {
                "rank": rank,
                "id": hyp.id,
                "score": fields.get("score"),
                "test": hyp.argv(),
                "repeat": hyp.repeat,
                "timeout": hyp.timeout or spec.config.test_timeout,
                "supported_if": fields.get("supported_if", "fails"),
                "patch": hyp.patch,
                "depends_on": fields.get("depends_on") or [],
            }
            for rank, (hyp, fields) in enumerate(
                zip(spec.hypotheses, spec.specs, strict=True), start=1
            )
        ],
        "dropped": spec.settings.get("dropped") or [],
        "control": None if spec.control is None else {"test": spec.control.argv()},
        "concurrency": spec.config.concurrency(),
        "parallel_decision": spec.parallel_decision,
        "estimate": {**asdict(report.estimate), "runs": report.estimate.runs},
    }
    return dump_json(data)


# -- output ---------------------------------------------------------------------------------


def seconds_words(seconds: float) -> str:
    """A duration rounded the way a person says it: "under 0.1 s", "0.4 s", "12 s",
    "3 min 20 s", "1 h 5 min"."""
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    tens = round(seconds / 10) * 10
    if tens < 3600:
        minutes, rest = divmod(tens, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _write(path: Path, text: str, fmt: str) -> None:
    try:
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_INFRASTRUCTURE)
    click.echo(f"refute: {fmt} report written to {path}", err=True)


def emit_report(
    doc: dict[str, Any],
    fmt: str,
    output: Path | None,
    *,
    verbose: bool = False,
    junit_supported: str = "failure",
    exports: Sequence[tuple[str, Path]] = (),
) -> None:
    """The report in `fmt` on stdout (or to `output`), and each `--export-*` file."""
    from refute import reports  # noqa: PLC0415 - lazy: start-up

    options: dict[str, Any] = {"verbose": verbose, "junit_supported": junit_supported}
    for export_fmt, path in exports:
        _write(path, reports.render(doc, export_fmt, **options), export_fmt)
    if output is not None:
        _write(output, reports.render(doc, fmt, **options), fmt)
        return
    if fmt == "text":
        color = sys.stdout.isatty()
        from rich.console import Console  # noqa: PLC0415 - lazy: start-up

        width = Console().width if color else plain_width(100)
        click.echo(reports.render(doc, "text", color=color, width=width, **options), nl=False)
    else:
        text = reports.render(doc, fmt, **options)
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)


def plain_width(default: int) -> int:
    """The width of output that is not a terminal: $COLUMNS when set (20 to 1000), else
    `default`."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and 20 <= int(columns) <= 1000 else default


def run_with_progress(
    factory: Callable[[Progress], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    from refute.cli.progress import Progress  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    progress = Progress(live=sys.stderr.isatty())
    try:
        return run_interruptible(lambda: factory(progress))
    except Interrupted:
        progress.stop(interrupted=True)
        hint = (
            f"; finish it with `refute resume {progress.session_id}`" if progress.session_id else ""
        )
        click.echo(f"refute: interrupted, cleaned up{hint}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        progress.stop()


def say_if_failed(doc: dict[str, Any]) -> None:
    """One line on stderr saying why a session failed (the report follows on stdout)."""
    session = doc["session"]
    if session.get("status") == "failed":
        why = session.get("error") or "see the report"
        click.echo(f"refute: error: session {session['id']} failed: {one_line(why)}", err=True)


def say_if_halted(doc: dict[str, Any]) -> None:
    """One line when the control did not reproduce and the other runs were stopped."""
    control = doc.get("control") or {}
    if control.get("verdict") != "not_reproduced":
        return
    stopped = sum(
        1
        for hyp in doc.get("hypotheses") or []
        for run in hyp.get("runs") or []
        if (run.get("metrics") or {}).get("not_run")
    )
    if stopped:
        click.echo(
            "refute: the control did not reproduce the bug on the unmodified base, so nothing"
            f" else is evidence: {stopped} other run(s) were stopped or not started"
            " (--no-halt runs them anyway)",
            err=True,
        )


def standard_streams() -> None:
    """Closed standard fds (`>&-`) point at /dev/null, before anything opens a file.

    Otherwise the next file refute opens (the session store, a log) would get fd 1 and
    every test would write its output into it. A closed stdout discards the output: the
    command still runs and exits with its usual code (docs/cli.md, "Exit codes"); one note
    on stderr says so.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 1 in closed or sys.stdout is None:
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - for good
        click.echo("refute: note: stdout is closed; the output is discarded", err=True)
    if 2 in closed or sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - for good
