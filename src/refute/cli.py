"""The `refute` command line. All printing and every exit code live here.

Exit codes:
  0    the session completed (whatever the verdicts)
  2    bad input or usage (one line on stderr, never a traceback)
  3    the control run did not reproduce the bug (every verdict is unreliable)
  4    infrastructure failure (git, the filesystem, the session store)
  130  interrupted (after cleanup; `refute resume SESSION` finishes the session)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from refute import __version__, reports
from refute._sync import Interrupted, run_interruptible
from refute.errors import (
    ConfigError,
    GitError,
    PlanError,
    RefuteError,
    RepositoryError,
    StoreError,
    UnknownSessionError,
    WorktreeError,
)
from refute.executor import RunEvent
from refute.plan import load_plan, plan_json_schema
from refute.reconcile import CleanReport, reconcile
from refute.session import (
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    SessionSpec,
    resume_session,
    run_session,
    spec_from_plan,
)
from refute.store import Store
from refute.worktrees import Repository

EXIT_USAGE = 2
FORMATS = ("text", "json", "markdown", "junit", "html")


def _console() -> Console:
    """A console for stdout; when it is not a terminal, wide enough that ids never wrap."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _add_plain_row(table: Table, *cells: str) -> None:
    """A table row whose cells are shown as they are (user text is never rich markup)."""
    table.add_row(*(Text(cell) for cell in cells))


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr and the exit code; the CLI never shows a traceback for input."""
    one_line = " ".join(str(message).split())
    click.echo(f"refute: error: {one_line}", err=True)
    raise SystemExit(code)


# -- progress -------------------------------------------------------------------------------


class Progress:
    """Live progress: a rich table on a terminal, plain lines on stderr otherwise."""

    def __init__(self, *, live: bool, concurrency: int) -> None:
        self.live_enabled = live
        self.concurrency = max(1, concurrency)
        self.console = Console(stderr=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.start = time.monotonic()
        self.live: Live | None = None
        self.session_id = ""

    def created(self, doc: dict[str, Any]) -> None:
        self.session_id = doc["session"]["id"]
        entries = list(doc["hypotheses"])
        if doc.get("control"):
            entries.append(
                {"id": "control", "repeat": doc["control"]["repeat"], "estimated_test_time": 0}
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


# -- output ---------------------------------------------------------------------------------


def _emit_report(doc: dict[str, Any], fmt: str, output: Path | None) -> None:
    if output is not None:
        text = reports.render(doc, fmt)
        try:
            output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_INFRASTRUCTURE)
        click.echo(f"refute: {fmt} report written to {output}", err=True)
        return
    if fmt == "text":
        color = sys.stdout.isatty()
        width = Console().width if color else 100
        click.echo(reports.render(doc, "text", color=color, width=width), nl=False)
    else:
        text = reports.render(doc, fmt)
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)


def _current_repo(repo: Path) -> str | None:
    try:
        return str(asyncio.run(Repository.open(repo)).root)
    except RefuteError:
        return None


def _run_with_progress(
    factory: Callable[[Progress], Any], *, concurrency: int, quiet_live: bool = False
) -> dict[str, Any]:
    progress = Progress(live=sys.stderr.isatty() and not quiet_live, concurrency=concurrency)
    try:
        doc: dict[str, Any] = run_interruptible(lambda: factory(progress))
    except Interrupted:
        progress.stop()
        hint = (
            f"; finish it with `refute resume {progress.session_id}`" if progress.session_id else ""
        )
        click.echo(f"refute: interrupted, cleaned up{hint}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        progress.stop()
    return doc


# -- commands -------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _jobs(value: str | None) -> int | str | None:
    if value is None:
        return None
    if value == "auto":
        return "auto"
    try:
        number = int(value)
    except ValueError:
        _fail(f"-j/--jobs: must be a number >= 1 or 'auto', got {value!r}", EXIT_USAGE)
    if number < 1:
        _fail(f"-j/--jobs: must be a number >= 1 or 'auto', got {value!r}", EXIT_USAGE)
    return number


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        _fail(f"{name}: must be > 0, got {value}", EXIT_USAGE)


@cli.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option(
    "-j", "--jobs", help="Tests at once: a number or 'auto' (default: the plan's, else 5)."
)
@click.option("--timeout", type=float, help="Seconds per test run (overrides the plan's default).")
@click.option("--repeat", type=int, help="Runs per hypothesis (overrides the plan).")
@click.option("--no-parallel", is_flag=True, help="Run one test at a time.")
@click.option("--max-hypotheses", type=int, help="Keep only the K best-ranked hypotheses.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report to FILE.")
@click.option("--keep-worktrees", is_flag=True, help="Keep every worktree after the run.")
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
    repo: Path,
) -> int:
    """Run a plan: every hypothesis' test in its own worktree, concurrently."""
    _positive("--timeout", timeout)
    _positive("--repeat", repeat)
    _positive("--max-hypotheses", max_hypotheses)
    loaded = load_plan(plan)
    spec = spec_from_plan(
        loaded,
        plan,
        repo,
        jobs=_jobs(jobs),
        timeout=timeout,
        repeat=repeat,
        parallel=not no_parallel,
        max_hypotheses=max_hypotheses,
        keep_worktrees=keep_worktrees,
    )
    return _run_spec(spec, fmt, output)


def _run_spec(spec: SessionSpec, fmt: str, output: Path | None) -> int:
    with Store.open() as store:
        doc = _run_with_progress(
            lambda progress: run_session(
                spec, store, on_event=progress.event, on_created=progress.created
            ),
            concurrency=spec.config.concurrency(),
        )
    _emit_report(doc, fmt, output)
    return int(doc["session"]["exit_code"] or 0)


@cli.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.option("-j", "--jobs", help="Tests at once: a number or 'auto'.")
@click.option("--max-hypotheses", type=int, help="Keep only the K best-ranked hypotheses.")
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def check(plan: Path, jobs: str | None, max_hypotheses: int | None, repo: Path) -> int:
    """Validate and rank a plan, show what would run and the parallelization decision."""
    _positive("--max-hypotheses", max_hypotheses)
    loaded = load_plan(plan)
    spec = spec_from_plan(loaded, plan, repo, jobs=_jobs(jobs), max_hypotheses=max_hypotheses)
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


def _open_store_session(store: Store, session: str | None, repo: Path) -> str:
    if session:
        return store.resolve_session_id(session)
    latest = store.latest_session_id(_current_repo(repo))
    if latest is None:
        _fail(
            "no session recorded for this repository yet (run `refute run PLAN` first)", EXIT_USAGE
        )
    return latest


@cli.command()
@click.argument("session", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report to FILE.")
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def show(session: str | None, fmt: str, output: Path | None, repo: Path) -> int:
    """Show a stored session (default: the latest of this repository) in any format."""
    with Store.open() as store:
        doc = store.load_document(_open_store_session(store, session, repo))
    _emit_report(doc, fmt, output)
    return 0


@cli.command()
@click.option("--all", "all_repos", is_flag=True, help="Sessions of every repository.")
@click.option("-n", "--limit", type=int, default=20, show_default=True)
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def history(all_repos: bool, limit: int, repo: Path) -> int:
    """List recorded sessions, newest first."""
    with Store.open() as store:
        rows = store.list_sessions(None if all_repos else _current_repo(repo), limit=limit)
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
def resume(session: str, fmt: str, output: Path | None) -> int:
    """Run again the tests of SESSION that have no final result (after a crash or Ctrl-C)."""
    with Store.open() as store:
        session_id = store.resolve_session_id(session)
        unfinished = store.unfinished(session_id)
        if not any(unfinished.values()):
            click.echo(f"refute: session {session_id} has nothing left to run", err=True)
            doc = store.load_document(session_id)
        else:
            doc = _run_with_progress(
                lambda progress: _resume(session_id, store, progress),
                concurrency=5,
            )
    _emit_report(doc, fmt, output)
    return int(doc["session"]["exit_code"] or 0)


async def _resume(session_id: str, store: Store, progress: Progress) -> dict[str, Any]:
    progress.created(store.load_document(session_id))
    return await resume_session(session_id, store, on_event=progress.event)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--repo", type=click.Path(path_type=Path), default=".", show_default=True)
def clean(dry_run: bool, repo: Path) -> int:
    """Remove what dead refute processes left: worktrees, refs, processes, temp files."""

    async def go() -> tuple[Repository | None, CleanReport]:
        try:
            repository: Repository | None = await Repository.open(repo)
        except RepositoryError:
            repository = None
        return repository, await reconcile(repository, dry_run=dry_run)

    repository, report = asyncio.run(go())
    verb = "would remove" if dry_run else "removed"
    if repository is None:
        click.echo(f"refute: {repo} is not a git repository; only processes were checked", err=True)
    for path in report.worktrees:
        click.echo(f"{verb} worktree {path}")
    for ref in report.refs:
        click.echo(f"{verb} ref {ref}")
    for path in report.temporary:
        click.echo(f"{verb} temporary {path}")
    for pid in report.processes:
        click.echo(f"{'would stop' if dry_run else 'stopped'} process {pid}")
    if report.nothing_to_do:
        click.echo("nothing to clean")
    for kept in report.kept:
        click.echo(f"kept {kept}")
    return 0


@cli.command()
@click.option(
    "--report", "which", flag_value="report", help="The report (session document) schema."
)
@click.option("--plan", "which", flag_value="plan", default=True, help="The plan schema (default).")
def schema(which: str) -> int:
    """Print the JSON Schema of plan files (or, with --report, of JSON reports)."""
    import json  # noqa: PLC0415 - only this command needs it

    data = reports.REPORT_JSON_SCHEMA if which == "report" else plan_json_schema()
    click.echo(json.dumps(data, indent=2))
    return 0


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def demo(fmt: str) -> int:
    """Run the built-in example: a planted bug, four hypotheses, a control."""
    from refute.demo import demo_environment  # noqa: PLC0415 - only this command needs it

    with demo_environment() as (repo, plan):
        click.echo(f"refute demo: a throwaway repository at {repo} (removed afterwards)", err=True)
        spec = spec_from_plan(load_plan(plan), plan, repo, jobs="auto")
        return _run_spec(spec, fmt, None)


# -- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: runs the command, maps errors to one line and an exit code."""
    try:
        result = cli.main(args=argv, prog_name="refute", standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Abort:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except click.ClickException as exc:
        _fail(f"{exc.format_message()} (see `refute --help`)", exc.exit_code)
    except (PlanError, ConfigError, RepositoryError, UnknownSessionError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (StoreError, GitError, WorktreeError) as exc:
        _fail(str(exc), EXIT_INFRASTRUCTURE)
    except RefuteError as exc:
        _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_INFRASTRUCTURE)
    except Exception as exc:  # the last line of defence: still one line, exit 4
        if os.environ.get("REFUTE_DEBUG"):
            traceback.print_exc()
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (set REFUTE_DEBUG=1 for details)",
            EXIT_INFRASTRUCTURE,
        )
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
