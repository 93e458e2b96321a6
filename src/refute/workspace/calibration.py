"""Measured costs of isolation on this machine, persisted, fed to `should_parallelize`.

Each measurement updates an exponential moving average per repository in
`state_dir()/calibration.json`: worktree creation, warm-pool acquire, setup, cleanup and the
session's fixed start-up. `measured_costs()` returns them (the app turns them into a
`CostModel` with source "measured"); without measurements it returns None and the seed's
7 + 16·n applies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refute.paths import make_owned_dir, state_dir

__all__ = [
    "METRICS",
    "MeasuredCosts",
    "load",
    "measured_costs",
    "record",
]


METRICS = ("worktree_create", "pool_acquire", "setup", "cleanup", "startup")
_WEIGHT = 0.3  # weight of a new measurement in the moving average


def _path() -> Path:
    return state_dir() / "calibration.json"


def load(repo_id: str) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entry = data.get(repo_id, {}) if isinstance(data, dict) else {}
    return {k: v for k, v in entry.items() if k in METRICS and isinstance(v, dict)}


def record(repo_id: str, samples: dict[str, list[float]]) -> None:
    """Fold new samples (seconds) into the averages; safe against concurrent writers."""
    samples = {k: v for k, v in samples.items() if k in METRICS and v}
    if not samples:
        return
    make_owned_dir(state_dir())
    lock_path = state_dir() / "calibration.lock"
    with open(lock_path, "a+b") as lock:  # noqa: PTH123 - need the fd for flock
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            loaded: object = json.loads(_path().read_text(encoding="utf-8"))
            data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            data = {}
        entry = data.setdefault(repo_id, {})
        for metric, values in samples.items():
            stats = entry.get(metric) or {"mean": values[0], "count": 0}
            mean = float(stats["mean"])
            for value in values:
                mean = value if stats["count"] == 0 else (1 - _WEIGHT) * mean + _WEIGHT * value
                stats["count"] = int(stats["count"]) + 1
            stats["mean"] = round(mean, 6)
            entry[metric] = stats
        tmp = _path().with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(_path())


@dataclass(frozen=True)
class MeasuredCosts:
    """What isolation measurably costs in one repository, in seconds: `fixed` once per
    session, `per_hypothesis` for a worktree (warm-pool acquire, else creation), its setup
    and its cleanup. `refute.plan.cost.CostModel.measured` turns it into a cost model."""

    fixed: float
    per_hypothesis: float


def measured_costs(repo_id: str) -> MeasuredCosts | None:
    """The measured costs of a repository, or None if nothing was measured yet."""
    entry = load(repo_id)
    if "worktree_create" not in entry and "pool_acquire" not in entry:
        return None

    def mean(metric: str) -> float:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return float(entry[metric]["mean"])
        return 0.0

    # A warm pool is what a session mostly gets; creation is the fallback.
    acquire = mean("pool_acquire") if "pool_acquire" in entry else mean("worktree_create")
    per = acquire + mean("setup") + mean("cleanup")
    return MeasuredCosts(fixed=mean("startup"), per_hypothesis=per)
