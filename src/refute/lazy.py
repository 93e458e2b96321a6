"""Names a package exports but imports only on first use (PEP 562).

`import refute` (and `refute --version`) must stay cheap, so the packages whose names pull
in pydantic, rich or sqlite3 hand them out lazily:

    __getattr__, __dir__ = lazy_exports(__name__, {"Plan": "refute.plan.models"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module `__getattr__` that imports `names` (name -> defining module) on first use,
    and a `__dir__` that lists `public` too."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's own name
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
