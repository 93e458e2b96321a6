"""refute: test competing bug hypotheses concurrently, under hard limits.

The curated API: the seed's names (`AsyncTestExecutor`, `TestExecutor`, the model
classes; see `refute.compat`), the product's use cases (`run_plan`, `resume`, `show`,
`history`, `check`, `clean`, `demo`; see `refute.app`), `load_plan`, and the errors.
Names are imported on first use (PEP 562), so `import refute` and `refute --version` stay
cheap; `tests/test_public_api.py` keeps `__all__` and the real exports in step.
"""

from refute.lazy import lazy_exports as _lazy_exports

# Not `typing.TYPE_CHECKING`: importing typing here would widen the moment before the
# command line's Ctrl-C guard (refute.cli) by tens of milliseconds; type checkers know this.
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the seed's API
    "AsyncTestExecutor": "refute.compat",
    "TestExecutor": "refute.compat",
    "FalsificationConfig": "refute.model",
    "Hypothesis": "refute.model",
    "HypothesisStatus": "refute.model",
    "TestExecutionResult": "refute.model",
    "TestResult": "refute.model",
    "classify_exit": "refute.model",
    "RunEvent": "refute.engine.protocol",
    "CostModel": "refute.plan.cost",
    "ParallelDecision": "refute.plan.cost",
    # the product's use cases
    "RunOptions": "refute.app",
    "check": "refute.app",
    "clean": "refute.app",
    "demo": "refute.app",
    "history": "refute.app",
    "resume": "refute.app",
    "run_plan": "refute.app",
    "show": "refute.app",
    "load_plan": "refute.plan",
    # errors
    "CheckoutError": "refute.errors",
    "ConfigError": "refute.errors",
    "GitError": "refute.errors",
    "Interrupted": "refute.errors",
    "PlanError": "refute.errors",
    "RefuteError": "refute.errors",
    "RepositoryError": "refute.errors",
    "StoreError": "refute.errors",
    "UnknownSessionError": "refute.errors",
    "WorktreeError": "refute.errors",
}

__all__ = [
    "AsyncTestExecutor",
    "CheckoutError",
    "ConfigError",
    "CostModel",
    "FalsificationConfig",
    "GitError",
    "Hypothesis",
    "HypothesisStatus",
    "Interrupted",
    "ParallelDecision",
    "PlanError",
    "RefuteError",
    "RepositoryError",
    "RunEvent",
    "RunOptions",
    "StoreError",
    "TestExecutionResult",
    "TestExecutor",
    "TestResult",
    "UnknownSessionError",
    "WorktreeError",
    "__version__",
    "check",
    "classify_exit",
    "clean",
    "demo",
    "history",
    "load_plan",
    "resume",
    "run_plan",
    "show",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from refute.app import RunOptions, check, clean, demo, history, resume, run_plan, show
    from refute.compat import AsyncTestExecutor, TestExecutor
    from refute.engine.protocol import RunEvent
    from refute.errors import (
        CheckoutError,
        ConfigError,
        GitError,
        Interrupted,
        PlanError,
        RefuteError,
        RepositoryError,
        StoreError,
        UnknownSessionError,
        WorktreeError,
    )
    from refute.model import (
        FalsificationConfig,
        Hypothesis,
        HypothesisStatus,
        TestExecutionResult,
        TestResult,
        classify_exit,
    )
    from refute.plan import load_plan
    from refute.plan.cost import CostModel, ParallelDecision

del TYPE_CHECKING  # not a public name of refute

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
