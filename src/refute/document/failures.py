"""How a run that gave no evidence failed (`FailureKind`), read from a run record.

The engine records it as `metrics.failure`; documents written before it did are read
from the result, exit code and message. The analysis (its advice) and every report
format read it the same way, through `failure_kind_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refute.document.vocabulary import FAILURE_KINDS, FailureKind

__all__ = ["failure_kind_of"]


def failure_kind_of(run: Mapping[str, Any]) -> FailureKind | None:
    """The `FailureKind` of a run dict, or None (a pass, a fail, a skip, not run)."""
    metrics: Mapping[str, Any] = run.get("metrics") or {}
    if metrics.get("not_run"):
        return None
    recorded = metrics.get("failure")
    if isinstance(recorded, str) and recorded in FAILURE_KINDS:
        return recorded
    result = run.get("result")
    if result == "timeout":
        return "timeout"
    if result != "error":
        return None
    message = str(run.get("error_message") or "")
    exit_code = run.get("exit_code")
    kinds: list[tuple[bool, FailureKind]] = [
        ("does not apply" in message, "patch"),
        (message.startswith("setup failed"), "setup"),
        (message.startswith("failed differently"), "pattern"),
        (exit_code in (126, 127) or "command not found" in message, "command"),
        (
            exit_code not in (0, -1, None) and not message.startswith(("worktree", "could not")),
            "harness",
        ),
    ]
    return next((kind for matches, kind in kinds if matches), "error")
