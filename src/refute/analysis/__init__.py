"""Statistics, verdicts and recommendations over session documents.

`statistics` (the Wilson interval, the confidence bound, durations, timing), `verdicts`
(what runs say about hypotheses and the control; `analyze_session`), `caveats` (a run that
named the user's checkout, a failure other than the control's), `advice` (what to do
next). This module
only re-exports; the document's vocabulary is `refute.document`'s, re-exported here for
the callers that read it next to the verdicts.
"""

from refute.analysis.caveats import checkout_paths, checkout_reason, different_failure_reason
from refute.analysis.statistics import Z_95, Z_95_ONE_SIDED, confidence_bound, wilson_interval
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
    "Z_95_ONE_SIDED",
    "Evidence",
    "analyze_session",
    "checkout_paths",
    "checkout_reason",
    "confidence_bound",
    "control_verdict",
    "count_outcomes",
    "different_failure_reason",
    "hypothesis_verdict",
    "run_evidence",
    "seed_confidence",
    "session_exit_code",
    "wilson_interval",
]
