"""The use cases every front end calls: plan in, data out; nothing here prints or exits.

`run_plan`, `show`, `history`, `check`, `clean` and `demo` (and `resume`, in run.py) are
async and return plain data (session documents, lists, reports); errors are
`refute.errors` exceptions, whose `kind` a front end maps to its own answer (the CLI: an
exit code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from refute.app.example import demo_environment
from refute.app.isolated import clean_after_dead
from refute.app.preflight import Finding, Findings, find_problems
from refute.app.queries import Listed, Shown, history, history_of, show, show_session
from refute.app.retention import PruneReport, prune
from refute.app.run import (
    CreatedCallback,
    EventCallback,
    run_session,
)
from refute.app.spec import SessionSpec, spec_from_plan
from refute.app.state import Repair, check_state, repair_state
from refute.engine.protocol import Backend
from refute.errors import PlanCheckError, RepositoryError, UnknownSessionError
from refute.owners import token_owner_alive
from refute.plan import Plan, load_plan
from refute.store import DB_FILENAME, BackgroundStore
from refute.workspace.reconcile import CleanReport
from refute.workspace.snapshot import (
    SNAPSHOT_REF_PREFIX,
    delete_ref,
    list_snapshot_refs,
    session_of_ref,
)
from refute.workspace.worktrees import Repository

__all__ = [
    "CheckReport",
    "CleanResult",
    "Listed",
    "PlanEstimate",
    "RunOptions",
    "Shown",
    "check",
    "clean",
    "demo",
    "history",
    "history_of",
    "run_plan",
    "show",
    "show_session",
]


@dataclass(frozen=True)
class RunOptions:
    """The command line's overrides of a plan (None: the plan's own)."""

    jobs: int | str | None = None
    timeout: float | None = None
    repeat: int | None = None
    parallel: bool = True
    max_hypotheses: int | None = None
    keep_worktrees: bool = False
    halt: bool = True  # False: `--no-halt`, run everything even when the control passes
    sandbox: bool = False  # `--sandbox`: every test with `isolation: sandbox`
    log_limit: int | None = None  # bytes of each stream's log kept (None: 64 MiB)
    rerun: str | None = None  # the command that runs the session again (the demo's)


@dataclass(frozen=True)
class CheckReport:
    """What `check` found: the session the plan would run, and what is wrong with it."""

    spec: SessionSpec
    findings: Findings

    @property
    def valid(self) -> bool:
        return not self.findings.problems

    @property
    def estimate(self) -> PlanEstimate:
        return plan_estimate(self.spec)


@dataclass(frozen=True)
class PlanEstimate:
    """How long a plan should take, from its `estimated_test_time`s: every run counted
    (each hypothesis' repeats and the control's), one after another and `concurrency`
    at a time, plus the cost model's overhead of making the worktrees."""

    hypotheses: int
    hypothesis_runs: int
    control_runs: int
    concurrency: int
    sequential_seconds: float  # every run, one after another
    parallel_seconds: float  # `concurrency` at a time, plus the overhead
    overhead_seconds: float
    cost_source: str  # "measured" (this machine's calibration) or "default"

    @property
    def runs(self) -> int:
        return self.hypothesis_runs + self.control_runs


def plan_estimate(spec: SessionSpec) -> PlanEstimate:
    """The `PlanEstimate` of a session spec (runs nothing)."""
    durations = [
        float(hyp.estimated_test_time) for hyp in spec.hypotheses for _ in range(hyp.repeat)
    ]
    control_runs = 0
    if spec.control is not None:
        control_runs = spec.control.repeat
        durations += [float(spec.control.estimated_test_time)] * control_runs
    concurrency = max(1, spec.config.concurrency())
    decision = spec.parallel_decision or {}
    overhead = float(decision.get("overhead") or 0.0)
    # Longest-first onto `concurrency` lanes: a fair guess of the wall time of the batch.
    lanes = [0.0] * concurrency
    for duration in sorted(durations, reverse=True):
        lanes[lanes.index(min(lanes))] += duration
    return PlanEstimate(
        hypotheses=len(spec.hypotheses),
        hypothesis_runs=sum(hyp.repeat for hyp in spec.hypotheses),
        control_runs=control_runs,
        concurrency=concurrency,
        sequential_seconds=sum(durations),
        parallel_seconds=max(lanes, default=0.0) + overhead,
        overhead_seconds=overhead,
        cost_source=str(decision.get("cost_source") or "default"),
    )


async def check(
    plan_path: Path, *, repo: Path = Path(), options: RunOptions | None = None
) -> CheckReport:
    """Validate and rank a plan against the repository, as `run_plan` would, running
    nothing; every problem is listed (a plan that does not even parse raises PlanError)."""
    warnings = check_state()  # a state file that stops a run raises StoreError here
    plan = load_plan(plan_path)
    spec = await _spec(plan, plan_path, repo, options)
    findings = await find_problems(plan, spec)
    findings.warnings.extend(Finding("state", warning) for warning in warnings)
    return CheckReport(spec, findings)


async def _spec(plan: Plan, plan_path: Path, repo: Path, options: RunOptions | None) -> SessionSpec:
    opts = options or RunOptions()
    spec = await spec_from_plan(
        plan,
        plan_path,
        repo,
        jobs=opts.jobs,
        timeout=opts.timeout,
        repeat=opts.repeat,
        parallel=opts.parallel,
        max_hypotheses=opts.max_hypotheses,
        keep_worktrees=opts.keep_worktrees,
        halt=opts.halt,
        sandbox=opts.sandbox,
    )
    if opts.log_limit is not None:
        spec.config = replace(spec.config, log_limit_bytes=opts.log_limit)
    if opts.rerun is not None:
        spec.settings["rerun"] = opts.rerun
    return spec


async def run_plan(
    plan_path: Path,
    *,
    repo: Path = Path(),
    options: RunOptions | None = None,
    backend: Backend | None = None,
    store_path: Path | None = None,
    on_event: EventCallback | None = None,
    on_created: CreatedCallback | None = None,
) -> dict[str, Any]:
    """Check the plan (`check`: any problem raises PlanCheckError before anything is created),
    then run it as a new session; returns the analysed document."""
    report = await check(plan_path, repo=repo, options=options)
    if not report.valid:
        raise PlanCheckError([str(problem) for problem in report.findings.problems])
    spec = report.spec
    return await run_session(
        spec, backend=backend, store_path=store_path, on_event=on_event, on_created=on_created
    )


@dataclass(frozen=True)
class CleanResult:
    """What `clean` did; `repository` is None when the directory is not a git repository
    (then only processes were checked). `repairs`: the corrupt state files moved aside
    (`refute.app.state`); `pruned`: what `older_than`/`max_size` deleted, or None."""

    repository: Path | None
    report: CleanReport
    repairs: list[Repair] = field(default_factory=list)
    pruned: PruneReport | None = None
    #: Why `repository` is None, as git said it (not a repository, dubious ownership, ...).
    repository_error: str | None = None


async def clean(
    repo: Path = Path(),
    *,
    dry_run: bool = False,
    grace: float = 2.0,
    older_than: timedelta | None = None,
    max_size: int | None = None,
) -> CleanResult:
    """Repair the state directory (move corrupt files aside, never delete a session),
    remove what dead refute processes left (worktrees, refs, processes, temp files), then,
    when asked, delete sessions older than `older_than` and logs beyond `max_size` bytes
    (`refute.app.retention`)."""
    repairs = repair_state(dry_run=dry_run)
    repository_error = None
    try:
        repository: Repository | None = await Repository.open(repo)
    except RepositoryError as exc:
        repository, repository_error = None, str(exc)
    report = await clean_after_dead(repository, dry_run=dry_run, grace=grace)
    if repository is not None:
        await _clean_session_snapshots(repository, report, dry_run=dry_run)
    pruned = None
    # A dry run leaves a corrupt database where it is: then there is nothing to prune from.
    database_in_the_way = dry_run and any(r.problem.path.name == DB_FILENAME for r in repairs)
    if (older_than is not None or max_size is not None) and not database_in_the_way:
        pruned = prune(older_than=older_than, max_size=max_size, dry_run=dry_run)
    return CleanResult(
        repository.root if repository else None, report, repairs, pruned, repository_error
    )


async def _clean_session_snapshots(repo: Repository, report: CleanReport, *, dry_run: bool) -> None:
    """Snapshot refs of sessions that no resume needs: the session completed with nothing
    left to run, or is not in the store (its refute died before creating it). Reconciliation
    keeps every session's ref; only here, with the store at hand, can they be told apart."""
    candidates = [
        (ref, session_id)
        for ref in await list_snapshot_refs(repo)
        if (session_id := session_of_ref(ref)) is not None
        and not token_owner_alive(ref[len(SNAPSHOT_REF_PREFIX) :])
    ]
    if not candidates:
        return
    async with BackgroundStore() as store:
        for ref, session_id in candidates:
            try:
                await store.call(store.store.resolve_session_id, session_id)
            except UnknownSessionError:
                pass  # not in the store: nothing can resume it
            else:
                doc = await store.call(store.store.load_document, session_id)
                left = await store.call(store.store.unfinished, session_id)
                if doc["session"]["status"] != "completed" or any(left.values()):
                    continue  # a resume still needs it
            report.refs.append(ref)
            if not dry_run:
                await delete_ref(repo, ref)


async def demo(
    *,
    backend: Backend | None = None,
    announce: Callable[[Path], None] | None = None,
    on_event: EventCallback | None = None,
    on_created: CreatedCallback | None = None,
) -> dict[str, Any]:
    """Run the built-in example (`refute.app.example`) in a throwaway repository."""
    async with demo_environment() as (repo, plan):
        if announce is not None:
            announce(repo)
        return await run_plan(
            plan,
            repo=repo,
            # Its plan is thrown away with it: running it again is `refute demo`.
            options=RunOptions(jobs="auto", rerun="refute demo"),
            backend=backend,
            on_event=on_event,
            on_created=on_created,
        )
