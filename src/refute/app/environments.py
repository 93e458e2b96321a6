"""No leaks between the user's checkout and a test: each command and its Python environment
are looked at before anything runs (`refute.workspace.leaks`, `refute.workspace.pythonenv`).

An editable install of the repository in the interpreter a test runs (the user's usual
venv) would make the test import the USER'S CHECKOUT instead of its worktree, so every
patch would have no effect. Where that can be redirected — every kind pip, setuptools,
hatchling and flit make, but a few old or exotic ones — the test gets a PYTHONPATH of its
own worktree's directories (`{worktree}/src`), which come before site-packages and before
the installs' meta-path finders: the user's venv just works, unchanged, with no install
per worktree. Everything else (an argv or environment entry inside the checkout, an
install that cannot be redirected, a setup that would install into an environment outside
its worktree) is a problem: one line saying what leaks and how to fix it; refute refuses
to run (exit 2). docs/isolation.md has the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from refute.model import Hypothesis
from refute.workspace import leaks
from refute.workspace.git import run_git
from refute.workspace.pool import pool_root
from refute.workspace.pythonenv import Editable
from refute.workspace.worktrees import Repository

__all__ = ["Leak", "Leaks", "find_leaks"]


@dataclass(frozen=True)
class Leak:
    """A problem (or, for `redirected`, a note) about one command: who and what."""

    hypothesis_id: str | None  # None: the setup
    message: str


@dataclass
class Leaks:
    """What `find_leaks` found: problems refuse the plan; `worktree_env` is what each
    hypothesis' jobs need (a PYTHONPATH into their own worktree); `redirected` says so."""

    problems: list[Leak] = field(default_factory=list)
    redirected: list[Leak] = field(default_factory=list)
    worktree_env: dict[str, dict[str, str]] = field(default_factory=dict)


async def find_leaks(
    repo: Repository,
    hypotheses: Sequence[Hypothesis],
    environment: Mapping[str, str],
    commits: Mapping[str, str],
    *,
    setup: Sequence[str] | None = None,
) -> Leaks:
    """Check every test command of `hypotheses` (and the setup) for leaks into `repo`'s
    checkout. `environment` is what tests inherit; `commits` the base sha of each."""
    found = Leaks()
    # Where a worktree would be: only a stand-in (paths inside it are the test's own).
    stand_in = pool_root(repo) / "slots" / "stand-in"
    memo: dict[object, list[Editable]] = {}  # per interpreter: the same for most tests
    for hyp in hypotheses:
        argv = hyp.argv()
        if argv is None:
            continue
        env = {**environment, **hyp.env}
        redirect = leaks.redirect_command(
            argv, env, checkout=repo.root, worktree=stand_in, cwd=repo.root, memo=memo
        )
        who = hyp.id
        if redirect.refusal:
            found.problems.append(Leak(who, redirect.refusal))
            continue
        if not redirect.pythonpath:
            continue
        entries = [os.path.relpath(p, stand_in) for p in redirect.pythonpath]
        missing = [e for e in entries if not await _tracked_dir(repo, commits[hyp.id], e)]
        if missing:
            found.problems.append(
                Leak(
                    who,
                    f"the editable install of your checkout imports from {', '.join(missing)},"
                    " which is not committed at the base, so the worktree cannot stand in for"
                    " it: commit it, or give the plan a per-worktree venv in its setup",
                )
            )
            continue
        paths = [f"{{worktree}}/{e}" if e != "." else "{worktree}" for e in entries]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        found.worktree_env[hyp.id] = {"PYTHONPATH": os.pathsep.join(paths)}
        found.redirected.append(
            Leak(
                who,
                f"imports the worktree's {', '.join(entries)} instead of your checkout's"
                f" (editable install; {'; '.join(redirect.reasons)})",
            )
        )
    if setup:
        env = dict(environment)
        messages = leaks.path_leaks(setup, env, repo.root, stand_in)
        outside = leaks.setup_writes_outside(setup, env, worktree=stand_in)
        found.problems.extend(Leak(None, m) for m in [*messages, *([outside] if outside else [])])
    return found


async def _tracked_dir(repo: Repository, commit: str, entry: str) -> bool:
    if entry in (".", ""):
        return True
    result = await run_git(
        ["cat-file", "-t", "--end-of-options", f"{commit}:{entry}"], cwd=repo.root, check=False
    )
    return result.exit_code == 0 and result.stdout.strip() == "tree"
