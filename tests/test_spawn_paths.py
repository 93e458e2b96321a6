"""Both spawn paths give the same results: inline (the default while spawning is fast) and
on the batch's spawn threads (taken once spawns are seen to be slow, i.e. a busy machine).
The switch threshold is lowered here so the thread path runs on a quiet machine too."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from conftest import live_tagged
from refute import AsyncTestExecutor, FalsificationConfig, Hypothesis, TestResult
from refute.engine import local as executor_module


@pytest.fixture(params=["inline", "threads"])
def spawn_path(request, monkeypatch):
    if request.param == "threads":
        monkeypatch.setattr(executor_module, "SLOW_SPAWNS_TO_SWITCH", 0)
    return request.param


def _exit_with(code: int, hid: str) -> Hypothesis:
    return Hypothesis(
        id=hid, description="", test=[sys.executable, "-c", f"raise SystemExit({code})"]
    )


def test_exit_codes_on_either_spawn_path(tmp_path: Path, spawn_path: str):
    codes = [0, 1, 3, 124, 125, 126, 0, 2]
    hyps = [_exit_with(code, f"h{i}") for i, code in enumerate(codes)]
    hyps.append(Hypothesis(id="missing", description="", test=["/no/such/command"]))
    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=4))
    results = executor.execute_parallel(hyps, {h.id: tmp_path for h in hyps})
    assert [r.exit_code for r in results[:-1]] == codes
    assert [r.result for r in results[:-1]] == [
        TestResult.PASS,
        TestResult.FAIL,
        TestResult.FAIL,
        TestResult.FAIL,
        TestResult.SKIP,
        TestResult.ERROR,
        TestResult.PASS,
        TestResult.FAIL,
    ]
    assert results[-1].result is TestResult.ERROR
    assert "not found" in results[-1].error_message


@pytest.mark.asyncio
async def test_cancel_while_spawning_leaves_nothing(tmp_path: Path, spawn_path: str, test_tag: str):
    # Cancel at several points right after the batch starts, so that some cancellations
    # land while a spawn is in flight; every started process must be stopped and reaped.
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    for delay in (0.0, 0.001, 0.005, 0.02, 0.05):
        hyps = [Hypothesis(id=f"s{i}", description="", test=sleeper) for i in range(6)]
        executor = AsyncTestExecutor(
            FalsificationConfig(max_concurrent_tests=6, kill_grace_period=0.5)
        )
        task = asyncio.create_task(
            executor.execute_parallel_async(hyps, {h.id: tmp_path for h in hyps})
        )
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert live_tagged(test_tag) == []
