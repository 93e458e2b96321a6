"""Use cases, async and front-end agnostic: the only layer that wires the others together.

`run_plan`, `resume`, `show`, `history`, `check`, `clean`, `demo` (and `run_session` for a
spec built by hand). Front ends (`refute.cli`, later the MCP server) parse, call one of
these, and render what it returns.
"""

from refute.app.commands import (
    CheckReport,
    CleanResult,
    Listed,
    PlanEstimate,
    RunOptions,
    Shown,
    check,
    clean,
    demo,
    history,
    history_of,
    run_plan,
    show,
    show_session,
)
from refute.app.run import ResumeResult, resume, run_session
from refute.app.spec import SessionSpec, spec_from_document, spec_from_plan

__all__ = [
    "CheckReport",
    "CleanResult",
    "Listed",
    "PlanEstimate",
    "ResumeResult",
    "RunOptions",
    "SessionSpec",
    "Shown",
    "check",
    "clean",
    "demo",
    "history",
    "history_of",
    "resume",
    "run_plan",
    "run_session",
    "show",
    "show_session",
    "spec_from_document",
    "spec_from_plan",
]
