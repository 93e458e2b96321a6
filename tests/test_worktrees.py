"""Worktrees: base resolution, concurrent creation, patches, setup, hostile ids.

Real repositories under tmp_path, real git and real test processes. Every test that runs
refute against a repository compares the repository's fingerprint before and after and
checks that no refute worktree stays leased (the pool keeps free slots by design; each
must be clean).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
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
from refute.analysis import run_evidence
from refute.app.isolated import IsolationOptions, run_isolated
from refute.errors import (
    ConfigError,
    InvalidIdError,
    NotOwnedError,
    RepositoryError,
    WorktreeError,
)
from refute.model import (
    Hypothesis,
    TestResult,
    check_id,
)
from refute.paths import MARKER_FILE, is_owned_dir, make_owned_dir, owned_chain
from refute.workspace.pool import WorktreePool
from refute.workspace.worktrees import (
    Repository,
    force_rmtree,
    forget_admin_entry,
    resolve_base,
    verify_worktree,
)

PY = sys.executable

# Prints its working directory; fails unless `name` exists there with `content`.


# -- helpers ---------------------------------------------------------------------------------


def _assert_nothing_created(repo: Path) -> None:
    worktrees_dir = _home() / "cache" / "worktrees"
    assert not worktrees_dir.exists() or not any(worktrees_dir.rglob("*")), list(
        worktrees_dir.rglob("*")
    )


def _entries(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


# -- base resolution -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_empty_repository_is_refused(tmp_path):
    repo = make_repo(tmp_path / "empty", commit=False)
    before = fingerprint(repo)
    with pytest.raises(RepositoryError, match="no commits"):
        await run_isolated(repo, [_check_file_hyp("h1", "README.md", "hello\n")], _config())
    with pytest.raises(RepositoryError, match="no commits"):
        await resolve_base(await Repository.open(repo), "HEAD")
    assert fingerprint(repo) == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    _assert_nothing_created(repo)


@pytest.mark.asyncio
async def test_detached_head_is_a_valid_base(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    (repo / "README.md").write_text("second\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "second")
    first = git(repo, "rev-parse", "HEAD~1").strip()
    git(repo, "checkout", "-q", "--detach", first)
    assert git(repo, "symbolic-ref", "-q", "HEAD", check=False) == ""
    before = fingerprint(repo)

    run = await run_isolated(
        repo, [_check_file_hyp(f"h{i}", "README.md", "hello\n") for i in range(2)], _config()
    )
    assert run.base == first
    assert run.snapshot_of is None
    assert _failures(run) == []
    assert fingerprint(repo) == before
    _assert_pool_idle(repo)


@pytest.mark.asyncio
@pytest.mark.parametrize("base", ["no-such-branch", "HEAD~5", "0" * 40, "--all", "HEAD:README.md"])
async def test_bad_base_is_refused(tmp_path, base):
    repo = make_repo(tmp_path / "repo", FILES)
    before = fingerprint(repo)
    with pytest.raises(RepositoryError, match="bad base"):
        await run_isolated(
            repo,
            [_check_file_hyp("h1", "README.md", "hello\n")],
            _config(),
            IsolationOptions(base=base),
        )
    assert fingerprint(repo) == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    _assert_nothing_created(repo)


@pytest.mark.asyncio
async def test_directory_that_is_not_a_repository_is_refused(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(RepositoryError, match="not a git repository"):
        await run_isolated(plain, [_check_file_hyp("h1", "file.txt", "x\n")], _config())
    assert _entries(plain) == {"file.txt"}
    _assert_nothing_created(plain)


@pytest.mark.asyncio
async def test_nonexistent_path_is_refused(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(RepositoryError):
        await run_isolated(missing, [_check_file_hyp("h1", "README.md", "hello\n")], _config())
    assert not missing.exists()
    _assert_nothing_created(missing)


# -- the pool, directly ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pool_leases_distinct_worktrees_and_resets_reused_slots(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    before = fingerprint(repo_path)
    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=2)

    first = await pool.acquire(sha, "one")
    second = await pool.acquire(sha, "two")
    try:
        assert first.fresh
        assert second.fresh
        assert first.path != second.path
        for lease in (first, second):
            assert lease.path.resolve().is_relative_to(_home().resolve())
            await verify_worktree(repo, lease.path, sha)
            assert (lease.path / "README.md").read_text(encoding="utf-8") == "hello\n"
        # Leave a mess behind: a modified tracked file, an untracked and an ignored file.
        (first.path / "README.md").write_text("changed\n", encoding="utf-8")
        (first.path / "junk.txt").write_text("junk\n", encoding="utf-8")
        (first.path / "build.log").write_text("log\n", encoding="utf-8")
    finally:
        await pool.release(first)
        await pool.release(second)

    again = await pool.acquire(sha, "three")
    try:
        assert not again.fresh
        assert again.path in {first.path, second.path}
        await verify_worktree(repo, again.path, sha)
        status = git(again.path, "status", "--porcelain", "--ignored", "--untracked-files=all")
        assert status == ""
        assert (again.path / "README.md").read_text(encoding="utf-8") == "hello\n"
    finally:
        await pool.release(again)
    assert fingerprint(repo_path) == before
    _assert_pool_idle(repo_path)


# -- 16 worktrees at once, while another process writes the repository's config --------------

# Checks that git sees its working directory as the top level of its own worktree, that
# the base's files are there, and prints where it ran.
IN_OWN_WORKTREE = r"""
import os, subprocess, sys
here = os.path.realpath(os.getcwd())
top = subprocess.run(
    ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
).stdout.strip()
print(here)
if os.path.realpath(top) != here:
    sys.exit(f"toplevel {top} is not {here}")
with open("README.md", encoding="utf-8") as f:
    if f.read() != "hello\n":
        sys.exit("README.md differs from the base")
if not os.path.isfile(os.path.join("src", "app.py")):
    sys.exit("src/app.py is missing")
"""

CONFIG_WRITER = r"""
import itertools, os, subprocess, sys
repo, stop, count_file = sys.argv[1:4]
n = 0
for n in itertools.count(1):
    if os.path.exists(stop):
        break
    subprocess.run(
        ["git", "-C", repo, "config", "refute.test.counter", str(n)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
with open(count_file, "w") as f:
    f.write(str(n - 1))
"""


@pytest.mark.asyncio
@pytest.mark.slow
async def test_sixteen_worktrees_concurrently_while_config_is_written(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    before = fingerprint(repo)
    stop, count_file = tmp_path / "writer.stop", tmp_path / "writer.count"
    writer = subprocess.Popen(
        [PY, "-c", CONFIG_WRITER, str(repo), str(stop), str(count_file)],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while git(repo, "config", "refute.test.counter", check=False).strip() == "":
            assert writer.poll() is None, "the config writer died"
            assert time.monotonic() < deadline, "the config writer never wrote"
            time.sleep(0.02)

        hyps = [
            Hypothesis(
                id=f"wt{i:02d}", description="own worktree", test=[PY, "-c", IN_OWN_WORKTREE]
            )
            for i in range(16)
        ]
        run = await run_isolated(repo, hyps, _config(concurrency=16), IsolationOptions())
        assert writer.poll() is None, "the config writer stopped during the run"
    finally:
        stop.touch()
        try:
            writer.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                writer.kill()
            writer.wait()

    assert writer.returncode == 0
    assert int(count_file.read_text(encoding="utf-8")) >= 2
    assert _failures(run) == []
    assert [r.hypothesis_id for r in run.results] == [h.id for h in hyps]
    paths = {Path(p).resolve() for p in run.worktrees.values()}
    assert len(paths) == 16
    home = _home().resolve()
    assert all(p.is_relative_to(home) for p in paths)
    for result in run.results:
        assert Path(result.stdout.strip()) == Path(run.worktrees[result.hypothesis_id]).resolve()
    assert fingerprint(repo) == before
    _assert_pool_idle(repo)


# -- patches ---------------------------------------------------------------------------------


def _write_patch(scratch: Path, files: dict[str, str], edits: dict[str, str], out: Path) -> None:
    """A `git diff` that turns `files` into `files | edits`, made in a scratch repository."""
    make_repo(scratch, files)
    for name, content in edits.items():
        (scratch / name).write_text(content, encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(git(scratch, "diff"), encoding="utf-8")


@pytest.mark.asyncio
async def test_patches_apply_per_hypothesis_and_failures_stay_local(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    plan_dir = tmp_path / "plan"
    _write_patch(
        tmp_path / "scratch-good",
        FILES,
        {"src/app.py": "print('patched')\n"},
        plan_dir / "patches" / "good.diff",
    )
    # Made against content the repository does not have: its context does not match.
    _write_patch(
        tmp_path / "scratch-bad",
        {**FILES, "src/app.py": "something else entirely\n"},
        {"src/app.py": "print('never')\n"},
        plan_dir / "patches" / "bad.diff",
    )
    before = fingerprint(repo)
    hyps = [
        _check_file_hyp("patched", "src/app.py", "print('patched')\n", patch="patches/good.diff"),
        _check_file_hyp("broken", "src/app.py", "print('never')\n", patch="patches/bad.diff"),
        _check_file_hyp("missing", "src/app.py", "print('app')\n", patch="patches/nope.diff"),
        _check_file_hyp("plain", "src/app.py", "print('app')\n"),
    ]
    run = await run_isolated(repo, hyps, _config(), IsolationOptions(plan_dir=plan_dir))

    by_id = {r.hypothesis_id: r for r in run.results}
    assert [r.hypothesis_id for r in run.results] == [h.id for h in hyps]
    assert by_id["patched"].result is TestResult.PASS, by_id["patched"]
    assert by_id["plain"].result is TestResult.PASS, by_id["plain"]
    broken = by_id["broken"]
    assert broken.result is TestResult.ERROR
    assert "does not apply" in broken.error_message
    assert "patch failed" in broken.error_message  # git's own message is passed on
    assert "src/app.py" in broken.error_message
    missing = by_id["missing"]
    assert missing.result is TestResult.ERROR
    assert "patch not found" in missing.error_message
    assert "nope.diff" in missing.error_message
    assert fingerprint(repo) == before
    _assert_pool_idle(repo)


# -- setup -----------------------------------------------------------------------------------

# The setup: logs where it ran (once per worktree), writes a file the test checks, and
# fails or hangs when the hypothesis' environment asks for it.
SETUP = r"""
import os, sys, time
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(os.path.realpath(os.getcwd()) + "\n")
if os.environ.get("SETUP_MODE") == "fail":
    sys.exit("setup broke on purpose")
if os.environ.get("SETUP_MODE") == "hang":
    time.sleep(60)
with open("setup-done.txt", "a", encoding="utf-8") as f:
    f.write("ready\n")
"""


@pytest.mark.asyncio
async def test_setup_runs_once_in_each_worktree_before_the_test(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    log = tmp_path / "setup.log"
    before = fingerprint(repo)
    hyps = [_check_file_hyp(f"s{i}", "setup-done.txt", "ready\n") for i in range(3)]
    run = await run_isolated(
        repo, hyps, _config(), IsolationOptions(setup=[PY, "-c", SETUP, str(log)])
    )
    assert _failures(run) == []
    ran_in = log.read_text(encoding="utf-8").splitlines()
    assert sorted(ran_in) == sorted(str(Path(p).resolve()) for p in run.worktrees.values())
    assert fingerprint(repo) == before
    _assert_pool_idle(repo)


@pytest.mark.asyncio
async def test_failing_or_hanging_setup_is_that_hypothesis_error(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    log = tmp_path / "setup.log"
    ran = tmp_path / "tests-ran"
    ran.mkdir()
    before = fingerprint(repo)
    # The test records that it ran, then fails: a FAIL would read as "bug reproduced".
    test = [
        PY,
        "-c",
        (
            "import os, sys; open(os.path.join(sys.argv[1], sys.argv[2]), 'w').close();"
            " sys.exit(0 if os.path.exists('setup-done.txt') else 1)"
        ),
        str(ran),
    ]
    hyps = [
        Hypothesis(id="ok", description="setup works", test=[*test, "ok"]),
        Hypothesis(
            id="broken",
            description="setup fails",
            test=[*test, "broken"],
            env={"SETUP_MODE": "fail"},
        ),
        Hypothesis(
            id="slow", description="setup hangs", test=[*test, "slow"], env={"SETUP_MODE": "hang"}
        ),
    ]
    run = await run_isolated(
        repo,
        hyps,
        _config(),
        IsolationOptions(setup=[PY, "-c", SETUP, str(log)], setup_timeout=1.0),
    )
    by_id = {r.hypothesis_id: r for r in run.results}
    assert by_id["ok"].result is TestResult.PASS, by_id["ok"]
    for hid in ("broken", "slow"):
        result = by_id[hid]
        assert result.result is TestResult.ERROR, result
        assert "setup failed" in result.error_message
        assert run_evidence(result.result, "fails") is None  # no evidence: inconclusive
    assert "setup broke on purpose" in by_id["broken"].error_message
    assert _entries(ran) == {"ok"}  # no test ran after a failed setup
    assert len(log.read_text(encoding="utf-8").splitlines()) == 3
    assert fingerprint(repo) == before
    _assert_pool_idle(repo)


# -- hostile ids -----------------------------------------------------------------------------

HOSTILE_IDS = [
    "../../x",
    "/etc",
    "--lock",
    "a..b",
    "x.lock",
    "nul\0byte",
    "a" * 300,
    "UPPER",
    "Abc",
    "",
    ".hidden",
    "-x",
    "a/b",
    "with space",
    "émoji",
]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_check_id_refuses_hostile_ids(bad):
    with pytest.raises(InvalidIdError):
        check_id(bad)
    with pytest.raises(ConfigError):
        check_id(bad)


@pytest.mark.parametrize("good", ["a", "abc", "h1", "0", "a.b", "a-b_c", "x" * 64, "lock.x"])
def test_check_id_accepts_safe_ids(good):
    assert check_id(good) == good


def _hostile(hid: str) -> Hypothesis:
    hyp = _check_file_hyp("placeholder", "README.md", "hello\n")
    hyp.id = hid  # the constructor already refuses some of these; the runner must too
    return hyp


def _snapshot_of_surroundings(tmp_path: Path, repo: Path) -> dict[str, set[str]]:
    return {"tmp": _entries(tmp_path), "parent": _entries(repo.parent), "repo": _entries(repo)}


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", HOSTILE_IDS)
async def test_run_isolated_refuses_hostile_ids_before_creating_anything(tmp_path, bad):
    repo = make_repo(tmp_path / "work" / "repo", FILES)
    before = fingerprint(repo)
    around = _snapshot_of_surroundings(tmp_path, repo)
    hyps = [_check_file_hyp("fine", "README.md", "hello\n"), _hostile(bad)]
    with pytest.raises(InvalidIdError):
        await run_isolated(repo, hyps, _config(), IsolationOptions())
    assert _snapshot_of_surroundings(tmp_path, repo) == around
    assert not _home().exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert fingerprint(repo) == before


@pytest.mark.asyncio
async def test_run_isolated_refuses_duplicate_ids_before_creating_anything(tmp_path):
    repo = make_repo(tmp_path / "work" / "repo", FILES)
    before = fingerprint(repo)
    around = _snapshot_of_surroundings(tmp_path, repo)
    hyps = [
        _check_file_hyp("abc", "README.md", "hello\n"),
        _check_file_hyp("other", "README.md", "hello\n"),
        _check_file_hyp("abc", "README.md", "hello\n"),
    ]
    with pytest.raises(ConfigError):
        await run_isolated(repo, hyps, _config(), IsolationOptions())
    # Upper case is refused outright, so "ABC" can never collide with "abc" on disk.
    with pytest.raises(InvalidIdError):
        await run_isolated(
            repo, [hyps[0], _check_file_hyp("ABC", "README.md", "hello\n")], _config()
        )
    assert _snapshot_of_surroundings(tmp_path, repo) == around
    assert not _home().exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert fingerprint(repo) == before


# -- isolation on every use, no symlink followed (issue step 3, points 1-2) ---------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "attack",
    ["dotgit-to-user", "dotgit-to-user-worktree", "core-worktree", "slot-symlink", "no-admin"],
)
async def test_verify_worktree_refuses_a_slot_a_test_redirected(tmp_path, attack):
    repo_path = make_repo(tmp_path / "repo")
    user_wt = tmp_path / "user-wt"
    git(repo_path, "worktree", "add", "-q", "--detach", str(user_wt))
    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=1)
    lease = await pool.acquire(sha, "one")
    try:
        await verify_worktree(repo, lease.path, sha)
        dotgit = lease.path / ".git"
        gitdir = Path(dotgit.read_text(encoding="utf-8").split(": ", 1)[1].strip())
        if attack == "dotgit-to-user":
            dotgit.write_text(f"gitdir: {repo_path}/.git\n", encoding="utf-8")
        elif attack == "dotgit-to-user-worktree":
            user_admin = (user_wt / ".git").read_text(encoding="utf-8").split(": ", 1)[1]
            dotgit.write_text(f"gitdir: {user_admin.strip()}\n", encoding="utf-8")
        elif attack == "core-worktree":
            git(lease.path, "config", "extensions.worktreeConfig", "true")
            git(lease.path, "config", "--worktree", "core.worktree", str(repo_path))
        elif attack == "slot-symlink":
            lease.path.rename(lease.path.with_name("moved"))
            lease.path.symlink_to(repo_path, target_is_directory=True)
        else:
            import shutil  # noqa: PLC0415 - only here

            shutil.rmtree(gitdir)
        with pytest.raises(WorktreeError):
            await verify_worktree(repo, lease.path, sha)
    finally:
        await pool.release(lease)


def test_make_owned_dir_never_writes_through_a_symlink(tmp_path, monkeypatch):
    monkeypatch.setenv("REFUTE_HOME", str(tmp_path / "home"))
    target = tmp_path / "users-checkout"
    target.mkdir()
    link = tmp_path / "home" / "cache" / "worktrees"
    link.parent.mkdir(parents=True)
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(NotOwnedError):
        make_owned_dir(link)
    assert list(target.iterdir()) == []
    assert not is_owned_dir(link)
    (target / MARKER_FILE).write_text("x\n", encoding="utf-8")  # even with a marker there
    assert not is_owned_dir(link)
    assert not owned_chain(link / "slot", link.parent)


def test_force_rmtree_removes_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    force_rmtree(link)
    assert not link.exists()
    assert not link.is_symlink()
    assert (target / "keep.txt").read_text(encoding="utf-8") == "keep\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "inner").symlink_to(target, target_is_directory=True)
    force_rmtree(tree)
    assert not tree.exists()
    assert (target / "keep.txt").exists()


@pytest.mark.asyncio
async def test_forget_admin_entry_removes_only_the_exact_entry(tmp_path):
    repo_path = make_repo(tmp_path / "repo")
    user_wt = tmp_path / "user-wt"
    git(repo_path, "worktree", "add", "-q", "--detach", str(user_wt))
    repo = await Repository.open(repo_path)
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    forget_admin_entry(repo, link / "user-wt")  # resolves to the user's worktree: kept
    assert len(list((repo.common_dir / "worktrees").iterdir())) == 1
    assert str(user_wt) in git(repo_path, "worktree", "list")
