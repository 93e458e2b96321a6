"""Caveats of a verdict: what may make it wrong although its runs agree.

- **A run that names the user's checkout.** Each test runs in a worktree in refute's cache
  directory; output that names a path inside the session's repository (`session.repo`)
  means the test saw the user's checkout instead (an editable install, an absolute path
  in a config file, a `cd`), so it may have run the checkout's code, not the worktree's.
  The hypothesis' verdict is then unreliable.
- **A different failure than the control's.** When a runner lists its failing tests
  (`metrics.failing_tests` of a FAIL run, see `refute.engine.results`), a hypothesis whose
  failing runs failed on a test the control's failing runs never failed on may have found
  another failure than the bug. That is a flag in the reason, not a change of verdict.

Pure functions over plain run dicts, like the rest of `refute.analysis`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from refute.model import TestResult

__all__ = [
    "CONTROL_UNRELIABLE_REASON",
    "checkout_paths",
    "checkout_reason",
    "different_failure_reason",
    "failing_tests",
]

#: Why a hypothesis is unreliable when the control did not reproduce the bug.
CONTROL_UNRELIABLE_REASON: Final = (
    "the control did not reproduce the bug on the unmodified base, so no run is evidence"
)

# The rest of a path after the repository's root: up to a space, a quote, or a punctuation
# mark that ends a path in a traceback or a log line (`File "/x/y.py", line 3`, `y.py:12:`).
_PATH_REST: Final = r"/[^\s'\"`:;,()<>\[\]{}|]*"
# Before the root: not a character that would make it part of a longer path or word.
_BEFORE: Final = r"(?<![\w.~/-])"
# Right after the bare root (no "/..."): the end of a word (`/home/u/proj.` ends a sentence,
# `/home/u/project` and `/home/u/proj.git` are other directories).
_WORD_END: Final = r"(?![\w-]|\.\w)"
#: Test ids listed in a reason, at most; the rest are counted.
_LISTED: Final = 3


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def checkout_paths(text: str, repo: str, worktree: str = "") -> list[str]:
    """The paths inside `repo` that `text` names, in order of appearance, each once.

    A path is `repo` itself or `repo/...`, as a whole word: `/home/u/proj` is not named by
    `/home/u/project`, `/home/u/proj.git` or `/x/home/u/proj`. Paths inside `worktree`
    (where the run really was, should it lie inside `repo`) are not listed.
    """
    root = repo.rstrip("/")
    if not root or not text:
        return []
    inside = worktree.rstrip("/")
    pattern = re.compile(rf"{_BEFORE}{re.escape(root)}(?:{_PATH_REST}|{_WORD_END})")
    found: list[str] = []
    for match in pattern.finditer(text):
        path = match.group(0).rstrip(".")
        if (inside and _under(path, inside)) or path in found:
            continue
        found.append(path)
    return found


def _attempt(run: Mapping[str, Any], index: int) -> int:
    attempt = (run.get("metrics") or {}).get("attempt")
    if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1:
        return attempt
    return index


def _join_and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def checkout_reason(runs: Sequence[Mapping[str, Any]], repo: str) -> str | None:
    """Why the runs' verdict is unreliable when one of them named the user's checkout
    (`repo`) in its stdout or stderr; None when none did.

    E.g. "run 2's output names /home/u/proj/src/x.py, inside your checkout (not its
    worktree): it may have used your checkout's code"; later runs that name it too are
    added as "(runs 3 and 4 name your checkout too)".
    """
    named: list[tuple[int, str]] = []
    for index, run in enumerate(runs, start=1):
        worktree = str(run.get("worktree_path") or "")
        text = f"{run.get('stdout') or ''}\n{run.get('stderr') or ''}"
        paths = checkout_paths(text, repo, worktree)
        if paths:
            named.append((_attempt(run, index), paths[0]))
    if not named:
        return None
    (attempt, path), others = named[0], [str(n) for n, _ in named[1:]]
    reason = (
        f"run {attempt}'s output names {path}, inside your checkout (not its worktree):"
        " it may have used your checkout's code"
    )
    if others:
        noun = "run" if len(others) == 1 else "runs"
        verb = "names" if len(others) == 1 else "name"
        reason += f" ({noun} {_join_and(others)} {verb} your checkout too)"
    return reason


def failing_tests(runs: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The test ids the runs' FAIL results list (`metrics.failing_tests`), all together;
    empty when no failing run lists any (no runner that lists them, or no failure)."""
    tests: set[str] = set()
    for run in runs:
        metrics = run.get("metrics") or {}
        if run.get("result") != TestResult.FAIL.value or metrics.get("not_run"):
            continue
        listed = metrics.get("failing_tests")
        if isinstance(listed, list):
            tests.update(str(test) for test in listed)
    return frozenset(tests)


def _listing(tests: frozenset[str]) -> str:
    ordered = sorted(tests)
    if len(ordered) <= _LISTED:
        return _join_and(ordered)
    return f"{', '.join(ordered[:_LISTED])} and {len(ordered) - _LISTED} more"


def different_failure_reason(
    runs: Sequence[Mapping[str, Any]], control_runs: Sequence[Mapping[str, Any]]
) -> str | None:
    """ "it failed on A, the control on B: maybe a different failure" when the runs failed
    on a test the control's failing runs did not fail on; None otherwise, and when either
    side lists no failing test (nothing to compare).

    Failing on fewer tests than the control (a narrower test of the same bug) is not
    different.
    """
    mine, theirs = failing_tests(runs), failing_tests(control_runs)
    if not mine or not theirs or mine <= theirs:
        return None
    return (
        f"it failed on {_listing(mine)}, the control on {_listing(theirs)}:"
        " maybe a different failure"
    )
