"""What `refute check` (and `refute run`, before it creates anything) finds wrong with a plan.

Every problem is one line naming the hypothesis (or the control, or the setup) and the
field, and all of them are listed at once: shell syntax in a command that runs without a
shell (`refute.plan.lint`), a patch source that does not apply to its base, a command or
seed script that cannot be found as it will be resolved in a worktree of the base
(`refute.workspace.preflight`). A command that is missing while the plan has a setup is a
warning, not a problem: the setup may create it (a virtualenv's `.venv/bin/pytest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from refute.app.environments import find_leaks
from refute.app.isolated import resolve_refs, test_environment
from refute.app.spec import SessionSpec
from refute.document import CONTROL_ID
from refute.engine.sandbox import unavailable_reason
from refute.model import Hypothesis
from refute.plan import Plan
from refute.plan.lint import lint
from refute.workspace import preflight
from refute.workspace.checkouts import commit_diff
from refute.workspace.worktrees import Repository, resolve_base

__all__ = ["Finding", "Findings", "find_problems"]


@dataclass(frozen=True)
class Finding:
    """One problem (or warning): where it is (`hypotheses[1] (token-race).patch`), what."""

    where: str
    message: str
    hypothesis_id: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return {"where": self.where, "message": self.message, "hypothesis": self.hypothesis_id}


@dataclass
class Findings:
    """Problems make the plan unusable (exit 2); warnings are shown and run anyway; notes
    say what refute will do about the environment (an editable install redirected)."""

    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)


def _where(index: int | None, hyp: Hypothesis, name: str) -> str:
    if hyp.id == CONTROL_ID:
        return f"control.{name}"
    return f"hypotheses[{index}] ({hyp.id}).{name}"


async def find_problems(plan: Plan, spec: SessionSpec) -> Findings:
    """Everything wrong with `plan` (already validated and ranked into `spec`)."""
    found = Findings()
    found.problems.extend(Finding(p.where, p.message, p.hypothesis_id) for p in lint(plan))
    repo = await Repository.open(spec.repo)
    base = await resolve_base(repo, spec.base)
    everything = [*spec.hypotheses, *([spec.control] if spec.control else [])]
    shas = await resolve_refs(repo, everything)
    environment = await test_environment()
    env_path = environment.get("PATH", os.defpath)
    plan_index = {h.id: i for i, h in enumerate(plan.hypotheses)}
    for hyp in everything:
        index = plan_index.get(hyp.id)
        commit = shas[hyp.base] if hyp.base else base
        uncommitted = spec.include_uncommitted and not hyp.base
        change, reverse, source = await _change(repo, hyp, shas)
        if source is not None and change is not None:
            problem = await preflight.diff_problem(
                repo, commit, change, _what(hyp, shas), reverse=reverse, uncommitted=uncommitted
            )
            if problem:
                found.problems.append(Finding(_where(index, hyp, source), problem, hyp.id))
        argv = hyp.argv()
        if argv is None:  # the seed's script must be in the base: a setup does not make it
            problem = await preflight.seed_script_problem(
                repo, commit, hyp.id, patch=change, reverse=reverse, uncommitted=uncommitted
            )
            if problem:
                found.problems.append(Finding(_where(index, hyp, "test"), problem, hyp.id))
            continue
        problem = await preflight.command_problem(
            repo,
            commit,
            argv,
            env_path,
            patch=change,
            reverse=reverse,
            uncommitted=uncommitted,
        )
        if problem and spec.setup:
            message = f"{problem} (the setup may create it)"
            found.warnings.append(Finding(_where(index, hyp, "test"), message, hyp.id))
        elif problem:
            found.problems.append(Finding(_where(index, hyp, "test"), problem, hyp.id))
    if spec.setup:
        problem = await preflight.command_problem(
            repo, base, spec.setup, env_path, uncommitted=spec.include_uncommitted
        )
        if problem:
            found.problems.append(Finding("setup", problem))
    if any(hyp.isolation == "sandbox" for hyp in everything):
        why = await asyncio.to_thread(unavailable_reason)
        if why is not None:
            found.problems.append(Finding("isolation", f"'sandbox' is unavailable: {why}"))
    commits = {h.id: shas[h.base] if h.base else base for h in everything}
    leaks = await find_leaks(repo, everything, environment, commits, setup=spec.setup)
    for kind, items in ((found.problems, leaks.problems), (found.notes, leaks.redirected)):
        for leak in items:
            owner = next((h for h in everything if h.id == leak.hypothesis_id), None)
            where = "setup" if owner is None else _where(plan_index.get(owner.id), owner, "test")
            kind.append(Finding(where, leak.message, leak.hypothesis_id))
    return found


async def _change(
    repo: Repository, hyp: Hypothesis, shas: dict[str, str]
) -> tuple[bytes | None, bool, str | None]:
    """The hypothesis' change as a diff, whether it is applied in reverse, and its field."""
    diff: bytes | None = None
    if hyp.id == CONTROL_ID:
        return None, False, None
    if hyp.patch:
        with contextlib.suppress(OSError):  # an unreadable file: diff_problem says so
            diff = Path(hyp.patch).read_bytes()
        return diff or b"", False, "patch"
    if hyp.patch_text:
        diff = hyp.patch_text.encode()
    elif hyp.commit or hyp.revert:
        diff = await commit_diff(repo, shas[hyp.commit or hyp.revert or ""])
    source = next((n for n in ("patch_text", "commit", "revert") if getattr(hyp, n)), None)
    return diff, bool(hyp.revert), source


def _what(hyp: Hypothesis, shas: dict[str, str]) -> str:
    if hyp.patch:
        return f"patch {Path(hyp.patch).name}"
    if hyp.patch_text:
        return "the inline patch_text"
    if hyp.commit:
        return f"commit {shas[hyp.commit][:12]}"
    return f"the revert of commit {shas[hyp.revert or ''][:12]}"
