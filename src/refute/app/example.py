"""The built-in example: a throwaway repository with a planted bug, and a plan about it.

`refute demo` writes a tiny statistics package into a new git repository in a temporary
directory, with a plan of four hypotheses — one true (its patch fixes the bug), two false,
one untestable here (exit 125) — and a control that reproduces the bug on the base.
It runs the plan like `refute run` would, with refute's state in the same temporary
directory, and removes everything afterwards. Works offline: it needs Python and git.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from refute.workspace.git import run_git

__all__ = ["demo_environment", "write_demo_repository"]

PROGRAM = '''\
"""A tiny statistics module with a planted bug."""


def parse(text):
    return [float(part) for part in text.split(",") if part.strip()]


def average(values):
    return sum(values) // len(values)  # the planted bug: floor division


def report(values):
    return f"mean={average(values):g} n={len(values)}"
'''

REPRODUCE = '''\
"""Reproduces the bug report: `report(parse("1,2"))` should say mean=1.5."""
import sys

import stats

got = stats.report(stats.parse("1,2"))
if got != "mean=1.5 n=2":
    print(f"bug reproduced: {got!r}", file=sys.stderr)
    sys.exit(1)
print("ok:", got)
'''

PARSE_CHECK = '''\
"""Predicts: parse() drops the fractional part. Fails (1) if it does."""
import sys

import stats

sys.exit(1 if stats.parse("1.5,2") != [1.5, 2.0] else 0)
'''

REPORT_CHECK = '''\
"""Predicts: report() rounds its mean. Fails (1) if a mean of 1.5 is shown differently."""
import sys

import stats

stats.average = lambda values: 1.5  # isolate report() from average()
sys.exit(1 if stats.report([1, 2]) != "mean=1.5 n=2" else 0)
'''

LOCALE_CHECK = '''\
"""Predicts: the bug depends on a Windows locale. Cannot be tested here: exit 125."""
import sys

sys.exit(0 if sys.platform == "win32" else 125)
'''

PLAN = """\
version: 1
bug: 'report(parse("1,2")) says mean=1 instead of mean=1.5'
base: HEAD
defaults: {{timeout: 60, repeat: 1, env: {{PYTHONPATH: "."}}}}
control:
  test: [{python}, checks/reproduce.py]
hypotheses:
  - id: floor-division
    description: average() uses floor division; the patch switches to true division
    test: [{python}, checks/reproduce.py]
    patch: fix-floor-division.diff
    supported_if: passes
    probability: 0.6
    impact: 0.9
    test_complexity: 0.2
    estimated_test_time: 1
  - id: parse-drops-decimals
    description: parse() loses the fractional part of its input
    test: [{python}, checks/parse.py]
    probability: 0.3
    impact: 0.6
    test_complexity: 0.2
    estimated_test_time: 1
  - id: report-rounds
    description: report() rounds the mean when formatting it
    test: [{python}, checks/report.py]
    probability: 0.2
    impact: 0.5
    test_complexity: 0.3
    estimated_test_time: 1
  - id: windows-locale
    description: the bug only happens under a Windows locale
    test: [{python}, checks/locale.py]
    probability: 0.1
    impact: 0.4
    test_complexity: 0.8
    estimated_test_time: 1
"""


_IDENTITY = {
    "GIT_AUTHOR_NAME": "refute demo",
    "GIT_AUTHOR_EMAIL": "demo@refute.invalid",
    "GIT_COMMITTER_NAME": "refute demo",
    "GIT_COMMITTER_EMAIL": "demo@refute.invalid",
}


async def _git(repo: Path, *args: str) -> str:
    result = await run_git(["-c", "commit.gpgsign=false", *args], cwd=repo, env=_IDENTITY)
    return result.stdout


async def write_demo_repository(root: Path) -> tuple[Path, Path]:
    """Create the demo repository and its plan under `root`; return (repo, plan path)."""
    repo = root / "stats-project"
    (repo / "checks").mkdir(parents=True)
    (repo / "stats.py").write_text(PROGRAM, encoding="utf-8")
    (repo / "checks" / "reproduce.py").write_text(REPRODUCE, encoding="utf-8")
    (repo / "checks" / "parse.py").write_text(PARSE_CHECK, encoding="utf-8")
    (repo / "checks" / "report.py").write_text(REPORT_CHECK, encoding="utf-8")
    (repo / "checks" / "locale.py").write_text(LOCALE_CHECK, encoding="utf-8")
    await _git(repo, "init", "-q")
    await _git(repo, "add", "-A")
    await _git(repo, "commit", "-q", "-m", "stats: first version")
    plan_dir = root / "plan"
    plan_dir.mkdir()
    # The candidate fix, made the way a developer would: edit, `git diff`, restore.
    fixed = PROGRAM.replace(
        "sum(values) // len(values)  # the planted bug: floor division", "sum(values) / len(values)"
    )
    (repo / "stats.py").write_text(fixed, encoding="utf-8")
    diff = await _git(repo, "diff", "--no-color", "--no-ext-diff")
    (repo / "stats.py").write_text(PROGRAM, encoding="utf-8")
    (plan_dir / "fix-floor-division.diff").write_text(diff, encoding="utf-8")
    plan = plan_dir / "plan.yaml"
    plan.write_text(PLAN.format(python=_yaml_quote(sys.executable)), encoding="utf-8")
    return repo, plan


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@asynccontextmanager
async def demo_environment() -> AsyncIterator[tuple[Path, Path]]:
    """A temporary directory with the demo repository, its plan, and refute's cache of
    worktrees (REFUTE_CACHE_DIR points there for the duration, so no worktree of the
    throwaway repository outlives it). The session and its logs go to refute's state like
    any other session's: `refute show ID` works after the demo."""
    previous = os.environ.get("REFUTE_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="refute-demo-") as tmp:
        root = Path(tmp)
        os.environ["REFUTE_CACHE_DIR"] = str(root / "cache")
        try:
            yield await write_demo_repository(root)
        finally:
            if previous is None:
                os.environ.pop("REFUTE_CACHE_DIR", None)
            else:
                os.environ["REFUTE_CACHE_DIR"] = previous
