"""Worktree benchmark: fresh `git worktree add` vs warm-pool acquire, side by side.

Generates a repository of N files (default 5,000) in a temporary directory, then in one run:

  raw-add       8 x plain `git worktree add --detach` (git alone, for reference)
  fresh         8 x WorktreePool.acquire on an empty pool (refute's creation path:
                register, check out, verify isolation)
  warm-clean    8 x acquire of a released slot that the last test left clean
                (one `git status`)
  warm-dirty    8 x acquire of a released slot that the last test dirtied (a modified
                file, an untracked file, an ignored build directory): reset, clean, status
  concurrent    8 creations at once (asyncio.gather) on an empty pool: wall time

Each phase is repeated --repeat times with a new REFUTE_HOME; medians are reported.
Usage: python bench/bench_worktrees.py [--files 5000] [--count 8] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sh_git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    sh_git(repo, "init", "-q", "-b", "main")
    per_dir = 100
    for i in range(files):
        d = repo / f"pkg{i // per_dir:03d}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i % per_dir:03d}.py").write_text(f"VALUE = {i}\n" + "# filler\n" * 20)
    (repo / ".gitignore").write_text("build/\n__pycache__/\n.venv/\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@invalid",
    }
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "bench"], check=True, env=env)
    return repo


def dirty(path: Path) -> None:
    (path / "pkg000" / "mod000.py").write_text("changed\n")
    (path / "untracked.txt").write_text("x\n")
    build = path / "build"
    build.mkdir(exist_ok=True)
    for i in range(50):
        (build / f"artifact{i}.o").write_bytes(b"\0" * 1024)


async def one_round(repo: Path, count: int, home: Path) -> dict[str, float]:
    os.environ["REFUTE_HOME"] = str(home)
    from refute.workspace.pool import WorktreePool  # noqa: PLC0415 - after REFUTE_HOME is set
    from refute.workspace.worktrees import Repository, force_rmtree, resolve_base  # noqa: PLC0415

    r = await Repository.open(repo)
    sha = await resolve_base(r)
    figures: dict[str, float] = {}

    # raw git worktree add, for reference
    raw_root = home / "raw"
    raw_root.mkdir(parents=True)
    times = []
    for i in range(count):
        start = time.perf_counter()
        sh_git(repo, "worktree", "add", "-q", "--detach", str(raw_root / f"w{i}"), sha)
        times.append(time.perf_counter() - start)
    figures["raw-add"] = statistics.median(times)
    for i in range(count):
        sh_git(repo, "worktree", "remove", "--force", str(raw_root / f"w{i}"))

    pool = WorktreePool(r, capacity=count)
    leases = []
    times = []
    for i in range(count):
        lease = await pool.acquire(sha, f"h{i}")
        times.append(lease.seconds)
        leases.append(lease)
    figures["fresh"] = statistics.median(times)
    for lease in leases:
        await pool.release(lease)

    for phase in ("warm-clean", "warm-dirty"):
        leases, times = [], []
        for i in range(count):
            start = time.perf_counter()
            lease = await pool.acquire(sha, f"h{i}")
            times.append(time.perf_counter() - start)
            if lease.fresh:
                raise RuntimeError("expected a warm slot, got a fresh one")
            leases.append(lease)
        figures[phase] = statistics.median(times)
        for lease in leases:
            if phase == "warm-clean":
                dirty(lease.path)  # so the next phase finds dirty slots
            await pool.release(lease)

    # tear the pool down, then 8 concurrent creations on an empty pool
    leases = [await pool.acquire(sha, f"h{i}") for i in range(count)]
    for lease in leases:
        await pool.destroy_slot(lease.name, lease.fd)
    start = time.perf_counter()
    leases = await asyncio.gather(*(pool.acquire(sha, f"c{i}") for i in range(count)))
    figures["concurrent-wall"] = time.perf_counter() - start
    if not all(lease.fresh for lease in leases):
        raise RuntimeError("expected fresh creations")
    for lease in leases:
        await pool.destroy_slot(lease.name, lease.fd)
    force_rmtree(raw_root)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refute-bench-wt-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        repo = make_repo(root, args.files)
        print(
            f"generated {args.files} files in {time.perf_counter() - start:.1f}s", file=sys.stderr
        )
        rounds = [
            asyncio.run(one_round(repo, args.count, root / f"home{i}")) for i in range(args.repeat)
        ]
    keys = list(rounds[0])
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    print(f"\nworktree benchmark: {args.files} files, {args.count} worktrees, {args.repeat} rounds")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, kernel {platform.release()}")
    print(f"{'phase':<16} {'median per op':>14}  {'fresh / phase':>13}")
    for k in keys:
        if k == "concurrent-wall":
            continue
        print(f"{k:<16} {med[k] * 1000:>11.1f} ms  {med['fresh'] / med[k]:>12.1f}x")
    print(
        f"{'concurrent-wall':<16} {med['concurrent-wall'] * 1000:>11.1f} ms  (8 creations at once)"
    )
    target = med["fresh"] / med["warm-dirty"]
    verdict = "MET" if target >= 10 else "MISSED"
    print("\ntarget: warm acquire >= 10x faster than fresh creation")
    clean = med["fresh"] / med["warm-clean"]
    print(f"  warm-clean: {clean:.1f}x, warm-dirty: {target:.1f}x -> {verdict} (judged on dirty)")
    if args.json:
        args.json.write_text(json.dumps({"median": med, "rounds": rounds}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
