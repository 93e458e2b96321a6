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
import sys
from typing import Any, NoReturn

import click

from refute import __version__
from refute.cli.inspect import check, clean, history, schema, show
from refute.cli.options import FORMATS
from refute.cli.render import fail as _fail
from refute.cli.render import one_line as _one_line
from refute.cli.render import standard_streams as _standard_streams
from refute.cli.session import demo, resume, run
from refute.document import EXIT_CODES
from refute.errors import ErrorKind, Interrupted, PlanCheckError, RefuteError

# The use cases, the reports, rich and asyncio are imported by the commands that need
# them, not here: `refute --version` and `refute --help` import click and little else
# (docs/performance.md, "Whole session").

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


for _command in (run, check, show, history, resume, clean, schema, demo):
    cli.add_command(_command)


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


def _help_of(exc: click.ClickException) -> str:
    """The command whose `--help` answers a usage error: the subcommand's own."""
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if isinstance(ctx, click.Context) and ctx.command_path else "refute"


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: runs the command, maps errors to one line and an exit code."""
    _terminate_as_interrupt()
    args = sys.argv[1:] if argv is None else argv
    if not args:  # `refute` alone: the normal help, exit 0
        with cli.make_context("refute", ["--help"], resilient_parsing=True) as ctx:
            click.echo(ctx.get_help())
        raise SystemExit(0)
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
        _fail(f"{exc.format_message()} (see `{_help_of(exc)} --help`)", exc.exit_code)
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
