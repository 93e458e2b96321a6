"""The session document's words, each spelled here only: the schema version, the control's
id, statuses, run outcomes and count keys, verdicts, control verdicts, recommendation
actions, and the exit code recorded for a session.

Each word list is a `Literal` type (what the models and mypy check) and a tuple of the
same words in display order (what code iterates over); the tuple is read off the type, so
the two cannot drift apart.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "ACTIONS",
    "CONTROL_ID",
    "CONTROL_NOT_REPRODUCED",
    "CONTROL_PENDING",
    "CONTROL_REPRODUCED",
    "CONTROL_VERDICTS",
    "EXIT_CODES",
    "NOT_RUN",
    "OUTCOMES",
    "OUTCOME_KEYS",
    "SCHEMA",
    "STATUSES",
    "SUPPORTED_IF_VALUES",
    "VERDICTS",
    "VERDICT_KEYS",
    "Action",
    "ControlVerdict",
    "CountKey",
    "Outcome",
    "SchemaVersion",
    "Status",
    "SupportedIf",
    "Verdict",
]

#: The `schema` value of a session document.
SchemaVersion = Literal["refute.session/1"]
SCHEMA: Final[SchemaVersion] = get_args(SchemaVersion)[0]

#: The id of the control run (no hypothesis may take it).
CONTROL_ID: Final = "control"

#: The statuses a session can have.
Status = Literal["running", "completed", "interrupted", "failed"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

#: The outcome of one run (`TestResult` values): a run's `result`.
Outcome = Literal["pass", "fail", "timeout", "error", "skip"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

#: The count key of a run cancelled before it finished (its `result` is "skip").
NOT_RUN: Final = "not_run"
#: Keys of every `counts` object of a hypothesis or the control, in display order.
CountKey = Literal[Outcome, "not_run"]
OUTCOME_KEYS: Final[tuple[CountKey, ...]] = get_args(CountKey)

#: A hypothesis' verdict (`HypothesisStatus` values); "testing" only while a session runs.
Verdict = Literal["pending", "testing", "falsified", "supported", "inconclusive", "flaky"]
VERDICTS: Final[tuple[Verdict, ...]] = get_args(Verdict)
#: Keys of `summary.counts` (hypotheses per verdict), in display order.
VERDICT_KEYS: Final[tuple[Verdict, ...]] = (
    "falsified",
    "supported",
    "inconclusive",
    "flaky",
    "pending",
)

#: What the control showed on the unmodified base.
ControlVerdict = Literal["reproduced", "not_reproduced", "pending"]
CONTROL_VERDICTS: Final[tuple[ControlVerdict, ...]] = get_args(ControlVerdict)
CONTROL_REPRODUCED: Final[ControlVerdict] = "reproduced"
CONTROL_NOT_REPRODUCED: Final[ControlVerdict] = "not_reproduced"
CONTROL_PENDING: Final[ControlVerdict] = "pending"

#: The two readings of a test's outcome a hypothesis can declare.
SupportedIf = Literal["fails", "passes"]
SUPPORTED_IF_VALUES: Final[tuple[SupportedIf, ...]] = get_args(SupportedIf)

#: How a run that gave no evidence failed (a run's `metrics.failure`): each kind has its own
#: next step. "patch": its patch did not apply; "setup": the setup command failed;
#: "command": the test command was not found or could not be executed (126/127);
#: "harness": the harness failed (a usage error or a crash, not a test failure); "timeout";
#: "pattern": it failed differently (the output does not match `failure_pattern`);
#: "error": the run could not be carried out for another reason.
FailureKind = Literal["patch", "setup", "command", "harness", "timeout", "pattern", "error"]
FAILURE_KINDS: Final[dict[FailureKind, str]] = {
    "patch": "the patch did not apply",
    "setup": "the setup failed",
    "command": "the command was not found or could not be executed",
    "harness": "the test harness failed (a usage error or a crash, not a test failure)",
    "timeout": "the run timed out",
    "pattern": "it failed differently (the output does not match failure_pattern)",
    "error": "the run could not be carried out",
}

#: What the session's recommendation says to do (`summary.recommendation.action`).
Action = Literal[
    "fix_control", "fix_inconclusive", "new_hypotheses", "focus", "refine_tests", "resume"
]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

#: The exit code of `refute` for each way a session (or a command) can end. The document
#: records it (`session.exit_code`); the CLI is the only code that exits with it.
EXIT_CODES: Final = {
    "ok": 0,
    "usage": 2,
    "control_not_reproduced": 3,
    "infrastructure": 4,
    "interrupted": 130,
}
