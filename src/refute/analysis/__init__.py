"""Statistics, verdicts and recommendations over session documents."""

from refute.analysis.verdicts import *  # noqa: F403
