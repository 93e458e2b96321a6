"""Session documents split into the head and the runs the store keeps apart, and back.

Pure functions on plain dicts, no SQL: `split` validates a document with the models of
`refute.document` and takes its runs out (control runs under `CONTROL_ID`), `join` puts
stored runs back into a head. The small value helpers below are shared with the rest of
the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from refute.document import CONTROL_ID, SCHEMA, SessionDocument, explain
from refute.errors import StoreError

__all__ = [
    "DOCUMENT_SCHEMA",
    "dumps",
    "get_field",
    "join_runs",
    "now_iso",
    "repeat_count",
    "split_document",
    "summary_counts",
]

#: The `schema` value of a session document this store understands.
DOCUMENT_SCHEMA = SCHEMA


def split_document(
    doc: Mapping[str, Any],
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Validate a session document; return its head (no runs) and its runs.

    The head is the document as given (unknown nested keys included), not a re-dump of the
    models, with `schema` and the session's `repo`, `plan_path`, `bug` and `started_at`
    filled in when missing.
    """
    if not isinstance(doc, Mapping):
        raise StoreError(f"a session document must be a dict, got {type(doc).__name__}")
    schema = doc.get("schema", DOCUMENT_SCHEMA)
    if schema != DOCUMENT_SCHEMA:
        raise StoreError(f"unknown session document schema {schema!r}, want {DOCUMENT_SCHEMA!r}")
    try:
        parsed = SessionDocument.model_validate(dict(doc))
    except ValidationError as exc:
        raise StoreError(f"malformed session document: {explain(exc)}") from exc
    head: dict[str, Any] = dict(doc)
    head["schema"] = DOCUMENT_SCHEMA
    session = dict(doc["session"])
    session.setdefault("repo", parsed.session.repo)
    session.setdefault("plan_path", parsed.session.plan_path)
    session.setdefault("bug", parsed.session.bug)
    if session.get("started_at") is None:
        session["started_at"] = now_iso()
    head["session"] = session

    runs: list[tuple[str, dict[str, Any]]] = []
    control = doc.get("control")
    if control is not None:
        head["control"] = {k: v for k, v in control.items() if k != "runs"}
        runs.extend((CONTROL_ID, dict(run)) for run in control.get("runs") or [])
    else:
        head["control"] = None
    head["hypotheses"] = []
    for hypothesis in doc.get("hypotheses") or []:
        head["hypotheses"].append({k: v for k, v in hypothesis.items() if k != "runs"})
        runs.extend((hypothesis["id"], dict(run)) for run in hypothesis.get("runs") or [])
    return head, runs


def join_runs(head: dict[str, Any], rows: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Attach stored runs, (hypothesis id, run JSON) rows in attempt order, to a head: the
    inverse of `split`. Every hypothesis (and the control, if any) gets a runs list."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for hypothesis_id, data in rows:
        runs.setdefault(hypothesis_id, []).append(json.loads(data))
    if head.get("control") is not None:
        head["control"]["runs"] = runs.get(CONTROL_ID, [])
    for hypothesis in head["hypotheses"]:
        hypothesis["runs"] = runs.get(hypothesis["id"], [])
    return head


def summary_counts(document: str) -> dict[str, Any] | None:
    try:
        head = json.loads(document)
    except ValueError:
        return None
    summary = head.get("summary") if isinstance(head, dict) else None
    counts = summary.get("counts") if isinstance(summary, dict) else None
    return counts if isinstance(counts, dict) else None


# -- values -------------------------------------------------------------------------------


def repeat_count(value: object, fallback: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return fallback


def get_field(mapping: Mapping[str, Any], key: str) -> object:
    if not isinstance(mapping, Mapping):
        raise StoreError(f"a run must be a dict, got {type(mapping).__name__}")
    return mapping.get(key)


def dumps(value: object, what: str) -> str:
    try:
        # ASCII escapes keep lone surrogates (surrogateescape-decoded output) storable.
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
