"""The plan's field types: annotated types whose validators fail with one-line messages.

`refute.plan`'s models are built from these. Each validator raises `invalid` (or `one_message`
replaces the type's errors) with a finished message naming the problem.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from refute.document import CONTROL_ID
from refute.errors import InvalidIdError
from refute.model import (
    MAX_CONCURRENCY,
    MAX_REPEAT,
    MAX_SECONDS,
    MAX_WEIGHT,
    check_id,
)
from refute.plan.errors import invalid, one_message, show_value

__all__ = [
    "RESERVED_ENV_PREFIX",
    "RESERVED_IDS",
    "Command",
    "Concurrency",
    "Count",
    "Env",
    "Estimate",
    "Outcome",
    "Pattern",
    "Repeat",
    "RunnerName",
    "Seconds",
    "Share",
    "Text",
    "Weight",
    "commit_ish",
    "exit_code_keys",
    "hypothesis_id",
    "no_nul",
    "regex",
    "relative_path",
    "version_one",
]


#: Ids a hypothesis may not take: "control" names the control run in sessions and reports.
RESERVED_IDS = frozenset({CONTROL_ID})
#: Environment variables a plan may not set: refute's own (REFUTE_RUN_ID marks a test's
#: processes, REFUTE_SCOPE says which refute may reap them after a crash, REFUTE_HOME where
#: its state lives); a plan overriding one would switch crash recovery off.
RESERVED_ENV_PREFIX = "REFUTE_"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise invalid("must not be blank")
    return value


def no_nul(value: str) -> str:
    if "\0" in value:
        raise invalid("must not contain a NUL character")
    return value


def _command(value: list[str] | str) -> list[str] | str:
    parts = value if isinstance(value, list) else [value]
    if any("\0" in part for part in parts):
        raise invalid("must not contain a NUL character")
    if not parts[0].strip():
        raise invalid(
            "must not be empty" if isinstance(value, str) else "argv[0] must not be empty"
        )
    return value


def _env(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not key or "=" in key or "\0" in key:
            raise invalid(f"{show_value(key)} is not a valid variable name")
        if key.startswith(RESERVED_ENV_PREFIX):
            raise invalid(
                f"variables starting with {RESERVED_ENV_PREFIX} are reserved for refute"
                " (crash recovery relies on them)",
                key,
            )
        if "\0" in item:
            raise invalid("must not contain a NUL character", key)
    return value


def relative_path(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or not value or any(p in {"", ".", ".."} for p in parts):
        raise invalid(
            f"must be a relative path inside the worktree (like .venv), got {show_value(value)}"
        )
    return no_nul(value)


def commit_ish(value: str) -> str:
    if value.startswith("-") or not value.isprintable():
        raise invalid(f"must be a commit-ish such as HEAD or a sha, got {show_value(value)}")
    return value


def hypothesis_id(value: str) -> str:
    if len(value) > 64:
        raise invalid(f"must be at most 64 characters, got {len(value)}")
    try:
        check_id(value)
    except InvalidIdError as exc:
        raise invalid(exc.message) from None
    if value in RESERVED_IDS:
        raise invalid(f"{value!r} is reserved (it names the control run)")
    return value


def exit_code_keys(value: object) -> object:
    """JSON object keys are strings: read "139" as the exit code 139 (YAML gives ints)."""
    if not isinstance(value, dict):
        return value
    codes: dict[object, object] = {}
    for key, outcome in value.items():
        code = int(key) if isinstance(key, str) and re.fullmatch(r"-?[0-9]{1,9}", key) else key
        if code in codes:
            raise invalid(f"exit code {code} is listed twice")
        if type(code) is int and not -64 <= code <= 255:
            raise invalid(f"exit code {code} cannot happen (0 to 255, or -1 to -64 for a signal)")
        codes[code] = outcome
    return codes


def version_one(value: object) -> object:
    if type(value) is not int:  # Literal[1] alone would take True and 1.0 (both == 1)
        raise invalid(f"must be 1, got {show_value(value)}")
    return value


Text = Annotated[str, Field(min_length=1), AfterValidator(_not_blank), AfterValidator(no_nul)]
_WEEK = f"{MAX_SECONDS:g}"
Seconds = Annotated[
    float,
    Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False),
    one_message(f"must be a number > 0 and <= {_WEEK} (a week)"),
]
Estimate = Annotated[
    float,
    Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False),
    one_message(f"must be a number from 0 to {_WEEK} (a week)"),
]
Share = Annotated[
    float, Field(ge=0, le=1, allow_inf_nan=False), one_message("must be a number between 0 and 1")
]
Weight = Annotated[
    float,
    Field(ge=0, le=MAX_WEIGHT, allow_inf_nan=False),
    one_message(f"must be a number from 0 to {MAX_WEIGHT:g}"),
]
#: A count with no bound of its own (max_hypotheses: at most the hypotheses there are).
Count = Annotated[int, Field(ge=1), one_message("must be an integer >= 1")]
Repeat = Annotated[
    int,
    Field(ge=1, le=MAX_REPEAT),
    one_message(f"must be an integer from 1 to {MAX_REPEAT}"),
]
Concurrency = Annotated[
    Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] | Literal["auto"],
    one_message(f"must be an integer from 1 to {MAX_CONCURRENCY} or 'auto'"),
]
Command = Annotated[
    Annotated[list[str], Field(min_length=1)] | Annotated[str, Field(min_length=1)],
    one_message("must be a non-empty string or a list of strings"),
    AfterValidator(_command),
]
Env = Annotated[dict[str, str], AfterValidator(_env)]
Outcome = Literal["pass", "fail", "skip", "error"]
#: How a test's exit code is read: `auto` recognises the runner from the command.
RunnerName = Literal[
    "auto", "pytest", "unittest", "go", "cargo", "nextest", "npm", "jest", "node", "none"
]


def regex(value: str) -> str:
    """A pattern Python's `re` accepts (matched against a failing run's output)."""
    try:
        re.compile(value)
    except re.error as exc:
        raise invalid(f"is not a valid regular expression ({exc})") from None
    return no_nul(value)


Pattern = Annotated[str, Field(min_length=1), AfterValidator(regex)]
