"""Both spawn paths give the same results: inline (the default while spawning is fast) and
on the batch's spawn threads (taken once spawns are seen to be slow, i.e. a busy machine).

Each test pins the path it exercises and checks afterwards that the batch took it: on the
inline path the batch never made a spawner; on the thread path it made one and handed it
work (its threads started). The switch itself is tested twice: as logic, and with real
processes whose every inline spawn is counted as slow.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import live_tagged
from refute.engine import local as local_module
from refute.engine.local import SPAWN_THREADS, LocalBackend, LocalBatch
from refute.engine.protocol import BatchSettings, Job
from refute.model import TestExecutionResult, TestResult

PY = sys.executable


@pytest.fixture(params=["inline", "threads"])
def spawn_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # Inline: never switch, however slow this machine is today. Threads: from the first spawn.
    switch_after = 10**9 if request.param == "inline" else 0
    monkeypatch.setattr(local_module, "SLOW_SPAWNS_TO_SWITCH", switch_after)
    return request.param


def used_threads(batch: LocalBatch) -> bool:
    """Whether `batch` spawned on its threads: it made a spawner and the spawner started
    threads, which a ThreadPoolExecutor does only when it is given work."""
    spawner = batch.spawner
    return isinstance(spawner, ThreadPoolExecutor) and len(spawner._threads) > 0


def assert_took(path: str, batch: LocalBatch) -> None:
    if path == "inline":
        assert batch.spawner is None, "the batch spawned on threads"
    else:
        assert used_threads(batch), "the batch never spawned on its threads"
        assert batch.slow_spawns == 0  # no inline spawn was ever measured


def settings(concurrency: int) -> BatchSettings:
    return BatchSettings(concurrency=concurrency, kill_grace=0.5)


async def run_batch(
    jobs: list[Job], concurrency: int
) -> tuple[LocalBatch, dict[str, TestExecutionResult]]:
    async with LocalBackend().batch(settings(concurrency)) as batch:
        for job in jobs:
            batch.submit(job)
        batch.close()
        results = {r.hypothesis_id: r async for r in batch}
    return batch, results


def exit_with(code: int, key: str, cwd: Path) -> Job:
    return Job(key, argv=[PY, "-c", f"raise SystemExit({code})"], cwd=cwd, timeout=60)


CODES = [0, 1, 3, 124, 125, 126, 0, 2]
OUTCOMES = [
    TestResult.PASS,
    TestResult.FAIL,
    TestResult.FAIL,
    TestResult.FAIL,
    TestResult.SKIP,
    TestResult.ERROR,
    TestResult.PASS,
    TestResult.FAIL,
]


@pytest.mark.asyncio
async def test_exit_codes_on_either_spawn_path(tmp_path: Path, spawn_path: str):
    jobs = [exit_with(code, f"h{i}", tmp_path) for i, code in enumerate(CODES)]
    jobs.append(Job("missing", argv=["/no/such/command"], cwd=tmp_path))

    batch, results = await run_batch(jobs, concurrency=4)

    assert_took(spawn_path, batch)
    keys = [f"h{i}" for i in range(len(CODES))]
    assert [results[k].exit_code for k in keys] == CODES
    assert [results[k].result for k in keys] == OUTCOMES
    assert results["missing"].result is TestResult.ERROR
    assert "not found" in results["missing"].error_message


@pytest.mark.asyncio
async def test_cancel_while_spawning_leaves_nothing(tmp_path: Path, spawn_path: str, test_tag: str):
    # Cancel at several points right after the batch starts, so that some cancellations
    # land while a spawn is in flight; every started process must be stopped and reaped.
    sleeper = [PY, "-c", "import time; time.sleep(300)"]
    batches: list[LocalBatch] = []

    async def run() -> None:
        async with LocalBackend().batch(settings(6)) as batch:
            batches.append(batch)
            for i in range(6):
                batch.submit(Job(f"s{i}", argv=sleeper, cwd=tmp_path, timeout=300))
            batch.close()
            async for _ in batch:
                pass

    for delay in (0.0, 0.001, 0.005, 0.02, 0.05):
        task = asyncio.create_task(run())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert live_tagged(test_tag) == []

    assert batches
    if spawn_path == "inline":
        assert all(batch.spawner is None for batch in batches)
    else:
        # A batch cancelled before its first spawn made no spawner; the later ones did.
        assert any(used_threads(batch) for batch in batches)
        assert all(batch.slow_spawns == 0 for batch in batches)


@pytest.mark.asyncio
async def test_a_batch_switches_to_threads_after_enough_slow_inline_spawns():
    batch = LocalBatch(settings(4), None, None)
    switch = local_module.SLOW_SPAWNS_TO_SWITCH
    assert switch >= 1
    for _ in range(switch - 1):
        assert batch.spawner_for_next_run() is None
        batch.note_spawn(1.0, inline=True)
    # Neither a fast inline spawn nor a slow one on threads counts.
    batch.note_spawn(local_module.SLOW_SPAWN_SECONDS / 2, inline=True)
    batch.note_spawn(1.0, inline=False)
    assert batch.spawner_for_next_run() is None
    batch.note_spawn(1.0, inline=True)
    spawner = batch.spawner_for_next_run()
    try:
        assert isinstance(spawner, ThreadPoolExecutor)
        assert spawner._max_workers == min(4, SPAWN_THREADS)
        assert batch.spawner_for_next_run() is spawner  # one pool per batch
    finally:
        assert spawner is not None
        spawner.shutdown()


@pytest.mark.asyncio
async def test_slow_inline_spawns_switch_a_running_batch_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Every inline spawn counts as slow here; one at a time, so each is measured before
    # the next starts: exactly SLOW_SPAWNS_TO_SWITCH run inline, the rest on threads.
    monkeypatch.setattr(local_module, "SLOW_SPAWN_SECONDS", -1.0)
    switch = local_module.SLOW_SPAWNS_TO_SWITCH
    jobs = [exit_with(i % 2, f"h{i}", tmp_path) for i in range(switch + 3)]

    batch, results = await run_batch(jobs, concurrency=1)

    assert batch.slow_spawns == switch
    assert used_threads(batch)
    assert [results[f"h{i}"].exit_code for i in range(len(jobs))] == [
        i % 2 for i in range(len(jobs))
    ]
