"""Whole-session overhead: `refute run plan.yaml -j 8` against `xargs -P8`, side by side.

The bench makes, in a temporary directory, a git repository of --files files (default
5,000, one commit) and a plan of --hypotheses hypotheses (default 8) whose test is
`sleep --sleep` (default 1 s). Runners:

* ``refute``   - the installed CLI, ``refute run plan.yaml -j J --repo REPO``, with
                 REFUTE_HOME in the temporary directory, stdout and stderr not a terminal;
* ``baseline`` - with ``--baseline CLI`` (repeatable: baseline2, ...): another refute CLI
                 (e.g. the venv of an older commit), the same way, its own REFUTE_HOME;
* ``xargs``    - the same commands run in place (cwd = the repository) by
                 ``xargs -r -P J -I {} sleep 1``, fed one line per command.

Each refute runner is measured in two start-up modes (``--modes``): ``source`` (refute's
own modules compiled at every start: PYTHONDONTWRITEBYTECODE=1 and no bytecode next to
them, as in this project's development venv) and ``bytecode`` (every module read from
bytecode, as after a normal `pip install`: PYTHONPYCACHEPREFIX points at a directory the
warm-up run fills; the source tree is not written). The pool is warm: every refute runner
runs the plan twice before anything is measured (the first writes the bytecode). Then
--repeat rounds, every round running every runner once, the order rotating by one each
round; medians are reported.

`--profile` instead runs refute once with instrumentation and prints where the time goes:
interpreter start-up and imports (`-X importtime`), then each phase of the session (plan,
reconcile, pool, snapshot, tests, store, the end-of-batch sweep, cleanup, the report) and
every git command refute started. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_worktrees import make_repo  # the same 5,000-file repository

#: The goal from the brief: refute's wall within this factor of xargs'.
TARGET_RATIO = 1.35
RUN_TIMEOUT = 600.0


@dataclass
class Runner:
    name: str  # refute:source, baseline:bytecode, xargs
    cli: Path | None = None  # the refute script (None: xargs)
    mode: str = ""  # source | bytecode
    home: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def is_refute(self) -> bool:
        return self.cli is not None


def _default_cli() -> Path:
    beside = Path(sys.executable).with_name("refute")
    if beside.exists():
        return beside
    found = shutil.which("refute")
    if found is None:
        sys.exit("bench_session: no `refute` command found; pass --refute PATH")
    return Path(found)


def cli_python(cli: Path) -> str:
    """The interpreter of a console script (its shebang)."""
    first = cli.read_bytes().split(b"\n", 1)[0].decode()
    if not first.startswith("#!"):
        return sys.executable
    return shlex.split(first[2:])[0]


def _refute_dir(cli: Path) -> str:
    code = "import os, refute; print(os.path.dirname(refute.__file__))"
    done = subprocess.run([cli_python(cli), "-c", code], capture_output=True, text=True)
    return done.stdout.strip()


def _has_bytecode(package_dir: str) -> bool:
    return any(Path(package_dir).rglob("__pycache__/*.pyc")) if package_dir else False


def write_plan(path: Path, hypotheses: int, sleep: float, *, uncommitted: bool = False) -> None:
    lines = ["version: 1", 'bug: "bench: tests that only sleep"']
    if uncommitted:
        lines.append("include_uncommitted: true")
    lines.append("hypotheses:")
    for i in range(1, hypotheses + 1):
        lines += [
            f"  - id: h{i}",
            f"    description: sleeper {i}",
            f'    test: ["sleep", "{sleep:g}"]',
        ]
    path.write_text("\n".join(lines) + "\n")


def _env(runner: Runner, *, writing_bytecode: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUTE_")}
    env.pop("PYTHONPYCACHEPREFIX", None)
    # A pyenv shim that started this bench sets PYENV_DIR to its cwd; a shell would not
    # pass it to `refute` (and refute refuses a test environment pointing into the repo).
    env.pop("PYENV_DIR", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(runner.env)
    if writing_bytecode and runner.mode == "bytecode":
        # Only into PYTHONPYCACHEPREFIX: source mode never writes next to the sources.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_refute(
    runner: Runner, plan: Path, repo: Path, jobs: int, *, writing_bytecode: bool = False
) -> dict[str, Any]:
    if runner.cli is None:
        raise ValueError(runner.name)
    argv = [str(runner.cli), "run", str(plan), "-j", str(jobs), "--repo", str(repo)]
    env = _env(runner, writing_bytecode=writing_bytecode)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=out, stderr=err)
        # wait4: the exit status and the CPU of refute and of every child it waited for
        # (git, the tests), so the CPU figure is the whole session's.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    ok = proc.returncode == 0
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "ok": ok,
        "detail": "" if ok else f"exit {proc.returncode}: {stderr.strip()[-500:]}",
    }


def run_version(runner: Runner) -> float:
    if runner.cli is None:
        raise ValueError(runner.name)
    start = time.perf_counter()
    subprocess.run([str(runner.cli), "--version"], env=_env(runner), capture_output=True)
    return time.perf_counter() - start


def run_xargs(repo: Path, hypotheses: int, jobs: int, sleep: float) -> dict[str, Any]:
    argv = ["xargs", "-r", "-P", str(jobs), "-I", "{}", "sleep", f"{sleep:g}"]
    with tempfile.TemporaryFile() as lines, tempfile.TemporaryFile() as err:
        lines.write(b"x\n" * hypotheses)
        lines.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=repo, stdin=lines, stdout=err, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        detail = err.read().decode(errors="replace").strip()[-500:]
    ok = proc.returncode == 0
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "ok": ok, "detail": detail}


def python_floor(python: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", "pass"], check=False)
    return time.perf_counter() - start


def make_runners(args: argparse.Namespace, tmp: Path) -> list[Runner]:
    clis = [("refute", Path(args.refute) if args.refute else _default_cli(), "")]
    labels = args.baseline_label or []
    for index, cli in enumerate(args.baseline or []):
        label = labels[index] if index < len(labels) else ""
        clis.append((f"baseline{index + 1}" if index else "baseline", Path(cli), label))
    runners = []
    for name, cli, label in clis:
        for mode in args.modes:
            home = tmp / f"home-{name}-{mode}"
            env = {"REFUTE_HOME": str(home)}
            if mode == "bytecode":
                env["PYTHONPYCACHEPREFIX"] = str(tmp / f"pycache-{name}")
            runners.append(
                Runner(f"{name}:{mode}", cli=cli, mode=mode, home=home, env=env, label=label)
            )
    runners.append(Runner("xargs"))
    return runners


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def measure(args: argparse.Namespace, tmp: Path, repo: Path, plan: Path) -> dict[str, Any]:
    runners = make_runners(args, tmp)
    refute_dirs = {str(r.cli): _refute_dir(r.cli) for r in runners if r.cli is not None}
    notes = [
        f"{cli}: refute's package at {where} already has bytecode; 'source' mode reads it"
        for cli, where in refute_dirs.items()
        if "source" in args.modes and _has_bytecode(where)
    ]
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    # Warm-up: fills each runner's pool (and, in bytecode mode, its bytecode directory).
    for runner in runners:
        if runner.is_refute:
            rec = run_refute(runner, plan, repo, args.jobs, writing_bytecode=True)
            rec2 = run_refute(runner, plan, repo, args.jobs)  # reads the bytecode once
            if not (rec["ok"] and rec2["ok"]):
                sys.exit(f"bench_session: warm-up of {runner.name} failed: {rec['detail']}")
    records: list[dict[str, Any]] = []
    clock = time.monotonic()
    for rnd in range(args.repeat):
        shift = rnd % len(runners)
        for runner in runners[shift:] + runners[:shift]:
            if runner.is_refute:
                rec = run_refute(runner, plan, repo, args.jobs)
                rec["version_wall"] = run_version(runner)
            else:
                rec = run_xargs(repo, args.hypotheses, args.jobs, args.sleep)
            rec.update(runner=runner.name, round=rnd)
            records.append(rec)
        print(
            f"  round {rnd + 1}/{args.repeat} done ({time.monotonic() - clock:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    summary: dict[str, dict[str, Any]] = {}
    for runner in runners:
        mine = [r for r in records if r["runner"] == runner.name]
        good = [r for r in mine if r["ok"]]
        walls = [r["wall"] for r in good]
        summary[runner.name] = {
            "label": runner.label,
            "runs": len(mine),
            "failed": len(mine) - len(good),
            "errors": [r["detail"] for r in mine if not r["ok"]][:3],
            "wall": _median(walls),
            "wall_min": min(walls, default=None),
            "wall_max": max(walls, default=None),
            "version_wall": _median([r["version_wall"] for r in good if "version_wall" in r]),
            "cpu": _median([r["cpu"] for r in good if "cpu" in r]),
        }
    return {"records": records, "summary": summary, "notes": notes, "refute_dirs": refute_dirs}


def print_summary(result: dict[str, Any], args: argparse.Namespace) -> None:
    summary = result["summary"]
    xargs = summary.get("xargs", {}).get("wall")
    title = (
        f"{args.hypotheses} x sleep {args.sleep:g} at -j{args.jobs}, {args.files} files,"
        f" warm pool (median of {args.repeat})"
    )
    print(f"\n**{title}**\n")
    print("| runner | wall s | min-max s | / xargs | CPU s | `refute --version` s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, cell in summary.items():
        label = name + (f" ({cell['label']})" if cell.get("label") else "")
        if cell["failed"]:
            label += f" ({cell['failed']}/{cell['runs']} failed)"
        if cell["wall"] is None:
            print(f"| {label} | FAILED: {(cell['errors'] or [''])[0][:100]} | | | | |")
            continue
        ratio = "-" if not xargs else f"{cell['wall'] / xargs:.2f}"
        spread = f"{cell['wall_min']:.3f}-{cell['wall_max']:.3f}"
        print(
            f"| {label} | {cell['wall']:.3f} | {spread} | {ratio} | {_fmt(cell['cpu'], '.2f')} |"
            f" {_fmt(cell['version_wall'])} |"
        )
    print()
    for name, cell in summary.items():
        if name == "xargs" or cell["wall"] is None or not xargs:
            continue
        ratio = cell["wall"] / xargs
        status = "PASS" if ratio <= TARGET_RATIO else "MISS"
        print(f"[{status}] {name}: {ratio:.2f}x xargs (goal <= {TARGET_RATIO}x)")


# -- profile --------------------------------------------------------------------------------

#: What the instrumented run times: module -> functions (Class.method for methods). A name
#: that does not exist (another layout) is skipped and listed.
PROFILE_TARGETS: dict[str, list[str]] = {
    "refute.app.commands": ["run_plan"],
    "refute.plan.models": ["load_plan"],
    "refute.app.spec": ["spec_from_plan"],
    "refute.app.run": ["run_session", "_finish"],
    "refute.app.isolated": [
        "run_isolated",
        "clean_after_dead",
        "resolve_refs",
        "test_environment",
        "_release",
    ],
    "refute.app.preflight": ["find_problems"],
    "refute.app.environments": ["find_leaks"],
    "refute.workspace.pythonenv": ["site_dirs", "editable_installs"],
    "refute.workspace.reconcile": ["reconcile"],
    "refute.engine.sweep": ["stop_orphans", "stop_marked", "find_marked"],
    "refute.workspace.worktrees": ["Repository.open", "resolve_base"],
    "refute.workspace.git": ["_exec", "local_env_vars"],
    "refute.workspace.pool": [
        "WorktreePool.acquire",
        "WorktreePool._refresh",
        "WorktreePool._check",
        "WorktreePool.release",
        "WorktreePool.evict",
        "WorktreePool._create",
    ],
    "refute.workspace.checkouts": ["Checkouts.prepare", "Checkouts.close"],
    "refute.workspace.snapshot": ["snapshot_uncommitted"],
    "refute.workspace.calibration": ["record", "load"],
    "refute.engine.local": ["LocalBatch.shutdown"],
    "refute.engine.process": ["run_process"],
    "refute.store.background": [
        "BackgroundStore.__aenter__",
        "BackgroundStore.__aexit__",
        "BackgroundStore.flush",
    ],
    "refute.store.sessions": [
        "Store.open",
        "Store.create_session",
        "Store.add_run",
        "Store.finish_session",
    ],
    "refute.analysis.verdicts": ["analyze_session"],
    "refute.reports._render": ["render"],
    "refute.cli.signals": ["run_interruptible"],
    "refute.cli.progress": ["Progress.stop"],
    "asyncio.base_events": [
        "BaseEventLoop.shutdown_asyncgens",
        "BaseEventLoop.shutdown_default_executor",
    ],
    "asyncio.runners": ["_cancel_all_tasks"],
}

#: Runs `refute` in-process with the functions above wrapped as their modules are imported
#: (so `from x import f` elsewhere gets the wrapped f). Writes one JSON file.
DRIVER = r"""
import functools, importlib.abc, inspect, json, os, sys, time
T0 = time.perf_counter()
T0_WALL = time.time()
OUT = sys.argv[1]
ARGS = sys.argv[2:]
TARGETS = json.loads(os.environ.pop("REFUTE_BENCH_TARGETS"))
records, missing = [], []

def _git_name(argv):
    rest, i = list(argv[1:]), 0
    while i < len(rest) and rest[i] in ("-C", "-c"):
        i += 2
    sub = rest[i] if i < len(rest) else "?"
    where = "slot" if "-C" in rest and "/slots/" in rest[rest.index("-C") + 1] else "repo"
    return f"git {sub} ({where})"

def wrap(name, fn):
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def timed(*a, **k):
            label = _git_name(a[0]) if name == "refute.workspace.git:_exec" else name
            s = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                records.append((label, s - T0, time.perf_counter() - T0))
        return timed
    @functools.wraps(fn)
    def timed(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            records.append((name, s - T0, time.perf_counter() - T0))
    return timed

def patch(module):
    for qual in TARGETS[module.__name__]:
        owner, attr = module, qual
        if "." in qual:
            cls_name, attr = qual.split(".", 1)
            owner = getattr(module, cls_name, None)
        raw = inspect.getattr_static(owner, attr, None) if owner is not None else None
        if raw is None:
            missing.append(f"{module.__name__}:{qual}")
            continue
        name = f"{module.__name__}:{qual}"
        if isinstance(raw, classmethod):
            setattr(owner, attr, classmethod(wrap(name, raw.__func__)))
        elif isinstance(raw, staticmethod):
            setattr(owner, attr, staticmethod(wrap(name, raw.__func__)))
        else:
            setattr(owner, attr, wrap(name, raw))

class Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner
    def __getattr__(self, name):
        return getattr(self.inner, name)
    def create_module(self, spec):
        return self.inner.create_module(spec)
    def exec_module(self, module):
        self.inner.exec_module(module)
        patch(module)

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = Loader(spec.loader)
                return spec
        return None

sys.meta_path.insert(0, Finder())
t = time.perf_counter()
from refute.cli.main import main
records.append(("import refute.cli.main", t - T0, time.perf_counter() - T0))
code = 0
t = time.perf_counter()
try:
    main(ARGS)
except SystemExit as exc:
    code = exc.code
records.append(("refute.cli.main:main", t - T0, time.perf_counter() - T0))
with open(OUT, "w") as handle:
    json.dump({"t0_wall": T0_WALL, "records": records, "missing": missing, "code": code}, handle)
"""


def _importtime(python: str, argv: list[str], env: dict[str, str], cwd: Path) -> list[tuple]:
    done = subprocess.run(
        [python, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True, text=True
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        self_us, cumulative, raw = int(parts[0]), int(parts[1]), parts[2]
        depth = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        rows.append((raw.strip(), self_us, cumulative, depth))
    return rows


def _import_summary(rows: list[tuple]) -> tuple[float, list[tuple[str, float]]]:
    """Total import time, and the self time of the modules grouped by top-level package."""
    total = sum(r[1] for r in rows) / 1e6
    groups: dict[str, float] = {}
    for name, self_us, _cumulative, _depth in rows:
        top = name.split(".")[0]
        groups[top] = groups.get(top, 0.0) + self_us / 1e6
    return total, sorted(groups.items(), key=lambda kv: -kv[1])


def _refute_imports(rows: list[tuple]) -> list[tuple[str, float]]:
    """refute's own modules: self time each (where its import cost is spent)."""
    mine = [(n, s / 1e6) for n, s, _c, _d in rows if n == "refute" or n.startswith("refute.")]
    return sorted(mine, key=lambda kv: -kv[1])


def profile(args: argparse.Namespace, tmp: Path, repo: Path, plan: Path) -> int:
    mode = args.profile_mode
    runner = next(r for r in make_runners(args, tmp) if r.mode == mode and r.name.startswith("ref"))
    python = cli_python(runner.cli)
    for _ in range(2):  # warm pool (and bytecode in bytecode mode)
        run_refute(runner, plan, repo, args.jobs, writing_bytecode=True)
    env = _env(runner)
    run_args = ["run", str(plan), "-j", str(args.jobs), "--repo", str(repo)]
    print(f"profile of {runner.cli} ({mode} mode), {args.hypotheses} x sleep {args.sleep:g}")
    floors = [python_floor(python) for _ in range(3)]
    versions = [run_version(runner) for _ in range(3)]
    walls = [run_refute(runner, plan, repo, args.jobs)["wall"] for _ in range(3)]
    print("\n== start-up (medians of 3) ==")
    print(f"python -c pass          {statistics.median(floors):.3f} s")
    print(f"refute --version        {statistics.median(versions):.3f} s")
    print(f"refute run (whole)      {statistics.median(walls):.3f} s")
    xargs = statistics.median(
        run_xargs(repo, args.hypotheses, args.jobs, args.sleep)["wall"] for _ in range(3)
    )
    print(f"xargs -P{args.jobs}                {xargs:.3f} s")
    cli_code = "import sys; from refute.cli import main; sys.argv[0] = 'refute'; main()"
    for what, argv in (("--version", ["--version"]), ("run", run_args)):
        rows = _importtime(python, ["-c", cli_code, *argv], env, repo)
        total, groups = _import_summary(rows)
        shown = ", ".join(f"{name} {sec:.3f}" for name, sec in groups[:12])
        print(f"\nimports of `refute {what}`: {total:.3f} s in {len(rows)} modules")
        print(f"  self time by top-level package (s): {shown}")
        if what == "run":
            own = _refute_imports(rows)
            print(f"  refute's own modules: {sum(s for _, s in own):.3f} s self time; top:")
            print("   " + ", ".join(f"{n} {s:.3f}" for n, s in own[:8]))
    out = tmp / "profile.json"
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    env["REFUTE_BENCH_TARGETS"] = json.dumps(PROFILE_TARGETS)
    start_wall = time.time()
    start = time.perf_counter()
    done = subprocess.run(
        [python, str(driver), str(out), *run_args], env=env, cwd=repo, capture_output=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0 or not out.exists():
        print(done.stderr.decode(errors="replace")[-3000:], file=sys.stderr)
        return 1
    data = json.loads(out.read_text())
    offset = data["t0_wall"] - start_wall  # interpreter start-up before the driver ran
    print_phases(data, offset, wall)
    return 0


def print_phases(data: dict[str, Any], offset: float, wall: float) -> None:
    phases: dict[str, list[tuple[float, float]]] = {}
    for name, start, end in data["records"]:
        phases.setdefault(name, []).append((start + offset, end + offset))
    print(f"\n== one instrumented `refute run` ({wall:.3f} s; times from process start) ==")
    print(f"{'phase':<52} {'calls':>5} {'sum s':>7} {'first':>7} {'last':>7}")
    print(f"{'interpreter start-up (before the driver ran)':<52} {1:>5} {offset:>7.3f}")
    for name, spans in sorted(phases.items(), key=lambda kv: min(s for s, _ in kv[1])):
        total = sum(e - s for s, e in spans)
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        print(f"{name:<52} {len(spans):>5} {total:>7.3f} {first:>7.3f} {last:>7.3f}")
    gits = [(n, s, e) for n, s, e in data["records"] if n.startswith("git ")]
    print(f"\n{len(gits)} git commands, {sum(e - s for _, s, e in gits):.3f} s in all")
    tests = phases.get("refute.engine.process:run_process", [])
    if tests:
        first = min(s for s, _ in tests)
        last = max(e for _, e in tests)
        print(
            f"first test started at {first:.3f} s, last test ended at {last:.3f} s;"
            f" {wall - last:.3f} s after it until the process exited"
        )
    if data["missing"]:
        print("not found in this layout (not timed): " + ", ".join(data["missing"]))


# -- main -----------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": platform.release(),
        "git": git,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="files in the repository")
    parser.add_argument("--hypotheses", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=8, help="-j for refute, -P for xargs")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each test sleeps")
    parser.add_argument("--repeat", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--refute", help="the refute CLI to measure (default: beside python)")
    parser.add_argument(
        "--baseline",
        metavar="CLI",
        action="append",
        help="another refute CLI, side by side (repeatable)",
    )
    parser.add_argument(
        "--baseline-label", action="append", help="how each baseline is named, in order"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("source", "bytecode"),
        default=["source", "bytecode"],
        help="start-up modes of the refute runners (default: both)",
    )
    parser.add_argument(
        "--uncommitted",
        action="store_true",
        help="include_uncommitted: true, with a modified and an untracked file (a snapshot)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    parser.add_argument("--profile", action="store_true", help="where the time goes, then exit")
    parser.add_argument(
        "--profile-mode", choices=("source", "bytecode"), default="bytecode", help="for --profile"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.hypotheses < 1 or args.jobs < 1:
        parser.error("--repeat, --hypotheses and --jobs must be >= 1")
    if args.profile:
        args.modes = [args.profile_mode]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="refute-bench-session-"))
    try:
        print(f"command: {shlex.join([sys.executable, *sys.argv])}")
        started = datetime.now(UTC)
        load_before = [round(x, 2) for x in os.getloadavg()]
        machine = _machine()
        print(f"date: {started.isoformat(timespec='seconds')}; load before: {load_before}")
        print(f"machine: {machine}")
        sys.stdout.flush()
        repo = make_repo(tmp, args.files)
        plan = tmp / "plan.yaml"
        write_plan(plan, args.hypotheses, args.sleep, uncommitted=args.uncommitted)
        if args.uncommitted:  # something to snapshot: one modified file, one untracked
            (repo / "pkg000" / "mod000.py").write_text("VALUE = -1\n")
            (repo / "untracked.py").write_text("NEW = 1\n")
        if args.profile:
            return profile(args, tmp, repo, plan)
        result = measure(args, tmp, repo, plan)
        load_after = [round(x, 2) for x in os.getloadavg()]
        print_summary(result, args)
        print(f"\nload average after: {load_after}")
        if args.json:
            payload = {
                "command": shlex.join([sys.executable, *sys.argv]),
                "date": started.isoformat(timespec="seconds"),
                "machine": machine,
                "load_before": load_before,
                "load_after": load_after,
                "settings": vars(args),
                **result,
            }
            Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
            print(f"raw figures written to {args.json}")
        return 0 if all(c["failed"] == 0 for c in result["summary"].values()) else 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
