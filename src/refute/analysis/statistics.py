"""The statistics of a session: the Wilson interval of a reproduction rate, the confidence
of a verdict (a one-sided Wilson lower bound), run durations, the session's timing. Pure
functions over numbers and plain run dicts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

__all__ = [
    "DIGITS",
    "Z_95",
    "Z_95_ONE_SIDED",
    "confidence_bound",
    "reproduction_fields",
    "round_share",
    "run_duration",
    "session_timing",
    "wilson_interval",
]

#: z for a two-sided 95 % interval.
Z_95: Final = 1.959963984540054
#: z for a one-sided 95 % bound (the 95th percentile of the standard normal).
Z_95_ONE_SIDED: Final = 1.6448536269514722
#: Digits kept for rates, intervals and confidences in the document.
DIGITS: Final = 4


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion `successes / n` (95 % by default).

    Returns None when `n == 0` (no observation, no interval). The bounds are clamped to
    [0, 1] and are exact at the edges (0 successes: lower bound 0; n successes: upper 1).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a finite number > 0, got {z!r}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def confidence_bound(agreeing: int, valid: int) -> float:
    """A verdict's confidence: the lower bound of the one-sided 95 % Wilson interval for the
    share of valid runs that agree with it (docs/report.md, *Confidence*); 0 without one.

    It depends on the two counts only (never on durations or on runs that were no
    evidence), and never decreases when an agreeing run is added: `agreeing = valid = n`
    gives `n / (n + z**2)`, 0.2699 for 1 run, 0.5258 for 3 and 0.7871 for 10.
    """
    interval = wilson_interval(agreeing, valid, Z_95_ONE_SIDED)
    return interval[0] if interval else 0.0


def round_share(value: float) -> float:
    """A rate, bound or confidence as the document keeps it (`DIGITS` digits)."""
    return round(value, DIGITS)


def reproduction_fields(counts: Mapping[str, int]) -> dict[str, Any]:
    """`reproduction_rate` (fail / (pass + fail)) and its `wilson_95` interval, each None
    without a valid run."""
    valid = counts["pass"] + counts["fail"]
    interval = wilson_interval(counts["fail"], valid)
    return {
        "reproduction_rate": round_share(counts["fail"] / valid) if valid else None,
        "wilson_95": [round_share(interval[0]), round_share(interval[1])] if interval else None,
    }


def run_duration(run: Mapping[str, Any]) -> float:
    """A run's `duration` in seconds; 0 when it is missing or not finite."""
    value = run.get("duration") or 0.0
    return float(value) if math.isfinite(float(value)) else 0.0


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _session_wall_seconds(session: Mapping[str, Any]) -> float | None:
    started = _parse_time(session.get("started_at"))
    finished = _parse_time(session.get("finished_at"))
    if started is None or finished is None:
        return None
    try:
        return (finished - started).total_seconds()
    except TypeError:  # one naive, one aware: not comparable
        return None


def session_timing(
    hypotheses: Sequence[Mapping[str, Any]],
    control: Mapping[str, Any] | None,
    session: Mapping[str, Any],
    wall_seconds: float | None,
) -> dict[str, Any]:
    """`summary.timing`: `wall_seconds` (the given figure, else `finished_at -
    started_at`), `sum_run_seconds` (every run, the control's included), `speedup`
    (sum / wall, None without a wall time) and, when the plan has a setup,
    `setup_seconds` (the setups that ran) and `setups_cached` (those a warm slot skipped)."""
    wall = wall_seconds if wall_seconds is not None else _session_wall_seconds(session)
    if wall is not None and not (math.isfinite(wall) and wall >= 0):
        wall = None
    runs = [run for hyp in hypotheses for run in hyp.get("runs") or []]
    if control is not None:
        runs.extend(control.get("runs") or [])
    total = sum(run_duration(run) for run in runs)
    timing: dict[str, Any] = {
        "wall_seconds": round(wall, 3) if wall is not None else None,
        "sum_run_seconds": round(total, 3),
        "speedup": round(total / wall, 2) if wall else None,
    }
    # Each worktree's setup once: runs of the same worktree carry the same record.
    setups: dict[tuple[object, ...], Mapping[str, Any]] = {}
    for run in runs:
        setup = (run.get("metrics") or {}).get("setup")
        if isinstance(setup, Mapping):
            setups[
                (run.get("hypothesis_id"), tuple(setup.get("logs") or ()), setup.get("cached"))
            ] = setup
    if setups:
        ran = [float(s.get("seconds") or 0.0) for s in setups.values() if not s.get("cached")]
        timing["setup_seconds"] = round(sum(ran), 3)
        timing["setups_cached"] = sum(1 for s in setups.values() if s.get("cached"))
    return timing
