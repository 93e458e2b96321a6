"""The warm pool: reuse across runs, reset to pristine, capacity and LRU eviction, leases
held across processes, and the free-disk guard. Real repositories, real git, real processes."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitutil import fingerprint, git, make_repo, refute_worktrees
from refute.app.isolated import IsolationOptions, clean_after_dead, run_isolated
from refute.model import FalsificationConfig, Hypothesis, TestResult
from refute.workspace import pool as pool_module
from refute.workspace.pool import WorktreePool
from refute.workspace.worktrees import Repository, resolve_base

PY = sys.executable
FILES = {
    ".gitignore": "*.log\n.venv/\nbuild/\n",
    "README.md": "hello\n",
    "src/app.py": "print('app')\n",
    "src/data/table.txt": "1 2 3\n",
}


def _hyp(hid: str, script: str, timeout: float = 60.0) -> Hypothesis:
    # S604: `shell` is the Hypothesis field (the test runs under /bin/sh -c), not a call.
    return Hypothesis(id=hid, description=f"test {hid}", test=script, shell=True, timeout=timeout)  # noqa: S604


def _failures(run) -> list[tuple[str, str, str, str]]:
    return [
        (r.hypothesis_id, r.result.name, r.error_message, r.stderr[-300:])
        for r in run.results
        if r.result is not TestResult.PASS
    ]


def _tracked_content(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    names = git(repo, "ls-tree", "-r", "--name-only", rev).split()
    return {name: git(repo, "show", f"{rev}:{name}") for name in names}


def _tree_content(root: Path) -> dict[str, str]:
    """Every file below `root` except .git and .venv, relative path -> text."""
    found = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not (Path(current) == root and d in {".git", ".venv"})]
        for name in files:
            full = Path(current) / name
            rel = str(full.relative_to(root))
            if rel == ".git":
                continue
            found[rel] = full.read_text(encoding="utf-8", errors="replace")
    return found


def _status(path: Path) -> list[str]:
    out = git(path, "status", "--porcelain", "--ignored", "--untracked-files=all")
    return out.splitlines()


def _lease_info(pool: WorktreePool, name: str) -> dict:
    return json.loads((pool.leases_dir / f"{name}.json").read_text(encoding="utf-8"))


# -- warm reuse --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_consecutive_runs_reuse_the_same_slots(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    before = fingerprint(repo_path)
    hyps = [_hyp("alpha", "test -f README.md"), _hyp("beta", "test -f src/app.py")]
    cfg = FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5)

    first = await run_isolated(repo_path, hyps, cfg)
    second = await run_isolated(repo_path, hyps, cfg)

    assert _failures(first) == []
    assert _failures(second) == []
    assert len(set(first.worktrees.values())) == 2
    # The same two directories served the second run (which hypothesis got which slot is
    # the pool's business; that the set is the same is the warm pool).
    assert set(second.worktrees.values()) == set(first.worktrees.values())
    home = tmp_path / "refute-home"
    assert sorted(refute_worktrees(repo_path, home)) == sorted(first.worktrees.values())
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_acquire_after_release_returns_the_warm_slot(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=2)

    first = await pool.acquire(sha, "one")
    assert first.fresh is True
    assert first.path.parent == pool.slots_dir
    assert _lease_info(pool, first.name)["state"] == "leased"
    await pool.release(first)
    assert _lease_info(pool, first.name)["state"] == "free"

    second = await pool.acquire(sha, "two")
    try:
        assert second.fresh is False
        assert second.name == first.name
        assert second.path == first.path
        assert git(second.path, "rev-parse", "HEAD").strip() == sha
    finally:
        await pool.release(second)
    assert pool.slot_names() == [first.name]


# -- reset to pristine -------------------------------------------------------------------

DIRTY = r"""
set -e
echo 'tampered' >> README.md
echo 'print("changed")' > src/app.py
echo 'new' > untracked.txt
mkdir -p newdir/deeper && echo 'x' > newdir/deeper/file.txt
echo 'ignored' > debug.log
mkdir -p build && echo 'artifact' > build/out.bin
mkdir -p nested/inner
cd nested/inner
git init -q
echo 'inner' > inner.txt
git add inner.txt
git -c user.name=t -c user.email=t@t.invalid commit -q -m inner
cd ../..
mkdir -p .venv/lib
echo 'kept' > .venv/lib/marker.txt
mkdir locked
echo 'secret' > locked/file.txt
chmod 000 locked
rm src/data/table.txt
"""


@pytest.mark.asyncio
async def test_dirty_slot_comes_back_pristine_and_keeps_venv(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    before = fingerprint(repo_path)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)

    run = await run_isolated(repo_path, [_hyp("dirty", DIRTY)], cfg)
    assert _failures(run) == []
    slot = Path(run.worktrees["dirty"])
    # The test really left its mess behind (release does not clean; acquire does).
    assert (slot / "nested" / "inner" / ".git").is_dir()
    assert (slot / "locked").exists()
    assert (slot / "debug.log").is_file()

    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=1)
    lease = await pool.acquire(sha, "next")
    try:
        assert lease.fresh is False, "the dirty slot should have been reset, not replaced"
        assert lease.path == slot
        assert _status(slot) == ["!! .venv/lib/marker.txt"]
        assert git(slot, "rev-parse", "HEAD").strip() == sha
        assert _tree_content(slot) == _tracked_content(repo_path)
        for gone in ("untracked.txt", "newdir", "debug.log", "build", "nested", "locked"):
            assert not (slot / gone).exists(), gone
        assert (slot / ".venv" / "lib" / "marker.txt").read_text(encoding="utf-8") == "kept\n"
    finally:
        await pool.release(lease)

    # And through the runner: the next run's test sees the pristine tree with the .venv.
    check = (
        "set -e; test ! -e untracked.txt; test ! -e nested; test ! -e locked;"
        " test ! -e debug.log; test -f src/data/table.txt; grep -qx hello README.md;"
        ' test -f .venv/lib/marker.txt; test -z "$(git status --porcelain --untracked-files=all)"'
    )
    again = await run_isolated(repo_path, [_hyp("check", check)], cfg)
    assert _failures(again) == []
    assert again.worktrees["check"] == str(slot)
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_a_test_that_switches_to_a_users_branch_does_not_get_it_moved(tmp_path):
    # A test may check out one of the user's branches in its worktree (worktrees share
    # refs). Resetting such a slot to the next base with `reset --hard` while HEAD is
    # attached would move the user's branch: the slot must be detached first.
    repo_path = make_repo(tmp_path / "repo", FILES)
    git(repo_path, "branch", "feature")
    feature = git(repo_path, "rev-parse", "feature").strip()
    (repo_path / "README.md").write_text("second\n", encoding="utf-8")
    git(repo_path, "commit", "-q", "-am", "second")
    before = fingerprint(repo_path)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)

    first = await run_isolated(repo_path, [_hyp("switch", "git switch -q feature")], cfg)
    assert _failures(first) == []
    second = await run_isolated(repo_path, [_hyp("check", "grep -qx second README.md")], cfg)
    assert _failures(second) == []

    assert git(repo_path, "rev-parse", "feature").strip() == feature, (
        "refute's reset of the reused slot moved the user's branch"
    )
    slot = Path(second.worktrees["check"])
    assert git(slot, "symbolic-ref", "-q", "HEAD", check=False) == "", "slot left on a branch"
    assert fingerprint(repo_path) == before


@pytest.mark.asyncio
async def test_index_flags_set_by_a_test_do_not_hide_tampered_files(tmp_path):
    # `assume-unchanged` / `skip-worktree` make git ignore a modified file; a slot whose
    # test set them must still come back with the base's content.
    repo_path = make_repo(tmp_path / "repo", FILES)
    cfg = FalsificationConfig(max_concurrent_tests=1, kill_grace_period=0.5)
    tamper = (
        "set -e; git update-index --assume-unchanged README.md; echo bad > README.md;"
        " git update-index --skip-worktree src/app.py; echo bad > src/app.py"
    )
    first = await run_isolated(repo_path, [_hyp("tamper", tamper)], cfg)
    assert _failures(first) == []
    slot = Path(first.worktrees["tamper"])

    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=1)
    lease = await pool.acquire(sha, "next")
    try:
        assert lease.path == slot or lease.fresh
        assert _tree_content(lease.path) == _tracked_content(repo_path)
    finally:
        await pool.release(lease)


# -- capacity and LRU eviction -----------------------------------------------------------


@pytest.mark.asyncio
async def test_capacity_two_with_four_hypotheses_keeps_two_slots(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    home = tmp_path / "refute-home"
    seen = tmp_path / "seen"
    seen.mkdir()
    hyps = [_hyp(f"h{i}", f'pwd -P > "{seen}/h{i}"; sleep 0.3') for i in range(4)]
    cfg = FalsificationConfig(max_concurrent_tests=4, kill_grace_period=0.5)

    run = await run_isolated(repo_path, hyps, cfg, IsolationOptions(pool_capacity=2))

    assert _failures(run) == []
    used = {h.id: (seen / h.id).read_text(encoding="utf-8").strip() for h in hyps}
    # Four slots existed during the run: each test ran in its own directory.
    assert len(set(used.values())) == 4
    assert {str(Path(p).resolve()) for p in run.worktrees.values()} == set(used.values())
    repo = await Repository.open(repo_path)
    pool = WorktreePool(repo, capacity=2)
    for path in used.values():
        assert Path(path).parent == pool.slots_dir.resolve()
        # A slot is reused by other hypotheses: its name claims none of them.
        assert re.fullmatch(r"slot-[0-9a-f]{8}", Path(path).name), path

    remaining = pool.slot_names()
    assert len(remaining) == 2
    remaining_paths = {str((pool.slots_dir / n).resolve()) for n in remaining}
    assert remaining_paths < set(used.values())
    assert {str(Path(p).resolve()) for p in refute_worktrees(repo_path, home)} == remaining_paths
    for path in set(used.values()) - remaining_paths:
        assert not Path(path).exists(), f"evicted slot left on disk: {path}"
    for name in remaining:
        assert _lease_info(pool, name)["state"] == "free"
    # No directory without a lease and no lease without a directory.
    on_disk = {p.name for p in pool.slots_dir.iterdir() if not p.name.startswith(".")}
    assert on_disk == set(remaining)


@pytest.mark.asyncio
async def test_eviction_removes_the_least_recently_used(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    home = tmp_path / "refute-home"
    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=2)

    leases = {hid: await pool.acquire(sha, hid) for hid in ("a", "b", "c", "d")}
    assert len(pool.slot_names()) == 4
    # Released in the order c, a, d, b: the two most recently used are d and b.
    for hid in ("c", "a", "d", "b"):
        await pool.release(leases[hid])
        time.sleep(0.02)  # distinct last-use times even on a coarse clock

    assert sorted(pool.slot_names()) == sorted([leases["d"].name, leases["b"].name])
    assert not leases["c"].path.exists()
    assert not leases["a"].path.exists()
    assert sorted(refute_worktrees(repo_path, home)) == sorted(
        [str(leases["d"].path), str(leases["b"].path)]
    )

    # The next acquire takes the most recently used free slot.
    again = await pool.acquire(sha, "e")
    try:
        assert again.fresh is False
        assert again.name == leases["b"].name
    finally:
        await pool.release(again)


# -- leases across processes -------------------------------------------------------------

HOLDER = r"""
import asyncio, sys
from refute.workspace.pool import WorktreePool
from refute.workspace.worktrees import Repository, resolve_base

async def main():
    repo = await Repository.open(sys.argv[1])
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=3)
    lease = await pool.acquire(sha, "child")
    print("READY", lease.name, lease.fresh, flush=True)
    sys.stdin.read()

asyncio.run(main())
"""


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no output from the child within {timeout}s")
    return proc.stdout.readline()


@pytest.mark.asyncio
async def test_a_lease_held_by_another_process_is_exclusive_until_it_dies(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    home = tmp_path / "refute-home"
    repo = await Repository.open(repo_path)
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=3)
    # One warm, free slot: the child should take it.
    warm = await pool.acquire(sha, "warm")
    await pool.release(warm)

    script = tmp_path / "holder.py"
    script.write_text(HOLDER, encoding="utf-8")
    child = subprocess.Popen(
        [PY, str(script), str(repo_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(child, 60.0)
        assert line.startswith("READY "), line
        _, child_slot, child_fresh = line.split()
        assert child_slot == warm.name
        assert child_fresh == "False"
        assert pool.try_lock(child_slot) is None, "a held lease must not be lockable"

        mine = await pool.acquire(sha, "parent")
        assert mine.name != child_slot
        assert mine.fresh is True

        # While the child lives, reconcile keeps its slot.
        report = await clean_after_dead(repo)
        assert str(pool.slots_dir / child_slot) not in report.worktrees
        assert (pool.slots_dir / child_slot / ".git").is_file()

        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

        fd = pool.try_lock(child_slot)
        assert fd is not None, "the kernel should have dropped the dead holder's flock"
        try:
            info = pool.read_info(fd)
        finally:
            os.close(fd)
        assert info["state"] == "leased"
        assert info["pid"] == child.pid

        report = await clean_after_dead(repo)
        assert str(pool.slots_dir / child_slot) in report.worktrees
        assert not (pool.slots_dir / child_slot).exists()
        assert child_slot not in pool.slot_names()
        assert str(pool.slots_dir / child_slot) not in refute_worktrees(repo_path, home)
        # Our own lease is untouched.
        assert (mine.path / ".git").is_file()
        assert mine.name in pool.slot_names()
        assert any(entry.startswith(mine.name) for entry in report.kept)
        await pool.release(mine)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        assert child.stdin is not None
        child.stdin.close()
        assert child.stdout is not None
        child.stdout.close()
    assert refute_worktrees(repo_path, home) == [str(mine.path)]


RUNNER = r"""
import asyncio, json, sys
from refute.model import FalsificationConfig, Hypothesis
from refute.app.isolated import run_isolated

repo, shared, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
# Each test announces itself, then waits until all four tests of both processes are running.
wait = (
    "import os, sys, time; d = sys.argv[1]; open(os.path.join(d, sys.argv[2]), 'w').close();"
    " t = time.monotonic() + 60\n"
    "while len(os.listdir(d)) < 4 and time.monotonic() < t: time.sleep(0.02)\n"
    "print(os.getcwd()); sys.exit(0 if len(os.listdir(d)) >= 4 else 1)"
)
hyps = [
    Hypothesis(id=f"{prefix}{i}", description="", test=[sys.executable, "-c", wait, shared,
               f"{prefix}{i}"], timeout=90)
    for i in range(2)
]
cfg = FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5)
run = asyncio.run(run_isolated(repo, hyps, cfg))
print(json.dumps({r.hypothesis_id: [r.result.name, r.stdout.strip()] for r in run.results}))
"""


@pytest.mark.asyncio
async def test_two_processes_running_at_once_never_share_a_slot(tmp_path):
    repo_path = make_repo(tmp_path / "repo", FILES)
    home = tmp_path / "refute-home"
    before = fingerprint(repo_path)
    # Two warm free slots to fight over.
    cfg = FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5)
    warm = await run_isolated(repo_path, [_hyp("w1", "true"), _hyp("w2", "true")], cfg)
    assert _failures(warm) == []

    script = tmp_path / "runner.py"
    script.write_text(RUNNER, encoding="utf-8")
    shared = tmp_path / "barrier"
    shared.mkdir()
    procs = [
        subprocess.Popen(
            [PY, str(script), str(repo_path), str(shared), prefix],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    outputs = [proc.communicate(timeout=100) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, f"stdout: {out}\nstderr: {err}"
    results = {}
    for out, _ in outputs:
        results.update(json.loads(out.strip().splitlines()[-1]))
    assert sorted(results) == ["a0", "a1", "b0", "b1"]
    assert all(state == "PASS" for state, _ in results.values()), results
    # All four ran at the same time (the barrier), each in a directory of its own.
    cwds = [cwd for _, cwd in results.values()]
    assert len(set(cwds)) == 4, results
    repo = await Repository.open(repo_path)
    pool = WorktreePool(repo)
    for cwd in cwds:
        assert Path(cwd).parent == pool.slots_dir.resolve()
    # The two warm slots were among them (reused, not replaced)...
    assert {str(Path(p).resolve()) for p in warm.worktrees.values()} <= set(cwds)
    # ...and afterwards the pool is within its capacity, every slot free. (Two processes
    # evicting at the same moment may each count a slot the other is destroying, so the
    # pool can end below capacity; "at most capacity" is the promise.)
    names = pool.slot_names()
    assert 1 <= len(names) <= 2
    assert sorted(refute_worktrees(repo_path, home)) == sorted(
        str(pool.slots_dir / n) for n in names
    )
    for name in names:
        assert _lease_info(pool, name)["state"] == "free"
    assert fingerprint(repo_path) == before


# -- free disk ---------------------------------------------------------------------------


def test_free_disk_threshold_is_set():
    assert isinstance(pool_module.MIN_FREE_BYTES, int)
    assert pool_module.MIN_FREE_BYTES >= 64 * 1024 * 1024


@pytest.mark.asyncio
async def test_not_enough_free_disk_is_an_error_per_hypothesis(tmp_path, monkeypatch):
    # Not a mock: the real check against the real filesystem, with a threshold no disk meets.
    repo_path = make_repo(tmp_path / "repo", FILES)
    home = tmp_path / "refute-home"
    monkeypatch.setattr(pool_module, "MIN_FREE_BYTES", 1 << 62)
    hyps = [_hyp("a", "true"), _hyp("b", "true")]
    run = await run_isolated(repo_path, hyps, FalsificationConfig(max_concurrent_tests=2))
    # Refute's failure, not the tests': the runs are not run (a resume runs them) and the
    # session is told why (it then fails with exit code 4; tests/faults/test_fault_diskfull.py).
    assert [r.result for r in run.results] == [TestResult.SKIP, TestResult.SKIP]
    assert all(r.metrics.get("not_run") for r in run.results)
    assert "free disk" in (run.infrastructure_error or "")
    assert any("free disk" in r.error_message for r in run.results), [
        r.error_message for r in run.results
    ]
    assert refute_worktrees(repo_path, home) == []
    repo = await Repository.open(repo_path)
    assert WorktreePool(repo).slot_names() == []


# -- concurrent refute processes (issue step 3, point 6) ------------------------------------


def _hold(path: Path) -> int:
    """Take `path`'s flock the way another refute process would (its own open file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.asyncio
async def test_worktree_creation_waits_for_another_refutes_admin_lock(tmp_path):
    repo = await Repository.open(make_repo(tmp_path / "repo", FILES))
    sha = await resolve_base(repo, "HEAD")
    pool = WorktreePool(repo, capacity=2)
    pool._ensure_dirs()
    fd = _hold(pool.admin.path)
    task = asyncio.ensure_future(pool.acquire(sha, "waiter"))
    try:
        await asyncio.sleep(1.0)
        assert not task.done(), "worktree add ran while another refute held the admin lock"
        assert git(repo.root, "worktree", "list").count("\n") == 1  # nothing registered yet
        lease_files = list(pool.leases_dir.glob("*.json"))
        assert len(lease_files) == 1  # the lease exists first (and is locked)...
        assert pool.try_lock(lease_files[0].name.removesuffix(".json")) is None
    finally:
        os.close(fd)  # ...then the worktree is registered
    lease = await asyncio.wait_for(task, 60)
    try:
        assert lease.fresh
        assert (lease.path / "README.md").is_file()
    finally:
        await pool.release(lease)


def test_a_new_lease_is_locked_before_it_has_its_name(tmp_path):
    async def pool_of() -> WorktreePool:
        return WorktreePool(await Repository.open(make_repo(tmp_path / "repo", FILES)))

    pool = asyncio.run(pool_of())
    pool._ensure_dirs()
    fd = pool._new_lease("fresh-abc123", {"state": "creating"})
    try:
        assert sorted(p.name for p in pool.leases_dir.iterdir()) == [
            ".refute-owned",
            "fresh-abc123.json",
        ]
        assert pool.try_lock("fresh-abc123") is None  # another open file: refused
        assert json.loads((pool.leases_dir / "fresh-abc123.json").read_text()) == {
            "state": "creating"
        }
    finally:
        os.close(fd)
    again = pool.try_lock("fresh-abc123")
    assert again is not None
    # A lease unlinked (by the process that destroyed its slot) after it was opened is not
    # taken: the lock is only good on the file that still has the name.
    os.close(again)
    stale = os.open(pool.leases_dir / "fresh-abc123.json", os.O_RDWR)
    (pool.leases_dir / "fresh-abc123.json").unlink()
    (pool.leases_dir / "fresh-abc123.json").write_text("{}")
    try:
        fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fd2 = pool.try_lock("fresh-abc123")
        assert fd2 is not None  # the new file under the name is a different lock
        os.close(fd2)
    finally:
        os.close(stale)
