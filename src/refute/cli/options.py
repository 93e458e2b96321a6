"""Options that several commands share, validated when the command line is parsed.

A bad value is a usage error (exit 2) before anything runs: an unwritable `-o FILE` is
refused at once, not after the whole session (the report would be lost). `--format` is
case-insensitive. Every option says what its metavar means.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from refute.model import MAX_CONCURRENCY, MAX_HYPOTHESES

__all__ = [
    "EXPORTS",
    "FORMATS",
    "HYPOTHESES",
    "export_options",
    "format_option",
    "jobs_option",
    "max_hypotheses_option",
    "output_option",
    "repo_option",
    "verbose_option",
    "writable_file",
]

FORMATS: Final = ("text", "json", "markdown", "junit", "html")
#: `--export-FORMAT FILE` options of the commands that run sessions (as hyperfine's).
EXPORTS: Final = ("json", "markdown", "junit", "html", "text")

F = TypeVar("F", bound=Callable[..., Any])


def writable_file(path: Path) -> str | None:
    """Why a report cannot be written to `path`, or None when it can be."""
    if path.is_dir():
        return f"{path} is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create files in {parent}"
    return None


def _check_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    problem = writable_file(value)
    if problem is not None:
        raise click.BadParameter(f"cannot write the report: {problem}", ctx, param)
    return value


def format_option(
    choices: tuple[str, ...] = FORMATS, help_text: str | None = None
) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices, case_sensitive=False),
        default="text",
        show_default=True,
        help=help_text or "The report on stdout: " + ", ".join(choices) + " (case-insensitive).",
    )


def output_option() -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        callback=_check_file,
        help="Write the report (in --format) to FILE instead of stdout; checked before"
        " anything runs.",
    )


def export_options(func: F) -> F:
    """`--export-json FILE`, `--export-markdown FILE`, ...: more formats in the same run."""
    for fmt in reversed(EXPORTS):
        func = click.option(
            f"--export-{fmt}",
            f"export_{fmt}",
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="FILE",
            callback=_check_file,
            help=f"Also write the {fmt} report to FILE (any number of --export-* options;"
            " the report on stdout stays).",
        )(func)
    return func


def repo_option(
    help_text: str = "The repository (default: the one of the current directory).",
) -> Callable[[F], F]:
    return click.option(
        "--repo",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        default=".",
        help=help_text,
    )


def verbose_option() -> Callable[[F], F]:
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Text report: list the logs of every run (default: only runs that need attention).",
    )


def junit_option() -> Callable[[F], F]:
    return click.option(
        "--junit-supported",
        type=click.Choice(("failure", "pass"), case_sensitive=False),
        default="failure",
        show_default=True,
        help="JUnit: a SUPPORTED hypothesis is a failing testcase (the bug's cause found,"
        " so a CI gate goes red) or a passing one.",
    )


def exports_of(values: dict[str, Any]) -> list[tuple[str, Path]]:
    """(format, file) of every `--export-*` option given, in `EXPORTS` order."""
    return [(fmt, values[f"export_{fmt}"]) for fmt in EXPORTS if values.get(f"export_{fmt}")]


HYPOTHESES = click.IntRange(1, MAX_HYPOTHESES)


def _jobs(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """`-j`: a number from 1 to MAX_CONCURRENCY, or `auto`."""
    if value is None or value.lower() == "auto":
        return None if value is None else "auto"
    text = value.strip()
    if not (
        text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_CONCURRENCY
    ):
        raise click.BadParameter(
            f"must be a number from 1 to {MAX_CONCURRENCY} or 'auto', got {value!r}", ctx, param
        )
    return int(text)


def jobs_option(help_text: str) -> Callable[[F], F]:
    return click.option("-j", "--jobs", metavar="N|auto", callback=_jobs, help=help_text)


def max_hypotheses_option() -> Callable[[F], F]:
    return click.option(
        "--max-hypotheses",
        type=HYPOTHESES,
        metavar="K",
        help=f"Keep only the K best-ranked hypotheses (K from 1 to {MAX_HYPOTHESES}).",
    )
