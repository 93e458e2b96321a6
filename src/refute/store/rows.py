"""How a session's hypotheses and runs become rows of the `hypotheses` and `runs` tables.

Both writers work inside the caller's transaction (`Store._write`) and never commit;
`_upsert_run` carries the rule that a not_run result never replaces a finished one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from refute.errors import StoreError
from refute.store.documents import ANALYSIS_KEYS, _dumps, _is_int, _number, _text_or_none

_RESULTS = frozenset({"pass", "fail", "timeout", "error", "skip"})


def _upsert_hypotheses(
    conn: sqlite3.Connection, session_id: str, hypotheses: list[dict[str, Any]]
) -> None:
    for index, hypothesis in enumerate(hypotheses, start=1):
        spec = {k: v for k, v in hypothesis.items() if k not in ANALYSIS_KEYS}
        analysis = {k: v for k, v in hypothesis.items() if k in ANALYSIS_KEYS}
        rank = hypothesis.get("rank")
        verdict = hypothesis.get("verdict")
        conn.execute(
            "INSERT INTO hypotheses (session_id, id, rank, verdict, spec, analysis)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, id) DO UPDATE SET"
            " rank = excluded.rank, verdict = excluded.verdict, spec = excluded.spec,"
            " analysis = excluded.analysis",
            (
                session_id,
                hypothesis["id"],
                rank if _is_int(rank) else index,
                verdict if isinstance(verdict, str) else None,
                _dumps(spec, f"hypothesis {hypothesis['id']!r}"),
                _dumps(analysis, f"hypothesis {hypothesis['id']!r}") if analysis else None,
            ),
        )


def _upsert_run(
    conn: sqlite3.Connection, session_id: str, hypothesis_id: str, run: Mapping[str, Any]
) -> bool:
    if not isinstance(run, Mapping):
        raise StoreError(f"a run must be a dict, got {type(run).__name__}")
    result = run.get("result")
    if result not in _RESULTS:
        raise StoreError(f"run of {hypothesis_id!r} has an invalid result {result!r}")
    metrics = run.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise StoreError(f"run of {hypothesis_id!r} has metrics that are not a dict")
    attempt = metrics.get("attempt", 1)
    if not _is_int(attempt) or attempt < 1:
        raise StoreError(f"run of {hypothesis_id!r} has an invalid attempt {attempt!r}")
    not_run = bool(metrics.get("not_run", False))
    if not_run:
        existing = conn.execute(
            "SELECT not_run FROM runs WHERE session_id = ? AND hypothesis_id = ? AND attempt = ?",
            (session_id, hypothesis_id, attempt),
        ).fetchone()
        if existing is not None and not existing[0]:
            return False  # never trade a finished result for "did not run"
    duration = _number(run.get("duration"))
    started_at = _number(run.get("started_at"))
    if started_at is not None and started_at <= 0:
        started_at = None  # 0 means "never started"
    finished_at = started_at + duration if started_at and duration is not None else None
    exit_code = run.get("exit_code")
    conn.execute(
        "INSERT OR REPLACE INTO runs (session_id, hypothesis_id, attempt, result, exit_code,"
        " duration, started_at, finished_at, stdout_log, stderr_log, not_run, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            hypothesis_id,
            attempt,
            result,
            exit_code if _is_int(exit_code) else None,
            duration,
            started_at,
            finished_at,
            _text_or_none(run.get("stdout_log")),
            _text_or_none(run.get("stderr_log")),
            int(not_run),
            _dumps(dict(run), f"run of {hypothesis_id!r}"),
        ),
    )
    return True
