"""Every exception refute raises on purpose, in one place.

Each docstring says who raises it. Front ends (the CLI) turn them into one-line messages;
the library never prints and never exits.
"""

from __future__ import annotations


class RefuteError(Exception):
    """Base class of every error refute raises on purpose."""


class ConfigError(RefuteError, ValueError):
    """An invalid setting or model value.

    Raised by `FalsificationConfig`, `Hypothesis` and `CostModel` when constructed with a
    value outside its allowed range (a timeout <= 0, a concurrency < 1, an empty test, ...),
    and by the executor for malformed input such as duplicate hypothesis ids.
    `field` names the offending setting.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
