"""Measured isolation costs feed the parallelization decision; submodules in worktrees."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from gitutil import fingerprint, git, make_repo
from refute import (
    AsyncTestExecutor,
    CostModel,
    FalsificationConfig,
    Hypothesis,
    TestResult,
)
from refute.app.isolated import IsolationOptions, run_isolated
from refute.app.spec import measured_cost_model
from refute.plan.cost import SEED_FIXED_OVERHEAD, SEED_PER_HYPOTHESIS_OVERHEAD
from refute.workspace import calibration
from refute.workspace.worktrees import Repository

PY = sys.executable


def _hyp(hid: str, script: str = "true", estimate: float = 0.0) -> Hypothesis:
    return Hypothesis(  # noqa: S604 - `shell` is the Hypothesis field, not a subprocess call
        id=hid,
        description=f"test {hid}",
        test=script,
        shell=True,
        timeout=60,
        estimated_test_time=estimate,
    )


def _failures(run) -> list[tuple[str, str, str, str]]:
    return [
        (r.hypothesis_id, r.result.name, r.error_message, (r.stdout + r.stderr)[-400:])
        for r in run.results
        if r.result is not TestResult.PASS
    ]


def _seed_overhead(n: int) -> float:
    return SEED_FIXED_OVERHEAD + SEED_PER_HYPOTHESIS_OVERHEAD * n


# -- calibration -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_measurements_the_seed_costs_apply(tmp_path):
    repo = await Repository.open(make_repo(tmp_path / "repo"))
    assert calibration.load(repo.id) == {}
    assert measured_cost_model(repo.id) is None

    cfg = FalsificationConfig()
    executor = AsyncTestExecutor(cfg, cost_model=measured_cost_model(repo.id))
    five = [_hyp(f"h{i}", estimate=60.0) for i in range(5)]
    two = [_hyp(f"h{i}", estimate=10.0) for i in range(2)]
    assert executor.should_parallelize(five) is True
    assert executor.should_parallelize(two) is False
    decision = executor.explain_parallelization(five)
    assert decision.cost_source == "seed"
    assert decision.overhead == pytest.approx(_seed_overhead(5))


@pytest.mark.asyncio
async def test_a_run_records_its_costs_and_the_decision_uses_them(tmp_path):
    repo_path = make_repo(tmp_path / "repo")
    other = await Repository.open(make_repo(tmp_path / "other"))
    repo = await Repository.open(repo_path)
    hyps = [_hyp("alpha"), _hyp("beta")]
    cfg = FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5)
    setup = [PY, "-c", "import time; time.sleep(0.2)"]

    first = await run_isolated(repo_path, hyps, cfg, IsolationOptions(setup=setup))
    assert _failures(first) == []
    measured = calibration.load(repo.id)
    for metric in ("worktree_create", "startup", "cleanup", "setup"):
        assert metric in measured, measured
        assert measured[metric]["mean"] > 0, (metric, measured)
        assert measured[metric]["count"] >= 1, (metric, measured)
    assert measured["worktree_create"]["count"] == 2
    assert measured["setup"]["mean"] >= 0.15, measured  # the setup sleeps 0.2 s
    assert "pool_acquire" not in measured  # both slots were new

    second = await run_isolated(repo_path, hyps, cfg, IsolationOptions(setup=setup))
    assert _failures(second) == []
    measured = calibration.load(repo.id)
    assert measured["pool_acquire"]["mean"] > 0, measured
    assert measured["pool_acquire"]["count"] == 2
    assert measured["startup"]["count"] == 2

    model = measured_cost_model(repo.id)
    assert isinstance(model, CostModel)
    assert model.source == "measured"
    assert model.fixed == pytest.approx(measured["startup"]["mean"])
    assert model.per_hypothesis == pytest.approx(
        measured["pool_acquire"]["mean"] + measured["setup"]["mean"] + measured["cleanup"]["mean"]
    )
    assert model.per_hypothesis >= 0.15  # the setup is in it

    executor = AsyncTestExecutor(cfg, cost_model=model)
    two = [_hyp(f"h{i}", estimate=10.0) for i in range(2)]
    decision = executor.explain_parallelization(two)
    assert decision.cost_source == "measured"
    assert decision.overhead == pytest.approx(model.overhead(2))
    assert decision.overhead != pytest.approx(_seed_overhead(2))
    # Real costs are far below the seed's guesses: two 10 s tests are now worth running
    # side by side, which the seed's 7 + 16 n overhead forbade.
    assert decision.parallel is True
    assert AsyncTestExecutor(cfg).should_parallelize(two) is False

    # Measurements belong to their repository.
    assert measured_cost_model(other.id) is None


# -- submodules --------------------------------------------------------------------------


def _repo_with_submodule(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A superproject recording sub at commit v1; sub's origin has v1 and v2.

    Returns the repository and the submodule's commits. The origin is deleted afterwards:
    only the user's own checkout of the submodule can populate a worktree."""
    origin = make_repo(tmp_path / "sub-origin", {"lib.txt": "v1\n"})
    commits = {"v1": git(origin, "rev-parse", "HEAD").strip()}
    (origin / "lib.txt").write_text("v2\n", encoding="utf-8")
    git(origin, "commit", "-q", "-am", "v2")
    commits["v2"] = git(origin, "rev-parse", "HEAD").strip()

    repo = make_repo(tmp_path / "repo", {"README.md": "super\n", ".gitignore": "*.log\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(origin), "sub")
    git(repo / "sub", "checkout", "-q", "--detach", commits["v1"])
    git(repo, "add", "sub")
    git(repo, "commit", "-q", "-m", "add sub at v1")
    assert git(repo, "ls-tree", "HEAD", "sub").split()[2] == commits["v1"]
    assert (repo / "sub" / ".git").exists()
    assert git(repo, "status", "--porcelain") == ""
    shutil.rmtree(origin)
    return repo, commits


CHECK_V1 = (
    'set -e; grep -qx v1 sub/lib.txt; test "$(git -C sub rev-parse HEAD)" = "{v1}";'
    ' test ! -e sub/junk.txt; test -z "$(git -C sub status --porcelain --untracked-files=all)";'
    ' test -z "$(git status --porcelain --untracked-files=all)"'
)


@pytest.mark.asyncio
async def test_submodules_are_populated_from_the_users_checkout(tmp_path):
    repo_path, commits = _repo_with_submodule(tmp_path)
    before = fingerprint(repo_path)
    hyps = [_hyp("alpha", CHECK_V1.format(v1=commits["v1"])), _hyp("beta", "cat sub/lib.txt")]
    cfg = FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5)

    run = await run_isolated(repo_path, hyps, cfg)

    assert _failures(run) == []
    assert run.results[1].stdout == "v1\n"
    for path in run.worktrees.values():
        worktree = Path(path)
        assert (worktree / "sub" / "lib.txt").read_text(encoding="utf-8") == "v1\n"
        assert git(worktree / "sub", "rev-parse", "HEAD").strip() == commits["v1"]
        assert git(worktree, "status", "--porcelain", "--untracked-files=all") == ""
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_submodule_at_the_recorded_commit_not_the_users_checked_out_one(tmp_path):
    repo_path, commits = _repo_with_submodule(tmp_path)
    # The user has moved their submodule checkout on to v2 without committing that.
    git(repo_path / "sub", "checkout", "-q", "--detach", commits["v2"])
    before = fingerprint(repo_path)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)

    committed = await run_isolated(repo_path, [_hyp("show", "cat sub/lib.txt")], cfg)
    assert _failures(committed) == []
    assert committed.results[0].stdout == "v1\n"

    # With the uncommitted work included, the snapshot records sub at v2.
    uncommitted = await run_isolated(
        repo_path,
        [_hyp("show", "cat sub/lib.txt")],
        cfg,
        IsolationOptions(include_uncommitted=True),
    )
    assert _failures(uncommitted) == []
    assert uncommitted.results[0].stdout == "v2\n"
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_a_dirtied_submodule_is_pristine_in_the_next_run(tmp_path):
    repo_path, commits = _repo_with_submodule(tmp_path)
    before = fingerprint(repo_path)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)
    dirty = (
        "set -e; echo tampered >> sub/lib.txt; echo junk > sub/junk.txt;"
        " echo 'x' > sub/debug.log; mkdir -p sub/newdir && echo y > sub/newdir/f"
    )
    first = await run_isolated(repo_path, [_hyp("dirty", dirty)], cfg)
    assert _failures(first) == []
    slot = Path(first.worktrees["dirty"])
    assert (slot / "sub" / "junk.txt").exists()

    second = await run_isolated(repo_path, [_hyp("check", CHECK_V1.format(v1=commits["v1"]))], cfg)
    assert _failures(second) == []
    assert second.worktrees["check"] == str(slot), "the slot should have been reused"
    assert (slot / "sub" / "lib.txt").read_text(encoding="utf-8") == "v1\n"
    assert not (slot / "sub" / "newdir").exists()
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_a_commit_made_inside_the_submodule_is_undone(tmp_path):
    repo_path, commits = _repo_with_submodule(tmp_path)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)
    commit_inside = (
        "set -e; cd sub; echo v3 > lib.txt;"
        " git -c user.name=t -c user.email=t@t.invalid commit -q -am v3"
    )
    first = await run_isolated(repo_path, [_hyp("commit", commit_inside)], cfg)
    assert _failures(first) == []
    slot = Path(first.worktrees["commit"])
    assert git(slot / "sub", "rev-parse", "HEAD").strip() != commits["v1"]

    second = await run_isolated(repo_path, [_hyp("check", CHECK_V1.format(v1=commits["v1"]))], cfg)
    assert _failures(second) == []
    assert second.worktrees["check"] == str(slot)


# -- a calibration file that is not what refute writes ------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        '{"r": {"worktree_create": {"mean": "fast", "count": 1}}}',
        '{"r": {"worktree_create": {"mean": 1.0, "count": null}}}',
        '{"r": {"worktree_create": {"mean": true, "count": 1}}}',
        '{"r": {"worktree_create": {"mean": -1, "count": 1}}}',
        '{"r": {"worktree_create": [1, 2]}}',
        '{"r": [1, 2]}',
        "[1, 2]",
        '"text"',
        "{not json",
        "\xff\xfe",
    ],
    ids=[
        "mean-text",
        "count-null",
        "mean-bool",
        "mean-negative",
        "metric-list",
        "repo-list",
        "top-list",
        "top-string",
        "not-json",
        "not-utf8",
    ],
)
def test_a_corrupt_calibration_file_is_reported_ignored_and_left_alone(content):
    path = calibration.files()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("latin-1")
    path.write_bytes(data)
    found = calibration.problem()
    assert found is not None
    assert found[0] == path
    assert calibration.load("r") == {}
    assert calibration.measured_costs("r") is None
    calibration.record("r", {"worktree_create": [0.5], "setup": [1.0]})  # no exception
    assert path.read_bytes() == data  # left for `refute clean` to move aside


def test_a_directory_where_a_calibration_file_belongs_is_reported():
    for path in calibration.files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
        found = calibration.problem()
        assert found == (path, "is a directory, not a file")
        assert calibration.load("r") == {}
        path.rmdir()
    assert calibration.problem() is None


def test_unknown_metrics_are_kept_and_valid_ones_still_recorded():
    path = calibration.files()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"r": {"future_metric": "anything", "setup": {"mean": 2, "count": 1}}}')
    assert calibration.problem() is None
    calibration.record("r", {"setup": [4.0]})
    stored = json.loads(path.read_text())
    assert stored["r"]["future_metric"] == "anything"
    assert stored["r"]["setup"]["count"] == 2
