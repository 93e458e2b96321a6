"""Benchmark refute's execution engine side by side with the alternatives, in one run.

Runners, all at the same concurrency J:

* ``refute``      - ``refute.AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=J))
                    .execute_parallel(hypotheses, worktrees)``;
* ``thread-pool`` - the seed's "before": ``ThreadPoolExecutor(max_workers=J)`` +
                    ``subprocess.run(argv, capture_output=True, timeout=...)`` per command;
* ``asyncio``     - the seed's "after" as its summary describes it:
                    ``asyncio.create_subprocess_exec`` + ``communicate()`` under
                    ``asyncio.Semaphore(J)``, wrapped in ``asyncio.wait_for``;
* ``xargs``       - ``xargs -r -P J -I {} <argv>`` fed one input line per command;
* ``parallel``    - GNU ``parallel --will-cite -j J -N0 <argv>`` (when installed);
* ``baseline``    - with ``--baseline PYTHON``: the ``refute`` runner again, in another
                    interpreter (e.g. a venv of an older commit), so two versions of the
                    engine are compared side by side in one run.

Workloads: ``trivial`` (500 x /bin/true at -j8), ``sleep`` (8 x sleep 1 at -j8) and
``sleepers`` (256 x sleep 2 at J=256, for peak memory).

Every (runner, workload) measurement runs in a fresh child process (``--worker RUNNER
WORKLOAD``), which prints one JSON record. Runs are repeated round-robin (the runner
order rotates each round) and the medians are reported. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUNNERS = ("refute", "thread-pool", "asyncio", "xargs", "parallel")
PYTHON_RUNNERS = ("refute", "thread-pool", "asyncio")
#: The `refute` runner in the interpreter given by --baseline (not a --worker runner).
BASELINE = "baseline"
WORKLOADS = ("trivial", "sleep", "sleepers")
RESULT_PREFIX = "BENCH-RESULT "
#: Per-command timeout given to every Python runner (refute's default test timeout).
COMMAND_TIMEOUT = 300.0
#: How often a worker samples an external tool's VmHWM while it runs.
POLL_INTERVAL = 0.005
#: How often a worker lists an external tool's descendants (to spot helper processes).
TREE_INTERVAL = 0.1
#: A worker that takes longer than this is a harness failure.
WORKER_TIMEOUT = 900.0

# Targets (refute's, from the project brief).
TRIVIAL_VS_XARGS = 1.3
SLEEP_OVERHEAD = 0.10


@dataclass(frozen=True)
class Workload:
    name: str
    argv: tuple[str, ...]
    count: int
    jobs: int
    sleep: float = 0.0  # the duration of each command, for the `sleep` target

    @property
    def title(self) -> str:
        return f"{self.count} x {shlex.join(self.argv)} at -j{self.jobs}"


def _bin(name: str, fallback: str) -> str:
    return shutil.which(name) or fallback


def workloads(*, quick: bool) -> dict[str, Workload]:
    true = _bin("true", "/bin/true")
    sleep = _bin("sleep", "/bin/sleep")
    if quick:
        return {
            "trivial": Workload("trivial", (true,), 100, 8),
            "sleep": Workload("sleep", (sleep, "0.3"), 8, 8, 0.3),
            "sleepers": Workload("sleepers", (sleep, "0.5"), 64, 64, 0.5),
        }
    return {
        "trivial": Workload("trivial", (true,), 500, 8),
        "sleep": Workload("sleep", (sleep, "1"), 8, 8, 1.0),
        "sleepers": Workload("sleepers", (sleep, "2"), 256, 256, 2.0),
    }


# -- worker side ------------------------------------------------------------------------


def _vm_hwm_kib(pid: int | str = "self") -> int | None:
    """Peak resident set size so far (VmHWM, KiB) of a live process; None if unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None  # a zombie has no memory map any more


def _stat_cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` itself (not its children), readable from a zombie too."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prepare_refute(wl: Workload, cwd: Path):
    refute = importlib.import_module("refute")
    hypotheses = [
        refute.Hypothesis(id=f"h{i}", description="", test=list(wl.argv)) for i in range(wl.count)
    ]
    worktrees = {h.id: cwd for h in hypotheses}
    executor = refute.AsyncTestExecutor(refute.FalsificationConfig(max_concurrent_tests=wl.jobs))

    def run() -> tuple[list[int], str]:
        results = executor.execute_parallel(hypotheses, worktrees)
        bad = [r for r in results if r.result is not refute.TestResult.PASS]
        return [r.exit_code for r in results], (bad[0].error_message if bad else "")

    return run


def _prepare_thread_pool(wl: Workload, cwd: Path):
    futures = importlib.import_module("concurrent.futures")
    argv = list(wl.argv)

    def one(_: int) -> int:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=COMMAND_TIMEOUT)
        return done.returncode

    def run() -> tuple[list[int], str]:
        with futures.ThreadPoolExecutor(max_workers=wl.jobs) as pool:
            return list(pool.map(one, range(wl.count))), ""

    return run


def _prepare_asyncio(wl: Workload, cwd: Path):
    aio = importlib.import_module("asyncio")
    argv = list(wl.argv)

    async def batch() -> list[int]:
        semaphore = aio.Semaphore(wl.jobs)

        async def execute() -> int:
            proc = await aio.create_subprocess_exec(
                *argv, cwd=cwd, stdout=aio.subprocess.PIPE, stderr=aio.subprocess.PIPE
            )
            await proc.communicate()
            return -999 if proc.returncode is None else proc.returncode

        async def one() -> int:
            async with semaphore:
                return await aio.wait_for(execute(), timeout=COMMAND_TIMEOUT)

        return list(await aio.gather(*(one() for _ in range(wl.count))))

    def run() -> tuple[list[int], str]:
        return aio.run(batch()), ""

    return run


PREPARE = {
    "refute": _prepare_refute,
    "thread-pool": _prepare_thread_pool,
    "asyncio": _prepare_asyncio,
}
#: What each Python runner imports; the import is timed in a fresh worker ("start-up").
RUNNER_MODULE = {"refute": "refute", "thread-pool": "concurrent.futures", "asyncio": "asyncio"}


def _import_runner(runner: str) -> None:
    module = importlib.import_module(RUNNER_MODULE[runner])
    if runner == "refute":
        # `import refute` may load its names lazily (PEP 562): resolving the executor is
        # what imports the engine, in every layout (refute.executor or refute.compat).
        getattr(module, "AsyncTestExecutor")  # noqa: B009 - the attribute access is the point


def _python_worker(runner: str, wl: Workload, cwd: Path, profile_out: str | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    _import_runner(runner)
    startup = time.perf_counter() - t0
    # Every Python worker imports refute's engine (`import refute` alone is lazy), so the
    # three start from the same baseline memory and the peak-RSS comparison measures the
    # engines, not the import lists.
    _import_runner("refute")
    run = PREPARE[runner](wl, cwd)
    baseline = _vm_hwm_kib()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    profiler = None
    if profile_out:
        profiler = importlib.import_module("cProfile").Profile()
        profiler.enable()
    start = time.perf_counter()
    codes, message = run()
    wall = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_out)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    orch_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    child_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    ok = len(codes) == wl.count and all(code == 0 for code in codes)
    failed = sum(1 for code in codes if code != 0)
    return {
        "wall": wall,
        "cpu": orch_cpu + child_cpu,
        "cpu_orchestrator": orch_cpu,
        "peak_rss_kib": self1.ru_maxrss,
        "baseline_rss_kib": baseline,
        "startup": startup,
        "startup_kind": (
            "import refute + refute.AsyncTestExecutor"
            if runner == "refute"
            else f"import {RUNNER_MODULE[runner]}"
        ),
        "ok": ok,
        "detail": "" if ok else f"{failed} of {wl.count} commands failed: {message}",
    }


def _tool_argv(runner: str, wl: Workload) -> list[str]:
    if runner == "xargs":
        # -I {} with no {} in the command runs exactly `argv` once per input line.
        return [_bin("xargs", "xargs"), "-r", "-P", str(wl.jobs), "-I", "{}", *wl.argv]
    return [_bin("parallel", "parallel"), "--will-cite", "-j", str(wl.jobs), "-N0", *wl.argv]


def _descendant_names(pid: int, seen: dict[str, int]) -> None:
    psutil = importlib.import_module("psutil")
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            name = child.name()
        except psutil.Error:
            continue
        seen[name] = seen.get(name, 0) + 1


def _watch(proc: subprocess.Popen[bytes], start: float) -> tuple[float, int | None, dict[str, int]]:
    """Wait for `proc` to exit without reaping it; sample its VmHWM meanwhile."""
    pidfd = os.pidfd_open(proc.pid)
    peak = _vm_hwm_kib(proc.pid)
    names: dict[str, int] = {}
    next_tree = start + TREE_INTERVAL / 2
    try:
        while True:
            ready, _, _ = select.select([pidfd], [], [], POLL_INTERVAL)
            if ready:
                end = time.perf_counter()
                break
            hwm = _vm_hwm_kib(proc.pid)
            if hwm is not None:
                peak = hwm if peak is None else max(peak, hwm)
            if time.perf_counter() >= next_tree:
                _descendant_names(proc.pid, names)
                next_tree = time.perf_counter() + TREE_INTERVAL
    finally:
        os.close(pidfd)
    return end - start, peak, names


def _external_worker(runner: str, wl: Workload, cwd: Path) -> dict[str, Any]:
    argv = _tool_argv(runner, wl)
    importlib.import_module("psutil")
    # Start-up: the same tool with no input (runs no command).
    with open(os.devnull, "rb") as empty:
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=empty, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        startup = time.perf_counter() - t0
    lines = cwd / "input.txt"
    lines.write_text("x\n" * wl.count)
    errors = cwd / "stderr.txt"
    with lines.open("rb") as stdin, errors.open("wb") as stderr:
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd
        )
        wall, peak, names = _watch(proc, start)
        orch_cpu = _stat_cpu_seconds(proc.pid)  # still a zombie: its own CPU, final
        code = proc.wait()
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    message = errors.read_text(errors="replace").strip()
    ok = code == 0
    return {
        "wall": wall,
        "cpu": cpu,
        "cpu_orchestrator": orch_cpu,
        "peak_rss_kib": peak,
        "baseline_rss_kib": None,
        "startup": startup,
        "startup_kind": "run with no input",
        "ok": ok,
        "detail": "" if ok else f"exit {code}: {message[-500:]}",
        "stderr": message[-500:],
        "descendants_seen": names,
        "argv": argv,
    }


def worker(runner: str, workload: str, *, quick: bool, profile_out: str | None) -> int:
    wl = workloads(quick=quick)[workload]
    cwd = Path(tempfile.mkdtemp(prefix="refute-bench-"))
    try:
        if runner in PYTHON_RUNNERS:
            record = _python_worker(runner, wl, cwd, profile_out)
        else:
            record = _external_worker(runner, wl, cwd)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    record.update(runner=runner, workload=workload, count=wl.count, jobs=wl.jobs)
    print(RESULT_PREFIX + json.dumps(record), flush=True)
    return 0


# -- parent side ------------------------------------------------------------------------


def _worker_argv(
    runner: str, workload: str, *, quick: bool, python: str | None = None
) -> list[str]:
    argv = [python or sys.executable, str(Path(__file__).resolve()), "--worker", runner, workload]
    return [*argv, "--quick"] if quick else argv


def run_worker(
    runner: str, workload: str, *, quick: bool, baseline: str | None = None
) -> dict[str, Any]:
    if runner == BASELINE:
        argv = _worker_argv("refute", workload, quick=quick, python=baseline)
    else:
        argv = _worker_argv(runner, workload, quick=quick)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"runner": runner, "workload": workload, "harness_error": "worker timed out"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            record: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            record["runner"] = runner
            return record
    tail = (done.stderr or done.stdout).strip()[-2000:]
    return {
        "runner": runner,
        "workload": workload,
        "harness_error": f"worker exited {done.returncode} without a result: {tail}",
    }


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    out = (done.stdout or done.stderr).strip()
    return out.splitlines()[0] if out else "unavailable"


def machine_info(baseline: str | None = None) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parallel = shutil.which("parallel")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "kernel": platform.release(),
        "xargs": _first_line([_bin("xargs", "xargs"), "--version"]),
        "parallel": _first_line([parallel, "--version"]) if parallel else "not installed",
        "refute": _first_line([sys.executable, "-c", _WHERE]),
        "baseline": _first_line([baseline, "-c", _WHERE]) if baseline else None,
    }


_WHERE = "import refute; print(refute.__version__, refute.__file__)"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in records:
        if rec.get("warmup"):
            continue
        cell = summary.setdefault(rec["workload"], {}).setdefault(
            rec["runner"], {"runs": 0, "failed": 0, "errors": [], "_good": []}
        )
        cell["runs"] += 1
        if "harness_error" in rec or not rec.get("ok"):
            cell["failed"] += 1
            cell["errors"].append(rec.get("harness_error") or rec.get("detail", ""))
            continue
        cell["_good"].append(rec)
    for cells in summary.values():
        for cell in cells.values():
            good = cell.pop("_good")
            walls = [r["wall"] for r in good]

            def med(key: str, good: list[dict[str, Any]] = good) -> float | None:
                return _median([r[key] for r in good if r.get(key) is not None])

            baseline = med("baseline_rss_kib")
            peak = med("peak_rss_kib")
            cell.update(
                ok_runs=len(good),
                wall=_median(walls),
                wall_min=min(walls, default=None),
                wall_max=max(walls, default=None),
                cpu=med("cpu"),
                cpu_orchestrator=med("cpu_orchestrator"),
                peak_rss_kib=peak,
                baseline_rss_kib=baseline,
                startup=med("startup"),
                startup_kind=good[0]["startup_kind"] if good else "",
            )
    return summary


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(num: float | None, den: float | None) -> str:
    if num is None or not den:
        return "-"
    return f"{num / den:.2f}"


def _label(runner: str, wl: Workload, baseline_label: str = "") -> str:
    return {
        BASELINE: f"refute ({baseline_label or 'baseline'})",
        "refute": "refute",
        "thread-pool": "thread-pool",
        "asyncio": "asyncio naive",
        "xargs": f"xargs -P{wl.jobs}",
        "parallel": f"parallel -j{wl.jobs}",
    }[runner]


COLUMNS = (
    ("runner", "<"),
    ("wall s", ">"),
    ("min-max s", ">"),
    ("wall ref/row", ">"),
    ("CPU s", ">"),
    ("orch CPU s", ">"),
    ("peak RSS MiB", ">"),
    ("+run MiB", ">"),
    ("RSS ref/row", ">"),
    ("start-up s", ">"),
)


def table_rows(
    cells: dict[str, dict[str, Any]],
    wl: Workload,
    runners: list[str],
    missing: set[str],
    baseline_label: str = "",
) -> list[list[str]]:
    """One row of strings per runner, in COLUMNS order."""
    ref = cells.get("refute", {})
    rows = []
    for runner in runners:
        label = _label(runner, wl, baseline_label)
        cell = cells.get(runner)
        if runner in missing:
            rows.append([label, "not installed", *[""] * (len(COLUMNS) - 2)])
            continue
        if not cell or not cell.get("ok_runs"):
            errors = (cell or {}).get("errors") or ["no runs"]
            rows.append([label, f"FAILED: {errors[0][:120]}", *[""] * (len(COLUMNS) - 2)])
            continue
        peak = cell["peak_rss_kib"]
        base = cell["baseline_rss_kib"]
        grown = None if peak is None or base is None else max(0.0, peak - base) / 1024
        failed = f" ({cell['failed']}/{cell['runs']} failed)" if cell["failed"] else ""
        rows.append(
            [
                label + failed,
                _fmt(cell["wall"], ".3f"),
                f"{cell['wall_min']:.3f}-{cell['wall_max']:.3f}",
                _ratio(ref.get("wall"), cell["wall"]),
                _fmt(cell["cpu"], ".2f"),
                _fmt(cell["cpu_orchestrator"], ".2f"),
                _fmt(None if peak is None else peak / 1024, ".1f"),
                _fmt(grown, ".1f"),
                _ratio(ref.get("peak_rss_kib"), peak),
                _fmt(cell["startup"], ".3f"),
            ]
        )
    return rows


def render(rows: list[list[str]], *, markdown: bool) -> str:
    header = [name for name, _ in COLUMNS]
    if markdown:
        align = ["---" if a == "<" else "---:" for _, a in COLUMNS]
        lines = [header, align, *rows]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    aligned = [header, *(r for r in rows if r[2])]  # "not installed"/"FAILED" rows span
    widths = [max(len(r[i]) for r in aligned) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        if not row[2]:
            out.append(f"{row[0]:<{widths[0]}}  {row[1]}")
            continue
        cols = [format(v, f"{a}{w}") for v, (_, a), w in zip(row, COLUMNS, widths, strict=True)]
        out.append("  ".join(cols))
    return "\n".join(out)


def print_table(
    summary: dict[str, dict[str, dict[str, Any]]],
    wls: dict[str, Workload],
    runners: list[str],
    missing: set[str],
    repeat: int,
    *,
    markdown: bool,
    baseline_label: str = "",
) -> None:
    for name, wl in wls.items():
        rows = table_rows(summary.get(name, {}), wl, runners, missing, baseline_label)
        title = f"{name}: {wl.title} (median of {repeat})"
        print(f"\n**{title}**\n" if markdown else f"\n== {title} ==")
        print(render(rows, markdown=markdown))


def evaluate_targets(
    summary: dict[str, dict[str, dict[str, Any]]], wls: dict[str, Workload]
) -> list[dict[str, Any]]:
    def get(workload: str, runner: str, key: str) -> float | None:
        value = summary.get(workload, {}).get(runner, {}).get(key)
        return None if value is None else float(value)

    targets: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float | None, detail: str) -> None:
        status = "N/A"
        if value is not None and limit is not None:
            status = "PASS" if value <= limit else "MISS"
        targets.append(
            {"target": name, "status": status, "value": value, "limit": limit, "detail": detail}
        )

    # Only the targets whose workload was measured (see --workloads).
    trivial = wls.get("trivial")
    if trivial is not None:
        _trivial_target(
            add, get("trivial", "refute", "wall"), get("trivial", "xargs", "wall"), trivial
        )
    for name, wl in wls.items():
        ref = get(name, "refute", "wall")
        pool = get(name, "thread-pool", "wall")
        add(
            f"{name}: refute wall <= thread-pool wall ({wl.title})",
            ref,
            pool,
            f"refute {_fmt(ref, '.3f')} s, thread-pool {_fmt(pool, '.3f')} s,"
            f" refute/thread-pool = {_ratio(ref, pool)}",
        )
    sleepers = wls.get("sleepers")
    if sleepers is not None:
        _sleepers_target(
            add,
            get("sleepers", "refute", "peak_rss_kib"),
            get("sleepers", "thread-pool", "peak_rss_kib"),
            sleepers,
        )
    sleep = wls.get("sleep")
    if sleep is not None:
        _sleep_target(add, get("sleep", "refute", "wall"), sleep)
    for name, wl in wls.items():
        old = get(name, BASELINE, "wall")
        if old is None:
            continue
        ref = get(name, "refute", "wall")
        add(
            f"{name}: refute wall <= baseline refute wall ({wl.title})",
            ref,
            old,
            f"refute {_fmt(ref, '.3f')} s, baseline {_fmt(old, '.3f')} s,"
            f" refute/baseline = {_ratio(ref, old)}",
        )
    return targets


def _trivial_target(add, ref: float | None, xargs: float | None, trivial: Workload) -> None:
    limit = None if xargs is None else TRIVIAL_VS_XARGS * xargs
    add(
        f"{trivial.count} trivial: refute wall <= {TRIVIAL_VS_XARGS} x xargs -P{trivial.jobs} wall",
        ref,
        limit,
        f"refute {_fmt(ref, '.3f')} s, xargs {_fmt(xargs, '.3f')} s,"
        f" refute/xargs = {_ratio(ref, xargs)} (limit {TRIVIAL_VS_XARGS:.2f})",
    )


def _sleepers_target(add, ref: float | None, pool: float | None, sleepers: Workload) -> None:
    add(
        f"peak RSS at {sleepers.count} sleepers: refute <= thread-pool",
        ref,
        pool,
        f"refute {_fmt(None if ref is None else ref / 1024, '.1f')} MiB,"
        f" thread-pool {_fmt(None if pool is None else pool / 1024, '.1f')} MiB,"
        f" refute/thread-pool = {_ratio(ref, pool)}",
    )


def _sleep_target(add, ref: float | None, sleep: Workload) -> None:
    limit = sleep.sleep + SLEEP_OVERHEAD
    add(
        f"{sleep.title}: refute wall <= {limit:.2f} s",
        ref,
        limit,
        f"refute {_fmt(ref, '.3f')} s (limit {limit:.2f} s;"
        f" the commands alone take {sleep.sleep:g} s)",
    )


def print_targets(targets: list[dict[str, Any]]) -> None:
    print("\n== targets (refute) ==")
    for t in targets:
        print(f"[{t['status']:<4}] {t['target']}\n       {t['detail']}")


def profile(*, quick: bool) -> int:
    pstats = importlib.import_module("pstats")
    with tempfile.TemporaryDirectory(prefix="refute-bench-prof-") as tmp:
        out = str(Path(tmp) / "refute.prof")
        argv = [*_worker_argv("refute", "trivial", quick=quick), "--profile-out", out]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
        if done.returncode != 0 or not Path(out).exists():
            print(done.stderr, file=sys.stderr)
            return 1
        print(
            "cProfile of refute on the trivial workload"
            f" ({workloads(quick=quick)['trivial'].title})"
        )
        stats = pstats.Stats(out, stream=sys.stdout).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
    return 0


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def benchmark(args: argparse.Namespace) -> int:
    quick: bool = args.quick
    repeat: int = args.repeat if args.repeat is not None else (2 if quick else 5)
    wls = workloads(quick=quick)
    runners = list(args.runners or RUNNERS)
    if args.baseline:
        runners.insert(runners.index("refute") + 1 if "refute" in runners else 0, BASELINE)
    missing = set()
    if "parallel" in runners and shutil.which("parallel") is None:
        missing.add("parallel")
    measured = [r for r in runners if r not in missing]
    selected = {n: w for n, w in wls.items() if not args.workloads or n in args.workloads}
    info = machine_info(args.baseline)
    command = shlex.join([sys.executable, *sys.argv])
    started = datetime.now(UTC)
    load_before = _load()
    print(f"command: {command}")
    print(
        f"machine: nproc={info['nproc']} {info['cpu_model']}; {info['python']};"
        f" kernel {info['kernel']}"
    )
    print(f"date: {started.isoformat(timespec='seconds')}; load average before: {load_before}")
    print(f"refute: {info['refute']}")
    if args.baseline:
        print(f"baseline ({args.baseline_label or 'baseline'}): {info['baseline']}")
    if quick:
        print("quick mode: smaller workloads, for a smoke check only")
    sys.stdout.flush()  # progress goes to stderr; keep the header above it
    records: list[dict[str, Any]] = []
    rounds = args.warmup + repeat
    clock = time.monotonic()
    for rnd in range(rounds):
        shift = rnd % len(measured) if measured else 0
        order = measured[shift:] + measured[:shift]
        for name in selected:
            for runner in order:
                rec = run_worker(runner, name, quick=quick, baseline=args.baseline)
                rec.update(round=rnd, warmup=rnd < args.warmup)
                records.append(rec)
        kind = "warm-up" if rnd < args.warmup else f"round {rnd - args.warmup + 1}/{repeat}"
        print(f"  {kind} done ({time.monotonic() - clock:.0f} s)", file=sys.stderr, flush=True)
    load_after = _load()
    summary = summarise(records)
    label = args.baseline_label
    print_table(summary, selected, runners, missing, repeat, markdown=False, baseline_label=label)
    if args.markdown:
        print("\n-- the same, as markdown --")
        print_table(
            summary, selected, runners, missing, repeat, markdown=True, baseline_label=label
        )
    targets = evaluate_targets(summary, selected)
    if targets:
        print_targets(targets)
    print(f"\nload average after: {load_after}")
    print(
        "columns (medians): wall s = seconds around the run only (min-max over the runs);"
        " ref/row = refute's figure / this row's (>1: refute slower or bigger); CPU s ="
        " user+sys of the orchestrator and the commands it ran; orch CPU s = the orchestrator"
        " alone; peak RSS = peak resident memory of the orchestrating process (threads"
        " included); +run = peak minus the peak before the run (Python runners); start-up ="
        " import time (Python runners) or a run with no input (xargs, parallel), not in wall.\n"
        "See bench/README.md."
    )
    harness_errors = [r for r in records if "harness_error" in r]
    for rec in harness_errors:
        print(
            f"harness error: {rec['runner']} {rec['workload']}: {rec['harness_error']}",
            file=sys.stderr,
        )
    if args.json:
        payload = {
            "command": command,
            "date": started.isoformat(timespec="seconds"),
            "machine": info,
            "load_before": load_before,
            "load_after": load_after,
            "settings": {
                "quick": quick,
                "repeat": repeat,
                "warmup": args.warmup,
                "runners": runners,
                "not_installed": sorted(missing),
                "workloads": {n: asdict(w) for n, w in selected.items()},
            },
            "summary": summary,
            "targets": targets,
            "records": records,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"raw figures written to {args.json}")
    return 1 if harness_errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeat", type=int, help="runs per (runner, workload); default 5 (2 with --quick)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="discarded warm-up rounds (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke check")
    parser.add_argument("--json", metavar="FILE", help="write the raw figures to FILE")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, help="measure only these runners")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, help="measure only these")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile refute on the trivial workload and exit"
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also run the refute runner under this interpreter (another version), side by side",
    )
    parser.add_argument(
        "--baseline-label", default="", help="how the baseline row is named (e.g. a commit)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("RUNNER", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.worker and (args.worker[0] not in RUNNERS or args.worker[1] not in WORKLOADS):
        parser.error(f"--worker RUNNER WORKLOAD: RUNNER in {RUNNERS}, WORKLOAD in {WORKLOADS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        runner, workload = args.worker
        return worker(runner, workload, quick=args.quick, profile_out=args.profile_out)
    if args.profile:
        return profile(quick=args.quick)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
