"""The document's JSON Schema, generated from the models, and validation errors in words."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from refute.document.models import SessionDocument

__all__ = ["JSON_SCHEMA_DIALECT", "document_json_schema", "explain"]

#: The JSON Schema dialect of `document_json_schema`.
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

#: Problems of a failed validation `explain` names before it only counts the rest.
_SHOWN: Final = 3
#: Characters of an offending value `explain` shows.
_VALUE_LIMIT: Final = 60


def document_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an analysed session document.

    Generated from `SessionDocument` as it is written out (serialization mode), so every
    field is required except those a model lists in `schema_optional`, and keys unknown to
    version 1 are allowed everywhere but at the top level.
    """
    schema = SessionDocument.model_json_schema(mode="serialization", by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def _where(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts)


def _value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 3] + "..."


def explain(error: ValidationError) -> str:
    """One line naming what is wrong, e.g. `session.id: String should have at least 1
    character (got '')`: the first few problems, then how many more there are."""
    problems = []
    details = error.errors(include_url=False)
    for detail in details[:_SHOWN]:
        where = _where(detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            text = f"{where}: missing"
        elif detail["type"] == "extra_forbidden":
            text = f"{where}: unknown key"
        else:
            got = f" (got {_value(detail['input'])})" if detail["loc"] else ""
            text = f"{where}: {message}{got}" if where else message
        problems.append(text)
    more = len(details) - _SHOWN
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
