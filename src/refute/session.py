"""The session runner: a ranked plan → worktrees → engine → store → analysis.

The only module (with runner.py) that wires layers together. A session:

1. is created in the store (status "running") before anything runs;
2. prepares a worktree per hypothesis, plus one for the control (the unmodified base);
3. runs every attempt (`repeat`) through the engine, control alongside, and writes each
   run to the store the moment it finishes — so a crash loses nothing already finished;
4. on the end, analyses the runs (verdicts, statistics, recommendation), stores the
   analysed document, and returns it with the session's exit code.

Interrupted sessions (Ctrl-C, SIGTERM) record the unfinished runs as `not_run`;
`resume_session` runs exactly those again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from refute import analysis, calibration
from refute.cost import CostModel, decide_parallel
from refute.errors import GitError, RefuteError, WorktreeError
from refute.executor import AsyncTestExecutor, RunEvent
from refute.model import FalsificationConfig, Hypothesis, TestExecutionResult, TestResult
from refute.paths import make_owned_dir, state_dir
from refute.plan import Plan, rank, to_config, to_control, to_hypotheses
from refute.pool import DEFAULT_KEEP_PATHS
from refute.runner import IsolationOptions, prepared_worktrees
from refute.store import Store
from refute.worktrees import Repository, resolve_base

SCHEMA = "refute.session/1"
CONTROL_ID = "control"

#: Exit codes of a session (and of `refute run`).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 4
EXIT_INTERRUPTED = 130


@dataclass
class SessionSpec:
    """Everything a session needs, already validated and ranked (see plan.py)."""

    repo: Path
    plan_path: str
    bug: str
    hypotheses: list[Hypothesis]  # in run order
    specs: list[dict[str, Any]]  # per hypothesis, same order: the document's spec fields
    config: FalsificationConfig
    base: str = "HEAD"
    include_uncommitted: bool = False
    control: Hypothesis | None = None
    setup: list[str] | None = None
    setup_timeout: float = 600.0
    keep_paths: tuple[str, ...] = DEFAULT_KEEP_PATHS
    keep_worktrees: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    parallel_decision: dict[str, Any] | None = None


def new_session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_document(spec: SessionSpec, session_id: str) -> dict[str, Any]:
    hypotheses = []
    for position, (hyp, fields) in enumerate(zip(spec.hypotheses, spec.specs, strict=True), 1):
        entry = {"rank": position, **fields}
        entry.update(
            id=hyp.id,
            description=hyp.description,
            test=hyp.argv(),
            shell=hyp.shell,
            patch=hyp.patch,
            env=dict(hyp.env),
            repeat=hyp.repeat,
            timeout=hyp.timeout if hyp.timeout is not None else spec.config.test_timeout,
            runs=[],
        )
        hypotheses.append(entry)
    control = None
    if spec.control is not None:
        control = {
            "test": spec.control.argv(),
            "shell": spec.control.shell,
            "env": dict(spec.control.env),
            "repeat": spec.control.repeat,
            "timeout": spec.control.timeout or spec.config.test_timeout,
            "verdict": "pending",
            "runs": [],
        }
    return {
        "schema": SCHEMA,
        "session": {
            "id": session_id,
            "repo": str(spec.repo),
            "plan_path": spec.plan_path,
            "bug": spec.bug,
            "status": "running",
            "started_at": _now(),
            "finished_at": None,
            "base": {
                "ref": spec.base,
                "sha": None,
                "snapshot_of": None,
                "include_uncommitted": spec.include_uncommitted,
            },
            "settings": {
                **spec.settings,
                "setup": spec.setup,
                "setup_timeout": spec.setup_timeout,
                "keep_paths": list(spec.keep_paths),
                "exit_codes": {str(k): v.value for k, v in spec.config.exit_code_overrides.items()},
            },
            "parallel_decision": spec.parallel_decision,
            "exit_code": None,
            "error": None,
        },
        "control": control,
        "hypotheses": hypotheses,
        "summary": None,
    }


class _Recorder:
    """Writes each finished run to the store and to the in-memory document."""

    def __init__(
        self, store: Store, doc: dict[str, Any], on_event: Callable[[RunEvent], None] | None
    ) -> None:
        self.store = store
        self.doc = doc
        self.on_event = on_event
        self.by_id = {h["id"]: h for h in doc["hypotheses"]}

    def record(self, result: TestExecutionResult) -> None:
        data = result.to_dict()
        self.store.add_run(self.doc["session"]["id"], data)
        target = (
            self.doc["control"]
            if result.hypothesis_id == CONTROL_ID
            else self.by_id[result.hypothesis_id]
        )
        attempt = data["metrics"].get("attempt", 1)
        target["runs"] = [r for r in target["runs"] if r["metrics"].get("attempt", 1) != attempt]
        target["runs"].append(data)
        target["runs"].sort(key=lambda r: r["metrics"].get("attempt", 1))

    def event(self, event: RunEvent) -> None:
        if event.kind == "finished" and event.result is not None:
            self.record(event.result)
        if self.on_event is not None:
            self.on_event(event)


async def run_session(
    spec: SessionSpec,
    store: Store,
    *,
    on_event: Callable[[RunEvent], None] | None = None,
    on_created: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run a new session; returns the analysed document (also stored)."""
    doc = new_document(spec, new_session_id())
    store.create_session(doc)
    if on_created is not None:
        on_created(doc)
    return await _execute(spec, store, doc, attempts=None, on_event=on_event)


async def resume_session(
    session_id: str,
    store: Store,
    *,
    config: FalsificationConfig | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
) -> dict[str, Any]:
    """Run again exactly the attempts of `session_id` that have no final result."""
    doc = store.load_document(session_id)
    unfinished = store.unfinished(session_id)
    spec = spec_from_document(doc, config)
    store.set_status(session_id, "running")
    doc["session"]["status"] = "running"
    return await _execute(spec, store, doc, attempts=unfinished, on_event=on_event)


def spec_from_document(
    doc: dict[str, Any], config: FalsificationConfig | None = None
) -> SessionSpec:
    """Rebuild what a stored session ran (self-contained: the plan file may have changed)."""
    session = doc["session"]
    settings = session.get("settings") or {}
    overrides = {int(k): TestResult(v) for k, v in (settings.get("exit_codes") or {}).items()}
    cfg = config or FalsificationConfig(
        test_timeout=float(settings.get("timeout") or 300.0),
        max_concurrent_tests=settings.get("concurrency") or 5,
        exit_code_overrides=overrides,
    )
    hyps = [
        Hypothesis(
            id=h["id"],
            description=h.get("description", ""),
            test=h.get("test"),
            shell=False,  # `test` was stored as the final argv (a shell test as sh -c ...)
            patch=h.get("patch"),
            env=dict(h.get("env") or {}),
            repeat=int(h.get("repeat") or 1),
            timeout=h.get("timeout"),
            estimated_test_time=float(h.get("estimated_test_time") or 0.0),
        )
        for h in doc["hypotheses"]
    ]
    control = None
    if doc.get("control"):
        c = doc["control"]
        control = Hypothesis(
            id=CONTROL_ID,
            description="control: the unmodified base",
            test=c["test"],
            env=dict(c.get("env") or {}),
            repeat=int(c.get("repeat") or 1),
            timeout=c.get("timeout"),
        )
    base = session["base"]
    return SessionSpec(
        repo=Path(session["repo"]),
        plan_path=session.get("plan_path") or "",
        bug=session.get("bug") or "",
        hypotheses=hyps,
        specs=[{k: v for k, v in h.items() if k != "runs"} for h in doc["hypotheses"]],
        config=cfg,
        base=base.get("sha") or base.get("ref") or "HEAD",
        include_uncommitted=False,  # the stored sha already contains the snapshot
        control=control,
        setup=settings.get("setup"),
        setup_timeout=float(settings.get("setup_timeout") or 600.0),
        keep_paths=tuple(settings.get("keep_paths") or (".venv", "venv", "node_modules")),
        settings=settings,
        parallel_decision=session.get("parallel_decision"),
    )


async def _execute(
    spec: SessionSpec,
    store: Store,
    doc: dict[str, Any],
    *,
    attempts: Mapping[str, Sequence[int]] | None,
    on_event: Callable[[RunEvent], None] | None,
) -> dict[str, Any]:
    session_id = doc["session"]["id"]
    log_dir = make_owned_dir(state_dir() / "logs") / session_id
    config = replace(spec.config, log_dir=log_dir)
    everything = [*spec.hypotheses, *([spec.control] if spec.control else [])]
    if attempts is not None:
        everything = [h for h in everything if attempts.get(h.id)]
    recorder = _Recorder(store, doc, on_event)
    options = IsolationOptions(
        base=spec.base,
        include_uncommitted=spec.include_uncommitted,
        setup=spec.setup,
        setup_timeout=spec.setup_timeout,
        keep_paths=spec.keep_paths,
        pool_capacity=max(config.concurrency(), len(everything)) if spec.keep_worktrees else None,
    )
    started = time.monotonic()
    status, exit_code, error = "completed", EXIT_OK, None
    try:
        if everything:
            async with prepared_worktrees(spec.repo, everything, config, options) as prep:
                doc["session"]["base"]["sha"] = prep.base
                doc["session"]["base"]["snapshot_of"] = prep.snapshot_of
                for hyp_id, failure in prep.failed.items():
                    hyp = next(h for h in everything if h.id == hyp_id)
                    for attempt in _attempts_of(hyp, attempts):
                        failure_run = replace(
                            failure, metrics={**failure.metrics, "attempt": attempt}
                        )
                        recorder.record(failure_run)
                executor = AsyncTestExecutor(
                    config,
                    cost_model=prep.cost_model,
                    on_event=recorder.event,
                    environment=prep.environment,
                )
                runs = executor.stream(prep.ready, prep.worktrees, attempts=attempts)
                async with contextlib.aclosing(runs) as results:
                    async for _ in results:
                        pass  # recorded by the "finished" events, not_run ones included
    except asyncio.CancelledError:
        status, exit_code = "interrupted", EXIT_INTERRUPTED
        _finish(store, doc, status, exit_code, error, time.monotonic() - started)
        raise
    except (GitError, WorktreeError, OSError) as exc:
        status, exit_code, error = "failed", EXIT_INFRASTRUCTURE, str(exc)
    except RefuteError as exc:
        # Bad input found only now (e.g. a resumed session's commit is gone): the session
        # is recorded as failed with the reason, and the error goes on to the caller.
        _finish(store, doc, "failed", EXIT_USAGE, str(exc), time.monotonic() - started)
        raise
    return _finish(store, doc, status, exit_code, error, time.monotonic() - started)


def _attempts_of(hyp: Hypothesis, attempts: Mapping[str, Sequence[int]] | None) -> Sequence[int]:
    if attempts is not None:
        return attempts.get(hyp.id, ())
    return range(1, hyp.repeat + 1)


def _finish(
    store: Store,
    doc: dict[str, Any],
    status: str,
    exit_code: int,
    error: str | None,
    wall: float,
) -> dict[str, Any]:
    doc["session"]["status"] = status
    doc["session"]["finished_at"] = _now()
    doc["session"]["error"] = error
    analysed = analysis.analyze_session(doc, wall_seconds=wall)
    if status == "completed":
        exit_code = analysis.session_exit_code(analysed)
    analysed["session"]["exit_code"] = exit_code
    store.finish_session(doc["session"]["id"], status, exit_code, analysed)
    return analysed


def spec_from_plan(
    plan: Plan,
    plan_path: Path,
    repo: Path,
    *,
    jobs: int | str | None = None,
    timeout: float | None = None,
    repeat: int | None = None,
    parallel: bool = True,
    max_hypotheses: int | None = None,
    keep_worktrees: bool = False,
) -> SessionSpec:
    """Rank a validated plan and apply the command line's overrides.

    `timeout` replaces the plan's default timeout (a hypothesis' own `timeout` still wins);
    `repeat` replaces every repeat count, the control's included; `parallel=False` runs one
    test at a time.
    """
    repository = asyncio.run(Repository.open(repo))
    # A bad base is bad input: refused here, before a session is created or anything runs.
    asyncio.run(resolve_base(repository, plan.base))
    order = rank(plan, max_hypotheses=max_hypotheses)
    by_id = order.by_id()
    hypotheses = to_hypotheses(plan, order.specs)
    control = to_control(plan)
    own_timeouts = {spec.id for spec in order.specs if spec.timeout is not None}
    for hyp in hypotheses:
        if timeout is not None and hyp.id not in own_timeouts:
            hyp.timeout = timeout
        if repeat is not None:
            hyp.repeat = repeat
    if control is not None:
        if timeout is not None and plan.control is not None and plan.control.timeout is None:
            control.timeout = timeout
        if repeat is not None:
            control.repeat = repeat
    chosen = jobs if jobs is not None else plan.concurrency
    concurrency: int | Literal["auto"] = "auto" if chosen == "auto" else int(chosen)
    if not parallel:
        concurrency = 1
    config = to_config(plan, max_hypotheses=max_hypotheses, concurrency=concurrency)
    if timeout is not None:
        config = replace(config, test_timeout=timeout)
    specs = []
    for spec in order.specs:
        ranked = by_id[spec.id]
        specs.append(
            {
                "rank": ranked.rank,
                "score": round(ranked.score, 4),
                "supported_if": spec.supported_if,
                "probability": spec.probability,
                "impact": spec.impact,
                "test_complexity": spec.test_complexity,
                "estimated_test_time": spec.estimated_test_time,
                "depends_on": list(spec.depends_on),
                "test_strategy": spec.test_strategy,
                "expected_behavior": spec.expected_behavior,
            }
        )
    cost = calibration.cost_model(repository.id) or CostModel.from_config(config)
    decision = decide_parallel(hypotheses, cost)
    return SessionSpec(
        repo=repository.root,
        plan_path=str(Path(plan_path).resolve()),
        bug=plan.bug,
        hypotheses=hypotheses,
        specs=specs,
        config=config,
        base=plan.base,
        include_uncommitted=plan.include_uncommitted,
        control=control,
        setup=plan.setup_argv(),
        setup_timeout=plan.setup_timeout,
        keep_paths=tuple(plan.keep_paths) if plan.keep_paths is not None else DEFAULT_KEEP_PATHS,
        keep_worktrees=keep_worktrees,
        settings={
            "concurrency": config.concurrency(),
            "timeout": config.test_timeout,
            "repeat": repeat if repeat is not None else plan.defaults.repeat,
            "parallel": parallel,
            "max_hypotheses": max_hypotheses if max_hypotheses is not None else plan.max_hypotheses,
            "dropped": [item.spec.id for item in order.dropped],
            "ignored_dependencies": [list(pair) for pair in order.ignored_dependencies],
        },
        parallel_decision={**asdict(decision), "parallel_time": decision.parallel_time},
    )
