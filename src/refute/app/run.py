"""Running a session: a spec → checkouts → a batch of the backend → the store → analysis.

A session:

1. resolves its base (and snapshots uncommitted work when asked, under a ref named for the
   session), then is created in the store (status "running", owned by this process) with
   that base already recorded, before anything runs;
2. cleans up after dead refute processes and hands the backend one job per run; each job's
   worktree (a checkout of the base with the hypothesis' patch and the plan's setup) is
   leased when the job starts;
3. writes each run to the store the moment it finishes — on the store's own thread, never
   on the event loop — so a crash loses nothing already finished;
4. on the end, analyses the runs (verdicts, statistics, recommendation), stores the
   analysed document, and returns it (its `session.exit_code` says how it ended).

Interrupted sessions (Ctrl-C, SIGTERM) record the unfinished runs as `not_run`; a session
whose refute was killed (SIGKILL, a crash) reads as "interrupted" from the store (its owner
is gone). `resume` runs exactly what has no final result again, always on the recorded
base (the snapshot too: its ref lives until the session completes), never recording a new
base; with nothing left to run it analyses and finishes the session.

Infrastructure failures are the session's, not the tests': a worktree that cannot be made
(a read-only or full cache) or a log that cannot be written fails the session ("failed",
exit code 4, `error` says why); a run that could not even start is stored as not run, so a
resume runs it. When the store itself cannot be written at the end (a full state
filesystem), the session is marked "failed" with as small a write as possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refute import __version__, analysis
from refute.app.isolated import (
    IsolationOptions,
    clean_after_dead,
    require_sandbox,
    run_isolated,
)
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
from refute.errors import GitError, RefuteError, RepositoryError, StoreError, WorktreeError
from refute.model import FalsificationConfig, Hypothesis, TestExecutionResult
from refute.paths import make_owned_dir, state_dir
from refute.store import BackgroundStore
from refute.workspace.snapshot import delete_ref, session_ref_name, snapshot_uncommitted
from refute.workspace.worktrees import Repository, resolve_base

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
        schema=SCHEMA,
        refute_version=__version__,
        session=session,
        control=control,
        hypotheses=hypotheses,
        summary=None,
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
        target = (
            self.doc["control"]
            if result.hypothesis_id == CONTROL_ID
            else self.by_id[result.hypothesis_id]
        )
        data["command"] = target.get("test")  # what this run ran, in every format
        self.store.post(self.store.store.add_run, self.doc["session"]["id"], data)
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
    repo = await Repository.open(spec.repo)
    await _record_base(repo, spec, doc)
    created = False
    try:
        async with BackgroundStore(store_path) as store:
            await store.call(store.store.create_session, doc)
            created = True
            if on_created is not None:
                on_created(doc)
            return await _execute(spec, store, doc, None, backend or LocalBackend(), on_event)
    finally:
        ref = doc["session"]["base"].get("snapshot_ref")
        if not created and ref:  # no session to resume: its snapshot is nobody's
            await shielded(delete_ref(repo, ref))


async def _record_base(repo: Repository, spec: SessionSpec, doc: dict[str, Any]) -> None:
    """Resolve the base (and snapshot uncommitted work) into the new session's document:
    stored with the session, before anything runs, so a resume after any crash runs on
    exactly this base."""
    base = await resolve_base(repo, spec.base)
    record = doc["session"]["base"]
    record["sha"] = base
    if spec.include_uncommitted:
        name = session_ref_name(doc["session"]["id"])
        try:
            snapshot = await snapshot_uncommitted(repo, base, name=name)
        except (GitError, OSError) as exc:
            raise WorktreeError(f"cannot snapshot the uncommitted work: {exc}") from exc
        record.update(sha=snapshot.sha, snapshot_of=base, snapshot_ref=snapshot.ref)


@dataclass(frozen=True)
class ResumeResult:
    """What `resume` did: `ran` is False when nothing was left to run; `finished` is True
    when such a session was not finished yet (killed after its last run was stored, or
    ended by an error) and the resume analysed and finished it."""

    document: dict[str, Any]
    ran: bool
    finished: bool = False


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
    no final result, on the session's recorded base; a session with nothing left to run
    that is not completed yet is analysed and finished. A session whose refute is still
    running is refused (SessionRunningError). `sandbox` runs them (and records them)
    with `isolation: sandbox`."""
    check_state()  # a state file that stops a run raises StoreError before anything runs
    async with BackgroundStore(store_path) as store:
        full_id = await store.call(store.store.resolve_session_id, session_id)
        unfinished = await store.call(store.store.unfinished, full_id)
        doc = await store.call(store.store.load_document, full_id)
        if not any(unfinished.values()):
            if doc["session"]["status"] == "completed":
                await _forget_snapshot(store, doc)  # killed before it could delete it
                return ResumeResult(doc, ran=False)
            await store.call(store.store.claim_session, full_id)
            doc["session"].update(status="running", error=None, exit_code=None)
            # What its killed refute left (leased worktrees, orphaned tests), as any run
            # would clean it up at its start.
            with contextlib.suppress(RefuteError, OSError):
                await clean_after_dead(await Repository.open(doc["session"]["repo"]))
            final = await _finish(store, doc, "completed", EXIT_CODES["ok"], None, None)
            return ResumeResult(final, ran=False, finished=True)
        if not doc["session"]["base"].get("sha"):
            # Resolving the ref again now is exactly "testing the wrong code, silently".
            raise RepositoryError(
                f"session {full_id} recorded no base commit (it stopped before resolving"
                " it, so nothing ran); run its plan again"
            )
        spec = spec_from_document(doc, config)
        if sandbox:
            _sandbox_all(spec, doc)
        # Refused before the session is touched: a sandbox that is unavailable is bad input.
        await require_sandbox([*spec.hypotheses, *([spec.control] if spec.control else [])])
        await store.call(store.store.claim_session, full_id)
        doc["session"].update(status="running", error=None, exit_code=None)
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
    everything = [*spec.hypotheses, *([spec.control] if spec.control else [])]
    if attempts is not None:
        everything = [h for h in everything if attempts.get(h.id)]
    recorder = _Recorder(store, doc, on_event)
    capacity = max(spec.config.concurrency(), len(everything)) if spec.keep_worktrees else None
    # The recorded base, never resolved again: the snapshot (if any) is already in it.
    options = IsolationOptions(
        base=doc["session"]["base"].get("sha") or spec.base,
        include_uncommitted=False,
        setup=spec.setup,
        setup_timeout=spec.setup_timeout,
        keep_paths=spec.keep_paths,
        setup_inputs=spec.setup_inputs,
        pool_capacity=capacity,
    )

    started = time.monotonic()
    status, exit_code, error = "completed", EXIT_CODES["ok"], None
    await store.call(_keep_reserve, store.store.path.parent)  # file I/O: off the loop
    try:
        log_dir = make_owned_dir(state_dir() / "logs") / session_id
        if everything:
            isolated = await run_isolated(
                spec.repo,
                everything,
                replace(spec.config, log_dir=log_dir),
                options,
                attempts=attempts,
                backend=backend,
                on_event=recorder.event,
                halt=spec.halt,
            )
            if isolated.infrastructure_error is not None:
                status, exit_code = "failed", EXIT_CODES["infrastructure"]
                error = isolated.infrastructure_error
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
    wall: float | None,
) -> dict[str, Any]:
    session_id = doc["session"]["id"]
    try:
        await store.flush()
    except StoreError as exc:  # a run could not be stored (a full state filesystem)
        status, exit_code = "failed", EXIT_CODES["infrastructure"]
        error = f"cannot store the session's runs: {exc}"
    doc["session"]["status"] = status
    doc["session"]["finished_at"] = _now()
    doc["session"]["error"] = error
    analysed = analysis.analyze_session(doc, wall_seconds=wall)
    if status == "completed":
        exit_code = analysis.session_exit_code(analysed)
    analysed["session"]["exit_code"] = exit_code
    try:
        await store.call(store.store.finish_session, session_id, status, exit_code, analysed)
    except StoreError as exc:
        # Never left "running": the smallest write that says the session failed, with the
        # reserve given back to a full filesystem first so that this write fits.
        why = f"cannot record the end of session {session_id}: {exc}"
        _release_reserve(store.store.path.parent)
        with contextlib.suppress(StoreError):
            await store.call(store.store.mark_failed, session_id, EXIT_CODES["infrastructure"], why)
        raise StoreError(why) from exc
    if status == "completed":
        await _forget_snapshot(store, analysed)
    return analysed


#: A file the size of a session's last write, kept next to the database while sessions run
#: and deleted when that write fails for want of space (the tests' logs filled the disk).
RESERVE_NAME = "store-reserve"
RESERVE_BYTES = 1 << 20


def _keep_reserve(directory: Path) -> None:
    path = directory / RESERVE_NAME
    with contextlib.suppress(OSError):
        if path.stat().st_size >= RESERVE_BYTES:
            return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return  # best effort: a full or read-only directory has no room for it anyway
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
    finally:
        os.close(fd)


def _release_reserve(directory: Path) -> None:
    with contextlib.suppress(OSError):
        (directory / RESERVE_NAME).unlink()


async def _forget_snapshot(store: BackgroundStore, doc: dict[str, Any]) -> None:
    """Delete a completed session's snapshot ref, unless a run is still left to resume."""
    ref = doc["session"]["base"].get("snapshot_ref")
    if not ref:
        return
    with contextlib.suppress(RefuteError, OSError):
        if any((await store.call(store.store.unfinished, doc["session"]["id"])).values()):
            return
        await delete_ref(await Repository.open(doc["session"]["repo"]), ref)
