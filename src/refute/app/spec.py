"""What a session runs: a validated, ranked plan with the command line's overrides applied
(`spec_from_plan`), or what a stored session ran (`spec_from_document`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from refute.app.isolated import resolve_refs
from refute.document import CONTROL_ID, SessionDocument, explain
from refute.errors import StoreError
from refute.model import (
    DEFAULT_KEEP_PATHS,
    DEFAULT_SETUP_TIMEOUT,
    FalsificationConfig,
    Hypothesis,
    TestResult,
)
from refute.plan import Plan, rank, to_config, to_control, to_hypotheses
from refute.plan.cost import CostModel, decide_parallel
from refute.workspace import calibration
from refute.workspace.worktrees import Repository, resolve_base

__all__ = ["SessionSpec", "measured_cost_model", "spec_from_document", "spec_from_plan"]


def measured_cost_model(repo_id: str) -> CostModel | None:
    """The cost model measured for a repository, or None before its first session."""
    costs = calibration.measured_costs(repo_id)
    return CostModel.measured(costs.fixed, costs.per_hypothesis) if costs else None


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
    setup_timeout: float = DEFAULT_SETUP_TIMEOUT
    keep_paths: tuple[str, ...] = DEFAULT_KEEP_PATHS
    setup_inputs: tuple[str, ...] | None = None  # None: the usual lock and manifest files
    keep_worktrees: bool = False
    halt: bool = True  # a control that does not reproduce stops the other runs
    settings: dict[str, Any] = field(default_factory=dict)
    parallel_decision: dict[str, Any] | None = None


def _setup_inputs(doc: dict[str, Any]) -> tuple[str, ...] | None:
    inputs = (doc.get("session", {}).get("settings") or {}).get("setup_inputs")
    return tuple(str(item) for item in inputs) if isinstance(inputs, list) else None


def spec_from_document(
    doc: dict[str, Any], config: FalsificationConfig | None = None
) -> SessionSpec:
    """Rebuild what a stored session ran (self-contained: the plan file may have changed).

    The document is read through `refute.document.SessionDocument` once; a stored
    document that does not validate is a StoreError. The base is the recorded commit (the
    snapshot of uncommitted work, when the session took one); `refute.app.resume` refuses
    a session that recorded none rather than resolve the ref again.
    """
    try:
        document = SessionDocument.model_validate(doc)
    except ValidationError as exc:
        raise StoreError(f"the stored session document is malformed: {explain(exc)}") from exc
    session = document.session
    settings = session.settings
    overrides = {int(k): TestResult(v) for k, v in settings.exit_codes.items()}
    cfg = config or FalsificationConfig(
        test_timeout=settings.timeout,
        max_concurrent_tests=settings.concurrency,
        exit_code_overrides=overrides,
    )
    hyps = [
        Hypothesis(
            id=h.id,
            description=h.description,
            test=h.test,
            shell=False,  # `test` was stored as the final argv (a shell test as sh -c ...)
            patch=h.patch,
            env=dict(h.env),
            repeat=h.repeat or 1,
            timeout=h.timeout,
            estimated_test_time=h.estimated_test_time,
            runner=h.runner,
            failure_pattern=h.failure_pattern,
            patch_text=h.patch_text,
            commit=h.commit,
            revert=h.revert,
            base=h.base,
            isolation=h.isolation,
        )
        for h in document.hypotheses
    ]
    control = None
    if document.control is not None:
        control = Hypothesis(
            id=CONTROL_ID,
            description="control: the unmodified base",
            test=document.control.test,
            env=dict(document.control.env),
            repeat=document.control.repeat or 1,
            timeout=document.control.timeout,
            runner=document.control.runner,
            failure_pattern=document.control.failure_pattern,
            isolation=document.control.isolation,
        )
    decision = session.parallel_decision
    return SessionSpec(
        repo=Path(session.repo),
        plan_path=session.plan_path or "",
        bug=session.bug,
        hypotheses=hyps,
        specs=[
            h.model_dump(mode="json", by_alias=True, exclude={"runs"}, exclude_unset=True)
            for h in document.hypotheses
        ],
        config=cfg,
        base=session.base.sha or session.base.ref or "HEAD",
        include_uncommitted=False,  # the stored sha already contains the snapshot
        control=control,
        setup=settings.setup,
        setup_timeout=settings.setup_timeout,
        setup_inputs=_setup_inputs(doc),
        keep_paths=tuple(settings.keep_paths or DEFAULT_KEEP_PATHS),
        settings=settings.model_dump(mode="json", by_alias=True, exclude_unset=True),
        parallel_decision=(
            decision.model_dump(mode="json", by_alias=True, exclude_unset=True)
            if decision is not None
            else None
        ),
    )


async def spec_from_plan(
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
    halt: bool = True,
    sandbox: bool = False,
) -> SessionSpec:
    """Rank a validated plan and apply the command line's overrides.

    `timeout` replaces the plan's default timeout (a hypothesis' own `timeout` still wins);
    `repeat` replaces every repeat count, the control's included; `parallel=False` runs one
    test at a time; `sandbox` runs every test (the control's too) with `isolation: sandbox`.
    """
    repository = await Repository.open(repo)
    # A bad base is bad input: refused here, before a session is created or anything runs.
    await resolve_base(repository, plan.base)
    order = rank(plan, max_hypotheses=max_hypotheses)
    by_id = order.by_id()
    hypotheses = to_hypotheses(plan, order.specs)
    # Every commit a hypothesis names (base, commit, revert) must exist: bad input now. The
    # full shas are what the session records, so a resume tests the same commits.
    shas = await resolve_refs(repository, hypotheses)
    for hyp in hypotheses:
        for name in ("base", "commit", "revert"):
            ref = getattr(hyp, name)
            if ref:
                setattr(hyp, name, shas[ref])
    control = to_control(plan)
    if sandbox:
        for hyp in [*hypotheses, *([control] if control else [])]:
            hyp.isolation = "sandbox"
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
    cost = measured_cost_model(repository.id) or CostModel.from_config(config)
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
        setup_inputs=tuple(plan.setup_inputs) if plan.setup_inputs is not None else None,
        keep_paths=tuple(plan.keep_paths) if plan.keep_paths is not None else DEFAULT_KEEP_PATHS,
        keep_worktrees=keep_worktrees,
        halt=halt,
        settings={
            "concurrency": config.concurrency(),
            "timeout": config.test_timeout,
            "repeat": repeat if repeat is not None else plan.defaults.repeat,
            "parallel": parallel,
            "halt": halt,
            "max_hypotheses": max_hypotheses if max_hypotheses is not None else plan.max_hypotheses,
            "dropped": [item.spec.id for item in order.dropped],
            "ignored_dependencies": [list(pair) for pair in order.ignored_dependencies],
        },
        parallel_decision={**asdict(decision), "parallel_time": decision.parallel_time},
    )
