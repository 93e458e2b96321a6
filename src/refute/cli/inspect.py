"""The commands that run no test: `check`, `show`, `history`, `schema`, `clean`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refute.cli.housekeeping import say_clean
from refute.cli.options import (
    format_option,
    jobs_option,
    junit_option,
    max_hypotheses_option,
    output_option,
    repo_option,
    verbose_option,
)
from refute.cli.render import (
    EXIT_USAGE,
    add_plain_row,
    check_json,
    console,
    emit_report,
    fail,
    one_line,
    seconds_words,
)
from refute.model import MAX_CONCURRENCY, MAX_HISTORY

if TYPE_CHECKING:
    from refute.app import CheckReport

__all__ = ["check", "clean", "history", "schema", "show"]


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@jobs_option(f"Tests at once: N from 1 to {MAX_CONCURRENCY}, or 'auto' (as `run` would).")
@max_hypotheses_option()
@click.option("--sandbox", is_flag=True, help="Check as `run --sandbox` would run.")
@repo_option()
@format_option(
    ("text", "json"),
    "text, or json: the problems, warnings and what would run, for agents and scripts.",
)
def check(
    plan: Path, jobs: str | None, max_hypotheses: int | None, sandbox: bool, repo: Path, fmt: str
) -> int:
    """Validate and rank a plan, check it against the repository (patches apply, commands
    exist, no shell syntax without a shell), show what would run; exit 2 on any problem.
    Runs nothing."""
    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    options = app.RunOptions(jobs=jobs, max_hypotheses=max_hypotheses, sandbox=sandbox)
    report = run_interruptible(lambda: app.check(plan, repo=repo, options=options))
    if fmt == "json":
        click.echo(check_json(plan, report))
        return 0 if report.valid else EXIT_USAGE
    for note in report.findings.notes:
        click.echo(f"refute: note: {one_line(str(note))}", err=True)
    for warning in report.findings.warnings:
        click.echo(f"refute: warning: {one_line(str(warning))}", err=True)
    if not report.valid:
        for problem in report.findings.problems:
            click.echo(f"refute: error: {one_line(str(problem))}", err=True)
        return EXIT_USAGE
    _print_check(plan, report)
    return 0


def _print_check(plan: Path, report: CheckReport) -> None:
    from rich.table import Table  # noqa: PLC0415 - lazy: start-up

    from refute.reports import command_text  # noqa: PLC0415 - lazy: start-up

    spec = report.spec
    out = console()
    # Plan text is the user's: never read as rich markup (`[x]` in a bug title is text).
    out.print(f"plan {plan}: valid. bug: {spec.bug}", markup=False, highlight=False)
    table = Table(title="would run, in this order")
    for column in ("rank", "id", "score", "est. s", "runs", "timeout s", "patch", "supported if"):
        table.add_column(column, overflow="fold")
    table.add_column("depends on", overflow="fold")
    for rank, (hyp, fields) in enumerate(zip(spec.hypotheses, spec.specs, strict=True), start=1):
        add_plain_row(
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
    out.print(table)
    for hyp in spec.hypotheses:
        out.print(f"  {hyp.id}: $ {command_text(hyp.argv())}", markup=False, highlight=False)
    dropped = spec.settings.get("dropped") or []
    if dropped:
        out.print(f"dropped by max_hypotheses: {', '.join(dropped)}", markup=False)
    if spec.control is not None:
        runs = f"{spec.control.repeat} run{'s' if spec.control.repeat != 1 else ''}"
        out.print(
            f"control (on the unmodified base, {runs}): $ {command_text(spec.control.argv())}",
            markup=False,
            highlight=False,
        )
    out.print(estimate_line(report), markup=False, highlight=False)


def estimate_line(report: CheckReport) -> str:
    """The plan's runs and how long they should take, in plain words."""
    est = report.estimate
    runs = f"{est.hypothesis_runs} hypothesis run{'s' if est.hypothesis_runs != 1 else ''}"
    if est.control_runs:
        runs += f" + {est.control_runs} control run{'s' if est.control_runs != 1 else ''}"
    where = "measured on this machine" if est.cost_source == "measured" else "a default guess"
    at_once = f"{est.concurrency} at a time"
    if est.concurrency == 1 or est.runs <= 1:
        timing = f"about {seconds_words(est.sequential_seconds)} one after another"
    elif est.parallel_seconds < est.sequential_seconds:
        timing = (
            f"about {seconds_words(est.parallel_seconds)} {at_once}, against"
            f" {seconds_words(est.sequential_seconds)} one after another"
        )
    else:
        timing = (
            f"about {seconds_words(est.parallel_seconds)} {at_once}: no faster than one after"
            f" another ({seconds_words(est.sequential_seconds)}), the tests are too short for"
            " the cost of their worktrees"
        )
    return (
        f"estimate: {est.runs} runs ({runs}); {timing}. From the plan's estimated_test_time;"
        f" the worktrees add about {seconds_words(est.overhead_seconds)} ({where})."
        " -j 1 or --no-parallel runs one test at a time."
    )


@click.command()
@click.argument("session", required=False)
@format_option()
@output_option()
@verbose_option()
@junit_option()
@repo_option(
    "Without SESSION: show the latest session of this repository (default: the"
    " current directory's)."
)
def show(
    session: str | None,
    fmt: str,
    output: Path | None,
    verbose: bool,
    junit_supported: str,
    repo: Path,
) -> int:
    """Show a stored session (SESSION: an id or a unique prefix; default: the latest of
    this repository) in any format."""
    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up

    shown = run_interruptible(lambda: app.show_session(session, repo=repo))
    if shown.any_repo:
        where = shown.document["session"].get("repo") or "?"
        click.echo(
            f"refute: note: {repo} is not inside a git repository: showing the latest session"
            f" of any repository ({where}); give --repo DIR or a session id to choose",
            err=True,
        )
    emit_report(
        shown.document, fmt.lower(), output, verbose=verbose, junit_supported=junit_supported
    )
    return 0


@click.command()
@click.option("--all", "all_repos", is_flag=True, help="Sessions of every repository.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, MAX_HISTORY),
    metavar="N",
    default=20,
    show_default=True,
    help=f"At most N sessions (N from 1 to {MAX_HISTORY}).",
)
@format_option(("text", "json"), "text, or json: one object per session, for scripts.")
@repo_option("Whose sessions (default: the repository of the current directory).")
def history(all_repos: bool, limit: int, fmt: str, repo: Path) -> int:
    """List recorded sessions, newest first, with the full session id (for show/resume)."""
    from rich.padding import Padding  # noqa: PLC0415 - lazy: start-up
    from rich.text import Text  # noqa: PLC0415 - lazy: start-up

    from refute import app  # noqa: PLC0415 - lazy: start-up
    from refute.cli.signals import run_interruptible  # noqa: PLC0415 - lazy: start-up
    from refute.reports import dump_json  # noqa: PLC0415 - lazy: start-up

    listed = run_interruptible(lambda: app.history_of(repo=repo, all_repos=all_repos, limit=limit))
    if listed.not_a_repo:
        click.echo(
            f"refute: note: {repo} is not inside a git repository: listing the sessions of"
            " every repository (--repo DIR for one)",
            err=True,
        )
    rows = listed.rows
    if fmt.lower() == "json":
        click.echo(dump_json({"repo": listed.repo, "sessions": rows}))
        return 0
    # One session per block: a line that is never cut (the id is what show/resume take),
    # then its verdicts and bug, wrapped at word boundaries under it.
    out = console()
    for row in rows:
        exit_code = "" if row.get("exit_code") is None else f"  exit {row['exit_code']}"
        head = (
            f"{row['id']}  {_minute(str(row.get('started_at') or ''))}  {row.get('status') or ''}"
        )
        out.print(Text(head + exit_code, style="bold"), overflow="fold")
        about = "; ".join(part for part in (_verdicts_text(row), str(row.get("bug") or "")) if part)
        if about:
            out.print(Padding(Text(about), (0, 0, 0, 2), expand=False), overflow="fold")
    if not rows:
        click.echo("no sessions yet")
    return 0


def _verdicts_text(row: dict[str, Any]) -> str:
    counts = row.get("counts") or {}
    return ", ".join(f"{key} {value}" for key, value in counts.items() if value)


def _minute(stamp: str) -> str:
    """An ISO 8601 UTC time to the minute, as a table shows it ("2026-12-02 21:44");
    anything else as it is. `--format json` keeps the full timestamp."""
    if len(stamp) >= 16 and stamp[10] == "T" and stamp.endswith("+00:00"):
        return stamp[:10] + " " + stamp[11:16]
    return stamp


@click.command()
@click.argument(
    "which", required=False, type=click.Choice(("plan", "report"), case_sensitive=False)
)
@click.option("--report", "flag", flag_value="report", help="The report (session document) schema.")
@click.option("--plan", "flag", flag_value="plan", help="The plan schema (the default).")
def schema(which: str | None, flag: str | None) -> int:
    """Print the JSON Schema of plan files (`refute schema plan`, the default) or of JSON
    reports (`refute schema report`); --plan and --report say the same."""
    import json  # noqa: PLC0415 - only this command needs it

    from refute import reports  # noqa: PLC0415 - only this command needs it
    from refute.plan import plan_json_schema  # noqa: PLC0415 - only this command needs it

    if which and flag and which.lower() != flag:
        fail(f"`{which}` and --{flag} disagree: give one of them", EXIT_USAGE)
    chosen = (which or flag or "plan").lower()
    data = reports.REPORT_JSON_SCHEMA if chosen == "report" else plan_json_schema()
    click.echo(json.dumps(data, indent=2))
    return 0


@click.command()
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
@repo_option("The repository whose leftovers to remove (default: the current directory's).")
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
        fail(f"--older-than: {exc}", EXIT_USAGE)
    try:
        budget = parse_size(max_size) if max_size is not None else None
    except ValueError as exc:
        fail(f"--max-size: {exc}", EXIT_USAGE)
    result = run_interruptible(
        lambda: app.clean(repo, dry_run=dry_run, older_than=age, max_size=budget)
    )
    return say_clean(result, repo, dry_run=dry_run)
