"""Use cases, async and front-end agnostic: the only layer that wires the others together.

`run_plan`, `resume`, `show`, `history`, `check`, `clean`, `demo` (and `run_session` for a
spec built by hand). Front ends (`refute.cli`, later the MCP server) parse, call one of
these, and render what it returns.
"""

from refute.app.commands import (
    CheckReport,
    CleanResult,
    RunOptions,
    check,
    clean,
    demo,
    history,
    run_plan,
    show,
)
from refute.app.run import ResumeResult, resume, run_session
from refute.app.spec import SessionSpec, spec_from_document, spec_from_plan

__all__ = [
    "CheckReport",
    "CleanResult",
    "ResumeResult",
    "RunOptions",
    "SessionSpec",
    "check",
    "clean",
    "demo",
    "history",
    "resume",
    "run_plan",
    "run_session",
    "show",
    "spec_from_document",
    "spec_from_plan",
]
