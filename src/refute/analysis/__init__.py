"""Statistics, verdicts and recommendations over session documents.

`statistics` (the Wilson interval, durations, timing), `verdicts` (what runs say about
hypotheses and the control; `analyze_session`), `advice` (what to do next). This module
only re-exports; the document's vocabulary is `refute.document`'s, re-exported here for
the callers that read it next to the verdicts.
"""

from refute.analysis.statistics import Z_95, wilson_interval
from refute.analysis.verdicts import (
    EXIT_CONTROL_NOT_REPRODUCED,
    Evidence,
    analyze_session,
    control_verdict,
    count_outcomes,
    hypothesis_verdict,
    run_evidence,
    seed_confidence,
    session_exit_code,
)
from refute.document import (
    CONTROL_NOT_REPRODUCED,
    CONTROL_PENDING,
    CONTROL_REPRODUCED,
    OUTCOME_KEYS,
    SUPPORTED_IF_VALUES,
    VERDICT_KEYS,
)

__all__ = [
    "CONTROL_NOT_REPRODUCED",
    "CONTROL_PENDING",
    "CONTROL_REPRODUCED",
    "EXIT_CONTROL_NOT_REPRODUCED",
    "OUTCOME_KEYS",
    "SUPPORTED_IF_VALUES",
    "VERDICT_KEYS",
    "Z_95",
    "Evidence",
    "analyze_session",
    "control_verdict",
    "count_outcomes",
    "hypothesis_verdict",
    "run_evidence",
    "seed_confidence",
    "session_exit_code",
    "wilson_interval",
]
