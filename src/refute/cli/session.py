"""The commands that run tests: `run`, `resume`, `demo`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from refute.cli.housekeeping import parse_log_limit, state_warnings
from refute.cli.options import (
    export_options,
    exports_of,
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
    emit_report,
    fail,
    run_with_progress,
    say_if_failed,
    say_if_halted,
)
from refute.model import MAX_CONCURRENCY, MAX_REPEAT, MAX_SECONDS

if TYPE_CHECKING:
    from refute.cli.progress import Progress

__all__ = ["demo", "report_options", "resume", "run"]

REPEAT = click.IntRange(1, MAX_REPEAT)
F = TypeVar("F", bound=Callable[..., Any])


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """`--timeout`: a finite number of seconds > 0 and at most MAX_SECONDS (a week)."""
    if value is not None and not 0 < value <= MAX_SECONDS:  # NaN and inf fail too
        raise click.BadParameter(
            f"must be a number > 0 and <= {MAX_SECONDS:g}, got {value}", ctx, param
        )
    return value


def report_options(func: F) -> F:
    """--format, -o, -v, --junit-supported and the --export-* options."""
    for decorate in (
        export_options,
        junit_option(),
        verbose_option(),
        output_option(),
        format_option(),
    ):
        func = decorate(func)
    return func


def _emit(doc: dict[str, Any], values: dict[str, Any]) -> None:
    emit_report(
        doc,
        str(values["fmt"]).lower(),
        values["output"],
        verbose=bool(values["verbose"]),
        junit_supported=str(values["junit_supported"]).lower(),
        exports=exports_of(values),
    )


RUN_HELP = """Run a plan: every hypothesis' test in its own worktree, concurrently.

\b
Examples:
  refute run plan.yaml                        # the report on stdout, progress on stderr
  refute run plan.yaml -j 4 --repeat 3 --export-junit refute.xml --export-markdown pr.md
"""


@click.command(help=RUN_HELP)
@click.argument("plan", type=click.Path(path_type=Path))
@jobs_option(
    f"Tests at once: N from 1 to {MAX_CONCURRENCY}, or 'auto' (CPUs and free memory;"
    " default: the plan's concurrency, else auto)."
)
@click.option(
    "--timeout",
    type=float,
    metavar="S",
    callback=_seconds,
    help=f"Seconds per test run, at most {MAX_SECONDS:g} (replaces the plan's default).",
)
@click.option(
    "--repeat",
    type=REPEAT,
    metavar="N",
    help=f"Runs per hypothesis and for the control, N from 1 to {MAX_REPEAT} (replaces the"
    " plan's).",
)
@click.option("--no-parallel", is_flag=True, help="Run one test at a time (as -j 1).")
@max_hypotheses_option()
@report_options
@click.option(
    "--keep-worktrees", is_flag=True, help="Keep every worktree after the run (to look inside)."
)
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
@repo_option()
def run(
    plan: Path,
    jobs: str | None,
    timeout: float | None,
    repeat: int | None,
    no_parallel: bool,
    max_hypotheses: int | None,
    keep_worktrees: bool,
    no_halt: bool,
    sandbox: bool,
    log_limit: str | None,
    repo: Path,
    **report: object,
) -> int:
    from refute import app  # noqa: PLC0415 - lazy: start-up

    try:
        log_bytes = parse_log_limit(log_limit)
    except ValueError as exc:
        fail(f"--log-limit: {exc}", EXIT_USAGE)
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
    doc = run_with_progress(
        lambda progress: app.run_plan(
            plan,
            repo=repo,
            options=options,
            on_event=progress.event,
            on_created=progress.created,
        )
    )
    say_if_halted(doc)
    say_if_failed(doc)
    _emit(doc, report)
    return int(doc["session"]["exit_code"] or 0)


@click.command()
@click.argument("session")
@report_options
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run the remaining tests with isolation: sandbox (recorded so).",
)
def resume(session: str, sandbox: bool, **report: object) -> int:
    """Run again the tests of SESSION (an id or a unique prefix) that have no final result
    (after a crash or Ctrl-C), then report the whole session."""
    from refute import app  # noqa: PLC0415 - lazy: start-up

    state_warnings()
    outcome: list[app.ResumeResult] = []

    async def go(progress: Progress) -> dict[str, Any]:
        result = await app.resume(
            session, on_event=progress.event, on_created=progress.created, sandbox=sandbox
        )
        outcome.append(result)
        return result.document

    doc = run_with_progress(go)
    if outcome and outcome[0].finished:
        click.echo(
            f"refute: session {doc['session']['id']} had nothing left to run;"
            " analysed and finished it",
            err=True,
        )
    elif outcome and not outcome[0].ran:
        click.echo(f"refute: session {doc['session']['id']} has nothing left to run", err=True)
    say_if_failed(doc)
    _emit(doc, report)
    return int(doc["session"]["exit_code"] or 0)


@click.command()
@report_options
def demo(**report: object) -> int:
    """Run the built-in example: a planted bug, four hypotheses, a control, in a throwaway
    repository. The session is stored like any other (`refute show ID` after it)."""
    from refute import app  # noqa: PLC0415 - lazy: start-up

    def announce(repo: Path) -> None:
        click.echo(f"refute demo: a throwaway repository at {repo} (removed afterwards)", err=True)

    doc = run_with_progress(
        lambda progress: app.demo(
            announce=announce, on_event=progress.event, on_created=progress.created
        )
    )
    _emit(doc, report)
    to_stdout = str(report["fmt"]).lower() == "text" and report["output"] is None
    click.echo(f"refute demo: {demo_headline(doc)}", err=not to_stdout)
    session_id = doc["session"]["id"]
    click.echo(
        f"refute demo: stored as session {session_id}: `refute show {session_id}` shows it again",
        err=True,
    )
    return int(doc["session"]["exit_code"] or 0)


def demo_headline(doc: dict[str, Any]) -> str:
    """What the demo found, in one line."""
    survivors = (doc.get("summary") or {}).get("survivors") or []
    ruled_out = [h["id"] for h in doc["hypotheses"] if h.get("verdict") == "falsified"]
    if len(survivors) == 1:
        out = f"; ruled out: {', '.join(ruled_out)}" if ruled_out else ""
        return f"found the cause: {survivors[0]} (the only hypothesis that survived){out}"
    if survivors:
        return f"{len(survivors)} hypotheses survived: {', '.join(survivors)}"
    return "no hypothesis survived"
