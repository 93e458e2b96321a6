"""Process-tree hygiene: whatever a test starts, nothing outlives the run or the batch.

Every test here uses real processes. The autouse `test_tag` fixture fails a test that
leaves any live process carrying its tag; most tests also check explicitly, right after
the engine returns, that nothing is left (zombies count as dead: PID 1 here does not
reap them).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import live_tagged
from refute import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    RunEvent,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from scripts import DOUBLE_FORK_DAEMON

PY = sys.executable

# A daemon that leaves the group with setsid but keeps the test's stdout pipe open; the
# main process exits as soon as the daemon has escaped.
ESCAPED_PIPE_HOLDER = r"""
import os, sys, time
pidfile = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    os.setsid()
    sys.stdout.write("daemon holds stdout\n")
    sys.stdout.flush()
    os.write(w, str(os.getpid()).encode())
    os.close(w)
    time.sleep(300)
    os._exit(0)
os.close(w)
daemon = os.read(r, 64).decode()
os.close(r)
with open(pidfile, "w") as f:
    f.write(daemon)
print("main exits", flush=True)
"""

# Ignores SIGTERM, says so through a file, then sleeps.
TERM_IGNORER = r"""
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").close()
time.sleep(300)
"""

# Forks a setsid daemon that also ignores SIGTERM; both say so, then sleep.
TERM_IGNORING_DAEMON = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
ready = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(ready + ".daemon", "w").close()
        time.sleep(300)
    os._exit(0)
open(ready, "w").close()
time.sleep(300)
"""


def _hyp(hid: str, argv: list[str], timeout: float = 30.0, **kwargs) -> Hypothesis:
    return Hypothesis(id=hid, description=f"test {hid}", test=argv, timeout=timeout, **kwargs)


def _worktrees(tmp_path: Path, hyps: list[Hypothesis]) -> dict[str, Path]:
    trees = {}
    for hyp in hyps:
        path = tmp_path / "wt" / hyp.id
        path.mkdir(parents=True, exist_ok=True)
        trees[hyp.id] = path
    return trees


def _is_dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _read_pid(path: Path) -> int:
    return int(path.read_text())


async def _wait_for_files(paths: list[Path], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"not ready: {[p for p in paths if not p.exists()]}"
        await asyncio.sleep(0.02)


def _sleepers(tmp_path: Path, ids: list[str]) -> tuple[list[Hypothesis], dict[str, Path]]:
    """Tests that mark themselves ready (a file in their worktree) and sleep 300 s."""
    hyps = [_hyp(i, ["/bin/sh", "-c", "touch ready && exec sleep 300"], timeout=120) for i in ids]
    return hyps, _worktrees(tmp_path, hyps)


def _assert_nothing_alive(tag: str) -> None:
    alive = live_tagged(tag)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]


# -- grandchildren, TERM-ignorers and daemons -------------------------------------------------


def test_background_grandchild_holding_stdout_does_not_hang_the_run(tmp_path, test_tag):
    timeout, grace = 5.0, 1.0
    hyp = _hyp("bg", ["/bin/sh", "-c", "sleep 300 & echo hi"], timeout=timeout)
    executor = TestExecutor(FalsificationConfig(kill_grace_period=grace))
    t0 = time.monotonic()
    [result] = executor.execute_parallel([hyp], _worktrees(tmp_path, [hyp]))
    wall = time.monotonic() - t0
    assert wall < timeout + grace + 5
    assert result.result is TestResult.PASS, result  # sh itself exited 0 at once
    assert result.exit_code == 0
    assert result.stdout.strip() == "hi"
    _assert_nothing_alive(test_tag)


def test_term_ignoring_test_is_killed_after_the_grace_period(tmp_path, test_tag):
    timeout, grace = 2.0, 1.0
    hyp = _hyp("stubborn", [PY, "-c", TERM_IGNORER, "ready"], timeout=timeout)
    trees = _worktrees(tmp_path, [hyp])
    executor = TestExecutor(FalsificationConfig(kill_grace_period=grace))
    t0 = time.monotonic()
    [result] = executor.execute_parallel([hyp], trees)
    wall = time.monotonic() - t0
    # It really ignored TERM (it was ready before its timeout), so only KILL could stop it.
    assert (trees["stubborn"] / "ready").exists()
    assert result.result is TestResult.TIMEOUT
    assert result.exit_code == 124
    assert timeout - 0.05 <= result.duration < timeout + 2.0
    assert wall >= timeout + grace - 0.05
    assert wall < timeout + grace + 5
    _assert_nothing_alive(test_tag)


@pytest.mark.parametrize("mode", ["timeout", "exit"])
def test_double_forked_setsid_daemon_is_killed(tmp_path, test_tag, mode):
    pidfile = tmp_path / "daemon.pid"
    timeout = 2.0 if mode == "timeout" else 30.0
    hyp = _hyp("daemon", [PY, "-c", DOUBLE_FORK_DAEMON, mode, str(pidfile)], timeout=timeout)
    executor = TestExecutor(FalsificationConfig(kill_grace_period=1.0))
    t0 = time.monotonic()
    [result] = executor.execute_parallel([hyp], _worktrees(tmp_path, [hyp]))
    wall = time.monotonic() - t0
    daemon = _read_pid(pidfile)
    assert _is_dead(daemon), f"daemon {daemon} survived the batch"
    assert "main done waiting" in result.stdout
    if mode == "timeout":
        assert result.result is TestResult.TIMEOUT
        assert timeout - 0.05 <= result.duration < timeout + 2.0
        assert wall < timeout + 1.0 + 5
        assert result.metrics.get("leftover_processes_killed", 0) >= 1
    else:
        assert result.result is TestResult.PASS, result
        assert result.exit_code == 0
        assert wall < 10
    _assert_nothing_alive(test_tag)


def test_escaped_daemon_keeping_stdout_open_does_not_hold_the_run(tmp_path, test_tag):
    pidfile = tmp_path / "daemon.pid"
    grace = 1.0
    hyp = _hyp("holder", [PY, "-c", ESCAPED_PIPE_HOLDER, str(pidfile)], timeout=60)
    executor = TestExecutor(FalsificationConfig(kill_grace_period=grace))
    t0 = time.monotonic()
    [result] = executor.execute_parallel([hyp], _worktrees(tmp_path, [hyp]))
    wall = time.monotonic() - t0
    assert wall < grace + 5, "the run waited for the daemon's end of file"
    assert result.result is TestResult.PASS, result
    assert result.exit_code == 0
    assert "main exits" in result.stdout
    assert "daemon holds stdout" in result.stdout
    assert _is_dead(_read_pid(pidfile))
    _assert_nothing_alive(test_tag)


@pytest.mark.parametrize(
    "argv",
    [
        ["cat"],
        [PY, "-c", "import sys; data = sys.stdin.read(); print(len(data))"],
    ],
    ids=["cat", "python"],
)
def test_stdin_is_dev_null(tmp_path, test_tag, argv):
    hyp = _hyp("stdin", argv, timeout=30)
    executor = TestExecutor(FalsificationConfig(kill_grace_period=0.5))
    t0 = time.monotonic()
    [result] = executor.execute_parallel([hyp], _worktrees(tmp_path, [hyp]))
    assert time.monotonic() - t0 < 10
    assert result.result is TestResult.PASS, result
    assert result.exit_code == 0
    assert result.stdout.strip() in {"", "0"}
    _assert_nothing_alive(test_tag)


# -- cancellation ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_task_cancel_kills_everything_and_reports_every_hypothesis(tmp_path, test_tag):
    ids = ["s1", "s2", "s3", "s4"]
    hyps, trees = _sleepers(tmp_path, ids)
    grace = 1.0
    events: list[RunEvent] = []
    executor = AsyncTestExecutor(
        FalsificationConfig(max_concurrent_tests=3, kill_grace_period=grace)
    )
    task = asyncio.create_task(executor.execute_parallel_async(hyps, trees, on_event=events.append))
    await _wait_for_files([trees[i] / "ready" for i in ids[:3]])
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < grace + 5
    _assert_nothing_alive(test_tag)
    finished = [e for e in events if e.kind == "finished"]
    assert sorted(e.hypothesis_id for e in finished) == ids
    for event in finished:
        assert isinstance(event.result, TestExecutionResult)
        assert event.result.metrics["not_run"] is True
        assert event.result.not_run
    started = [e.hypothesis_id for e in events if e.kind == "started"]
    assert sorted(started) == ids[:3]  # the fourth was queued behind the limit


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["from_callback", "call_later"])
async def test_executor_cancel_returns_a_full_list(tmp_path, test_tag, how):
    quick = _hyp("quick", ["/bin/sh", "-c", "echo quick"], timeout=30)
    sleepers, trees = _sleepers(tmp_path, ["slow1", "slow2"])
    hyps = [sleepers[0], quick, sleepers[1]]
    trees.update(_worktrees(tmp_path, [quick]))
    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=3, kill_grace_period=1.0))
    events: list[RunEvent] = []

    def on_event(event: RunEvent) -> None:
        events.append(event)
        if event.kind == "finished" and event.hypothesis_id == "quick":
            if how == "from_callback":
                executor.cancel()
            else:
                asyncio.get_running_loop().call_later(0.2, executor.cancel)

    t0 = time.monotonic()
    results = await executor.execute_parallel_async(hyps, trees, on_event=on_event)
    assert time.monotonic() - t0 < 20
    _assert_nothing_alive(test_tag)
    assert [r.hypothesis_id for r in results] == ["slow1", "quick", "slow2"]
    slow1, done, slow2 = results
    assert done.result is TestResult.PASS
    assert done.stdout.strip() == "quick"
    assert not done.metrics.get("not_run", False)
    for r in (slow1, slow2):
        assert r.metrics["not_run"] is True, r
    assert sorted(e.hypothesis_id for e in events if e.kind == "finished") == sorted(
        ["slow1", "quick", "slow2"]
    )


@pytest.mark.asyncio
async def test_cancelling_twice_during_cleanup_still_leaves_nothing(tmp_path, test_tag):
    grace = 1.0
    hyps = [
        _hyp("stubborn", [PY, "-c", TERM_IGNORER, "ready"], timeout=120),
        _hyp("daemon", [PY, "-c", TERM_IGNORING_DAEMON, "ready"], timeout=120),
    ]
    trees = _worktrees(tmp_path, hyps)
    executor = AsyncTestExecutor(
        FalsificationConfig(max_concurrent_tests=2, kill_grace_period=grace)
    )
    task = asyncio.create_task(executor.execute_parallel_async(hyps, trees))
    await _wait_for_files(
        [
            trees["stubborn"] / "ready",
            trees["daemon"] / "ready",
            trees["daemon"] / "ready.daemon",
        ]
    )
    t0 = time.monotonic()
    task.cancel()
    await asyncio.sleep(0.3)
    assert not task.done(), "cleanup should be waiting out the grace period"
    task.cancel()
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = time.monotonic() - t0
    assert elapsed >= grace - 0.05  # TERM was ignored: KILL only after the grace period
    assert elapsed < grace + 5
    _assert_nothing_alive(test_tag)


# -- exit statuses ---------------------------------------------------------------------------

SIGCHLD_CHILD = r"""
import asyncio, json, signal, sys
from pathlib import Path
from refute import AsyncTestExecutor, FalsificationConfig, Hypothesis, TestExecutor

signal.signal(signal.SIGCHLD, signal.SIG_IGN)
wt = Path(sys.argv[1])
codes = (0, 3, 125)
hyps = [
    Hypothesis(id=f"exit{c}", description="x", test=["/bin/sh", "-c", f"exit {c}"], timeout=30)
    for c in codes
]
trees = {h.id: wt for h in hyps}
config = FalsificationConfig(max_concurrent_tests=3, kill_grace_period=0.5)
sync = TestExecutor(config).execute_parallel(hyps, trees)
after_sync = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
asynch = asyncio.run(AsyncTestExecutor(config).execute_parallel_async(hyps, trees))
after_async = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN

async def sync_inside_loop():
    return TestExecutor(config).execute_parallel(hyps, trees)

in_loop = asyncio.run(sync_inside_loop())
after_in_loop = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
print(json.dumps({
    "in_loop": [[r.exit_code, r.result.value, r.error_message] for r in in_loop],
    "restored_after_in_loop": after_in_loop,
    "sync": [[r.exit_code, r.result.value, r.error_message] for r in sync],
    "async": [[r.exit_code, r.result.value, r.error_message] for r in asynch],
    "restored_after_sync": after_sync,
    "restored_after_async": after_async,
}))
"""


def test_sigchld_ignored_by_the_parent_still_gives_exit_codes(tmp_path, test_tag):
    proc = subprocess.run(
        [PY, "-c", SIGCHLD_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    expected = [[0, "pass", ""], [3, "fail", ""], [125, "skip", ""]]
    assert report["sync"] == expected
    assert report["async"] == expected
    assert report["restored_after_sync"] is True
    assert report["restored_after_async"] is True
    assert report["in_loop"] == expected
    assert report["restored_after_in_loop"] is True
    _assert_nothing_alive(test_tag)


SIGCHLD_OVERLAP_CHILD = r"""
import asyncio, json, signal, sys
from pathlib import Path
from refute import AsyncTestExecutor, FalsificationConfig, Hypothesis

signal.signal(signal.SIGCHLD, signal.SIG_IGN)
wt, first_ends_first = Path(sys.argv[1]), sys.argv[2] == "first-ends-first"
config = FalsificationConfig(kill_grace_period=0.5)
first_sleep, second_sleep = (0.6, 1.5) if first_ends_first else (1.5, 0.2)

def hyp(hid, seconds, code):
    argv = ["/bin/sh", "-c", f"sleep {seconds}; exit {code}"]
    return [Hypothesis(id=hid, description="x", test=argv, timeout=30)]

first, second = hyp("first", first_sleep, 3), hyp("second", second_sleep, 5)

async def main():
    ex = AsyncTestExecutor(config)
    a = asyncio.create_task(ex.execute_parallel_async(first, {"first": wt}))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(ex.execute_parallel_async(second, {"second": wt}))
    return await a + await b

results = asyncio.run(main())
print(json.dumps({
    "results": [[r.hypothesis_id, r.exit_code, r.result.value, r.error_message] for r in results],
    "restored": signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN,
}))
"""


@pytest.mark.parametrize("order", ["first-ends-first", "second-ends-first"])
def test_sigchld_ignored_with_overlapping_batches(tmp_path, test_tag, order):
    """Two batches overlap in one loop while SIGCHLD is ignored; either may end first."""
    proc = subprocess.run(
        [PY, "-c", SIGCHLD_OVERLAP_CHILD, str(tmp_path), order],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["results"] == [["first", 3, "fail", ""], ["second", 5, "fail", ""]]
    assert report["restored"] is True
    _assert_nothing_alive(test_tag)


@pytest.mark.asyncio
async def test_sync_api_works_inside_a_running_loop(tmp_path, test_tag):
    hyps = [
        _hyp("ok", ["/bin/sh", "-c", "echo fine"]),
        _hyp("bad", ["/bin/sh", "-c", "echo oops >&2; exit 3"]),
    ]
    trees = _worktrees(tmp_path, hyps)
    config = FalsificationConfig(kill_grace_period=0.5)
    for executor in (AsyncTestExecutor(config), TestExecutor(config)):
        ok, bad = executor.execute_parallel(hyps, trees)
        assert ok.result is TestResult.PASS
        assert ok.stdout.strip() == "fine"
        assert bad.result is TestResult.FAIL
        assert bad.exit_code == 3
        assert bad.stderr.strip() == "oops"
        [single] = [executor.execute_single(hyps[1], trees["bad"])]
        assert single.exit_code == 3
    # The caller's loop is still healthy.
    await asyncio.sleep(0)
    _assert_nothing_alive(test_tag)


def test_sync_api_inside_asyncio_run(tmp_path, test_tag):
    hyp = _hyp("ok", ["/bin/sh", "-c", "exit 4"])
    trees = _worktrees(tmp_path, [hyp])

    async def main() -> list[TestExecutionResult]:
        return TestExecutor(FalsificationConfig(kill_grace_period=0.5)).execute_parallel(
            [hyp], trees
        )

    [result] = asyncio.run(main())
    assert result.exit_code == 4
    assert result.result is TestResult.FAIL


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_death_by_signal_is_an_error(tmp_path, test_tag, signum):
    code = f"import os; os.kill(os.getpid(), {int(signum)})"
    hyp = _hyp("sig", [PY, "-c", code])
    [result] = TestExecutor(FalsificationConfig(kill_grace_period=0.5)).execute_parallel(
        [hyp], _worktrees(tmp_path, [hyp])
    )
    assert result.result is TestResult.ERROR
    assert result.exit_code == -int(signum)
    assert signum.name in result.error_message
    _assert_nothing_alive(test_tag)


# -- the crash watchdog: tests die with the refute process that started them ----------------

# Runs a batch in this (refute-like) process: a test that ignores SIGTERM, one that
# double-forks a daemon, and one that lists its descriptors; when all are ready, it
# prints READY and the watchdog's pid, then waits for the test to kill it (`fork`: it
# first forks a child that only sleeps, which must not keep the watchdog waiting).
WATCHED = r"""
import asyncio, json, os, sys, time
from pathlib import Path
from refute.engine import BatchSettings, Job, LocalBackend
from refute.engine.watchdog import watchdog_pid
work, mode = Path(sys.argv[1]), sys.argv[2]
PY = sys.executable
stubborn = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " open('stubborn', 'w').close(); time.sleep(300)"
)
fds = (
    "import os, time; names = ' '.join(sorted(os.listdir('/proc/self/fd')));"
    " open('fds', 'w').write(names); time.sleep(300)"
)
daemon = [PY, "-c", sys.argv[3], "timeout", str(work / "daemon.pid")]
async def main():
    async with LocalBackend().batch(BatchSettings(concurrency=4, kill_grace=0.5)) as batch:
        batch.submit(Job(key="stubborn", argv=[PY, "-c", stubborn], cwd=work, timeout=200))
        batch.submit(Job(key="fds", argv=[PY, "-c", fds], cwd=work, timeout=200))
        batch.submit(Job(key="daemon", argv=daemon, cwd=work, timeout=200))
        deadline = time.monotonic() + 60
        while not all((work / n).exists() for n in ("stubborn", "fds", "daemon.pid")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        if mode == "fork" and os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        print("READY", watchdog_pid(), flush=True)
        if mode == "exit":
            batch.cancel()
            return
        await asyncio.sleep(300)
asyncio.run(main())
if mode == "exit":
    print("EXITED", flush=True)
    time.sleep(float(sys.argv[4]))
"""


def _watched(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [PY, "-c", WATCHED, str(tmp_path), mode, DOUBLE_FORK_DAEMON, "1.0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    return proc, int(line.split()[1])


def _wait_gone(tag: str, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while live_tagged(tag) and time.monotonic() - start < timeout:
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.parametrize("mode", ["kill", "fork"])
def test_sigkill_of_the_owner_stops_every_test_it_started(tmp_path, test_tag, mode):
    proc, watchdog = _watched(tmp_path, mode)
    daemon = _read_pid(tmp_path / "daemon.pid")
    watched = psutil.Process(watchdog)
    # The watchdog is in a session of its own, runs in /, carries no environment (so no
    # run marker and no test tag), and holds only /dev/null and its pipe.
    assert os.getsid(watchdog) == watchdog
    assert watched.cwd() == "/"
    assert watched.environ() == {}
    assert len(watched.open_files()) == 0
    fds = {
        name: os.readlink(f"/proc/{watchdog}/fd/{name}")
        for name in os.listdir(f"/proc/{watchdog}/fd")
    }
    assert [fds.pop(n) for n in ("0", "1", "2")] == [os.devnull] * 3
    assert [target.startswith("pipe:") for target in fds.values()] == [True]
    # A test inherits no descriptor of refute's (the watchdog's pipe included).
    assert (tmp_path / "fds").read_text().split() == ["0", "1", "2", "3"]
    proc.kill()
    proc.wait(timeout=60)
    proc.stdout.close()
    started = time.monotonic()
    if mode == "fork":  # the forked child is tagged too: only the tests must go
        deadline = time.monotonic() + 30
        while not _is_dead(daemon) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _is_dead(daemon)
        for child in live_tagged(test_tag):
            if child.cmdline()[:2] == [PY, "-c"] and child.cmdline()[2] == WATCHED:
                child.kill()
    waited = _wait_gone(test_tag)
    _assert_nothing_alive(test_tag)
    assert _is_dead(daemon)
    assert time.monotonic() - started < 30  # the goal is < 5 s; generous for a loaded box
    assert waited < 30
    deadline = time.monotonic() + 30
    while not _is_dead(watchdog) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _is_dead(watchdog), "the watchdog must not outlive its work"


def test_the_watchdog_exits_with_its_owner(tmp_path, test_tag):
    proc, watchdog = _watched(tmp_path, "exit")
    assert proc.stdout is not None
    assert proc.stdout.readline() == "EXITED\n"
    assert not _is_dead(watchdog)  # the owner still runs (after its batch)
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()
    deadline = time.monotonic() + 30
    while not _is_dead(watchdog) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _is_dead(watchdog)
    _assert_nothing_alive(test_tag)


def test_stop_session_stops_marked_processes_and_their_groups(tmp_path, test_tag):
    from refute.engine.watchdog import stop_session  # noqa: PLC0415 - only this test

    prefix = "999999999.1."
    env = {**os.environ, "REFUTE_RUN_ID": f"{prefix}abc-0-1"}
    # A marked TERM-ignorer leading its own group, with an unmarked member in that group.
    leader = subprocess.Popen(
        [
            PY,
            "-c",
            (
                "import os, signal, subprocess, sys, time;"
                " signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                " env = {k: v for k, v in os.environ.items() if k != 'REFUTE_RUN_ID'};"
                " sleeper = [sys.executable, '-c', 'import time; time.sleep(300)'];"
                " subprocess.Popen(sleeper, env=env);"
                " open(sys.argv[1], 'w').close(); time.sleep(300)"
            ),
            str(tmp_path / "ready"),
        ],
        env=env,
        start_new_session=True,
    )
    other = subprocess.Popen(
        [PY, "-c", "import time; time.sleep(300)"],
        env={**os.environ, "REFUTE_RUN_ID": "999999999.2.abc-0-1"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert len(live_tagged(test_tag)) == 3
        assert stop_session(prefix, 0.3) == 1
        leader.wait(timeout=30)
        # The unmarked group member was sent SIGKILL; dying takes the kernel a moment.
        deadline = time.monotonic() + 10
        while (alive := [p.pid for p in live_tagged(test_tag)]) != [other.pid]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert alive == [other.pid]  # another refute's test (another token) is not touched
    finally:
        other.kill()
        other.wait(timeout=30)
        leader.kill()
        leader.wait(timeout=30)
