"""Running commands under hard limits: the Job / Batch / Backend seam and its backends.

`protocol` defines the seam; `local` is the asyncio backend (process trees on this
machine); `results` shapes every backend's results. The engine knows nothing about git:
worktrees reach it through the `Checkouts` protocol.

Names are imported on first use (PEP 562): the crash watchdog (`refute.engine.watchdog`)
imports `refute.engine.procs` and must not pay for asyncio and the backend on its way.
"""

import typing as _typing

from refute.lazy import lazy_exports as _lazy_exports

__all__ = ["Backend", "Batch", "BatchSettings", "Checkouts", "Job", "LocalBackend", "RunEvent"]

_EXPORTS: dict[str, str] = {
    "LocalBackend": "refute.engine.local",
    "Backend": "refute.engine.protocol",
    "Batch": "refute.engine.protocol",
    "BatchSettings": "refute.engine.protocol",
    "Checkouts": "refute.engine.protocol",
    "Job": "refute.engine.protocol",
    "RunEvent": "refute.engine.protocol",
}

if _typing.TYPE_CHECKING:
    from refute.engine.local import LocalBackend
    from refute.engine.protocol import Backend, Batch, BatchSettings, Checkouts, Job, RunEvent

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
