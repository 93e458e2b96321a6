"""Crash recovery: refute killed (SIGKILL) at random points, stopped by SIGTERM/SIGINT, the
dry run, and reconciliation leaving alone everything refute did not make.

A driver script runs `run_isolated` in a child python process, exactly as a command-line
front end would (`run_interruptible`); the tests kill or signal that process for real."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import kill_watchdog_of, live_tagged, wait_until_gone
from gitutil import fingerprint, git, make_repo, refute_worktrees
from refute.app.isolated import clean_after_dead
from refute.paths import cache_dir
from refute.workspace.pool import WorktreePool
from refute.workspace.reconcile import reconcile
from refute.workspace.worktrees import Repository

PY = sys.executable
FILES = {
    ".gitignore": ".venv/\n*.log\n",
    "README.md": "hello\n",
    "src/app.py": "print('app')\n",
}

DRIVER = r"""
import json, sys
from refute.cli.signals import Interrupted, run_interruptible
from refute.model import FalsificationConfig, Hypothesis
from refute.app.isolated import IsolationOptions, run_isolated

repo, started, mode = sys.argv[1], sys.argv[2], sys.argv[3]
PY = sys.executable
long_tests = mode == "long"

def hyp(hid, seconds, extra=""):
    wait = "sleep 30" if long_tests else f"sleep {seconds}"
    script = f'{extra}touch "{started}/{hid}"; {wait}'
    return Hypothesis(id=hid, description=hid, test=script, shell=True, timeout=90)

hyps = [
    hyp("alpha", 0.3),
    hyp("beta", 0.6),
    # In the long runs this test ignores SIGTERM, so stopping it takes the grace period:
    # a second signal then arrives while the first one's cleanup is still going on.
    hyp("gamma", 0.9, extra="trap '' TERM; " if long_tests else ""),
    # A background grandchild that outlives the test unless someone stops it.
    hyp("delta", 0.5, extra="sleep 300 & "),
]
setup_script = (
    "import os, sys, time; os.makedirs('.venv', exist_ok=True);"
    " open('.venv/ready', 'w').close();"
    " open(os.path.join(sys.argv[1], 'setup-' + os.path.basename(os.getcwd())), 'w').close();"
    " time.sleep(30 if sys.argv[2] == 'setup' else 0.05)"
)
setup = [PY, "-c", setup_script, started, mode]
grace = 0.5 if mode == "short" else 1.5
cfg = FalsificationConfig(max_concurrent_tests=4, kill_grace_period=grace)
opts = IsolationOptions(include_uncommitted=True, setup=setup)
print("START", flush=True)
try:
    run = run_interruptible(lambda: run_isolated(repo, hyps, cfg, opts))
except Interrupted as exc:
    print("INTERRUPTED", exc.signum, flush=True)
    sys.exit(3)
print("DONE", json.dumps({r.hypothesis_id: r.result.name for r in run.results}), flush=True)
"""


def _repo_with_uncommitted_work(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", FILES)
    (repo / "README.md").write_text("hello, edited\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked work\n", encoding="utf-8")
    return repo


class Driver:
    def __init__(self, tmp_path: Path, repo: Path, mode: str) -> None:
        script = tmp_path / "driver.py"
        if not script.exists():
            script.write_text(DRIVER, encoding="utf-8")
        self.started = tmp_path / "started"
        self.started.mkdir(exist_ok=True)
        for entry in self.started.iterdir():
            entry.unlink()
        self.proc = subprocess.Popen(
            [PY, str(script), str(repo), str(self.started), mode],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for_line(self, prefix: str, timeout: float = 60.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(prefix):
                    return line
                if not line:
                    break
        raise AssertionError(f"driver never printed {prefix!r}: {self.finish()}")

    def wait_for_started(self, names: set[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if names <= {p.name for p in self.started.iterdir()}:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"not all of {sorted(names)} started: {self.finish()}")

    def finish(self, timeout: float = 60.0) -> tuple[int | None, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err

    def kill(self, *, with_watchdog: bool = False) -> None:
        if with_watchdog:  # what `clean` is for: refute's watchdog died with it
            kill_watchdog_of(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.finish()


HYPS = {"alpha", "beta", "gamma", "delta"}


def _marked(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return b"\0REFUTE_RUN_ID=" in b"\0" + handle.read()
    except OSError:
        return False


def _tagged(pid: int, tag: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"\0REFUTE_TEST_TAG={tag}\0".encode() in b"\0" + handle.read() + b"\0"
    except OSError:
        return False


def _refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/refute/").split()


def _assert_pool_all_free(repo_path: Path, pool: WorktreePool, home: Path, where: str) -> None:
    """Every refute worktree is a free, unlocked pool slot with a clean directory."""
    registered = refute_worktrees(repo_path, home)
    names = pool.slot_names()
    assert sorted(str(pool.slots_dir / n) for n in names) == sorted(registered), where
    on_disk = (
        {p.name for p in pool.slots_dir.iterdir() if not p.name.startswith(".")}
        if pool.slots_dir.is_dir()
        else set()
    )
    assert on_disk == set(names), f"{where}: stray slot directories or leases"
    for name in names:
        fd = pool.try_lock(name)
        assert fd is not None, f"{where}: slot {name} is still locked"
        try:
            info = pool.read_info(fd)
        finally:
            os.close(fd)
        assert info.get("state") == "free", f"{where}: slot {name} is {info}"
        status = git(pool.slots_dir / name, "status", "--porcelain", "--ignored")
        assert status.splitlines() in ([], ["!! .venv/"]), f"{where}: {name}: {status}"


def _assert_no_broken_worktrees(repo_path: Path, where: str) -> None:
    listing = git(repo_path, "worktree", "list", "--porcelain")
    assert "prunable" not in listing, f"{where}: {listing}"
    for line in listing.splitlines():
        if line.startswith("worktree "):
            assert Path(line.split(" ", 1)[1]).is_dir(), f"{where}: {listing}"


# -- SIGKILL at random points ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_sigkill_at_random_points_then_recovery(tmp_path, test_tag):
    seed = int(os.environ.get("REFUTE_TEST_SEED", str(time.time_ns() % 2**32)))
    rng = random.Random(seed)
    print(f"seed {seed} (rerun with REFUTE_TEST_SEED={seed})")
    repo_path = _repo_with_uncommitted_work(tmp_path)
    home = tmp_path / "refute-home"
    before = fingerprint(repo_path)
    log = []

    for attempt in range(24):
        # Half the kills land in the first 0.25 s (reconcile, snapshot, worktree creation,
        # setup all happen there), the rest anywhere up to the end of a run.
        delay = rng.uniform(0.0, 0.25) if rng.random() < 0.5 else rng.uniform(0.0, 1.3)
        driver = Driver(tmp_path, repo_path, "short")
        driver.wait_for_line("START")
        time.sleep(delay)
        exited_before = driver.proc.poll()
        driver.kill()
        started = sorted(p.name.split("-")[0] for p in driver.started.iterdir())
        log.append((attempt, round(delay, 3), exited_before, " ".join(started)))
    where = f"seed={seed} kills={log}"
    print(where)

    # One complete run recovers (its start-up reconciliation) and then runs normally.
    final = Driver(tmp_path, repo_path, "short")
    code, out, err = final.finish(timeout=90)
    assert code == 0, f"{where}\nstdout: {out}\nstderr: {err}"
    assert '"alpha": "PASS"' in out
    assert out.count("PASS") == 4, out

    repo = await Repository.open(repo_path)
    mine = {p.pid for p in live_tagged(test_tag)}
    report = await clean_after_dead(repo)
    # (The process sweep is machine-wide: another session's orphans may show up here.)
    assert (report.worktrees, report.refs) == ([], []), f"{where}: {report}"
    assert not set(report.processes) & mine, f"{where}: {report}"
    pool = WorktreePool(repo)
    _assert_pool_all_free(repo_path, pool, home, where)
    assert len(pool.slot_names()) <= 4, where
    assert _refs(repo_path) == [], where
    alive = wait_until_gone(test_tag, timeout=3.0)
    assert alive == [], f"{where}: {[(p.pid, p.cmdline()) for p in alive]}"
    _assert_no_broken_worktrees(repo_path, where)
    assert fingerprint(repo_path) == before, where


# -- SIGTERM / SIGINT: a clean exit without reconciliation ------------------------------


@pytest.mark.parametrize(
    ("signals", "mode"),
    [
        ((signal.SIGTERM,), "long"),
        ((signal.SIGINT, signal.SIGINT), "long"),
        ((signal.SIGTERM,), "setup"),
    ],
    ids=["sigterm-tests", "sigint-twice-tests", "sigterm-setup"],
)
def test_sigterm_and_sigint_clean_up_before_exiting(tmp_path, test_tag, signals, mode):
    repo_path = _repo_with_uncommitted_work(tmp_path)
    home = tmp_path / "refute-home"
    before = fingerprint(repo_path)
    driver = Driver(tmp_path, repo_path, mode)
    try:
        driver.wait_for_line("START")
        if mode == "setup":
            # Every worktree is in its setup (which would take 30 s).
            deadline = time.monotonic() + 60
            while len(list(driver.started.glob("setup-*"))) < 4:
                assert time.monotonic() < deadline, driver.finish()
                time.sleep(0.05)
        else:
            driver.wait_for_started(HYPS)
        assert _refs(repo_path) != [], "the snapshot ref should exist during the run"
        for index, signum in enumerate(signals):
            if index:
                time.sleep(0.1)
            driver.proc.send_signal(signum)
        code, out, err = driver.finish(timeout=60)
    finally:
        if driver.proc.poll() is None:
            driver.kill()

    assert code == 3, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert f"INTERRUPTED {int(signals[0])}" in out, out
    # No reconcile here: the interrupted run cleaned up after itself.
    repo_pool = WorktreePool(_open(repo_path))
    assert repo_pool.slot_names(), "the slots should have been kept as warm, free slots"
    _assert_pool_all_free(repo_path, repo_pool, home, "after the signal")
    assert _refs(repo_path) == []
    alive = wait_until_gone(test_tag, timeout=2.0)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    _assert_no_broken_worktrees(repo_path, "after the signal")
    assert fingerprint(repo_path) == before


def _open(repo_path: Path) -> Repository:
    return asyncio.run(Repository.open(repo_path))


# -- the dry run -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_dry_run_reports_but_changes_nothing(tmp_path, test_tag):
    repo_path = _repo_with_uncommitted_work(tmp_path)
    home = tmp_path / "refute-home"
    before = fingerprint(repo_path)
    driver = Driver(tmp_path, repo_path, "long")
    driver.wait_for_line("START")
    driver.wait_for_started(HYPS)
    driver.kill(with_watchdog=True)

    repo = await Repository.open(repo_path)
    pool = WorktreePool(repo)
    slots = sorted(refute_worktrees(repo_path, home))
    assert len(slots) == 4
    refs = _refs(repo_path)
    assert len(refs) == 1
    assert refs[0].startswith("refs/refute/snapshots/")
    orphans = {p.pid for p in live_tagged(test_tag) if _marked(p.pid)}
    sleepers = {p.pid for p in live_tagged(test_tag) if p.cmdline() == ["sleep", "300"]}
    assert len(sleepers) == 1
    assert sleepers <= orphans

    dry = await clean_after_dead(repo, dry_run=True)
    assert dry.dry_run is True
    assert sorted(dry.worktrees) == slots
    assert dry.refs == refs
    # The sweep is machine-wide (any refute's orphans); ours must all be there.
    assert {p for p in dry.processes if _tagged(p, test_tag)} == orphans
    # Nothing changed.
    assert sorted(refute_worktrees(repo_path, home)) == slots
    for slot in slots:
        assert (Path(slot) / ".git").is_file()
    assert sorted(str(pool.slots_dir / n) for n in pool.slot_names()) == slots
    assert _refs(repo_path) == refs
    assert {p.pid for p in live_tagged(test_tag) if _marked(p.pid)} == orphans

    real = await clean_after_dead(repo)
    assert real.dry_run is False
    assert sorted(real.worktrees) == slots
    assert real.refs == refs
    assert set(real.processes) >= orphans
    assert refute_worktrees(repo_path, home) == []
    for slot in slots:
        assert not Path(slot).exists()
    assert pool.slot_names() == []
    assert _refs(repo_path) == []
    alive = wait_until_gone(test_tag, timeout=5.0)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    _assert_no_broken_worktrees(repo_path, "after reconcile")
    assert fingerprint(repo_path) == before

    again = await clean_after_dead(repo)
    assert (again.worktrees, again.refs) == ([], []), again


# -- what refute did not make ------------------------------------------------------------


@pytest.mark.asyncio
async def test_reconcile_leaves_the_users_things_alone(tmp_path, test_tag):
    repo_path = _repo_with_uncommitted_work(tmp_path)
    head = git(repo_path, "rev-parse", "HEAD").strip()
    git(repo_path, "branch", "my-branch")
    git(repo_path, "update-ref", "refs/refute-like/x", head)
    git(repo_path, "update-ref", "refs/refutex/snapshots/1.2-abc", head)
    mine = tmp_path / "mine"
    git(repo_path, "worktree", "add", "-q", str(mine))
    (mine / "scratch.txt").write_text("the user's work\n", encoding="utf-8")
    gone = tmp_path / "gone"
    git(repo_path, "worktree", "add", "-q", "--detach", str(gone))

    # A crash for reconcile to clean up, so it has real work to do.
    driver = Driver(tmp_path, repo_path, "long")
    driver.wait_for_line("START")
    driver.wait_for_started(HYPS)
    driver.kill()

    repo = await Repository.open(repo_path)
    pool = WorktreePool(repo)
    assert pool.slots_dir.is_dir()
    # The user's own worktree that only looks like ours: next to the slots directory.
    lookalike = pool.root / "slots-mine" / "wt"
    lookalike.parent.mkdir(parents=True)
    git(repo_path, "worktree", "add", "-q", "--detach", str(lookalike))
    # Directories placed by hand next to (not inside) refute's slots directory.
    by_hand = [
        pool.root / "slots2" / "keep.txt",
        pool.root / "my-notes" / "keep.txt",
        cache_dir() / "worktrees" / "not-a-repo-id" / "keep.txt",
        cache_dir() / "worktrees" / "keep.txt",
    ]
    for path in by_hand:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine\n", encoding="utf-8")
    # The user's own stale worktree (its directory deleted): prunable, but not ours to prune.
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    user_listing = git(repo_path, "worktree", "list", "--porcelain")
    user_entries = [
        block
        for block in user_listing.strip().split("\n\n")
        if not block.startswith(f"worktree {pool.slots_dir}/")
    ]
    assert len(user_entries) == 4  # main, mine, gone (prunable), the look-alike
    before = fingerprint(repo_path)
    every_ref = git(repo_path, "for-each-ref", "--format=%(refname)").split()
    user_refs = [r for r in every_ref if not r.startswith("refs/refute/")]

    report = await clean_after_dead(repo)

    assert len(report.worktrees) == 4, report
    assert all(Path(p).parent == pool.slots_dir for p in report.worktrees), report
    assert len(report.refs) == 1, report
    assert report.refs[0].startswith("refs/refute/snapshots/")
    after_listing = git(repo_path, "worktree", "list", "--porcelain")
    assert after_listing.strip().split("\n\n") == user_entries
    assert (mine / "scratch.txt").read_text(encoding="utf-8") == "the user's work\n"
    assert (lookalike / ".git").is_file()
    for path in by_hand:
        assert path.read_text(encoding="utf-8") == "mine\n", path
    remaining = git(repo_path, "for-each-ref", "--format=%(refname)").split()
    assert remaining == user_refs
    assert "refs/heads/my-branch" in remaining
    assert "refs/heads/mine" in remaining
    assert "refs/refute-like/x" in remaining
    assert "refs/refutex/snapshots/1.2-abc" in remaining
    # The user's checkout: only the snapshot ref went away.
    after = fingerprint(repo_path)
    assert {k: v for k, v in after.items() if k != "refs"} == {
        k: v for k, v in before.items() if k != "refs"
    }
    assert [line for line in str(before["refs"]).splitlines() if "refs/refute/" not in line] == str(
        after["refs"]
    ).splitlines()
    alive = wait_until_gone(test_tag, timeout=5.0)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]


@pytest.mark.asyncio
async def test_a_dead_creators_temporary_lease_goes_a_live_ones_stays(tmp_path):
    repo = await Repository.open(make_repo(tmp_path / "repo"))
    pool = WorktreePool(repo)
    pool._ensure_dirs()
    dead = pool.leases_dir / ".tmp-dead-0001"
    live = pool.leases_dir / ".tmp-live-0002"
    dead.write_text("{}")
    live.write_text("{}")
    fd = os.open(live, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        dry = await reconcile(repo, dry_run=True)
        assert dry.temporary == [str(dead)]
        assert dead.exists()
        report = await reconcile(repo)
        assert report.temporary == [str(dead)]
        assert not dead.exists()
        assert live.exists()
    finally:
        os.close(fd)


@pytest.mark.asyncio
async def test_clean_removes_a_free_slot_whose_git_file_a_test_redirected(tmp_path):
    repo_path = make_repo(tmp_path / "repo")
    repo = await Repository.open(repo_path)
    pool = WorktreePool(repo)
    lease = await pool.acquire(git(repo_path, "rev-parse", "HEAD").strip(), "victim")
    (lease.path / ".git").write_text(f"gitdir: {repo_path}/.git\n", encoding="utf-8")
    await pool.release(lease)
    before = fingerprint(repo_path)
    report = await reconcile(repo)
    assert report.worktrees == [str(lease.path)]
    assert not lease.path.exists()
    assert refute_worktrees(repo_path, cache_dir()) == []
    assert fingerprint(repo_path) == before
