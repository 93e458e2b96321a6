"""Ranking a plan's hypotheses: score, keep the top k, order by dependencies, then rank."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from refute.errors import ConfigError
from refute.plan.models import HypothesisSpec, Plan, Ranking

__all__ = ["RankedHypothesis", "RunOrder", "rank", "score"]


@dataclass(frozen=True)
class RankedHypothesis:
    """A hypothesis with its score and its rank (1 = highest score among all of the plan)."""

    spec: HypothesisSpec
    score: float
    rank: int


@dataclass(frozen=True)
class RunOrder:
    """The outcome of ranking: what runs, in which order, and what was left out.

    `ignored_dependencies` lists `(hypothesis id, dependency id)` pairs whose dependency was
    dropped by `max_hypotheses`: the hypothesis runs anyway, without waiting for it.
    """

    selected: tuple[RankedHypothesis, ...]
    dropped: tuple[RankedHypothesis, ...]
    ignored_dependencies: tuple[tuple[str, str], ...]

    @property
    def specs(self) -> list[HypothesisSpec]:
        return [item.spec for item in self.selected]

    def by_id(self) -> dict[str, RankedHypothesis]:
        """Every hypothesis of the plan (selected and dropped) by id."""
        return {item.spec.id: item for item in (*self.selected, *self.dropped)}


def score(spec: HypothesisSpec, weights: Ranking | None = None) -> float:
    """probability·w_p + impact·w_i - test_complexity·w_c, rounded to 12 places so that
    equal scores compare equal (0.7·0.5 + 0.9·0.3 - 0.3·0.2 is 0.56, not 0.5600000000000001)."""
    w = weights or Ranking()
    raw = (
        spec.probability * w.probability_weight
        + spec.impact * w.impact_weight
        - spec.test_complexity * w.complexity_weight
    )
    return round(raw, 12)


def rank(
    plan: Plan, *, max_hypotheses: int | None = None, weights: Ranking | None = None
) -> RunOrder:
    """Order a plan's hypotheses for a session.

    Scores descending (ties keep plan order); `max_hypotheses` (else the plan's; else all)
    keeps the top k; the kept ones are then ordered so that each runs after those it
    depends on, otherwise by rank. A dependency that was not kept is ignored.
    """
    limit = max_hypotheses if max_hypotheses is not None else plan.max_hypotheses
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("max_hypotheses", f"must be an integer >= 1, got {limit!r}")
    w = weights or plan.ranking
    scored = [(score(spec, w), index, spec) for index, spec in enumerate(plan.hypotheses)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    ranked = [
        RankedHypothesis(spec, value, place) for place, (value, _, spec) in enumerate(scored, 1)
    ]
    kept = ranked if limit is None else ranked[:limit]
    dropped = [] if limit is None else ranked[limit:]
    kept_ids = {item.spec.id for item in kept}
    ignored = tuple(
        (item.spec.id, dep) for item in kept for dep in item.spec.depends_on if dep not in kept_ids
    )
    return RunOrder(tuple(_topological(kept, kept_ids)), tuple(dropped), ignored)


def _topological(items: list[RankedHypothesis], ids: set[str]) -> Iterator[RankedHypothesis]:
    """Kahn's algorithm, always taking the best-ranked hypothesis whose dependencies ran."""
    by_id = {item.spec.id: item for item in items}
    waiting = {item.spec.id: len({d for d in item.spec.depends_on if d in ids}) for item in items}
    dependents: dict[str, list[str]] = {item.spec.id: [] for item in items}
    for item in items:
        for dep in {d for d in item.spec.depends_on if d in ids}:
            dependents[dep].append(item.spec.id)
    ready = [(item.rank, item.spec.id) for item in items if waiting[item.spec.id] == 0]
    heapq.heapify(ready)
    while ready:
        _, node = heapq.heappop(ready)
        yield by_id[node]
        for follower in dependents[node]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, (by_id[follower].rank, follower))
