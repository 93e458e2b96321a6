"""The isolated run: base → worktrees (pool, patches, setup) → engine → cleanup.

This is the only module that wires the worktree layer to the engine. Part 3's session
runner builds on `run_isolated` (plans, the store, reports). Guarantees:

* the user's checkout is never written: worktrees live in refute's cache directory, the
  snapshot of uncommitted work goes through a temporary index, and every git child runs
  without inherited GIT_DIR/GIT_WORK_TREE and without hooks;
* every hypothesis gets exactly one result, whatever fails around it (a patch that does
  not apply or a failed setup is that hypothesis' ERROR);
* cleanup always runs, shielded from cancellation: leases are released (or the slots
  discarded), the snapshot ref is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from refute import calibration
from refute._sweep import SCOPE_VARIABLE
from refute.cost import CostModel
from refute.errors import ConfigError, GitError, WorktreeError
from refute.executor import AsyncTestExecutor, EventCallback
from refute.git import local_env_vars
from refute.model import FalsificationConfig, Hypothesis, TestExecutionResult, TestResult
from refute.paths import check_id, state_dir
from refute.pool import DEFAULT_KEEP_PATHS, Lease, WorktreePool
from refute.process import shielded
from refute.reconcile import reconcile
from refute.snapshot import Snapshot, delete_snapshot, snapshot_uncommitted
from refute.worktrees import Repository, apply_patch, resolve_base


@dataclass(frozen=True)
class IsolationOptions:
    """How worktrees are prepared. Patch paths are relative to `plan_dir`."""

    base: str = "HEAD"
    include_uncommitted: bool = False
    setup: list[str] | None = None
    setup_timeout: float = 600.0
    keep_paths: tuple[str, ...] = DEFAULT_KEEP_PATHS
    pool_capacity: int | None = None  # default: the concurrency
    plan_dir: Path | None = None


@dataclass
class IsolatedRun:
    """What `run_isolated` returns: results in input order, and where things ran."""

    base: str  # the commit every worktree started from (a snapshot when uncommitted work)
    results: list[TestExecutionResult]
    worktrees: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    snapshot_of: str | None = None  # the base the snapshot was taken on


@dataclass
class Prepared:
    """Worktrees ready for testing, inside `prepared_worktrees`."""

    repo: Repository
    base: str  # the commit every worktree started from (a snapshot when uncommitted work)
    snapshot_of: str | None
    worktrees: dict[str, Path]  # ready hypotheses only
    failed: dict[str, TestExecutionResult]  # hypotheses whose worktree, patch or setup failed
    ready: list[Hypothesis]
    environment: dict[str, str]
    cost_model: CostModel | None
    started: float


@contextlib.asynccontextmanager
async def prepared_worktrees(
    repo_path: Path | str,
    hypotheses: Sequence[Hypothesis],
    config: FalsificationConfig | None = None,
    options: IsolationOptions | None = None,
) -> AsyncIterator[Prepared]:
    """Reconcile, resolve the base, lease a worktree per hypothesis, patch, set up; on
    leaving (normally, by exception or cancellation) release everything, shielded."""
    cfg = config or FalsificationConfig()
    opts = options or IsolationOptions()
    seen: set[str] = set()
    for hyp in hypotheses:
        key = check_id(hyp.id).casefold()
        if key in seen:
            raise ConfigError("hypotheses", f"duplicate hypothesis id {hyp.id!r}")
        seen.add(key)
    started = time.monotonic()
    repo = await Repository.open(repo_path)
    await reconcile(repo, grace=cfg.kill_grace_period)
    base = await resolve_base(repo, opts.base)
    concurrency = cfg.concurrency()
    pool = WorktreePool(
        repo, capacity=opts.pool_capacity or concurrency, keep_paths=opts.keep_paths
    )
    snapshot: Snapshot | None = None
    leases: dict[str, Lease] = {}
    failed: dict[str, TestExecutionResult] = {}
    samples: dict[str, list[float]] = {"startup": []}
    try:
        if opts.include_uncommitted:
            snapshot = await snapshot_uncommitted(repo, base)
        sha = snapshot.sha if snapshot else base
        samples["startup"].append(time.monotonic() - started)
        await _prepare(pool, sha, hypotheses, opts, concurrency, leases, failed, samples)
        ready = [h for h in hypotheses if h.id not in failed]
        worktrees = {h.id: leases[h.id].path for h in ready}
        if opts.setup and ready:
            await _setup(cfg, opts, ready, worktrees, failed, samples)
            ready = [h for h in ready if h.id not in failed]
        yield Prepared(
            repo=repo,
            base=sha,
            snapshot_of=base if snapshot else None,
            worktrees={h.id: worktrees[h.id] for h in ready},
            failed=failed,
            ready=ready,
            environment=test_environment(),
            cost_model=calibration.cost_model(repo.id),
            started=started,
        )
    finally:
        await shielded(_cleanup(repo, pool, leases, snapshot, samples))


async def run_isolated(
    repo_path: Path | str,
    hypotheses: Sequence[Hypothesis],
    config: FalsificationConfig | None = None,
    options: IsolationOptions | None = None,
    *,
    on_event: EventCallback | None = None,
) -> IsolatedRun:
    """Test every hypothesis once, each in its own worktree of the base commit."""
    cfg = config or FalsificationConfig()
    async with prepared_worktrees(repo_path, hypotheses, cfg, options) as prep:
        executor = AsyncTestExecutor(
            cfg, cost_model=prep.cost_model, on_event=on_event, environment=prep.environment
        )
        tested = await executor.execute_parallel_async(prep.ready, prep.worktrees)
        by_id = {r.hypothesis_id: r for r in tested} | prep.failed
        return IsolatedRun(
            base=prep.base,
            results=[by_id[h.id] for h in hypotheses],
            worktrees={hid: str(path) for hid, path in prep.worktrees.items()},
            timings={"wall": time.monotonic() - prep.started},
            snapshot_of=prep.snapshot_of,
        )


async def _prepare(
    pool: WorktreePool,
    sha: str,
    hypotheses: Sequence[Hypothesis],
    opts: IsolationOptions,
    concurrency: int,
    leases: dict[str, Lease],
    failed: dict[str, TestExecutionResult],
    samples: dict[str, list[float]],
) -> None:
    """Lease a worktree per hypothesis and apply its patch; failures become its ERROR."""
    gate = asyncio.Semaphore(max(1, concurrency))
    samples.setdefault("worktree_create", [])
    samples.setdefault("pool_acquire", [])

    async def one(hyp: Hypothesis) -> None:
        async with gate:
            try:
                lease = await pool.acquire(sha, hyp.id)
            except (WorktreeError, GitError, OSError) as exc:
                failed[hyp.id] = _error(hyp, f"worktree failed: {exc}")
                return
            leases[hyp.id] = lease
            samples["worktree_create" if lease.fresh else "pool_acquire"].append(lease.seconds)
            if hyp.patch:
                patch = Path(hyp.patch)
                if not patch.is_absolute() and opts.plan_dir is not None:
                    patch = opts.plan_dir / patch
                try:
                    await apply_patch(lease.path, patch, hyp.id)
                except (WorktreeError, GitError) as exc:
                    failed[hyp.id] = _error(hyp, str(exc), str(lease.path))

    results = await asyncio.gather(*(one(h) for h in hypotheses), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _setup(
    cfg: FalsificationConfig,
    opts: IsolationOptions,
    ready: list[Hypothesis],
    worktrees: dict[str, Path],
    failed: dict[str, TestExecutionResult],
    samples: dict[str, list[float]],
) -> None:
    """Run the plan's setup command once in each worktree, through the engine."""
    setup_cfg = replace(cfg, test_timeout=opts.setup_timeout, exit_code_overrides={})
    jobs = [
        Hypothesis(id=h.id, description="setup", test=list(opts.setup or []), env=h.env)
        for h in ready
    ]
    setup_executor = AsyncTestExecutor(setup_cfg, environment=test_environment())
    results = await setup_executor.execute_parallel_async(jobs, worktrees)
    samples["setup"] = [r.duration for r in results if r.result is TestResult.PASS]
    for hyp, result in zip(ready, results, strict=True):
        if result.result is TestResult.PASS:
            continue
        why = result.error_message or f"exit {result.exit_code}"
        tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        detail = f"{why}: {tail[0]}" if tail else why
        failed[hyp.id] = _error(hyp, f"setup failed ({detail})", str(worktrees[hyp.id]))


async def _cleanup(
    repo: Repository,
    pool: WorktreePool,
    leases: dict[str, Lease],
    snapshot: Snapshot | None,
    samples: dict[str, list[float]],
) -> None:
    start = time.monotonic()
    for lease in leases.values():
        with contextlib.suppress(Exception):
            await pool.release(lease)
    if leases:
        samples["cleanup"] = [(time.monotonic() - start) / len(leases)]
    if snapshot is not None:
        await delete_snapshot(repo, snapshot)
    with contextlib.suppress(OSError):
        calibration.record(repo.id, samples)


def test_environment() -> dict[str, str]:
    """What tests in worktrees inherit: this environment without git's repository-local
    variables, so an exported GIT_DIR cannot point a test's git commands at the user's
    repository instead of its worktree."""
    local = local_env_vars()
    env = {k: v for k, v in os.environ.items() if k not in local}
    env[SCOPE_VARIABLE] = str(state_dir())  # whose crash recovery may stop these tests
    return env


def _error(hyp: Hypothesis, message: str, worktree: str = "") -> TestExecutionResult:
    return TestExecutionResult(
        hypothesis_id=hyp.id,
        result=TestResult.ERROR,
        duration=0.0,
        exit_code=-1,
        worktree_path=worktree,
        error_message=message,
        metrics={"confidence": 0.2, "attempt": 1},
    )
