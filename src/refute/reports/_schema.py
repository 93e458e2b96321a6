"""The session document's vocabulary and its JSON Schema (`REPORT_JSON_SCHEMA`).

docs/report.md describes the same document field by field; `refute schema --report` prints
this schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

SCHEMA_VERSION: Final = "refute.session/1"

OUTCOMES: Final = ("pass", "fail", "timeout", "error", "skip")
#: Keys of a `counts` object: the outcomes, plus runs cancelled before they finished.
COUNT_KEYS: Final = (*OUTCOMES, "not_run")
VERDICTS: Final = ("pending", "testing", "falsified", "supported", "inconclusive", "flaky")
ACTIONS: Final = ("fix_control", "fix_inconclusive", "new_hypotheses", "focus", "refine_tests")


_STRING: Final[dict[str, Any]] = {"type": "string"}
_BOOLEAN: Final[dict[str, Any]] = {"type": "boolean"}
_SECONDS: Final[dict[str, Any]] = {"type": "number", "minimum": 0}
_SHARE: Final[dict[str, Any]] = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT: Final[dict[str, Any]] = {"type": "integer", "minimum": 0}
_STRINGS: Final[dict[str, Any]] = {"type": "array", "items": {"type": "string"}}
_COMMAND: Final[dict[str, Any]] = {"type": ["array", "string", "null"], "items": _STRING}


def _object(
    required: Mapping[str, Any], optional: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An object schema: `required` keys must be present; other keys are allowed."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/$defs/{name}"}}


REPORT_JSON_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"refute session document ({SCHEMA_VERSION})",
    "description": "What refute stores for one session and every report renders.",
    "type": "object",
    "required": ["schema", "session", "control", "hypotheses", "summary"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "session": {"$ref": "#/$defs/session"},
        "control": {"anyOf": [{"$ref": "#/$defs/control"}, {"type": "null"}]},
        "hypotheses": _array_of("hypothesis"),
        "summary": {"$ref": "#/$defs/summary"},
    },
    "$defs": {
        "counts": _object(dict.fromkeys(COUNT_KEYS, _COUNT)),
        "run": _object(
            {
                "hypothesis_id": _STRING,
                "result": {"enum": list(OUTCOMES)},
                "duration": _SECONDS,
                "stdout": _STRING,
                "stderr": _STRING,
                "exit_code": {"type": "integer"},
                "worktree_path": _STRING,
                "error_message": _STRING,
                "metrics": _object(
                    {},
                    {
                        "confidence": _SHARE,
                        "attempt": {"type": "integer", "minimum": 1},
                        "slot": {"type": ["integer", "null"], "minimum": 0},
                        "not_run": _BOOLEAN,
                    },
                ),
                "stdout_log": _STRING,
                "stderr_log": _STRING,
                "started_at": _SECONDS,
            }
        ),
        "hypothesis": _object(
            {
                "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
                "description": _STRING,
                "rank": {"type": "integer", "minimum": 1},
                "score": {"type": "number"},
                "probability": _SHARE,
                "impact": _SHARE,
                "test_complexity": _SHARE,
                "estimated_test_time": _SECONDS,
                "supported_if": {"enum": ["fails", "passes"]},
                "test": _COMMAND,
                "shell": _BOOLEAN,
                "patch": {"type": ["string", "null"]},
                "depends_on": _STRINGS,
                "repeat": {"type": "integer", "minimum": 1},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "verdict": {"enum": list(VERDICTS)},
                "confidence": _SHARE,
                "unreliable": _BOOLEAN,
                "reason": _STRING,
                "counts": {"$ref": "#/$defs/counts"},
                "runs_total": _COUNT,
                "runs_valid": _COUNT,
                "reproduction_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "wilson_95": {
                    "type": ["array", "null"],
                    "prefixItems": [_SHARE, _SHARE],
                    "minItems": 2,
                    "items": False,
                },
                "runs": _array_of("run"),
            }
        ),
        "control": _object(
            {
                "test": _COMMAND,
                "verdict": {"enum": ["reproduced", "not_reproduced", "pending"]},
                "counts": {"$ref": "#/$defs/counts"},
                "runs": _array_of("run"),
            }
        ),
        "session": _object(
            {
                "id": {"type": "string", "minLength": 1},
                "repo": _STRING,
                "plan_path": _STRING,
                "bug": _STRING,
                "status": {"enum": ["running", "completed", "interrupted", "failed"]},
                "started_at": _STRING,
                "finished_at": {"type": ["string", "null"]},
                "base": _object(
                    {
                        "ref": _STRING,
                        "sha": {
                            "type": ["string", "null"],
                            "pattern": "^[0-9a-f]{40}([0-9a-f]{24})?$",
                        },
                        "snapshot_of": {"type": ["string", "null"]},
                        "include_uncommitted": _BOOLEAN,
                    }
                ),
                "settings": _object(
                    {
                        "concurrency": {"type": "integer", "minimum": 1},
                        "timeout": {"type": "number", "exclusiveMinimum": 0},
                        "repeat": {"type": "integer", "minimum": 1},
                        "parallel": _BOOLEAN,
                        "max_hypotheses": {"type": ["integer", "null"], "minimum": 1},
                    }
                ),
                "parallel_decision": {
                    "anyOf": [
                        _object(
                            {
                                "parallel": _BOOLEAN,
                                "sequential_time": _SECONDS,
                                "longest_test": _SECONDS,
                                "overhead": _SECONDS,
                                "cost_source": _STRING,
                                "reason": _STRING,
                            }
                        ),
                        {"type": "null"},
                    ]
                },
                "exit_code": {"type": ["integer", "null"]},
                "error": {"type": ["string", "null"]},
            }
        ),
        "summary": _object(
            {
                "counts": _object({key: _COUNT for key in VERDICTS if key != "testing"}),
                "survivors": _STRINGS,
                "recommendation": {
                    "anyOf": [
                        _object(
                            {
                                "action": {"enum": list(ACTIONS)},
                                "message": _STRING,
                                "next_steps": _STRINGS,
                            }
                        ),
                        {"type": "null"},
                    ]
                },
                "timing": _object(
                    {
                        "wall_seconds": _SECONDS,
                        "sum_run_seconds": _SECONDS,
                        "speedup": {"type": ["number", "null"], "minimum": 0},
                    }
                ),
            }
        ),
    },
}
