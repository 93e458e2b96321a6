"""The parallelization decision and the cost model behind it.

The seed decides to run hypotheses in parallel when the sequential time exceeds the
longest single test plus a fixed overhead of 7 + 16 * n seconds (session start-up, then
worktree creation, environment setup and cleanup per hypothesis). Those are guesses;
Part 2 measures the real figures on this machine and hands them in as a `CostModel`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from refute.errors import ConfigError
from refute.model import FalsificationConfig, Hypothesis

__all__ = [
    "SEED_FIXED_OVERHEAD",
    "SEED_PER_HYPOTHESIS_OVERHEAD",
    "CostModel",
    "ParallelDecision",
    "decide_parallel",
]


#: The seed's fixed overhead of a parallel session, in seconds.
SEED_FIXED_OVERHEAD = 7.0
#: The seed's overhead per hypothesis (8 s worktree + 5 s setup + 3 s cleanup).
SEED_PER_HYPOTHESIS_OVERHEAD = 16.0


@dataclass(frozen=True)
class CostModel:
    """Overheads of running hypotheses in parallel, in seconds.

    `source` says where the numbers come from: "seed" (the defaults) or "measured".
    """

    fixed: float = SEED_FIXED_OVERHEAD
    per_hypothesis: float = SEED_PER_HYPOTHESIS_OVERHEAD
    source: str = "seed"

    def __post_init__(self) -> None:
        for name in ("fixed", "per_hypothesis"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"cost_model.{name}", f"must be a number >= 0, got {value!r}")

    @classmethod
    def from_config(cls, config: FalsificationConfig) -> CostModel:
        """The seed's estimates: 7 s fixed, plus worktree + setup + cleanup per hypothesis."""
        per = config.worktree_creation_time + config.environment_setup_time + config.cleanup_time
        return cls(fixed=SEED_FIXED_OVERHEAD, per_hypothesis=per, source="seed")

    @classmethod
    def measured(cls, fixed: float, per_hypothesis: float) -> CostModel:
        """Figures measured on this machine (see `refute.workspace.calibration`)."""
        return cls(fixed=fixed, per_hypothesis=per_hypothesis, source="measured")

    def overhead(self, count: int) -> float:
        return self.fixed + self.per_hypothesis * count


@dataclass(frozen=True)
class ParallelDecision:
    """The should-parallelize decision with the numbers it was made from."""

    parallel: bool
    hypotheses: int
    sequential_time: float  # sum of the estimates
    longest_test: float
    overhead: float
    cost_source: str
    reason: str

    @property
    def parallel_time(self) -> float:
        """The estimate the sequential time is compared against."""
        return self.longest_test + self.overhead


def decide_parallel(
    hypotheses: Sequence[Hypothesis], cost: CostModel | None = None
) -> ParallelDecision:
    """Parallel iff the sum of estimates exceeds the longest estimate plus the overhead."""
    model = cost or CostModel()
    estimates = [h.estimated_test_time for h in hypotheses]
    total = float(sum(estimates))
    longest = float(max(estimates, default=0.0))
    overhead = model.overhead(len(estimates))
    if len(estimates) <= 1:
        return ParallelDecision(
            parallel=False,
            hypotheses=len(estimates),
            sequential_time=total,
            longest_test=longest,
            overhead=overhead,
            cost_source=model.source,
            reason="one hypothesis or none: nothing to run side by side",
        )
    parallel = total > longest + overhead
    relation = ">" if parallel else "<="
    return ParallelDecision(
        parallel=parallel,
        hypotheses=len(estimates),
        sequential_time=total,
        longest_test=longest,
        overhead=overhead,
        cost_source=model.source,
        reason=(
            f"sequential {total:g}s {relation} longest {longest:g}s + overhead {overhead:g}s"
            f" ({model.source} costs)"
        ),
    )
