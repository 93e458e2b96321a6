"""The `refute` command line. All printing and exit codes live here.

Exit codes: 0 the session completed (whatever the verdicts); 2 bad input or usage.
"""

from __future__ import annotations

import sys

import click

from refute import __version__
from refute.demo import run_demo
from refute.executor import RunEvent
from refute.model import default_verdict


def _progress(event: RunEvent) -> None:
    if event.kind == "started":
        line = f"[{event.elapsed:6.2f}s] started   {event.hypothesis_id}"
    else:
        outcome = event.result.result.value if event.result else "?"
        line = f"[{event.elapsed:6.2f}s] finished  {event.hypothesis_id}: {outcome}"
    click.echo(line, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="refute")
def main() -> None:
    """refute: test competing bug hypotheses concurrently, under hard limits.

    \b
    Exit codes:
      0  the session completed (whatever the verdicts)
      2  bad input or usage
    """


@main.command()
def demo() -> None:
    """Run a built-in example: a planted bug and four hypotheses about it."""
    run = run_demo(on_event=_progress)
    click.echo(f"\nBug: {run.bug}\n")
    width = max(len(h.id) for h in run.hypotheses)
    click.echo(f"{'hypothesis':<{width}}  {'outcome':<8} {'exit':>4}  {'time':>6}  verdict")
    for hyp, result in zip(run.hypotheses, run.results, strict=True):
        verdict = default_verdict(result.result).value.upper()
        click.echo(
            f"{hyp.id:<{width}}  {result.result.value:<8} {result.exit_code:>4}"
            f"  {result.duration:>5.2f}s  {verdict}  ({hyp.description})"
        )
    survivors = [
        r.hypothesis_id for r in run.results if default_verdict(r.result).value == "supported"
    ]
    click.echo(f"\nSurviving: {', '.join(survivors) or 'none'}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
