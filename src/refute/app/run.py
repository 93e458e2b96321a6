"""Running a session: a spec → checkouts → a batch of the backend → the store → analysis.

A session:

1. is created in the store (status "running") before anything runs;
2. cleans up after dead refute processes, resolves its base (and snapshots uncommitted work
   when asked), and hands the backend one job per run; each job's worktree (a checkout of
   the base with the hypothesis' patch and the plan's setup) is leased when the job starts;
3. writes each run to the store the moment it finishes — on the store's own thread, never
   on the event loop — so a crash loses nothing already finished;
4. on the end, analyses the runs (verdicts, statistics, recommendation), stores the
   analysed document, and returns it (its `session.exit_code` says how it ended).

Interrupted sessions (Ctrl-C, SIGTERM) record the unfinished runs as `not_run`;
`resume_session` runs exactly those again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refute import analysis
from refute.app.isolated import IsolationOptions, require_sandbox, run_isolated
from refute.app.spec import SessionSpec, spec_from_document
from refute.app.state import check_state
from refute.document import (
    CONTROL_ID,
    CONTROL_PENDING,
    EXIT_CODES,
    SCHEMA,
    Base,
    ControlEntry,
    HypothesisEntry,
    ParallelDecisionRecord,
    SessionDocument,
    SessionInfo,
    Settings,
)
from refute.engine.local import LocalBackend
from refute.engine.process import shielded
from refute.engine.protocol import Backend, RunEvent
from refute.errors import GitError, RefuteError, WorktreeError
from refute.model import FalsificationConfig, Hypothesis, TestExecutionResult
from refute.paths import make_owned_dir, state_dir
from refute.store import BackgroundStore

__all__ = [
    "CreatedCallback",
    "EventCallback",
    "ResumeResult",
    "new_document",
    "new_session_id",
    "resume",
    "run_session",
]

EventCallback = Callable[[RunEvent], None]
CreatedCallback = Callable[[dict[str, Any]], None]


def new_session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _extras(hyp: Hypothesis) -> dict[str, Any]:
    """The fields after the seed's that a hypothesis (or the control) sets: only those,
    so documents of plans that do not use them are unchanged."""
    names = ("patch_text", "commit", "revert", "base", "failure_pattern")
    extras: dict[str, Any] = {name: getattr(hyp, name) for name in names if getattr(hyp, name)}
    if hyp.runner != "auto":
        extras["runner"] = hyp.runner
    if hyp.isolation != "worktree":
        extras["isolation"] = hyp.isolation
    return extras


def new_document(spec: SessionSpec, session_id: str) -> dict[str, Any]:
    """The document of a session that has not run yet (docs/report.md).

    Built through the models of `refute.document` (so a value of the wrong type fails
    here, not in the store), then dumped to the plain dict the session carries on with:
    only the keys set here, in the order the models list them.
    """
    hypotheses = [
        HypothesisEntry.model_validate(
            {
                "rank": position,
                **fields,
                "id": hyp.id,
                "description": hyp.description,
                "test": hyp.argv(),
                "shell": hyp.shell,
                "patch": hyp.patch,
                "env": dict(hyp.env),
                "repeat": hyp.repeat,
                "timeout": hyp.timeout if hyp.timeout is not None else spec.config.test_timeout,
                **_extras(hyp),
                "runs": [],
            }
        )
        for position, (hyp, fields) in enumerate(zip(spec.hypotheses, spec.specs, strict=True), 1)
    ]
    control = None
    if spec.control is not None:
        control = ControlEntry(
            test=spec.control.argv(),
            shell=spec.control.shell,
            env=dict(spec.control.env),
            repeat=spec.control.repeat,
            timeout=spec.control.timeout or spec.config.test_timeout,
            verdict=CONTROL_PENDING,
            runs=[],
            **_extras(spec.control),
        )
    settings = Settings.model_validate(
        {
            **spec.settings,
            "setup": spec.setup,
            "setup_timeout": spec.setup_timeout,
            **({"setup_inputs": list(spec.setup_inputs)} if spec.setup_inputs is not None else {}),
            "keep_paths": list(spec.keep_paths),
            "exit_codes": {str(k): v.value for k, v in spec.config.exit_code_overrides.items()},
        }
    )
    decision = spec.parallel_decision
    session = SessionInfo(
        id=session_id,
        repo=str(spec.repo),
        plan_path=spec.plan_path,
        bug=spec.bug,
        status="running",
        started_at=_now(),
        finished_at=None,
        base=Base(
            ref=spec.base,
            sha=None,
            snapshot_of=None,
            include_uncommitted=spec.include_uncommitted,
        ),
        settings=settings,
        parallel_decision=(
            ParallelDecisionRecord.model_validate(decision) if decision is not None else None
        ),
        exit_code=None,
        error=None,
    )
    document = SessionDocument(
        schema=SCHEMA, session=session, control=control, hypotheses=hypotheses, summary=None
    )
    return document.model_dump(mode="json", by_alias=True, exclude_unset=True)


class _Recorder:
    """Puts each finished run into the in-memory document and posts it to the store."""

    def __init__(
        self, store: BackgroundStore, doc: dict[str, Any], on_event: EventCallback | None
    ) -> None:
        self.store = store
        self.doc = doc
        self.on_event = on_event
        self.by_id = {h["id"]: h for h in doc["hypotheses"]}

    def record(self, result: TestExecutionResult) -> None:
        data = result.to_dict()
        self.store.post(self.store.store.add_run, self.doc["session"]["id"], data)
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
    *,
    backend: Backend | None = None,
    store_path: Path | None = None,
    on_event: EventCallback | None = None,
    on_created: CreatedCallback | None = None,
) -> dict[str, Any]:
    """Run a new session; returns the analysed document (also stored)."""
    doc = new_document(spec, new_session_id())
    async with BackgroundStore(store_path) as store:
        await store.call(store.store.create_session, doc)
        if on_created is not None:
            on_created(doc)
        return await _execute(spec, store, doc, None, backend or LocalBackend(), on_event)


@dataclass(frozen=True)
class ResumeResult:
    """What `resume` did: `ran` is False when nothing was left to run."""

    document: dict[str, Any]
    ran: bool


async def resume(
    session_id: str,
    *,
    backend: Backend | None = None,
    store_path: Path | None = None,
    config: FalsificationConfig | None = None,
    on_event: EventCallback | None = None,
    on_created: CreatedCallback | None = None,
    sandbox: bool = False,
) -> ResumeResult:
    """Run again exactly the attempts of `session_id` (an id or a unique prefix) that have
    no final result; `sandbox` runs them (and records them) with `isolation: sandbox`."""
    check_state()  # a state file that stops a run raises StoreError before anything runs
    async with BackgroundStore(store_path) as store:
        full_id = await store.call(store.store.resolve_session_id, session_id)
        unfinished = await store.call(store.store.unfinished, full_id)
        doc = await store.call(store.store.load_document, full_id)
        if not any(unfinished.values()):
            return ResumeResult(doc, ran=False)
        spec = spec_from_document(doc, config)
        if sandbox:
            _sandbox_all(spec, doc)
        # Refused before the session is touched: a sandbox that is unavailable is bad input.
        await require_sandbox([*spec.hypotheses, *([spec.control] if spec.control else [])])
        await store.call(store.store.set_status, full_id, "running")
        doc["session"]["status"] = "running"
        if on_created is not None:
            on_created(doc)
        final = await _execute(spec, store, doc, unfinished, backend or LocalBackend(), on_event)
        return ResumeResult(final, ran=True)


def _sandbox_all(spec: SessionSpec, doc: dict[str, Any]) -> None:
    """`resume --sandbox`: every test runs, and is recorded as run, in the sandbox."""
    for hyp in [*spec.hypotheses, *([spec.control] if spec.control else [])]:
        hyp.isolation = "sandbox"
    for entry in [*doc.get("hypotheses", []), *([doc["control"]] if doc.get("control") else [])]:
        entry["isolation"] = "sandbox"


async def _execute(
    spec: SessionSpec,
    store: BackgroundStore,
    doc: dict[str, Any],
    attempts: Mapping[str, Sequence[int]] | None,
    backend: Backend,
    on_event: EventCallback | None,
) -> dict[str, Any]:
    session_id = doc["session"]["id"]
    log_dir = make_owned_dir(state_dir() / "logs") / session_id
    everything = [*spec.hypotheses, *([spec.control] if spec.control else [])]
    if attempts is not None:
        everything = [h for h in everything if attempts.get(h.id)]
    recorder = _Recorder(store, doc, on_event)
    capacity = max(spec.config.concurrency(), len(everything)) if spec.keep_worktrees else None
    options = IsolationOptions(
        base=spec.base,
        include_uncommitted=spec.include_uncommitted,
        setup=spec.setup,
        setup_timeout=spec.setup_timeout,
        keep_paths=spec.keep_paths,
        setup_inputs=spec.setup_inputs,
        pool_capacity=capacity,
    )

    def on_base(sha: str, snapshot_of: str | None) -> None:
        doc["session"]["base"]["sha"] = sha
        doc["session"]["base"]["snapshot_of"] = snapshot_of

    started = time.monotonic()
    status, exit_code, error = "completed", EXIT_CODES["ok"], None
    try:
        if everything:
            await run_isolated(
                spec.repo,
                everything,
                replace(spec.config, log_dir=log_dir),
                options,
                attempts=attempts,
                backend=backend,
                on_event=recorder.event,
                on_base=on_base,
                halt=spec.halt,
            )
    except asyncio.CancelledError:
        status, exit_code = "interrupted", EXIT_CODES["interrupted"]
        await shielded(_finish(store, doc, status, exit_code, error, time.monotonic() - started))
        raise
    except (GitError, WorktreeError, OSError) as exc:
        status, exit_code, error = "failed", EXIT_CODES["infrastructure"], str(exc)
    except RefuteError as exc:
        # Found only now (e.g. a resumed session's commit is gone): the session is recorded
        # as failed with the reason and the exit code of its kind; the error goes on.
        elapsed = time.monotonic() - started
        await _finish(store, doc, "failed", EXIT_CODES[exc.kind], str(exc), elapsed)
        raise
    except Exception as exc:
        # Anything else (a broken progress callback, a bug): never leave it "running".
        elapsed = time.monotonic() - started
        message = f"internal error: {type(exc).__name__}: {exc}"
        await _finish(store, doc, "failed", EXIT_CODES["infrastructure"], message, elapsed)
        raise
    return await _finish(store, doc, status, exit_code, error, time.monotonic() - started)


async def _finish(
    store: BackgroundStore,
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
    await store.flush()
    await store.call(store.store.finish_session, doc["session"]["id"], status, exit_code, analysed)
    return analysed
