"""What a session runs: a validated, ranked plan with the command line's overrides applied
(`spec_from_plan`), or what a stored session ran (`spec_from_document`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from refute.document import CONTROL_ID
from refute.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_KEEP_PATHS,
    DEFAULT_SETUP_TIMEOUT,
    DEFAULT_TEST_TIMEOUT,
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
    keep_worktrees: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    parallel_decision: dict[str, Any] | None = None


def spec_from_document(
    doc: dict[str, Any], config: FalsificationConfig | None = None
) -> SessionSpec:
    """Rebuild what a stored session ran (self-contained: the plan file may have changed)."""
    session = doc["session"]
    settings = session.get("settings") or {}
    overrides = {int(k): TestResult(v) for k, v in (settings.get("exit_codes") or {}).items()}
    cfg = config or FalsificationConfig(
        test_timeout=float(settings.get("timeout") or DEFAULT_TEST_TIMEOUT),
        max_concurrent_tests=settings.get("concurrency") or DEFAULT_CONCURRENCY,
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
        setup_timeout=float(settings.get("setup_timeout") or DEFAULT_SETUP_TIMEOUT),
        keep_paths=tuple(settings.get("keep_paths") or DEFAULT_KEEP_PATHS),
        settings=settings,
        parallel_decision=session.get("parallel_decision"),
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
) -> SessionSpec:
    """Rank a validated plan and apply the command line's overrides.

    `timeout` replaces the plan's default timeout (a hypothesis' own `timeout` still wins);
    `repeat` replaces every repeat count, the control's included; `parallel=False` runs one
    test at a time.
    """
    repository = await Repository.open(repo)
    # A bad base is bad input: refused here, before a session is created or anything runs.
    await resolve_base(repository, plan.base)
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
