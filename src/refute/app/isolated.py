"""Hypotheses run in worktrees of one base: the path every session takes.

`run_isolated` cleans up after dead refute processes, resolves the base (snapshotting
uncommitted work when asked), gives the backend one job per run, each with a
`CheckoutRequest` (the base, the hypothesis' patch, the plan's setup) that the workspace's
`Checkouts` turns into a leased worktree when the job starts, and always releases
everything afterwards, shielded from cancellation. Guarantees:

* the user's checkout is never written: worktrees live in refute's cache directory, the
  snapshot of uncommitted work goes through a temporary index, and every git child runs
  without inherited GIT_DIR/GIT_WORK_TREE and without hooks;
* every run gets exactly one result, whatever fails around it (a patch that does not
  apply or a failed setup is that hypothesis' ERROR);
* leases are released and the snapshot ref deleted, whatever happens;
* a failure of refute's own machinery (a worktree that cannot be made, a log that cannot
  be written, an internal error) is never taken for the test's outcome: the run is marked
  (`metrics.infrastructure`), one that could not start is a not-run result (so a resume
  runs it), the rest of the batch is stopped, and `IsolatedRun.infrastructure_error` says
  why (a session then fails with exit code 4).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refute.app.environments import Leak, find_leaks
from refute.document import CONTROL_ID
from refute.engine.local import LocalBackend, run_one
from refute.engine.process import shielded
from refute.engine.protocol import Backend, BatchSettings, EventCallback, Job, RunEvent
from refute.engine.sandbox import SandboxMounts, unavailable_reason
from refute.engine.sweep import SCOPE_VARIABLE, stop_orphans
from refute.errors import ConfigError, PlanCheckError, RepositoryError
from refute.model import (
    DEFAULT_KEEP_PATHS,
    DEFAULT_SETUP_TIMEOUT,
    CheckoutRequest,
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestResult,
    check_id,
)
from refute.paths import state_dir
from refute.workspace.checkouts import (
    DEFAULT_SETUP_INPUTS,
    Checkouts,
    SetupOutcome,
    SetupRunner,
)
from refute.workspace.confinement import SandboxLayout
from refute.workspace.git import without_local_vars
from refute.workspace.pool import WorktreePool
from refute.workspace.reconcile import CleanReport, reconcile
from refute.workspace.snapshot import Snapshot, delete_snapshot, snapshot_uncommitted
from refute.workspace.worktrees import Repository, resolve_base

__all__ = [
    "IsolatedRun",
    "IsolationOptions",
    "clean_after_dead",
    "mark_infrastructure",
    "require_sandbox",
    "resolve_refs",
    "run_isolated",
    "test_environment",
]


@dataclass(frozen=True)
class IsolationOptions:
    """How worktrees are prepared. Patch paths are relative to `plan_dir`."""

    base: str = "HEAD"
    include_uncommitted: bool = False
    setup: Sequence[str] | None = None
    setup_timeout: float = DEFAULT_SETUP_TIMEOUT
    keep_paths: tuple[str, ...] = DEFAULT_KEEP_PATHS
    setup_inputs: tuple[str, ...] | None = None  # default: DEFAULT_SETUP_INPUTS
    pool_capacity: int | None = None  # default: the concurrency
    plan_dir: Path | None = None


@dataclass
class IsolatedRun:
    """What `run_isolated` returns: results in input order (then attempt order), the base
    every worktree started from (a snapshot when uncommitted work was included), and
    where each hypothesis ran."""

    base: str
    results: list[TestExecutionResult]
    worktrees: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    snapshot_of: str | None = None  # the base the snapshot was taken on
    #: True when the control did not reproduce the bug and the rest was stopped (`halt`).
    halted: bool = False
    #: Why refute's machinery failed (see the module docstring); the rest was stopped.
    infrastructure_error: str | None = None


async def test_environment() -> dict[str, str]:
    """What tests in worktrees inherit: this environment without git's repository-local
    variables (an exported GIT_DIR must not point a test's git at the user's repository),
    plus the state directory whose crash recovery may stop these tests."""
    env = await without_local_vars(os.environ)
    env[SCOPE_VARIABLE] = str(state_dir())
    return env


async def clean_after_dead(
    repo: Repository | None, *, dry_run: bool = False, grace: float = 2.0
) -> CleanReport:
    """Stop orphaned tests of this state directory, then remove dead refutes' worktrees,
    refs and temporary files (`refute.workspace.reconcile`)."""
    processes = await stop_orphans(str(state_dir()), grace, dry_run=dry_run)
    report = await reconcile(repo, dry_run=dry_run)
    report.processes = processes
    return report


def _attempts_of(hyp: Hypothesis, attempts: Mapping[str, Sequence[int]] | None) -> Sequence[int]:
    if attempts is not None:
        return attempts.get(hyp.id, ())
    return range(1, hyp.repeat + 1)


def _request(
    hyp: Hypothesis, options: IsolationOptions, commit: str, shas: Mapping[str, str]
) -> CheckoutRequest:
    """Where `hyp` runs: its base (or the session's), its patch source, the setup."""
    patch = None
    is_control = hyp.id == CONTROL_ID
    if hyp.patch and not is_control:
        path = Path(hyp.patch)
        if options.plan_dir is not None and not path.is_absolute():
            path = options.plan_dir / path
        patch = str(path)
    return CheckoutRequest(
        owner=hyp.id,
        commit=shas[hyp.base] if hyp.base and not is_control else commit,
        patch=patch,
        patch_text=None if is_control else hyp.patch_text,
        cherry_pick=shas[hyp.commit] if hyp.commit and not is_control else None,
        revert=shas[hyp.revert] if hyp.revert and not is_control else None,
        setup=tuple(options.setup) if options.setup else None,
        setup_timeout=options.setup_timeout,
        setup_env=tuple(sorted(hyp.env.items())),
    )


async def resolve_refs(repo: Repository, hypotheses: Sequence[Hypothesis]) -> dict[str, str]:
    """Full shas of every commit-ish the hypotheses name (`base`, `commit`, `revert`); a
    bad one is a RepositoryError (bad input) naming the hypothesis and field."""
    shas: dict[str, str] = {}
    for hyp in hypotheses:
        for name in ("base", "commit", "revert"):
            ref = getattr(hyp, name)
            if ref and ref not in shas:
                try:
                    shas[ref] = await resolve_base(repo, ref)
                except RepositoryError as exc:
                    raise RepositoryError(f"hypothesis {hyp.id!r}: {name}: {exc}") from exc
    return shas


#: How the engine and the workspace word their own failures (refute.workspace.checkouts,
#: refute.engine.output, the engine's per-job boundary): none of them is the test's doing.
_NOT_STARTED = ("worktree failed: ", "internal error: ")
_LOG_FAILED = ("cannot write log ", "log write failed ")


def mark_infrastructure(result: TestExecutionResult) -> str | None:
    """Why `result` is a failure of refute's machinery rather than of the test, or None.

    A run that could not start becomes a not-run result (a resume runs it again); a run
    whose log could not be written keeps its outcome. Both get `metrics.infrastructure`.
    """
    why: str | None = None
    if result.result is TestResult.ERROR and result.error_message.startswith(_NOT_STARTED):
        why = result.error_message
        result.result = TestResult.SKIP
        result.metrics["not_run"] = True
    else:
        notes = result.metrics.get("notes") or []
        why = next((str(n) for n in notes if str(n).startswith(_LOG_FAILED)), None)
    if why is not None:
        result.metrics["infrastructure"] = why
    return why


def _leak_line(leak: Leak) -> str:
    where = "setup" if leak.hypothesis_id is None else f"{leak.hypothesis_id}.test"
    return f"{where}: {leak.message}"


async def require_sandbox(hypotheses: Sequence[Hypothesis]) -> None:
    """Refuse (exit 2, one line) when a hypothesis asks for `isolation: sandbox` and this
    machine cannot give it: never a silent downgrade to a plain worktree."""
    if any(hyp.isolation == "sandbox" for hyp in hypotheses):
        why = await asyncio.to_thread(unavailable_reason)
        if why is not None:
            raise PlanCheckError([f"isolation 'sandbox' is unavailable: {why}"])


def _sandbox_of(layout: SandboxLayout) -> Callable[[Path], SandboxMounts]:
    def mounts(worktree: Path) -> SandboxMounts:
        return SandboxMounts(*layout.mounts(worktree))

    return mounts


def _job(
    hyp: Hypothesis,
    config: FalsificationConfig,
    request: CheckoutRequest,
    attempt: int,
    worktree_env: Mapping[str, str],
    layout: SandboxLayout,
) -> Job:
    return Job(
        key=hyp.id,
        attempt=attempt,
        argv=hyp.argv(),
        env=dict(hyp.env),
        checkout=request,
        timeout=hyp.timeout if hyp.timeout is not None else config.test_timeout,
        exit_codes=dict(config.exit_code_overrides),
        runner=hyp.runner,
        failure_pattern=hyp.failure_pattern,
        worktree_env=dict(worktree_env),
        sandbox=_sandbox_of(layout) if hyp.isolation == "sandbox" else None,
    )


def _setup_runner(settings: BatchSettings) -> SetupRunner:
    """Setup commands run through the engine, one job each (logs `<owner>.setup.*.log`)."""

    async def run_setup(request: CheckoutRequest, path: Path) -> SetupOutcome:
        job = Job(
            key=request.owner,
            argv=list(request.setup or ()),
            env=dict(request.setup_env),
            cwd=path,
            timeout=request.setup_timeout,
            log_stem=f"{request.owner}.setup",
        )
        result = await run_one(job, settings)
        logs = tuple(log for log in (result.stdout_log, result.stderr_log) if log)
        if result.result is TestResult.PASS:
            return SetupOutcome(ok=True, seconds=result.duration, logs=logs)
        why = result.error_message or f"exit {result.exit_code}"
        tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        message = f"{why}: {tail[0]}" if tail else why
        if result.stderr_log:
            message += f"; log: {result.stderr_log}"
        return SetupOutcome(ok=False, seconds=result.duration, message=message, logs=logs)

    return run_setup


async def run_isolated(
    repo_path: Path | str,
    hypotheses: Sequence[Hypothesis],
    config: FalsificationConfig | None = None,
    options: IsolationOptions | None = None,
    *,
    attempts: Mapping[str, Sequence[int]] | None = None,
    backend: Backend | None = None,
    on_event: EventCallback | None = None,
    on_base: Callable[[str, str | None], None] | None = None,
    halt: bool = True,
) -> IsolatedRun:
    """Run every attempt of every hypothesis (`repeat` of each, or `attempts`), each
    hypothesis in its own worktree of the base; see the module docstring.

    The control (id "control"), if among them, starts first; with `halt`, once all its
    runs are in and none failed (the bug did not reproduce), every other run is stopped
    as on Ctrl-C and gets a not-run result. `on_base(sha, snapshot_of)` is called once the
    base is known, before any test starts.
    """
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
    await clean_after_dead(repo, dry_run=False, grace=cfg.kill_grace_period)
    base = await resolve_base(repo, opts.base)
    shas = await resolve_refs(repo, hypotheses)
    environment = await test_environment()
    commits = {h.id: shas[h.base] if h.base else base for h in hypotheses}
    leaks = await find_leaks(repo, hypotheses, environment, commits, setup=opts.setup)
    if leaks.problems:  # the checkout would leak into a test: refuse before anything exists
        raise PlanCheckError([_leak_line(leak) for leak in leaks.problems])
    await require_sandbox(hypotheses)
    concurrency = cfg.concurrency()
    settings = BatchSettings(
        concurrency=concurrency,
        environment=environment,
        log_dir=cfg.log_dir,
        output_limit=cfg.output_limit_bytes,
        log_limit=cfg.log_limit_bytes,
        kill_grace=cfg.kill_grace_period,
    )
    pool = WorktreePool(
        repo, capacity=opts.pool_capacity or concurrency, keep_paths=opts.keep_paths
    )
    layout = SandboxLayout(repo, pool.root)
    checkouts = Checkouts(
        repo,
        pool,
        run_setup=_setup_runner(settings),
        setup_inputs=opts.setup_inputs or DEFAULT_SETUP_INPUTS,
    )

    def on_run_event(event: RunEvent) -> None:
        # A run's record says how its worktree's setup went (ran, cached or failed), and
        # whether refute's machinery failed it (marked before anyone records it).
        if event.kind == "finished" and event.result is not None:
            mark_infrastructure(event.result)
            setup = checkouts.setups.get(event.hypothesis_id)
            if setup is not None:
                event.result.metrics["setup"] = {
                    "ok": setup.ok,
                    "cached": setup.cached,
                    "seconds": round(setup.seconds, 6),
                    "logs": list(setup.logs),
                }
        if on_event is not None:
            on_event(event)

    snapshot: Snapshot | None = None
    results: list[TestExecutionResult] = []
    halted = False
    infrastructure: str | None = None
    try:
        if opts.include_uncommitted:
            snapshot = await snapshot_uncommitted(repo, base)
        sha = snapshot.sha if snapshot else base
        if on_base is not None:
            on_base(sha, base if snapshot else None)
        checkouts.samples["startup"] = [time.monotonic() - started]
        async with (backend or LocalBackend()).batch(
            settings, checkouts=checkouts, on_event=on_run_event
        ) as batch:
            # The control first: it starts before any hypothesis, so a control that does
            # not reproduce the bug stops the session early (`halt`).
            ordered = sorted(hypotheses, key=lambda h: h.id != CONTROL_ID)
            control_left = 0
            for hyp in ordered:
                request = _request(hyp, opts, sha, shas)
                extra = leaks.worktree_env.get(hyp.id, {})
                for attempt in _attempts_of(hyp, attempts):
                    batch.submit(_job(hyp, cfg, request, attempt, extra, layout))
                    control_left += hyp.id == CONTROL_ID
            batch.close()
            reproduced = False
            async for result in batch:
                results.append(result)
                why = result.metrics.get("infrastructure")
                if why and infrastructure is None:
                    infrastructure = f"refute could not run the tests: {why}"
                    batch.cancel()  # nothing more this session runs is trustworthy
                if infrastructure is not None:
                    continue
                if result.hypothesis_id != CONTROL_ID or not control_left or halted:
                    continue
                control_left -= 1
                reproduced = reproduced or result.result is TestResult.FAIL
                if halt and not control_left and not reproduced:
                    halted = True  # the control did not reproduce: nothing else is evidence
                    batch.cancel()
        worktrees = {request.owner: str(path) for request, path in checkouts.paths.items()}
    finally:
        await shielded(_release(repo, checkouts, snapshot))
    order = {hyp.id: index for index, hyp in enumerate(hypotheses)}
    results.sort(key=lambda r: (order[r.hypothesis_id], int(r.metrics.get("attempt", 1))))
    return IsolatedRun(
        base=sha,
        results=results,
        worktrees=worktrees,
        timings={"wall": time.monotonic() - started},
        snapshot_of=base if snapshot else None,
        halted=halted,
        infrastructure_error=infrastructure,
    )


async def _release(repo: Repository, checkouts: Checkouts, snapshot: Snapshot | None) -> None:
    await checkouts.close()
    if snapshot is not None:
        await delete_snapshot(repo, snapshot)
