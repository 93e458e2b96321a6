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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from refute.paths import make_owned_dir, state_dir

__all__ = [
    "METRICS",
    "MeasuredCosts",
    "files",
    "load",
    "measured_costs",
    "problem",
    "record",
]


METRICS = ("worktree_create", "pool_acquire", "setup", "cleanup", "startup")
_WEIGHT = 0.3  # weight of a new measurement in the moving average


def _path() -> Path:
    return state_dir() / "calibration.json"


def files() -> tuple[Path, ...]:
    """The state files this module keeps: the measurements, their lock, the temporary."""
    return (_path(), _lock_path(), _tmp_path())


def _lock_path() -> Path:
    return state_dir() / "calibration.lock"


def _tmp_path() -> Path:
    return _path().with_suffix(".tmp")


def _read() -> tuple[dict[str, Any], str | None]:
    """The measurements, and what is wrong with the file (None: fine or absent; then the
    measurements are whatever the file holds, {} when absent)."""
    path = _path()
    try:
        text = path.read_text(encoding="utf-8")
        data: object = json.loads(text)
    except FileNotFoundError:
        return {}, None
    except IsADirectoryError:
        return {}, "is a directory, not a file"
    except UnicodeDecodeError:
        return {}, "is not UTF-8 text"
    except ValueError as exc:
        return {}, f"is not valid JSON ({exc})"
    except OSError as exc:
        return {}, f"cannot be read: {exc.strerror or exc}"
    problem = _shape_problem(data)
    return (data, None) if problem is None and isinstance(data, dict) else ({}, problem)


def _shape_problem(data: object) -> str | None:
    """Where `data` is not {repo id: {metric: {"mean": seconds >= 0, "count": int >= 0}}}."""
    if not isinstance(data, dict):
        return f"holds {type(data).__name__}, not an object of repositories"
    for repo, entry in data.items():
        if not isinstance(entry, dict):
            return f"{repo!r} is {type(entry).__name__}, not an object of metrics"
        for metric, stats in entry.items():
            if metric not in METRICS:
                continue  # a metric of another version: kept, not used
            where = f"{repo!r}.{metric}"
            if not isinstance(stats, dict):
                return f"{where} is {type(stats).__name__}, not an object"
            mean, count = stats.get("mean"), stats.get("count")
            if not _is_number(mean) or not math.isfinite(mean) or mean < 0:
                return f"{where}.mean is {mean!r}, not a number of seconds >= 0"
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                return f"{where}.count is {count!r}, not a whole number >= 0"
    return None


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problem() -> tuple[Path, str] | None:
    """The calibration file that is not what this module writes, and what is wrong with
    it, or None. A problem never fails a run: `load` then finds no measurements and
    `record` leaves the file as it is (for `refute clean` to move aside)."""
    for path in (_lock_path(), _tmp_path()):
        if path.is_dir():
            return path, "is a directory, not a file"
    found = _read()[1]
    return None if found is None else (_path(), found)


def load(repo_id: str) -> dict[str, dict[str, float]]:
    data, _ = _read()
    entry = data.get(repo_id, {})
    return {k: v for k, v in entry.items() if k in METRICS}


def record(repo_id: str, samples: dict[str, list[float]]) -> None:
    """Fold new samples (seconds) into the averages; safe against concurrent writers.
    A calibration file that is not what this module writes is left alone."""
    samples = {k: v for k, v in samples.items() if k in METRICS and v}
    if not samples:
        return
    make_owned_dir(state_dir())
    with open(_lock_path(), "a+b") as lock:  # noqa: PTH123 - need the fd for flock
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        data, found = _read()
        if found is not None:
            return
        entry = data.setdefault(repo_id, {})
        for metric, values in samples.items():
            stats = entry.get(metric) or {"mean": values[0], "count": 0}
            mean = float(stats["mean"])
            for value in values:
                mean = value if stats["count"] == 0 else (1 - _WEIGHT) * mean + _WEIGHT * value
                stats["count"] = int(stats["count"]) + 1
            stats["mean"] = round(mean, 6)
            entry[metric] = stats
        tmp = _tmp_path()
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
