"""refute: test competing bug hypotheses concurrently, under hard limits.

This module only re-exports the public API; `tests/test_public_api.py` keeps `__all__`
and the real exports in step.
"""

from refute.compat import AsyncTestExecutor, TestExecutor
from refute.engine.protocol import RunEvent
from refute.errors import ConfigError, RefuteError
from refute.model import (
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    TestExecutionResult,
    TestResult,
    classify_exit,
)
from refute.plan.cost import CostModel, ParallelDecision

__version__ = "0.1.0"

__all__ = [
    "AsyncTestExecutor",
    "ConfigError",
    "CostModel",
    "FalsificationConfig",
    "Hypothesis",
    "HypothesisStatus",
    "ParallelDecision",
    "RefuteError",
    "RunEvent",
    "TestExecutionResult",
    "TestExecutor",
    "TestResult",
    "__version__",
    "classify_exit",
]
