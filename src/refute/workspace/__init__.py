"""Everything git: the repository and its base commit, worktrees, the warm pool, snapshots
of uncommitted work, reconciliation after crashes, calibration, and `Checkouts` — a
worktree at any commit, patched and set up, leased and returned. It starts no process but
git."""

from refute.workspace.checkouts import Checkouts, SetupOutcome, SetupRunner
from refute.workspace.worktrees import Repository, resolve_base

__all__ = ["Checkouts", "Repository", "SetupOutcome", "SetupRunner", "resolve_base"]
