"""Concurrency limit, streaming order, events, repeats and callback failures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from pathlib import Path

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

PY = sys.executable

# Announces itself with a file named by its pid in a shared directory (O_EXCL: created
# atomically), counts the announced siblings before and after a short sleep, appends the
# counts to its own result file, and withdraws its file before exiting.
COUNTER = r"""
import os, sys, time
shared, out = sys.argv[1], sys.argv[2]
me = os.path.join(shared, str(os.getpid()))
os.close(os.open(me, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
counts = [len(os.listdir(shared))]
time.sleep(0.1)
counts.append(len(os.listdir(shared)))
os.unlink(me)
with open(out, "a") as f:
    f.write(" ".join(map(str, counts)) + "\n")
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


def _assert_nothing_alive(tag: str) -> None:
    alive = live_tagged(tag)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]


def test_never_more_than_the_limit_alive(tmp_path, test_tag):
    limit, count = 4, 40
    shared = tmp_path / "alive"
    shared.mkdir()
    hyps = [
        _hyp(
            f"t{i:02d}", [PY, "-S", "-c", COUNTER, str(shared), str(tmp_path / f"t{i:02d}.counts")]
        )
        for i in range(count)
    ]
    executor = TestExecutor(FalsificationConfig(max_concurrent_tests=limit, kill_grace_period=0.5))
    results = executor.execute_parallel(hyps, _worktrees(tmp_path, hyps))

    assert [r.hypothesis_id for r in results] == [h.id for h in hyps]
    assert all(r.result is TestResult.PASS for r in results), [
        (r.hypothesis_id, r.error_message, r.stderr)
        for r in results
        if r.result is not TestResult.PASS
    ]
    observed = []
    for hyp in hyps:
        lines = (tmp_path / f"{hyp.id}.counts").read_text().splitlines()
        assert len(lines) == 1  # each test ran exactly once
        observed.extend(int(n) for n in lines[0].split())
    assert max(observed) <= limit, f"saw {max(observed)} tests alive at once"
    assert max(observed) >= 2, "the tests never overlapped"
    assert list(shared.iterdir()) == []

    slots = [r.metrics["slot"] for r in results]
    assert set(slots) <= set(range(limit))
    assert len(set(slots)) >= 2
    # Runs sharing a slot never overlap in time (a little slack for clock granularity).
    by_slot: dict[int, list[tuple[float, float]]] = {}
    for r in results:
        by_slot.setdefault(r.metrics["slot"], []).append((r.started_at, r.started_at + r.duration))
    for spans in by_slot.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start + 0.01
    _assert_nothing_alive(test_tag)


@pytest.mark.asyncio
async def test_stream_yields_in_completion_order_with_ordered_events(tmp_path, test_tag):
    hyps = [
        _hyp("slow", ["/bin/sh", "-c", "sleep 1.5; echo slow"]),
        _hyp("fast", ["/bin/sh", "-c", "sleep 0.1; echo fast"]),
    ]
    events: list[RunEvent] = []
    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5))
    order: list[TestExecutionResult] = [
        r async for r in executor.stream(hyps, _worktrees(tmp_path, hyps), on_event=events.append)
    ]
    assert [r.hypothesis_id for r in order] == ["fast", "slow"]
    assert [r.stdout.strip() for r in order] == ["fast", "slow"]
    assert all(r.result is TestResult.PASS for r in order)

    assert len(events) == 4
    for hid in ("slow", "fast"):
        kinds = [(i, e.kind) for i, e in enumerate(events) if e.hypothesis_id == hid]
        assert [k for _, k in kinds] == ["started", "finished"]
        finished = events[kinds[1][0]]
        assert finished.result is not None
        assert finished.result.hypothesis_id == hid
        assert finished.attempt == 1
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed)
    assert elapsed[0] >= 0
    finished_order = [e.hypothesis_id for e in events if e.kind == "finished"]
    assert finished_order == ["fast", "slow"]
    _assert_nothing_alive(test_tag)


@pytest.mark.asyncio
async def test_repeat_runs_in_stream_but_once_in_execute_parallel(tmp_path, test_tag):
    log_dir = tmp_path / "logs"
    hyp = _hyp("rep", ["/bin/sh", "-c", "echo run"], repeat=3)
    trees = _worktrees(tmp_path, [hyp])
    executor = AsyncTestExecutor(
        FalsificationConfig(max_concurrent_tests=2, kill_grace_period=0.5, log_dir=log_dir)
    )
    events: list[RunEvent] = []
    streamed = [r async for r in executor.stream([hyp], trees, on_event=events.append)]
    assert len(streamed) == 3
    assert sorted(r.metrics["attempt"] for r in streamed) == [1, 2, 3]
    assert all(r.result is TestResult.PASS and r.stdout.strip() == "run" for r in streamed)
    assert sorted(Path(r.stdout_log).name for r in streamed) == [
        "rep.run1.stdout.log",
        "rep.run2.stdout.log",
        "rep.run3.stdout.log",
    ]
    assert sorted(e.attempt for e in events if e.kind == "finished") == [1, 2, 3]

    listed = await executor.execute_parallel_async([hyp], trees)
    assert len(listed) == 1
    assert listed[0].metrics["attempt"] == 1
    assert listed[0].result is TestResult.PASS
    assert (
        len(TestExecutor(FalsificationConfig(kill_grace_period=0.5)).execute_parallel([hyp], trees))
        == 1
    )
    _assert_nothing_alive(test_tag)


class BoomError(Exception):
    pass


def _batch_with_sleepers(tmp_path: Path) -> tuple[list[Hypothesis], dict[str, Path]]:
    hyps = [
        _hyp("sleep1", ["/bin/sh", "-c", "exec sleep 300"], timeout=120),
        _hyp("quick", ["/bin/sh", "-c", "echo quick"]),
        _hyp("sleep2", ["/bin/sh", "-c", "exec sleep 300"], timeout=120),
    ]
    return hyps, _worktrees(tmp_path, hyps)


@pytest.mark.asyncio
@pytest.mark.parametrize("when", ["started", "finished"])
async def test_raising_callback_stops_the_batch(tmp_path, test_tag, when):
    hyps, trees = _batch_with_sleepers(tmp_path)
    grace = 1.0
    seen: list[RunEvent] = []

    def on_event(event: RunEvent) -> None:
        seen.append(event)
        if event.kind == when and event.hypothesis_id == "quick":
            raise BoomError(when)

    executor = AsyncTestExecutor(
        FalsificationConfig(max_concurrent_tests=3, kill_grace_period=grace)
    )
    t0 = time.monotonic()
    with pytest.raises(BoomError):
        await executor.execute_parallel_async(hyps, trees, on_event=on_event)
    assert time.monotonic() - t0 < grace + 5
    _assert_nothing_alive(test_tag)


@pytest.mark.asyncio
async def test_raising_callback_stops_a_stream(tmp_path, test_tag):
    hyps, trees = _batch_with_sleepers(tmp_path)

    def on_event(event: RunEvent) -> None:
        if event.kind == "finished" and event.hypothesis_id == "quick":
            raise BoomError

    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=3, kill_grace_period=1.0))
    got: list[TestExecutionResult] = []

    async def consume() -> None:
        async with contextlib.aclosing(executor.stream(hyps, trees, on_event=on_event)) as results:
            async for result in results:
                got.append(result)  # noqa: PERF401 - the loop itself is under test

    t0 = time.monotonic()
    with pytest.raises(BoomError):
        await consume()
    assert time.monotonic() - t0 < 6
    assert got == []
    _assert_nothing_alive(test_tag)


def test_raising_callback_propagates_from_the_sync_api(tmp_path, test_tag):
    hyps, trees = _batch_with_sleepers(tmp_path)

    def on_event(event: RunEvent) -> None:
        if event.kind == "finished":
            raise BoomError

    executor = TestExecutor(FalsificationConfig(max_concurrent_tests=3, kill_grace_period=1.0))
    t0 = time.monotonic()
    with pytest.raises(BoomError):
        executor.execute_parallel(hyps, trees, on_event=on_event)
    assert time.monotonic() - t0 < 6
    _assert_nothing_alive(test_tag)


@pytest.mark.asyncio
async def test_breaking_out_of_a_stream_stops_the_rest(tmp_path, test_tag):
    hyps, trees = _batch_with_sleepers(tmp_path)
    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=3, kill_grace_period=1.0))
    t0 = time.monotonic()
    async with contextlib.aclosing(executor.stream(hyps, trees)) as results:
        async for result in results:
            assert result.hypothesis_id == "quick"
            break
    assert time.monotonic() - t0 < 6
    _assert_nothing_alive(test_tag)
    # The executor is usable again afterwards.
    quick = [h for h in hyps if h.id == "quick"]
    [again] = await executor.execute_parallel_async(quick, trees)
    assert again.result is TestResult.PASS
    await asyncio.sleep(0)
