"""Sandbox benchmark: what `isolation: sandbox` costs per test, beside plain worktrees.

In one run, on a generated repository, with trivial tests (`true`) so the cost is refute's:

  engine-plain     N jobs of one batch, one at a time, argv run directly (the floor)
  engine-sandbox   the same jobs through the sandbox launcher (unshare, binds, the lock)
  session-worktree one hypothesis, repeat N, isolation worktree, through `run_isolated`
                   (worktree leased once, every run a test of the session)
  session-sandbox  the same with isolation sandbox (the layout read per run, the launcher)

Per-test figures are medians over --repeat rounds of (wall time / N); the ratios are
sandbox / plain. The probe (once per process) is measured separately.
Usage: python bench/bench_sandbox.py [--tests 40] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def make_repo(root: Path, files: int = 200) -> Path:
    repo = root / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@invalid",
    }
    subprocess.run(["git", "-C", str(repo), "init", "-q", "-b", "main"], check=True, env=env)
    for i in range(files):
        (repo / f"mod{i:03d}.py").write_text(f"VALUE = {i}\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "bench"], check=True, env=env)
    return repo


async def engine_round(workdir: Path, count: int, *, sandboxed: bool) -> float:
    from refute.engine.local import LocalBackend  # noqa: PLC0415 - after REFUTE_HOME is set
    from refute.engine.protocol import BatchSettings, Job  # noqa: PLC0415
    from refute.engine.sandbox import SandboxMounts  # noqa: PLC0415

    def mounts(cwd: Path) -> SandboxMounts:
        return SandboxMounts((cwd.parent,), (cwd,))

    start = time.perf_counter()
    async with LocalBackend().batch(BatchSettings(concurrency=1)) as batch:
        for attempt in range(1, count + 1):
            batch.submit(
                Job(
                    key="t",
                    attempt=attempt,
                    argv=["true"],
                    cwd=workdir,
                    sandbox=mounts if sandboxed else None,
                )
            )
        batch.close()
        outcomes = [result.result.value async for result in batch]
    if outcomes != ["pass"] * count:
        sys.exit(f"bench_sandbox: a trivial test did not pass: {outcomes}")
    return (time.perf_counter() - start) / count


async def session_round(repo: Path, count: int, *, sandboxed: bool) -> float:
    from refute.app.isolated import run_isolated  # noqa: PLC0415 - after REFUTE_HOME is set
    from refute.model import FalsificationConfig, Hypothesis  # noqa: PLC0415

    hyp = Hypothesis(
        id="t",
        description="trivial",
        test=["true"],
        repeat=count,
        isolation="sandbox" if sandboxed else "worktree",
    )
    config = FalsificationConfig(max_concurrent_tests=1)
    await run_isolated(repo, [hyp], config)  # warm the pool: a slot exists from now on
    start = time.perf_counter()
    run = await run_isolated(repo, [hyp], config)
    elapsed = time.perf_counter() - start
    outcomes = [r.result.value for r in run.results]
    if outcomes != ["pass"] * count:
        sys.exit(f"bench_sandbox: a trivial test did not pass: {outcomes}")
    return elapsed / count


def probe_seconds() -> float:
    from refute.engine import sandbox  # noqa: PLC0415

    sandbox.unavailable_reason.cache_clear()
    start = time.perf_counter()
    why = sandbox.unavailable_reason()
    elapsed = time.perf_counter() - start
    if why is not None:
        sys.exit(f"bench_sandbox: the sandbox is unavailable here: {why}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=40, help="tests per phase and round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="refute-bench-sandbox-"))
    os.environ["REFUTE_HOME"] = str(root / "home")
    try:
        probe = probe_seconds()
        repo = make_repo(root)
        workdir = root / "scratch" / "work"
        workdir.mkdir(parents=True)
        phases: dict[str, list[float]] = {
            name: []
            for name in ("engine-plain", "engine-sandbox", "session-worktree", "session-sandbox")
        }
        for _ in range(args.repeat):  # interleaved, so a busy moment hits both sides
            for sandboxed, name in ((False, "engine-plain"), (True, "engine-sandbox")):
                phases[name].append(
                    asyncio.run(engine_round(workdir, args.tests, sandboxed=sandboxed))
                )
            for sandboxed, name in ((False, "session-worktree"), (True, "session-sandbox")):
                phases[name].append(
                    asyncio.run(session_round(repo, args.tests, sandboxed=sandboxed))
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in phases.items()}
    figures: dict[str, Any] = {
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uid {os.geteuid()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "tests_per_phase": args.tests,
        "rounds": args.repeat,
        "probe_ms": round(probe * 1000, 1),
        "per_test_ms": {name: round(value * 1000, 2) for name, value in medians.items()},
        "ratio_engine": round(medians["engine-sandbox"] / medians["engine-plain"], 2),
        "ratio_session": round(medians["session-sandbox"] / medians["session-worktree"], 2),
        "added_ms_engine": round((medians["engine-sandbox"] - medians["engine-plain"]) * 1000, 2),
        "added_ms_session": round(
            (medians["session-sandbox"] - medians["session-worktree"]) * 1000, 2
        ),
    }
    print(f"machine: {figures['machine']}; load average {figures['load_average']}")
    print(f"probe (once per refute process): {figures['probe_ms']} ms")
    print(f"{'phase':18} per-test ms (median of {args.repeat} rounds x {args.tests} tests)")
    for name, value in figures["per_test_ms"].items():
        print(f"{name:18} {value:8.2f}")
    print(
        f"sandbox / plain: engine {figures['ratio_engine']}x (+{figures['added_ms_engine']} ms),"
        f" session {figures['ratio_session']}x (+{figures['added_ms_session']} ms)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
