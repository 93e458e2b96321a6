"""The plan: models, safe loading, validation with one-line errors, ranking, cost model.

`load_plan` turns a file into a `Plan` or raises `PlanError` with a one-line message;
`rank` orders the hypotheses for a session; `to_hypotheses` / `to_control` / `to_config`
turn a plan into the seed's objects; `plan_json_schema` is what `refute schema` prints.
"""

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
