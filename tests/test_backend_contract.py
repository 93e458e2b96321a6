"""The contract every engine backend keeps (`refute.engine.protocol`), in anyio's style.

The `backend` fixture is parametrized by backend name; a new backend (Dask, a remote
runner) joins by adding an entry to `BACKENDS` and must pass every test here unchanged.
Every test starts real processes (`sys.executable` children, some with grandchildren and
escaped daemons) and observes them through what they leave on disk and through /proc,
never through the engine's own counters. Zombies count as gone: they hold nothing, and
PID 1 here does not reap them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from refute.engine.local import LocalBackend
from refute.engine.protocol import Backend, Batch, BatchSettings, Job, RunEvent
from refute.errors import CheckoutError
from refute.model import CheckoutRequest, TestExecutionResult, TestResult
from scripts import DOUBLE_FORK_DAEMON

PY = sys.executable
#: Seconds any single wait may take on a loaded machine; the tests' commands sleep far longer.
WAIT = 30.0


def _local() -> Backend:
    return LocalBackend()


#: Backend name -> a factory of a fresh backend. Add a backend here to hold it to the contract.
BACKENDS: dict[str, Callable[[], Backend]] = {"local": _local}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]()


# -- the processes ------------------------------------------------------------------------------

# Spawns a grandchild (which ignores SIGTERM when asked), records both pids (each file
# appears whole, by rename) and sleeps.
TREE = r"""
import os, subprocess, sys, time
stem, ignore_term = sys.argv[1], sys.argv[2] == "ignore-term"
GRANDCHILD = '''
import os, signal, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
'''
subprocess.Popen([sys.executable, "-c", GRANDCHILD, stem + ".grandchild", sys.argv[2]])
deadline = time.monotonic() + 60
while not os.path.exists(stem + ".grandchild") and time.monotonic() < deadline:
    time.sleep(0.01)
with open(stem + ".main.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(stem + ".main.tmp", stem + ".main")
print("tree ready", flush=True)
time.sleep(300)
"""

# One job's tree for the concurrency test: the main process registers itself in a shared
# directory, starts a grandchild that registers too (and would live on for a while after
# the main process exits), waits up to a few seconds to see another job alive, and exits.
# Each process records the most jobs it ever saw alive, counting a job alive while any
# process of its tree is (a registered pid that is not gone and still runs this script).
TREE_COUNTER = r"""
import os, subprocess, sys, time
registry, key, role = sys.argv[1], sys.argv[2], sys.argv[3]

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X") and registry.encode() in cmdline

def jobs_alive():
    keys = set()
    for name in os.listdir(registry):
        if name.endswith(".seen") or name.endswith(".ready"):
            continue
        job, pid = name.rsplit(".", 1)
        if alive(int(pid)):
            keys.add(job)
    return len(keys)

open(os.path.join(registry, f"{key}.{os.getpid()}"), "w").close()
seen = jobs_alive()
if role == "main":
    subprocess.Popen([sys.executable, sys.argv[0], registry, key, "grandchild"])
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(registry, key + ".ready")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    deadline = time.monotonic() + 3
    while True:
        seen = max(seen, jobs_alive())
        if seen >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    time.sleep(0.1)
    seen = max(seen, jobs_alive())
with open(os.path.join(registry, f"{key}.{role}.seen"), "w") as f:
    f.write(str(seen))
if role == "grandchild":
    open(os.path.join(registry, key + ".ready"), "w").close()
    time.sleep(1.5)
"""

NO_CORE = "import resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "


def py(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] in (b"Z", b"X")


def read_pid(path: Path) -> int:
    return int(path.read_text(encoding="utf-8"))


async def wait_for_files(*paths: Path, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, (
            f"never appeared: {[p for p in paths if not p.exists()]}"
        )
        await asyncio.sleep(0.02)


async def next_result(results: AsyncIterator[TestExecutionResult]) -> TestExecutionResult:
    return await asyncio.wait_for(anext(results), WAIT)


async def assert_exhausted(results: AsyncIterator[TestExecutionResult]) -> None:
    with pytest.raises(StopAsyncIteration):
        await next_result(results)


async def assert_still_waiting(results: AsyncIterator[TestExecutionResult]) -> asyncio.Task:
    """Start reading the next result and check that none comes (nor the end) for a while;
    returns the pending read."""
    pending = asyncio.ensure_future(anext(results))
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done, "the iteration went on without a job (or ended) before close()"
    return pending


async def by_key(batch: Batch) -> dict[str, TestExecutionResult]:
    """Every result of `batch` (read to its end), by key; each key once."""
    results = [result async for result in batch]
    by_id = {result.hypothesis_id: result for result in results}
    assert len(by_id) == len(results), [r.hypothesis_id for r in results]
    return by_id


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The directory jobs without a checkout run in."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def settings(tmp_path: Path, concurrency: int = 2, **kwargs) -> BatchSettings:
    return BatchSettings(
        concurrency=concurrency, log_dir=tmp_path / "logs", kill_grace=0.5, **kwargs
    )


# -- order and live submission -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_results_come_in_completion_order_with_events(
    backend: Backend, tmp_path: Path, work: Path
):
    go = tmp_path / "go"
    waits_for_go = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.01)"
    events: list[RunEvent] = []
    async with backend.batch(settings(tmp_path, concurrency=3), on_event=events.append) as batch:
        batch.submit(Job("held", argv=py(waits_for_go, str(go)), cwd=work, timeout=WAIT * 2))
        batch.submit(Job("fails", argv=py("raise SystemExit(2)"), cwd=work))
        batch.submit(Job("passes", argv=py("pass"), cwd=work))
        batch.close()
        results = aiter(batch)
        early = [await next_result(results), await next_result(results)]
        go.touch()
        late = [r async for r in results]

    assert sorted(r.hypothesis_id for r in early) == ["fails", "passes"]
    assert [r.hypothesis_id for r in late] == ["held"]
    by_id = {r.hypothesis_id: r for r in early + late}
    assert (by_id["fails"].result, by_id["fails"].exit_code) == (TestResult.FAIL, 2)
    assert (by_id["passes"].result, by_id["passes"].exit_code) == (TestResult.PASS, 0)
    assert (by_id["held"].result, by_id["held"].exit_code) == (TestResult.PASS, 0)
    # Each job: "started", then "finished" carrying the result the reader got.
    for key, result in by_id.items():
        mine = [e for e in events if e.hypothesis_id == key]
        assert [e.kind for e in mine] == ["started", "finished"], key
        assert mine[1].result is not None
        assert mine[1].result.exit_code == result.exit_code
        assert mine[0].elapsed <= mine[1].elapsed


@pytest.mark.asyncio
async def test_submit_while_running_and_iteration_ends_only_after_close(
    backend: Backend, tmp_path: Path, work: Path
):
    async with backend.batch(settings(tmp_path)) as batch:
        batch.submit(Job("adaptive", attempt=1, argv=py("raise SystemExit(1)"), cwd=work))
        results = aiter(batch)
        first = await next_result(results)
        assert (first.hypothesis_id, first.result) == ("adaptive", TestResult.FAIL)
        assert first.metrics["attempt"] == 1

        # Nothing outstanding, not closed: the iteration waits for more work.
        pending = await assert_still_waiting(results)
        # An adaptive repeat, decided from the first result.
        batch.submit(Job("adaptive", attempt=2, argv=py("pass"), cwd=work))
        second = await asyncio.wait_for(pending, WAIT)
        assert (second.hypothesis_id, second.result) == ("adaptive", TestResult.PASS)
        assert second.metrics["attempt"] == 2

        pending = await assert_still_waiting(results)
        batch.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, WAIT)


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_concurrency_is_bounded_counting_whole_trees(
    backend: Backend, tmp_path: Path, work: Path
):
    limit, count = 2, 6
    registry = tmp_path / "registry"
    registry.mkdir()
    script = tmp_path / "tree_counter.py"
    script.write_text(TREE_COUNTER, encoding="utf-8")
    keys = [f"j{i}" for i in range(count)]
    async with backend.batch(settings(tmp_path, concurrency=limit)) as batch:
        for key in keys:
            argv = [PY, str(script), str(registry), key, "main"]
            batch.submit(Job(key, argv=argv, cwd=work, timeout=WAIT * 2))
        batch.close()
        results = [r async for r in batch]

    assert sorted(r.hypothesis_id for r in results) == keys
    assert all(r.result is TestResult.PASS for r in results), [
        (r.hypothesis_id, r.error_message, r.stderr[-300:]) for r in results
    ]
    seen = {path.name: int(path.read_text(encoding="utf-8")) for path in registry.glob("*.seen")}
    assert len(seen) == 2 * count, sorted(seen)  # every main and every grandchild reported
    assert max(seen.values()) <= limit, f"saw {max(seen.values())} job trees alive at once"
    assert max(seen.values()) == limit, "the jobs never overlapped"


@pytest.mark.asyncio
async def test_timeout_kills_the_whole_tree_and_gives_timeout_124(
    backend: Backend, tmp_path: Path, work: Path
):
    stem = tmp_path / "tree"
    timeout = 3.0  # room for two interpreters to start on a loaded machine
    async with backend.batch(settings(tmp_path)) as batch:
        batch.submit(
            Job("slow", argv=py(TREE, str(stem), "ignore-term"), cwd=work, timeout=timeout)
        )
        batch.close()
        began = time.monotonic()
        [result] = [r async for r in batch]
        waited = time.monotonic() - began
        # Gone when the result is delivered, not only once the batch ends.
        main, grandchild = read_pid(Path(f"{stem}.main")), read_pid(Path(f"{stem}.grandchild"))
        assert gone(main)
        assert gone(grandchild)

    assert result.result is TestResult.TIMEOUT
    assert result.exit_code == 124
    assert result.metrics["failure"] == "timeout"  # the advice fits how it failed
    assert "timed out" in result.error_message
    assert "tree ready" in result.stdout  # output before the timeout is kept
    assert timeout * 0.9 <= result.duration < timeout + 15
    assert waited < timeout + 20


@pytest.mark.asyncio
async def test_cancel_gives_running_and_queued_jobs_not_run_results(
    backend: Backend, tmp_path: Path, work: Path
):
    stem = tmp_path / "tree"
    marks = tmp_path / "marks"
    marks.mkdir()
    started_mark = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
    async with backend.batch(settings(tmp_path, concurrency=1)) as batch:
        batch.submit(Job("quick", argv=py("pass"), cwd=work))
        batch.submit(Job("running", argv=py(TREE, str(stem), "plain"), cwd=work, timeout=300))
        for key in ("queued1", "queued2"):
            batch.submit(Job(key, argv=py(started_mark, str(marks / key)), cwd=work))
        results = aiter(batch)
        quick = await next_result(results)
        await wait_for_files(Path(f"{stem}.main"), Path(f"{stem}.grandchild"))
        began = time.monotonic()
        batch.cancel()
        rest = [await next_result(results) for _ in range(3)]
        stopped_in = time.monotonic() - began
        main, grandchild = read_pid(Path(f"{stem}.main")), read_pid(Path(f"{stem}.grandchild"))
        assert gone(main)
        assert gone(grandchild)
        batch.close()
        await assert_exhausted(results)

    assert (quick.hypothesis_id, quick.result) == ("quick", TestResult.PASS)
    assert not quick.not_run
    assert sorted(r.hypothesis_id for r in rest) == ["queued1", "queued2", "running"]
    for result in rest:
        assert result.not_run, result
        assert result.metrics["not_run"] is True
        assert result.result is TestResult.SKIP
        assert "not run" in result.error_message
    # A run cancelled while it ran keeps its start; one that never started has none.
    by_id = {r.hypothesis_id: r for r in rest}
    assert by_id["running"].started_at > 0
    assert by_id["running"].duration > 0
    assert by_id["queued1"].started_at == 0
    assert by_id["queued2"].started_at == 0
    assert list(marks.iterdir()) == []  # the queued jobs never started
    assert stopped_in < 20


@pytest.mark.asyncio
async def test_a_handle_cancels_its_job_alone(backend: Backend, tmp_path: Path, work: Path):
    stem = tmp_path / "tree"
    go = tmp_path / "go"
    marks = tmp_path / "marks"
    marks.mkdir()
    waits_for_go = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.01)"
    started_mark = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
    async with backend.batch(settings(tmp_path, concurrency=2)) as batch:
        victim = batch.submit(
            Job("victim", argv=py(TREE, str(stem), "plain"), cwd=work, timeout=300)
        )
        bystander = batch.submit(Job("bystander", argv=py(waits_for_go, str(go)), cwd=work))
        queued = batch.submit(Job("queued", argv=py(started_mark, str(marks / "queued")), cwd=work))
        assert (victim.job.key, bystander.job.key, queued.job.key) == (
            "victim",
            "bystander",
            "queued",
        )
        await wait_for_files(Path(f"{stem}.main"), Path(f"{stem}.grandchild"))
        assert not victim.done
        queued.cancel()  # waiting for a slot: it must never start
        victim.cancel()  # running: its tree is stopped
        results = aiter(batch)
        stopped = [await next_result(results), await next_result(results)]
        assert gone(read_pid(Path(f"{stem}.main")))
        assert gone(read_pid(Path(f"{stem}.grandchild")))
        assert victim.done
        assert queued.done
        assert not bystander.done  # the other jobs go on
        go.touch()
        last = await next_result(results)
        batch.close()
        await assert_exhausted(results)

    assert sorted(r.hypothesis_id for r in stopped) == ["queued", "victim"]
    assert all(r.not_run and r.result is TestResult.SKIP for r in stopped)
    assert (last.hypothesis_id, last.result, last.not_run) == ("bystander", TestResult.PASS, False)
    assert bystander.done
    assert list(marks.iterdir()) == []


@pytest.mark.asyncio
async def test_an_escaped_daemon_is_swept_by_the_end_of_the_batch(
    backend: Backend, tmp_path: Path, work: Path
):
    pidfile = tmp_path / "daemon.pid"
    async with backend.batch(settings(tmp_path)) as batch:
        batch.submit(Job("escapes", argv=py(DOUBLE_FORK_DAEMON, "exit", str(pidfile)), cwd=work))
        batch.close()
        [result] = [r async for r in batch]
    assert result.result is TestResult.PASS, (result.error_message, result.stderr)
    assert gone(read_pid(pidfile))


@pytest.mark.asyncio
async def test_output_is_bounded_in_memory_with_the_full_log_on_disk(
    backend: Backend, tmp_path: Path, work: Path
):
    limit = 4096
    lines = 200_000  # 1.6 MB of numbered lines
    expected = "".join(f"{i:07d}\n" for i in range(lines)).encode()
    code = (
        "import sys\n"
        f"sys.stdout.write(''.join(f'{{i:07d}}\\n' for i in range({lines})))\n"
        "sys.stderr.write('only a little\\n')"
    )
    log_dir = tmp_path / "logs"
    async with backend.batch(settings(tmp_path, output_limit=limit)) as batch:
        batch.submit(Job("loud", attempt=3, argv=py(code), cwd=work))
        batch.submit(Job("named", argv=py("print('x')"), cwd=work, log_stem="named.setup"))
        batch.close()
        by_id = await by_key(batch)

    loud = by_id["loud"]
    assert loud.result is TestResult.PASS
    # Head and tail, and one line saying how much was dropped and where the log is.
    assert len(loud.stdout.encode()) < limit + 200 + len(str(log_dir))
    assert loud.stdout.startswith("0000000\n0000001\n")
    assert loud.stdout.endswith(f"{lines - 1:07d}\n")
    assert "truncated" in loud.stdout
    assert loud.metrics["stdout_truncated"] is True
    assert loud.metrics["stdout_bytes"] == len(expected)
    assert loud.metrics["stderr_truncated"] is False
    assert loud.stderr == "only a little\n"
    assert Path(loud.stdout_log) == log_dir / "loud.run3.stdout.log"
    assert Path(loud.stdout_log).read_bytes() == expected
    assert Path(loud.stderr_log).read_bytes() == b"only a little\n"
    assert Path(by_id["named"].stdout_log) == log_dir / "named.setup.stdout.log"
    assert Path(by_id["named"].stdout_log).read_text(encoding="utf-8") == "x\n"


# -- what a job is -----------------------------------------------------------------------------


def _seed_script(cwd: Path, key: str, body: str, *, executable: bool = True) -> None:
    folder = cwd / ".falsification"
    folder.mkdir(exist_ok=True)
    script = folder / f"test_{key}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755 if executable else 0o644)


@pytest.mark.asyncio
async def test_the_seed_script_convention(backend: Backend, tmp_path: Path, work: Path):
    _seed_script(work, "seedy", "pwd\necho from the seed script\nexit 3")
    _seed_script(work, "flat", "exit 0", executable=False)
    async with backend.batch(settings(tmp_path)) as batch:
        for key in ("seedy", "flat", "missing"):
            batch.submit(Job(key, argv=None, cwd=work))
        batch.close()
        by_id = await by_key(batch)

    seedy = by_id["seedy"]
    assert (seedy.result, seedy.exit_code) == (TestResult.FAIL, 3)
    assert seedy.stdout.splitlines() == [str(work.resolve()), "from the seed script"]
    assert by_id["missing"].result is TestResult.ERROR
    assert "not found" in by_id["missing"].error_message
    assert str(work / ".falsification" / "test_missing.sh") in by_id["missing"].error_message
    assert by_id["flat"].result is TestResult.ERROR
    assert "not executable" in by_id["flat"].error_message


@pytest.mark.asyncio
async def test_exit_code_overrides_and_the_default_table(
    backend: Backend, tmp_path: Path, work: Path
):
    segv = py(NO_CORE + "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    jobs = [
        Job("segv-fails", argv=segv, cwd=work, exit_codes={-11: TestResult.FAIL}),
        Job("segv-default", argv=segv, cwd=work),
        Job("zero-skips", argv=py("pass"), cwd=work, exit_codes={0: TestResult.SKIP}),
        Job("zero-default", argv=py("pass"), cwd=work),
        Job(
            "139-fails",
            argv=py("raise SystemExit(139)"),
            cwd=work,
            exit_codes={139: TestResult.FAIL},
        ),
        Job("139-default", argv=py("raise SystemExit(139)"), cwd=work),
        Job("125-default", argv=py("raise SystemExit(125)"), cwd=work),
    ]
    async with backend.batch(settings(tmp_path, concurrency=4)) as batch:
        for job in jobs:
            batch.submit(job)
        batch.close()
        by_id = {key: (r.result, r.exit_code) for key, r in (await by_key(batch)).items()}

    assert by_id == {
        "segv-fails": (TestResult.FAIL, -11),
        "segv-default": (TestResult.ERROR, -11),
        "zero-skips": (TestResult.SKIP, 0),
        "zero-default": (TestResult.PASS, 0),
        "139-fails": (TestResult.FAIL, 139),
        "139-default": (TestResult.ERROR, 139),
        "125-default": (TestResult.SKIP, 125),
    }


@pytest.mark.asyncio
async def test_job_env_is_merged_over_the_batch_environment(
    backend: Backend, tmp_path: Path, work: Path
):
    environment = {**os.environ, "REFUTE_BATCH_ONLY": "batch", "REFUTE_SHARED": "batch"}
    code = "import os; print(os.environ['REFUTE_BATCH_ONLY'], os.environ['REFUTE_SHARED'])"
    async with backend.batch(settings(tmp_path, environment=environment)) as batch:
        batch.submit(Job("env", argv=py(code), cwd=work, env={"REFUTE_SHARED": "job"}))
        batch.close()
        [result] = [r async for r in batch]
    assert result.stdout.split() == ["batch", "job"]
    assert "REFUTE_BATCH_ONLY" not in os.environ


class DirectoryCheckouts:
    """A `Checkouts` provider over plain directories: one per owner; "broken" fails."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.leased: list[CheckoutRequest] = []
        self.released: list[CheckoutRequest] = []

    @contextlib.asynccontextmanager
    async def lease(self, request: CheckoutRequest) -> AsyncIterator[Path]:
        if request.owner == "broken":
            raise CheckoutError("patch broken.diff does not apply")
        path = self.root / request.owner
        path.mkdir(parents=True, exist_ok=True)
        self.leased.append(request)
        try:
            yield path
        finally:
            self.released.append(request)


@pytest.mark.asyncio
async def test_a_job_with_a_checkout_runs_where_the_provider_says(backend: Backend, tmp_path: Path):
    checkouts = DirectoryCheckouts(tmp_path / "checkouts")
    cwd = py("import os; print(os.getcwd())")

    def request(owner: str) -> CheckoutRequest:
        return CheckoutRequest(owner=owner, commit="0" * 40, patch=f"{owner}.diff")

    events: list[RunEvent] = []
    async with backend.batch(
        settings(tmp_path), checkouts=checkouts, on_event=events.append
    ) as batch:
        batch.submit(Job("good", argv=cwd, checkout=request("good")))
        batch.submit(Job("broken", argv=py("print('never runs')"), checkout=request("broken")))
        batch.close()
        by_id = await by_key(batch)

    good = by_id["good"]
    assert good.result is TestResult.PASS, good.error_message
    assert good.stdout.strip() == str((tmp_path / "checkouts" / "good").resolve())
    assert checkouts.leased == [request("good")]
    assert checkouts.released == [request("good")]
    broken = by_id["broken"]
    assert broken.result is TestResult.ERROR
    assert "patch broken.diff does not apply" in broken.error_message
    assert broken.metrics["failure"] == "patch"
    assert "never runs" not in broken.stdout
    # "preparing" while the checkout is made; "started" only for a command that starts.
    kinds = {key: [e.kind for e in events if e.hypothesis_id == key] for key in by_id}
    assert kinds == {
        "good": ["preparing", "started", "finished"],
        "broken": ["preparing", "finished"],
    }


@pytest.mark.asyncio
async def test_a_checkout_without_a_provider_is_that_jobs_error(backend: Backend, tmp_path: Path):
    request = CheckoutRequest(owner="lost", commit="0" * 40)
    async with backend.batch(settings(tmp_path)) as batch:
        batch.submit(Job("lost", argv=py("print('never runs')"), checkout=request))
        batch.submit(Job("fine", argv=py("pass"), cwd=tmp_path))
        batch.close()
        by_id = await by_key(batch)
    assert by_id["lost"].result is TestResult.ERROR
    assert by_id["lost"].error_message
    assert by_id["fine"].result is TestResult.PASS


# -- a broken callback -------------------------------------------------------------------------


class BoomError(Exception):
    pass


@pytest.mark.asyncio
async def test_a_broken_on_event_callback_stops_the_batch_and_raises_to_the_reader(
    backend: Backend, tmp_path: Path, work: Path
):
    stem = tmp_path / "tree"
    waits_for_tree = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.01)"

    def on_event(event: RunEvent) -> None:
        if event.kind == "finished" and event.hypothesis_id == "quick":
            raise BoomError("the callback broke")

    async def run() -> None:
        async with backend.batch(settings(tmp_path), on_event=on_event) as batch:
            batch.submit(Job("slow", argv=py(TREE, str(stem), "plain"), cwd=work, timeout=300))
            # Finishes once the slow job's whole tree is up, so there is a tree to stop.
            batch.submit(Job("quick", argv=py(waits_for_tree, f"{stem}.main"), cwd=work))
            batch.close()
            async for _ in batch:
                pass

    began = time.monotonic()
    with pytest.raises(BoomError, match="the callback broke"):
        await run()
    assert time.monotonic() - began < 25
    assert gone(read_pid(Path(f"{stem}.main")))
    assert gone(read_pid(Path(f"{stem}.grandchild")))
