"""How a session's hypotheses and runs become rows of the `hypotheses` and `runs` tables.

Both writers work inside the caller's transaction (`Store._write`) and never commit;
`upsert_run` validates the run (`refute.document.RunRecord`) and carries the rule that a
not_run result never replaces a finished one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from refute.document import ANALYSIS_KEYS, RunRecord, explain
from refute.errors import StoreError
from refute.store.documents import dumps

__all__ = [
    "upsert_hypotheses",
    "upsert_run",
]


def upsert_hypotheses(
    conn: sqlite3.Connection, session_id: str, hypotheses: list[dict[str, Any]]
) -> None:
    """Write the head's hypotheses (already validated by `split`), spec and analysis apart."""
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
                rank if rank is not None else index,
                verdict,
                dumps(spec, f"hypothesis {hypothesis['id']!r}"),
                dumps(analysis, f"hypothesis {hypothesis['id']!r}") if analysis else None,
            ),
        )


def _parse_run(hypothesis_id: str, run: Mapping[str, Any]) -> RunRecord:
    """The run as a `RunRecord`, or a StoreError that says what is wrong with it."""
    try:
        return RunRecord.model_validate(dict(run))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]["loc"]
        metrics = run.get("metrics")
        if first[:1] == ("result",):
            problem = f"has an invalid result {run.get('result')!r}"
        elif first[:2] == ("metrics", "attempt") and isinstance(metrics, Mapping):
            problem = f"has an invalid attempt {metrics.get('attempt')!r}"
        elif first == ("metrics",):
            problem = "has metrics that are not a dict"
        else:
            problem = f"is malformed: {explain(exc)}"
        raise StoreError(f"run of {hypothesis_id!r} {problem}") from exc


def upsert_run(
    conn: sqlite3.Connection, session_id: str, hypothesis_id: str, run: Mapping[str, Any]
) -> bool:
    """Write one run; False (nothing written) when a not_run result would replace a real one."""
    if not isinstance(run, Mapping):
        raise StoreError(f"a run must be a dict, got {type(run).__name__}")
    # JSON first: a value JSON cannot hold (a Path, a set) is the clearest thing to report.
    data = dumps(dict(run), f"run of {hypothesis_id!r}")
    record = _parse_run(hypothesis_id, run)
    given = record.model_fields_set
    attempt = record.metrics.attempt or 1
    not_run = record.metrics.not_run
    if not_run:
        existing = conn.execute(
            "SELECT not_run FROM runs WHERE session_id = ? AND hypothesis_id = ? AND attempt = ?",
            (session_id, hypothesis_id, attempt),
        ).fetchone()
        if existing is not None and not existing[0]:
            return False  # never trade a finished result for "did not run"
    duration = record.duration if "duration" in given else None
    started_at = record.started_at if record.started_at > 0 else None  # 0: never started
    finished_at = started_at + duration if started_at and duration is not None else None
    conn.execute(
        "INSERT OR REPLACE INTO runs (session_id, hypothesis_id, attempt, result, exit_code,"
        " duration, started_at, finished_at, stdout_log, stderr_log, not_run, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            hypothesis_id,
            attempt,
            record.result,
            record.exit_code if "exit_code" in given else None,
            duration,
            started_at,
            finished_at,
            record.stdout_log or None,
            record.stderr_log or None,
            int(not_run),
            data,
        ),
    )
    return True
