"""Running commands under hard limits: the Job / Batch / Backend seam and its backends.

`protocol` defines the seam; `local` is the asyncio backend (process trees on this
machine); `results` shapes every backend's results. The engine knows nothing about git:
worktrees reach it through the `Checkouts` protocol.
"""

from refute.engine.local import LocalBackend
from refute.engine.protocol import Backend, Batch, BatchSettings, Checkouts, Job, RunEvent

__all__ = ["Backend", "Batch", "BatchSettings", "Checkouts", "Job", "LocalBackend", "RunEvent"]
