"""Where a problem in a plan is, and the one-line message that says so.

Validators fail with `invalid` (a finished message, never a template); the loader records
in `Lines` the line of every value; `plan_error` turns pydantic's errors into one
`PlanError` naming the field (`hypotheses[2].timeout`) and its line. Nothing here knows
the plan's models: `refute.plan` passes them in (`Models`) for "did you mean" hints.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import ErrorDetails, PydanticCustomError

from refute.errors import PlanError, one_line

__all__ = [
    "Lines",
    "Loc",
    "Models",
    "format_loc",
    "invalid",
    "one_message",
    "plan_error",
    "show_value",
]


Loc: TypeAlias = tuple[Any, ...]
#: The plan's models by the shape of their path (list indexes as "#").
Models: TypeAlias = Mapping[tuple[str, ...], type[BaseModel]]


def invalid(message: str, *loc: str | int) -> PydanticCustomError:
    """A validation error with a finished human message; `loc` extends the error's path.

    The message travels in the context (not the template) so that braces in user values
    are never read as placeholders.
    """
    return PydanticCustomError("refute", "{message}", {"message": message, "loc": loc})


def show_value(value: object) -> str:
    """A short, one-line rendering of a value from the plan, in YAML's words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return one_line(text if len(text) <= 40 else text[:37] + "...")


def one_message(message: str) -> WrapValidator:
    """Replace every error of the wrapped type with one message (unions raise several)."""

    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            raise invalid(f"{message}, got {show_value(value)}") from None

    return WrapValidator(validate)


# Filled in by the loader (`_compose`) and read by `plan_error`, so it lives below both.
@dataclass
class Lines:
    """1-based line numbers of values (and of mapping keys) by their path in the plan."""

    values: dict[Loc, int]
    keys: dict[Loc, int]

    def find(self, loc: Loc, *, key: bool = False) -> int | None:
        if key and loc in self.keys:
            return self.keys[loc]
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.values:
                return self.values[loc[:end]]
        return None


# -- translating pydantic's errors -----------------------------------------------------------

_PLAIN = {
    "missing": "required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
}


def plan_error(name: str, exc: ValidationError, lines: Lines, models: Models) -> PlanError:
    """The first problem in file order, as a PlanError."""
    found: list[tuple[float, int, Loc, str, int | None]] = []
    for error in exc.errors():
        loc, message, key = _describe(error, models)
        line = lines.find(loc, key=key)
        found.append((line if line is not None else math.inf, len(found), loc, message, line))
    _, _, loc, message, line = min(found)
    return PlanError(name, format_loc(loc), message, line)


def _describe(error: ErrorDetails, models: Models) -> tuple[Loc, str, bool]:
    """(path, message, whether the key's line is the better one) for one pydantic error."""
    loc: Loc = tuple(error["loc"])
    kind, context = error["type"], error.get("ctx") or {}
    value = error.get("input")
    if kind == "refute":
        return (*loc, *context.get("loc", ())), str(context["message"]), False
    if kind == "extra_forbidden":
        return loc, _unknown_field(loc, models), True
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        what = "an integer (an exit code)" if kind == "int_type" else "a string"
        return loc[:-1], f"key {show_value(value)} must be {what}", True
    if kind == "literal_error":
        options = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        choice = f"one of: {options}" if "," in options else options
        return loc, f"must be {choice}, got {show_value(value)}", False
    if kind == "too_short":
        return loc, "must not be empty", False
    message = _PLAIN.get(kind)
    if message is None:
        message = error["msg"].replace("Input should be", "must be")
    if kind != "missing":
        message += f", got {show_value(value)}"
        if kind == "string_type" and isinstance(value, bool):
            message += " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote it)"
    return loc, message, False


def _unknown_field(loc: Loc, models: Models) -> str:
    field = str(loc[-1])
    shape = tuple("#" if isinstance(part, int) else str(part) for part in loc[:-1])
    model = models.get(shape)
    message = f"unknown field {show_value(field)}"
    if model is not None:
        close = difflib.get_close_matches(field, list(model.model_fields), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def format_loc(loc: Loc) -> str:
    """`("hypotheses", 2, "timeout")` -> `hypotheses[2].timeout`."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{show_value(part)}]"
    return text
