"""The plan: models, safe loading, validation with one-line errors, ranking, cost model.

`load_plan` turns a file into a `Plan` or raises `PlanError` with a one-line message;
`rank` orders the hypotheses for a session; `to_hypotheses` / `to_control` / `to_config`
turn a plan into the seed's objects; `plan_json_schema` is what `refute schema` prints.
"""

import typing as _typing

from refute.lazy import lazy_exports as _lazy_exports

# name -> the module that defines it; imported on first use (PEP 562), so that the cost
# model (`refute.plan.cost`, which the seed API uses) does not load pydantic.
_LAZY: dict[str, str] = {
    "Loc": "refute.plan.errors",
    "RESERVED_IDS": "refute.plan.fields",
    "Command": "refute.plan.fields",
    "Count": "refute.plan.fields",
    "Env": "refute.plan.fields",
    "Estimate": "refute.plan.fields",
    "Outcome": "refute.plan.fields",
    "Seconds": "refute.plan.fields",
    "Share": "refute.plan.fields",
    "Text": "refute.plan.fields",
    "Weight": "refute.plan.fields",
    "MAX_NESTING": "refute.plan.loader",
    "MAX_PLAN_BYTES": "refute.plan.loader",
    "PATCH_SOURCES": "refute.plan.models",
    "PLAN_SCHEMA_URI": "refute.plan.models",
    "ControlSpec": "refute.plan.models",
    "Defaults": "refute.plan.models",
    "HypothesisSpec": "refute.plan.models",
    "Plan": "refute.plan.models",
    "Ranking": "refute.plan.models",
    "load_plan": "refute.plan.models",
    "parse_plan": "refute.plan.models",
    "plan_json_schema": "refute.plan.models",
    "to_config": "refute.plan.models",
    "to_control": "refute.plan.models",
    "to_hypotheses": "refute.plan.models",
    "RankedHypothesis": "refute.plan.ranking",
    "RunOrder": "refute.plan.ranking",
    "rank": "refute.plan.ranking",
    "score": "refute.plan.ranking",
}

if _typing.TYPE_CHECKING:
    from refute.plan.errors import Loc
    from refute.plan.fields import (
        RESERVED_IDS,
        Command,
        Count,
        Env,
        Estimate,
        Outcome,
        Seconds,
        Share,
        Text,
        Weight,
    )
    from refute.plan.loader import MAX_NESTING, MAX_PLAN_BYTES
    from refute.plan.models import (
        PATCH_SOURCES,
        PLAN_SCHEMA_URI,
        ControlSpec,
        Defaults,
        HypothesisSpec,
        Plan,
        Ranking,
        load_plan,
        parse_plan,
        plan_json_schema,
        to_config,
        to_control,
        to_hypotheses,
    )
    from refute.plan.ranking import RankedHypothesis, RunOrder, rank, score

__all__ = [
    "MAX_NESTING",
    "MAX_PLAN_BYTES",
    "PATCH_SOURCES",
    "PLAN_SCHEMA_URI",
    "RESERVED_IDS",
    "Command",
    "ControlSpec",
    "Count",
    "Defaults",
    "Env",
    "Estimate",
    "HypothesisSpec",
    "Loc",
    "Outcome",
    "Plan",
    "RankedHypothesis",
    "Ranking",
    "RunOrder",
    "Seconds",
    "Share",
    "Text",
    "Weight",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
    "rank",
    "score",
    "to_config",
    "to_control",
    "to_hypotheses",
]

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
