"""The git layer: typed errors, no inherited repository redirection, no user hooks.

Every test here runs real git in real repositories under tmp_path. Tests that run refute
against a repository compare its fingerprint before and after, and check that no refute
worktree stays leased (free pool slots are kept by design and must be clean).
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from gitutil import (
    FILES,
    fingerprint,
    git,
    make_repo,
)
from gitutil import (
    assert_pool_idle as _assert_pool_idle,
)
from gitutil import (
    check_file_hyp as _check_file_hyp,
)
from gitutil import (
    failures as _failures,
)
from gitutil import (
    home as _home,
)
from gitutil import (
    isolation_config as _config,
)
from refute.app.isolated import IsolatedRun, IsolationOptions, run_isolated
from refute.errors import GitError
from refute.model import Hypothesis, TestResult
from refute.workspace.git import run_git

PY = sys.executable

# Prints the test's working directory; fails unless `name` exists there with `content`.


# -- helpers ---------------------------------------------------------------------------------


def _assert_ran_in_worktrees(run: IsolatedRun, repo: Path) -> None:
    home = _home().resolve()
    assert set(run.worktrees) == {r.hypothesis_id for r in run.results}
    for result in run.results:
        where = Path(run.worktrees[result.hypothesis_id]).resolve()
        assert where.is_relative_to(home), where
        assert not where.is_relative_to(repo.resolve()), where
        assert Path(result.stdout.strip()).resolve() == where, result.stdout


def _make_dirty(repo: Path) -> None:
    """Some uncommitted work, so that include_uncommitted has something to snapshot."""
    (repo / "README.md").write_text("hello, uncommitted\n", encoding="utf-8")
    (repo / "new.txt").write_text("untracked\n", encoding="utf-8")
    (repo / "debug.log").write_text("ignored\n", encoding="utf-8")
    git(repo, "add", "new.txt")


# -- run_git errors --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_git_failure_raises_git_error_with_details(tmp_path):
    repo = make_repo(tmp_path / "repo")
    args = ["rev-parse", "--verify", "--end-of-options", "no-such-ref^{commit}"]
    with pytest.raises(GitError) as info:
        await run_git(args, cwd=repo)
    err = info.value
    assert err.command == args
    assert err.exit_code == 128
    assert "fatal" in err.stderr
    assert "no-such-ref" in str(err)

    unknown = ["no-such-subcommand"]
    with pytest.raises(GitError) as info:
        await run_git(unknown, cwd=repo)
    assert info.value.command == unknown
    assert info.value.exit_code != 0
    assert "not a git command" in info.value.stderr


@pytest.mark.asyncio
async def test_run_git_outside_a_repository_and_check_false(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError) as info:
        await run_git(["rev-parse", "--show-toplevel"], cwd=plain)
    assert info.value.exit_code == 128
    assert "not a git repository" in info.value.stderr

    result = await run_git(["rev-parse", "--show-toplevel"], cwd=plain, check=False)
    assert result.exit_code == 128
    assert "not a git repository" in result.stderr
    assert result.args == ["rev-parse", "--show-toplevel"]


@pytest.mark.asyncio
async def test_run_git_timeout_raises_and_kills_the_command(tmp_path):
    repo = make_repo(tmp_path / "repo")
    # A shell alias: git starts `sh -c 'sleep 30'`, which must die with it.
    args = ["-c", "alias.hang=!sleep 30", "hang"]
    with pytest.raises(GitError) as info:
        await run_git(args, cwd=repo, timeout=0.5)
    assert info.value.command == args
    assert info.value.exit_code == 124
    assert "timed out" in str(info.value)
    # The autouse fixture fails the test if the sleep is still alive.


# -- inherited GIT_DIR / GIT_WORK_TREE / GIT_INDEX_FILE --------------------------------------


def _redirect_git_to(monkeypatch: pytest.MonkeyPatch, user: Path) -> None:
    monkeypatch.setenv("GIT_DIR", str(user / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(user))
    monkeypatch.setenv("GIT_INDEX_FILE", str(user / ".git" / "index"))


@pytest.mark.asyncio
@pytest.mark.parametrize("include_uncommitted", [False, True])
async def test_inherited_git_variables_do_not_redirect_to_the_users_repo(
    tmp_path, monkeypatch, include_uncommitted
):
    user = make_repo(tmp_path / "user", {**FILES, "only-user.txt": "user\n"})
    _make_dirty(user)
    other = make_repo(tmp_path / "other", {**FILES, "only-other.txt": "other\n"})
    (other / "only-other.txt").write_text("other, uncommitted\n", encoding="utf-8")
    expected = "other, uncommitted\n" if include_uncommitted else "other\n"
    before_user, before_other = fingerprint(user), fingerprint(other)
    other_head = git(other, "rev-parse", "HEAD").strip()

    _redirect_git_to(monkeypatch, user)
    hyps = [_check_file_hyp(f"h{i}", "only-other.txt", expected) for i in range(3)]
    run = await run_isolated(
        other, hyps, _config(), IsolationOptions(include_uncommitted=include_uncommitted)
    )
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var)

    assert _failures(run) == []
    _assert_ran_in_worktrees(run, other)
    if include_uncommitted:
        assert run.snapshot_of == other_head
        assert git(other, "rev-parse", f"{run.base}^").strip() == other_head
    else:
        assert run.base == other_head
    assert fingerprint(user) == before_user
    assert fingerprint(other) == before_other
    assert git(user, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(user, "for-each-ref", "refs/refute/") == ""
    _assert_pool_idle(other)


@pytest.mark.asyncio
@pytest.mark.parametrize("include_uncommitted", [False, True])
async def test_inherited_git_variables_pointing_at_the_target_repo(
    tmp_path, monkeypatch, include_uncommitted
):
    user = make_repo(tmp_path / "user", FILES)
    _make_dirty(user)
    expected = "hello, uncommitted\n" if include_uncommitted else "hello\n"
    before = fingerprint(user)

    _redirect_git_to(monkeypatch, user)
    hyps = [_check_file_hyp(f"h{i}", "README.md", expected) for i in range(3)]
    run = await run_isolated(
        user, hyps, _config(), IsolationOptions(include_uncommitted=include_uncommitted)
    )
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var)

    assert _failures(run) == []
    _assert_ran_in_worktrees(run, user)
    assert fingerprint(user) == before
    _assert_pool_idle(user)


@pytest.mark.asyncio
async def test_test_commands_do_not_inherit_git_redirection(tmp_path, monkeypatch):
    """A test that uses git in its worktree works on that worktree, not the user's repo.

    With GIT_DIR/GIT_WORK_TREE/GIT_INDEX_FILE inherited from the user's shell, `git add`
    in a hypothesis' test would write the user's index, and `git rev-parse` would name
    the user's checkout instead of the worktree the test runs in.
    """
    user = make_repo(tmp_path / "user", FILES)
    (user / "README.md").write_text("unstaged work\n", encoding="utf-8")
    before = fingerprint(user)
    _redirect_git_to(monkeypatch, user)
    # `git add -A` in the worktree: harmless there, but it would stage the user's work.
    script = (
        "echo scratch > scratch.txt; git add -A;"
        ' test "$(git rev-parse --show-toplevel)" = "$(pwd -P)"'
        " && git diff --cached --name-only | grep -qx scratch.txt"
    )
    hyps = [
        Hypothesis(id=f"g{i}", description="uses git", test=["/bin/sh", "-c", script])
        for i in range(2)
    ]
    run = await run_isolated(user, hyps, _config(), IsolationOptions())
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var)

    assert fingerprint(user) == before
    assert _failures(run) == []


# -- the user's hooks never run --------------------------------------------------------------

HOOK = """#!/bin/sh
echo "$0 $*" >> "{marker}"
exit 1
"""
HOOK_NAMES = (
    "post-checkout",
    "pre-commit",
    "reference-transaction",
    "post-index-change",
    "pre-auto-gc",
    "post-rewrite",
)


def _install_hooks(hooks_dir: Path, marker: Path) -> None:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in HOOK_NAMES:
        hook = hooks_dir / name
        hook.write_text(HOOK.format(marker=marker), encoding="utf-8")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.asyncio
@pytest.mark.parametrize("include_uncommitted", [False, True])
@pytest.mark.parametrize("where", ["dot-git-hooks", "core-hookspath"])
async def test_users_failing_hooks_are_not_run(tmp_path, include_uncommitted, where):
    user = make_repo(tmp_path / "user", FILES)
    _make_dirty(user)  # before the hooks: the user's own `git add` would run them
    marker = tmp_path / "markers" / "hook-ran"
    marker.parent.mkdir()
    if where == "dot-git-hooks":
        hooks_dir = user / ".git" / "hooks"
    else:
        hooks_dir = tmp_path / "shared-hooks"
        git(user, "config", "core.hooksPath", str(hooks_dir))
    _install_hooks(hooks_dir, marker)

    # Control: git itself does run these hooks (in a scratch repository).
    scratch = make_repo(tmp_path / "scratch", FILES)
    git(scratch, "-c", f"core.hooksPath={hooks_dir}", "checkout", "-q", "-b", "x", check=False)
    assert marker.exists(), "the hooks are not executable: the control did not fire"
    marker.unlink()

    expected = "hello, uncommitted\n" if include_uncommitted else "hello\n"
    before = fingerprint(user)
    hyps = [_check_file_hyp(f"h{i}", "README.md", expected) for i in range(3)]
    opts = IsolationOptions(include_uncommitted=include_uncommitted)
    for _ in range(2):  # the second run reuses (resets) the pool's free slots
        run = await run_isolated(user, hyps, _config(), opts)
        assert not marker.exists(), marker.read_text(encoding="utf-8")
        assert _failures(run) == []
        assert [r.result for r in run.results] == [TestResult.PASS] * 3
        _assert_ran_in_worktrees(run, user)
        assert fingerprint(user) == before
    assert sorted(p.name for p in marker.parent.iterdir()) == []
    _assert_pool_idle(user)
