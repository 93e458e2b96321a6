"""A built-in example: a small program with a planted bug and four hypotheses about it.

`refute demo` writes it to a temporary directory, runs the four falsification tests
through the engine, and removes the directory afterwards. (Part 3 of the roadmap turns
this into a throwaway git repository with worktrees per hypothesis.)
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from refute.executor import AsyncTestExecutor, RunEvent
from refute.model import FalsificationConfig, Hypothesis, TestExecutionResult

BUG = "stats.average([1, 2]) returns 1 instead of 1.5"

PROGRAM = '''\
"""A tiny statistics module with a planted bug."""


def parse(text):
    return [float(part) for part in text.split(",") if part.strip()]


def average(values):
    return sum(values) // len(values)  # the bug: floor division


def report(value):
    return f"{value:g}"
'''


def _check(code: str) -> list[str]:
    return [sys.executable, "-c", code]


HYPOTHESES = [
    Hypothesis(
        id="floor-division",
        description="average() uses floor division",
        test=_check("import sys, stats; sys.exit(1 if stats.average([1.0, 2.0]) != 1.5 else 0)"),
        probability=0.6,
    ),
    Hypothesis(
        id="parse-drops-decimals",
        description="parse() loses the fractional part of its input",
        test=_check("import sys, stats; sys.exit(1 if stats.parse('1.5,2') != [1.5, 2.0] else 0)"),
        probability=0.3,
    ),
    Hypothesis(
        id="report-rounds",
        description="report() rounds 1.5 to 1",
        test=_check("import sys, stats; sys.exit(1 if stats.report(1.5) != '1.5' else 0)"),
        probability=0.2,
    ),
    Hypothesis(
        id="windows-only",
        description="the bug only happens on Windows",
        test=_check("import sys; sys.exit(0 if sys.platform == 'win32' else 125)"),
        probability=0.1,
    ),
]


@dataclass(frozen=True)
class DemoRun:
    bug: str
    hypotheses: list[Hypothesis]
    results: list[TestExecutionResult]


def run_demo(on_event: Callable[[RunEvent], None] | None = None) -> DemoRun:
    """Write the example to a temporary directory, run it, clean up, return the results."""
    with tempfile.TemporaryDirectory(prefix="refute-demo-") as tmp:
        workdir = Path(tmp)
        (workdir / "stats.py").write_text(PROGRAM, encoding="utf-8")
        config = FalsificationConfig(test_timeout=60, max_concurrent_tests="auto")
        executor = AsyncTestExecutor(config, on_event=on_event)
        results = executor.execute_parallel(HYPOTHESES, {h.id: workdir for h in HYPOTHESES})
    return DemoRun(bug=BUG, hypotheses=list(HYPOTHESES), results=results)
