"""The CLI's side of refute's state: warnings about state files, size options, and what
`refute clean` says (docs/cli.md, "State and logs")."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from refute.app import CleanResult
    from refute.app.retention import PruneReport

__all__ = [
    "parse_log_limit",
    "say_clean",
    "state_warnings",
]


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def state_warnings() -> None:
    """One line for each state file that costs something but stops nothing; one that stops
    the run raises StoreError (exit 4)."""
    from refute.app.state import check_state  # noqa: PLC0415 - lazy: start-up

    for warning in check_state():
        click.echo(f"refute: warning: {_one_line(warning)}", err=True)


def parse_log_limit(value: str | None) -> int | None:
    """`--log-limit SIZE` in bytes, within the engine's bounds; ValueError says why not."""
    if value is None:
        return None
    from refute.app.retention import parse_size  # noqa: PLC0415 - lazy: start-up
    from refute.engine.output import MAX_LOG_LIMIT, MIN_LOG_LIMIT  # noqa: PLC0415 - lazy

    size = parse_size(value)
    if not MIN_LOG_LIMIT <= size <= MAX_LOG_LIMIT:
        raise ValueError(f"{value!r}: must be from 4K to 4G")
    return size


def say_clean(result: CleanResult, repo: Path, *, dry_run: bool) -> int:
    """Print what `clean` did, one line per thing; 4 when a corrupt file could not be
    repaired (it is said on stderr), else 0."""
    for repair in result.repairs:
        line = repair.describe(dry_run=dry_run)
        click.echo(line if repair.done else f"refute: error: {line}", err=not repair.done)
    report = result.report
    verb = "would remove" if dry_run else "removed"
    if result.repository is None:
        why = result.repository_error or f"not a git repository: {repo}"
        click.echo(f"refute: {why}; only processes were checked", err=True)
    for path in report.worktrees:
        click.echo(f"{verb} worktree {path}")
    for ref in report.refs:
        click.echo(f"{verb} ref {ref}")
    for path in report.temporary:
        click.echo(f"{verb} temporary {path}")
    for item in report.repaired:
        click.echo(f"{'would repair' if dry_run else 'repaired'} {item}")
    for pid in report.processes:
        click.echo(f"{'would stop' if dry_run else 'stopped'} process {pid}")
    pruned = result.pruned
    if pruned is not None:
        _say_pruned(pruned, verb)
    if report.nothing_to_do and not result.repairs and (pruned is None or pruned.nothing_done):
        click.echo("nothing to clean")
    for kept in report.kept:
        click.echo(f"kept {kept}")
    return 0 if all(repair.done for repair in result.repairs) else 4


def _say_pruned(pruned: PruneReport, verb: str) -> None:
    for session_id in pruned.sessions:
        click.echo(f"{verb} session {session_id}")
    for path, size in pruned.logs:
        click.echo(f"{verb} logs {path} ({size} bytes)")
    if pruned.running:
        click.echo(f"kept {len(pruned.running)} running session(s) and their logs")
    if pruned.budget is not None:
        line = f"state directory: {pruned.size_after} bytes (budget {pruned.budget})"
        if pruned.over_budget:
            line += (
                f", still {pruned.over_budget} over: the rest is session records;"
                " --older-than deletes old sessions"
            )
        click.echo(line)
