"""Session documents split into the head and the runs the store keeps apart, and back.

Pure functions on plain dicts, no SQL: `_split` checks a document's shape and takes its
runs out (control runs under `CONTROL_ID`), `_join` puts stored runs back into a head.
The small value helpers below are shared with the rest of the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from refute.document import CONTROL_ID, SCHEMA
from refute.errors import StoreError

#: The `schema` value of a session document this store understands.
DOCUMENT_SCHEMA = SCHEMA

#: Keys of a hypothesis entry produced by analysis (the rest, minus "runs", is its spec).
ANALYSIS_KEYS = frozenset(
    {
        "verdict",
        "confidence",
        "unreliable",
        "reason",
        "counts",
        "runs_total",
        "runs_valid",
        "reproduction_rate",
        "wilson_95",
    }
)


def _split(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Check a session document's shape; return its head (no runs) and its runs."""
    if not isinstance(doc, Mapping):
        raise StoreError(f"a session document must be a dict, got {type(doc).__name__}")
    schema = doc.get("schema", DOCUMENT_SCHEMA)
    if schema != DOCUMENT_SCHEMA:
        raise StoreError(f"unknown session document schema {schema!r}, want {DOCUMENT_SCHEMA!r}")
    head: dict[str, Any] = dict(doc)
    head["schema"] = DOCUMENT_SCHEMA
    session = doc.get("session")
    if not isinstance(session, Mapping):
        raise StoreError("the session document has no 'session' object")
    session = dict(session)
    session_id = session.get("id")
    if not isinstance(session_id, str) or not session_id:
        raise StoreError(f"the session document has an invalid session.id: {session_id!r}")
    session.setdefault("repo", "")
    session.setdefault("plan_path", None)
    session.setdefault("bug", "")
    session.setdefault("started_at", _now_iso())
    for key in ("repo", "bug", "started_at"):
        if not isinstance(session[key], str):
            raise StoreError(f"session.{key} must be a string, got {session[key]!r}")
    if session["plan_path"] is not None and not isinstance(session["plan_path"], str):
        raise StoreError(f"session.plan_path must be a string, got {session['plan_path']!r}")
    head["session"] = session

    runs: list[tuple[str, dict[str, Any]]] = []
    control = doc.get("control")
    if control is not None:
        if not isinstance(control, Mapping):
            raise StoreError("'control' must be an object or null")
        head["control"] = {k: v for k, v in control.items() if k != "runs"}
        runs.extend((CONTROL_ID, run) for run in _runs_of(control, CONTROL_ID))
    else:
        head["control"] = None

    hypotheses = doc.get("hypotheses", [])
    if not isinstance(hypotheses, list):
        raise StoreError("'hypotheses' must be a list")
    head["hypotheses"] = []
    seen: set[str] = set()
    for hypothesis in hypotheses:
        if not isinstance(hypothesis, Mapping):
            raise StoreError("every hypothesis must be an object")
        hypothesis_id = hypothesis.get("id")
        if not isinstance(hypothesis_id, str) or not hypothesis_id:
            raise StoreError(f"a hypothesis has an invalid id: {hypothesis_id!r}")
        if hypothesis_id == CONTROL_ID or hypothesis_id in seen:
            raise StoreError(f"hypothesis id {hypothesis_id!r} is reserved or repeated")
        seen.add(hypothesis_id)
        head["hypotheses"].append({k: v for k, v in hypothesis.items() if k != "runs"})
        runs.extend((hypothesis_id, run) for run in _runs_of(hypothesis, hypothesis_id))
    return head, runs


def _runs_of(entry: Mapping[str, Any], owner: str) -> list[dict[str, Any]]:
    runs = entry.get("runs") or []
    if not isinstance(runs, list) or not all(isinstance(run, Mapping) for run in runs):
        raise StoreError(f"the runs of {owner!r} must be a list of objects")
    return [dict(run) for run in runs]


def _join(head: dict[str, Any], rows: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Attach stored runs, (hypothesis id, run JSON) rows in attempt order, to a head: the
    inverse of `_split`. Every hypothesis (and the control, if any) gets a runs list."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for hypothesis_id, data in rows:
        runs.setdefault(hypothesis_id, []).append(json.loads(data))
    if head.get("control") is not None:
        head["control"]["runs"] = runs.get(CONTROL_ID, [])
    for hypothesis in head["hypotheses"]:
        hypothesis["runs"] = runs.get(hypothesis["id"], [])
    return head


def _summary_counts(document: str) -> dict[str, Any] | None:
    try:
        head = json.loads(document)
    except ValueError:
        return None
    summary = head.get("summary") if isinstance(head, dict) else None
    counts = summary.get("counts") if isinstance(summary, dict) else None
    return counts if isinstance(counts, dict) else None


# -- values -------------------------------------------------------------------------------


def _repeat(value: object, fallback: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return fallback


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(mapping: Mapping[str, Any], key: str) -> object:
    if not isinstance(mapping, Mapping):
        raise StoreError(f"a run must be a dict, got {type(mapping).__name__}")
    return mapping.get(key)


def _dumps(value: object, what: str) -> str:
    try:
        # ASCII escapes keep lone surrogates (surrogateescape-decoded output) storable.
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
