"""The `refute` command line. All printing and every exit code live here.

Exit codes:
  0    the session completed (whatever the verdicts)
  2    bad input or usage (one line on stderr, never a traceback)
  3    the control run did not reproduce the bug (every verdict is unreliable)
  4    infrastructure failure (git, the filesystem, the session store)
  130  interrupted (after cleanup; `refute resume SESSION` finishes the session)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from refute import __version__
from refute.cli.housekeeping import parse_log_limit, say_clean, state_warnings
from refute.cli.render import (
    add_plain_row as _add_plain_row,
)
from refute.cli.render import (
    check_json as _check_json,
)
from refute.cli.render import (
    console as _console,
)
from refute.cli.render import (
    emit_report as _emit_report,
)
from refute.cli.render import (
    fail as _fail,
)
from refute.cli.render import (
    one_line as _one_line,
)
from refute.cli.render import (
    run_with_progress as _run_with_progress,
)
from refute.cli.render import (
    say_if_failed as _say_if_failed,
)
from refute.cli.render import (
    say_if_halted as _say_if_halted,
)
from refute.cli.render import (
    standard_streams as _standard_streams,
)
from refute.document import EXIT_CODES
from refute.errors import ErrorKind, Interrupted, PlanCheckError, RefuteError
from refute.model import MAX_CONCURRENCY, MAX_HISTORY, MAX_HYPOTHESES, MAX_REPEAT, MAX_SECONDS

# The use cases, the reports, rich and asyncio are imported by the commands that need
# them, not here: `refute --version` and `refute --help` import click and little else
# (docs/performance.md, "Whole session").
if TYPE_CHECKING:
    from refute.cli.progress import Progress

__all__ = [
    "EXIT_INFRASTRUCTURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "FORMATS",
    "check",
    "clean",
    "cli",
    "demo",
    "history",
    "main",
    "resume",
    "run",
    "schema",
    "show",
]


#: The one exit-code table: how each kind of failure ends the process (document.EXIT_CODES
#: holds the numbers, which session documents record too).
EXIT_USAGE = EXIT_CODES["usage"]
EXIT_INFRASTRUCTURE = EXIT_CODES["infrastructure"]
EXIT_INTERRUPTED = EXIT_CODES["interrupted"]
_EXIT_BY_KIND: dict[ErrorKind, int] = {
    "usage": EXIT_USAGE,
    "infrastructure": EXIT_INFRASTRUCTURE,
    "interrupted": EXIT_INTERRUPTED,
}
FORMATS = ("text", "json", "markdown", "junit", "html")


# -- commands -------------------------------------------------------------------------------


class _CtrlC(BaseException):
    """A Ctrl-C outside a session (while parsing, importing, rendering): `main` says so in
    one line. Not a KeyboardInterrupt, which click answers with a blank line of its own."""


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 - click's own signature
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _CtrlC from None


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="refute")
def cli() -> None:
    """refute: test competing bug hypotheses concurrently, each in its own git worktree.

    \b
    A plan (YAML or JSON, see `refute schema` and docs/plan.md) lists hypotheses about a
    bug, each with a falsification test. `refute run plan.yaml` runs every test in its own
    worktree of the same commit and reports which hypotheses survive.

    \b
    Exit codes:
      0    the session completed (whatever the verdicts)
      2    bad input or usage
      3    the control run did not reproduce the bug
      4    infrastructure failure (git, filesystem, session store)
      130  interrupted (after cleanup; `refute resume` finishes the session)
    """


def _jobs(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """`-j`: a number from 1 to MAX_CONCURRENCY, or `auto`."""
    if value is None or value == "auto":
        return value
    text = value.strip()
    if not (
        text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_CONCURRENCY
    ):
        raise click.BadParameter(
            f"must be a number from 1 to {MAX_CONCURRENCY} or 'auto', got {value!r}", ctx, param
        )
    return int(text)


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """`--timeout`: a finite number of seconds > 0 and at most MAX_SECONDS (a week)."""
    if value is not None and not 0 < value <= MAX_SECONDS:  # NaN and inf fail too
        raise click.BadParameter(
            f"must be a number > 0 and <= {MAX_SECONDS:g}, got {value}", ctx, param
        )
    return value


REPEAT = click.IntRange(1, MAX_REPEAT)
HYPOTHESES = click.IntRange(1, MAX_HYPOTHESES)


@cli.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option(
    "-j",
    "--jobs",
    callback=_jobs,
    help=f"Tests at once: 1 to {MAX_CONCURRENCY} or 'auto' (default: the plan's, else auto).",
)
@click.option(
    "--timeout",
    type=float,
    callback=_seconds,
    help=f"Seconds per test run, at most {MAX_SECONDS:g} (overrides the plan's default).",
)
@click.option(
    "--repeat", type=REPEAT, help=f"Runs per hypothesis, 1 to {MAX_REPEAT} (overrides the plan)."
)
@click.option("--no-parallel", is_flag=True, help="Run one test at a time.")
@click.option(
    "--max-hypotheses",
    type=HYPOTHESES,
    help=f"Keep only the K best-ranked hypotheses (1 to {MAX_HYPOTHESES}).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report to FILE.")
@click.option("--keep-worktrees", is_flag=True, help="Keep every worktree after the run.")
@click.option(
    "--no-halt",
    is_flag=True,
    help="Run every test even when the control does not reproduce the bug"
    " (default: stop the others at once and exit 3).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run every test with isolation: sandbox (Linux: all but its worktree read-only).",
)
@click.option(
    "--log-limit",
    metavar="SIZE",
    help="Keep at most SIZE of each stream's log (its first and last halves; default 64M,"
    " at most 4G).",
)
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def run(
    plan: Path,
    jobs: str | None,
    timeout: float | None,
    repeat: int | None,
    no_parallel: bool,
    max_hypotheses: int | None,
    fmt: str,
    output: Path | None,
    keep_worktrees: bool,
    no_halt: bool,
    sandbox: bool,
    log_limit: str | None,
    repo: Path,
) -> int:
    """Run a plan: every hypothesis' test in its own worktree, concurrently."""
    from refute import app  # noqa: PLC0415 - lazy: start-up

    try:
        log_bytes = parse_log_limit(log_limit)
    except ValueError as exc:
        _fail(f"--log-limit: {exc}", EXIT_USAGE)
    state_warnings()
    options = app.RunOptions(
        jobs=jobs,
        timeout=timeout,
        repeat=repeat,
        parallel=not no_parallel,
        max_hypotheses=max_hypotheses,
        keep_worktrees=keep_worktrees,
        halt=not no_halt,
        sandbox=sandbox,
        log_limit=log_bytes,
    )
    doc = _run_with_progress(
        lambda progress: app.run_plan(
            plan,
            repo=repo,
            options=options,
            on_event=progress.event,
            on_created=progress.created,
        )
    )
    _say_if_halted(doc)
    _say_if_failed(doc)
    _emit_report(doc, fmt, output)
    return int(doc["session"]["exit_code"] or 0)


@cli.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option(
    "-j", "--jobs", callback=_jobs, help=f"Tests at once: 1 to {MAX_CONCURRENCY} or 'auto'."
)
@click.option(
    "--max-hypotheses",
    type=HYPOTHESES,
    help=f"Keep only the K best-ranked hypotheses (1 to {MAX_HYPOTHESES}).",
)
@click.option("--sandbox", is_flag=True, help="Check as `run --sandbox` would run.")
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: the problems, warnings and what would run, for agents and scripts.",
)
def check(
    plan: Path, jobs: str | None, max_hypotheses: int | None, sandbox: bool, repo: Path, fmt: str
) -> int:
    """Validate and rank a plan, check it against the repository (patches apply, commands
    exist, no shell syntax without a shell), show what would run; exit 2 on any problem."""
    from rich.table import Table  # noqa: PLC0415 - lazy: start-up

    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    options = app.RunOptions(jobs=jobs, max_hypotheses=max_hypotheses, sandbox=sandbox)
    report = run_interruptible(lambda: app.check(plan, repo=repo, options=options))
    spec = report.spec
    if fmt == "json":
        click.echo(_check_json(plan, report))
        return 0 if report.valid else EXIT_USAGE
    for note in report.findings.notes:
        click.echo(f"refute: note: {_one_line(str(note))}", err=True)
    for warning in report.findings.warnings:
        click.echo(f"refute: warning: {_one_line(str(warning))}", err=True)
    if not report.valid:
        for problem in report.findings.problems:
            click.echo(f"refute: error: {_one_line(str(problem))}", err=True)
        return EXIT_USAGE
    console = _console()
    # Plan text is the user's: never read as rich markup (`[x]` in a bug title is text).
    console.print(f"plan {plan}: valid. bug: {spec.bug}", markup=False, highlight=False)
    table = Table(title="would run, in this order")
    for column in (
        "rank",
        "id",
        "score",
        "est. s",
        "runs",
        "timeout s",
        "patch",
        "supported if",
        "depends on",
    ):
        table.add_column(column)
    for rank, (hyp, fields) in enumerate(zip(spec.hypotheses, spec.specs, strict=True), start=1):
        _add_plain_row(
            table,
            str(rank),
            hyp.id,
            f"{fields.get('score', 0):.2f}",
            f"{hyp.estimated_test_time:g}",
            str(hyp.repeat),
            f"{hyp.timeout or spec.config.test_timeout:g}",
            Path(hyp.patch).name if hyp.patch else "",
            str(fields.get("supported_if", "fails")),
            ", ".join(fields.get("depends_on") or []),
        )
    console.print(table)
    dropped = spec.settings.get("dropped") or []
    if dropped:
        console.print(f"dropped by max_hypotheses: {', '.join(dropped)}", markup=False)
    if spec.control is not None:
        control = " ".join(spec.control.argv() or [])
        console.print(f"control: {control} (on the unmodified base)", markup=False, highlight=False)
    decision = spec.parallel_decision or {}
    verdict = "yes" if decision.get("parallel") else "no"
    console.print(
        f"parallelize (the seed's rule, advisory): {verdict} — {decision.get('reason', '')}."
        f" `refute run` uses concurrency {spec.config.concurrency()} either way;"
        " --no-parallel or -j 1 runs one test at a time.",
        markup=False,
        highlight=False,
    )
    return 0


@cli.command()
@click.argument("session", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report to FILE.")
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def show(session: str | None, fmt: str, output: Path | None, repo: Path) -> int:
    """Show a stored session (default: the latest of this repository) in any format."""
    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    doc = run_interruptible(lambda: app.show(session, repo=repo))
    _emit_report(doc, fmt, output)
    return 0


@cli.command()
@click.option("--all", "all_repos", is_flag=True, help="Sessions of every repository.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, MAX_HISTORY),
    default=20,
    show_default=True,
    help=f"At most this many sessions (1 to {MAX_HISTORY}).",
)
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def history(all_repos: bool, limit: int, repo: Path) -> int:
    """List recorded sessions, newest first."""
    from rich.table import Table  # noqa: PLC0415 - lazy: start-up

    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    rows = run_interruptible(lambda: app.history(repo=repo, all_repos=all_repos, limit=limit))
    table = Table(title="refute sessions")
    for column in ("session", "started", "status", "exit", "verdicts", "bug"):
        table.add_column(column)
    for row in rows:
        counts = row.get("counts") or {}
        verdicts = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        _add_plain_row(
            table,
            row["id"],
            str(row.get("started_at") or ""),
            str(row.get("status") or ""),
            "" if row.get("exit_code") is None else str(row["exit_code"]),
            verdicts,
            str(row.get("bug") or "")[:60],
        )
    _console().print(table)
    if not rows:
        click.echo("no sessions yet")
    return 0


@cli.command()
@click.argument("session")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report to FILE.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run the remaining tests with isolation: sandbox (recorded so).",
)
def resume(session: str, fmt: str, output: Path | None, sandbox: bool) -> int:
    """Run again the tests of SESSION that have no final result (after a crash or Ctrl-C)."""
    from refute import app  # noqa: PLC0415 - lazy: start-up

    state_warnings()
    outcome: list[app.ResumeResult] = []

    async def go(progress: Progress) -> dict[str, Any]:
        result = await app.resume(
            session, on_event=progress.event, on_created=progress.created, sandbox=sandbox
        )
        outcome.append(result)
        return result.document

    doc = _run_with_progress(go)
    if outcome and outcome[0].finished:
        click.echo(
            f"refute: session {doc['session']['id']} had nothing left to run;"
            " analysed and finished it",
            err=True,
        )
    elif outcome and not outcome[0].ran:
        click.echo(f"refute: session {doc['session']['id']} has nothing left to run", err=True)
    _say_if_failed(doc)
    _emit_report(doc, fmt, output)
    return int(doc["session"]["exit_code"] or 0)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--older-than",
    metavar="AGE",
    help="Also delete sessions (records and logs) that ended more than AGE ago: 30d, 12h, 2w.",
)
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Also delete the logs of the oldest sessions until the state directory fits"
    " SIZE: 1G, 500M (the session records stay).",
)
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def clean(dry_run: bool, older_than: str | None, max_size: str | None, repo: Path) -> int:
    """Remove what dead refute processes left (worktrees, refs, processes, temp files) and
    move corrupt state files aside; with --older-than/--max-size, prune old sessions and
    logs. A running session is never touched."""
    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.app.retention import parse_age, parse_size  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    try:
        age = parse_age(older_than) if older_than is not None else None
    except ValueError as exc:
        _fail(f"--older-than: {exc}", EXIT_USAGE)
    try:
        budget = parse_size(max_size) if max_size is not None else None
    except ValueError as exc:
        _fail(f"--max-size: {exc}", EXIT_USAGE)
    result = run_interruptible(
        lambda: app.clean(repo, dry_run=dry_run, older_than=age, max_size=budget)
    )
    return say_clean(result, repo, dry_run=dry_run)


@cli.command()
@click.option(
    "--report", "which", flag_value="report", help="The report (session document) schema."
)
@click.option("--plan", "which", flag_value="plan", default=True, help="The plan schema (default).")
def schema(which: str) -> int:
    """Print the JSON Schema of plan files (or, with --report, of JSON reports)."""
    import json  # noqa: PLC0415 - only this command needs it

    from refute import reports  # noqa: PLC0415 - only this command needs it
    from refute.plan import plan_json_schema  # noqa: PLC0415 - only this command needs it

    data = reports.REPORT_JSON_SCHEMA if which == "report" else plan_json_schema()
    click.echo(json.dumps(data, indent=2))
    return 0


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def demo(fmt: str) -> int:
    """Run the built-in example: a planted bug, four hypotheses, a control."""
    from refute import app  # noqa: PLC0415 - lazy: start-up

    def announce(repo: Path) -> None:
        click.echo(f"refute demo: a throwaway repository at {repo} (removed afterwards)", err=True)

    doc = _run_with_progress(
        lambda progress: app.demo(
            announce=announce, on_event=progress.event, on_created=progress.created
        )
    )
    _emit_report(doc, fmt, None)
    return int(doc["session"]["exit_code"] or 0)


# -- entry point ----------------------------------------------------------------------------


_interrupt_raised = False


def _raise_interrupt(_signum: int, _frame: object) -> None:
    """The first SIGINT/SIGTERM raises KeyboardInterrupt; the rest of a burst is ignored
    (a second one raised while the first is being handled would escape `main`)."""
    global _interrupt_raised  # noqa: PLW0603 - one flag for the process' signal handler
    if not _interrupt_raised:
        _interrupt_raised = True
        raise KeyboardInterrupt


def _terminate_as_interrupt() -> None:
    """Until a session installs its own handlers, SIGINT and SIGTERM end refute in one
    line and exit 130 (not a traceback, not death by signal). A handler someone else
    installed is kept."""
    import signal  # noqa: PLC0415 - the entry point only

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    with contextlib.suppress(ValueError):  # not the main thread: nothing to install
        for signum, default in defaults.items():
            if signal.getsignal(signum) is default:
                signal.signal(signum, _raise_interrupt)


def _ignore_interrupts() -> None:
    import signal  # noqa: PLC0415 - the entry point only

    with contextlib.suppress(ValueError):  # not the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: runs the command, maps errors to one line and an exit code."""
    _terminate_as_interrupt()
    try:
        _standard_streams()
        result = cli.main(args=argv, prog_name="refute", standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (click.exceptions.Abort, KeyboardInterrupt, _CtrlC, Interrupted):
        _ignore_interrupts()  # the rest of a burst must not kill refute on its way out
        click.echo("refute: interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except click.ClickException as exc:
        _fail(f"{exc.format_message()} (see `refute --help`)", exc.exit_code)
    except PlanCheckError as exc:  # every problem of the plan, one line each
        for problem in exc.problems:
            click.echo(f"refute: error: {_one_line(problem)}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except RefuteError as exc:
        _fail(str(exc), _EXIT_BY_KIND[exc.kind])
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_INFRASTRUCTURE)
    except Exception as exc:  # the last line of defence: still one line, exit 4
        if os.environ.get("REFUTE_DEBUG"):
            import traceback  # noqa: PLC0415 - only on this path

            traceback.print_exc()
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (set REFUTE_DEBUG=1 for details)",
            EXIT_INFRASTRUCTURE,
        )
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
