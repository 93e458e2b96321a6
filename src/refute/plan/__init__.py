"""The plan: models, safe loading, validation with one-line errors, ranking, cost model."""

from refute.plan.models import *  # noqa: F403
from refute.plan.models import __all__ as _models_all

__all__ = list(_models_all)
