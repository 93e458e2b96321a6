"""The session document: its vocabulary and its typed models, defined once.

A session document (docs/report.md) is what the store keeps, `refute show --format json`
prints and every report renders. `vocabulary` spells its words (statuses, outcomes,
verdicts, ...), `models` describes its shape as pydantic models, `schema` generates its
JSON Schema from them. This module only re-exports; the models and the schema (pydantic)
are imported on first use (PEP 562), so reading the vocabulary (`EXIT_CODES` for the CLI's
start) costs no pydantic import. It sits at the bottom of the house: it imports nothing of
refute but `refute.model`.
"""

import typing as _typing

from refute.document.vocabulary import (
    ACTIONS,
    CONTROL_ID,
    CONTROL_NOT_REPRODUCED,
    CONTROL_PENDING,
    CONTROL_REPRODUCED,
    CONTROL_VERDICTS,
    EXIT_CODES,
    NOT_RUN,
    OUTCOME_KEYS,
    OUTCOMES,
    SCHEMA,
    STATUSES,
    SUPPORTED_IF_VALUES,
    VERDICT_KEYS,
    VERDICTS,
    Action,
    ControlVerdict,
    CountKey,
    Outcome,
    SchemaVersion,
    Status,
    SupportedIf,
    Verdict,
)
from refute.lazy import lazy_exports as _lazy_exports

__all__ = [
    "ACTIONS",
    "ANALYSIS_KEYS",
    "CONTROL_ID",
    "CONTROL_NOT_REPRODUCED",
    "CONTROL_PENDING",
    "CONTROL_REPRODUCED",
    "CONTROL_VERDICTS",
    "EXIT_CODES",
    "JSON_SCHEMA_DIALECT",
    "NOT_RUN",
    "OUTCOMES",
    "OUTCOME_KEYS",
    "SCHEMA",
    "STATUSES",
    "SUPPORTED_IF_VALUES",
    "VERDICTS",
    "VERDICT_KEYS",
    "Action",
    "Base",
    "ControlAnalysis",
    "ControlEntry",
    "ControlSpec",
    "ControlVerdict",
    "CountKey",
    "HypothesisAnalysis",
    "HypothesisEntry",
    "HypothesisSpec",
    "Metrics",
    "NextStep",
    "Outcome",
    "OutcomeCounts",
    "ParallelDecisionRecord",
    "Recommendation",
    "RunRecord",
    "SchemaVersion",
    "SessionDocument",
    "SessionInfo",
    "Settings",
    "Status",
    "Summary",
    "SupportedIf",
    "Timing",
    "Verdict",
    "VerdictCounts",
    "document_json_schema",
    "explain",
]

_LAZY: dict[str, str] = {
    "ANALYSIS_KEYS": "refute.document.models",
    "Base": "refute.document.models",
    "ControlAnalysis": "refute.document.models",
    "ControlEntry": "refute.document.models",
    "ControlSpec": "refute.document.models",
    "HypothesisAnalysis": "refute.document.models",
    "HypothesisEntry": "refute.document.models",
    "HypothesisSpec": "refute.document.models",
    "Metrics": "refute.document.models",
    "NextStep": "refute.document.models",
    "OutcomeCounts": "refute.document.models",
    "ParallelDecisionRecord": "refute.document.models",
    "Recommendation": "refute.document.models",
    "RunRecord": "refute.document.models",
    "SessionDocument": "refute.document.models",
    "SessionInfo": "refute.document.models",
    "Settings": "refute.document.models",
    "Summary": "refute.document.models",
    "Timing": "refute.document.models",
    "VerdictCounts": "refute.document.models",
    "JSON_SCHEMA_DIALECT": "refute.document.schema",
    "document_json_schema": "refute.document.schema",
    "explain": "refute.document.schema",
}

if _typing.TYPE_CHECKING:
    from refute.document.models import (
        ANALYSIS_KEYS,
        Base,
        ControlAnalysis,
        ControlEntry,
        ControlSpec,
        HypothesisAnalysis,
        HypothesisEntry,
        HypothesisSpec,
        Metrics,
        NextStep,
        OutcomeCounts,
        ParallelDecisionRecord,
        Recommendation,
        RunRecord,
        SessionDocument,
        SessionInfo,
        Settings,
        Summary,
        Timing,
        VerdictCounts,
    )
    from refute.document.schema import JSON_SCHEMA_DIALECT, document_json_schema, explain

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
