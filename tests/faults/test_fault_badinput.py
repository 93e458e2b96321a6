"""Bad input, end to end: every case is exit 2 (or the documented code) with one line on
stderr, never a traceback, and nothing of the user's changed or left behind.

Each test starts the installed `refute` as a user does, in a real repository in tmp_path,
with the conftest's REFUTE_HOME and process tag. Covered: unbounded numbers in plans and
options (issue point 9), a plan overriding refute's own variables (10), JSON plans with
surrogate-pair escapes, non-finite numbers in JSON reports, Ctrl-C in the first moments,
a closed stdout, a repository of another user (11), and a 3,000-hypothesis plan at -j 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until_gone
from gitutil import assert_pool_idle, fingerprint, git, make_repo, refute_worktrees
from refute import model, reports
from refute.cli import main
from test_reports import make_document

REFUTE = Path(sys.executable).parent / "refute"
TIMEOUT = 120.0


def home() -> Path:
    return Path(os.environ["REFUTE_HOME"])


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(extra)
    return env


def refute(
    *args: object, cwd: Path, timeout: float = TIMEOUT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REFUTE), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def refute_here(
    *args: object, cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess[str]:
    """`refute ARGS` in this process (`refute.cli.main`, the console script's own entry
    point): the same parsing, checks and exit codes, without a second of start-up."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        main([str(arg) for arg in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = 0
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def home_files() -> list[str]:
    root = home()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def assert_refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr (an error naming `needles`), no traceback."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("refute: error: "), lines
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def plan_text(**top: Any) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "bug": "a bug",
        "hypotheses": [{"id": "alpha", "description": "d", "test": ["true"]}],
    }
    data.update(top)
    return json.dumps(data)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# -- point 9: every number has an upper bound, checked by `check` ---------------------------


PLAN_BOUNDS = [
    ({"defaults": {"repeat": 100000000}}, "defaults.repeat", "from 1 to 1000"),
    ({"concurrency": 100000000}, "concurrency", "from 1 to 256"),
    ({"concurrency": 10**20}, "concurrency", "from 1 to 256"),
    ({"max_hypotheses": 10**20}, "max_hypotheses", "from 1 to 10000"),
    ({"defaults": {"timeout": 1e300}}, "defaults.timeout", "<= 604800"),
    ({"setup_timeout": 1e12}, "setup_timeout", "<= 604800"),
    ({"ranking": {"impact_weight": 1e308}}, "ranking.impact_weight", "from 0 to 1000"),
    (
        {"hypotheses": [{"id": "a", "description": "d", "test": ["true"], "repeat": 10**9}]},
        "hypotheses[0].repeat",
        "from 1 to 1000",
    ),
    (
        {
            "hypotheses": [
                {"id": f"h{i}", "description": "d", "estimated_test_time": 1e308} for i in range(3)
            ]
        },
        "hypotheses[0].estimated_test_time",
        "from 0 to 604800",
    ),
]


@pytest.mark.parametrize(("top", "field", "message"), PLAN_BOUNDS)
def test_a_number_past_its_bound_is_exit_2_and_nothing_is_created(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    top: dict[str, Any],
    field: str,
    message: str,
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(**top), encoding="utf-8")
    before = fingerprint(repo)
    for command in ("check", "run"):
        proc = refute_here(command, plan, cwd=repo, capsys=capsys, monkeypatch=monkeypatch)
        assert_refused(proc, field, message)
    assert fingerprint(repo) == before
    assert home_files() == []


def test_the_installed_command_refuses_unbounded_numbers_too(repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(defaults={"repeat": 100000000}), encoding="utf-8")
    before = fingerprint(repo)
    assert_refused(refute("run", plan, cwd=repo), "defaults.repeat", "from 1 to 1000")
    assert_refused(refute("run", "-j", "99999999999999999999", plan, cwd=repo), "1 to 256")
    assert_refused(refute("history", "-n", "99999999999999999999", cwd=repo), "1<=x<=10000")
    assert fingerprint(repo) == before
    assert home_files() == []


CLI_BOUNDS = [
    (["run", "-j", "99999999999999999999"], "from 1 to 256"),
    (["run", "-j", "257"], "from 1 to 256"),
    (["check", "-j", "100000000"], "from 1 to 256"),
    (["run", "--repeat", "99999999999999999999"], "1<=x<=1000"),
    (["run", "--repeat", "1001"], "1<=x<=1000"),
    (["run", "--max-hypotheses", "99999999999999999999"], "1<=x<=10000"),
    (["check", "--max-hypotheses", "10001"], "1<=x<=10000"),
    (["run", "--timeout", "1e309"], "<= 604800"),
    (["run", "--timeout", "nan"], "<= 604800"),
    (["run", "--timeout", "604801"], "<= 604800"),
    (["history", "-n", "99999999999999999999"], "1<=x<=10000"),
    (["history", "-n", "0"], "1<=x<=10000"),
]


@pytest.mark.parametrize(("args", "message"), CLI_BOUNDS)
def test_an_option_past_its_bound_is_exit_2_and_nothing_is_created(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(), encoding="utf-8")
    before = fingerprint(repo)
    argv = [*args, plan] if args[0] in ("run", "check") else args
    proc = refute_here(*argv, cwd=repo, capsys=capsys, monkeypatch=monkeypatch)
    assert_refused(proc, message)
    assert fingerprint(repo) == before
    assert home_files() == []


def test_the_bounds_themselves_are_accepted(repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        plan_text(concurrency=model.MAX_CONCURRENCY, max_hypotheses=model.MAX_HYPOTHESES),
        encoding="utf-8",
    )
    proc = refute("check", "-j", model.MAX_CONCURRENCY, plan, "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["concurrency"] == model.MAX_CONCURRENCY
    proc = refute("history", "-n", model.MAX_HISTORY, cwd=repo)
    assert proc.returncode == 0, proc.stderr


# -- point 10: a plan cannot switch off crash recovery --------------------------------------


@pytest.mark.parametrize("name", ["REFUTE_SCOPE", "REFUTE_RUN_ID", "REFUTE_HOME", "REFUTE_X"])
@pytest.mark.parametrize("where", ["defaults", "hypothesis", "control"])
def test_a_plan_setting_a_refute_variable_is_exit_2(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    where: str,
) -> None:
    env = {name: "/elsewhere"}
    hypothesis: dict[str, Any] = {"id": "alpha", "description": "d", "test": ["true"]}
    top: dict[str, Any] = {}
    if where == "defaults":
        top["defaults"] = {"env": env}
    elif where == "hypothesis":
        hypothesis["env"] = env
    else:
        top["control"] = {"test": ["false"], "env": env}
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(hypotheses=[hypothesis], **top), encoding="utf-8")
    before = fingerprint(repo)
    field = {"defaults": "defaults", "hypothesis": "hypotheses[0]", "control": "control"}[where]
    proc = refute_here("run", plan, cwd=repo, capsys=capsys, monkeypatch=monkeypatch)
    assert_refused(proc, f"{field}.env.{name}", "reserved for refute")
    assert fingerprint(repo) == before
    assert home_files() == []


# -- point 11: JSON plans, JSON reports, Ctrl-C, closed stdout, dubious ownership -----------


def test_a_json_plan_written_by_json_dumps_with_an_emoji_runs(repo: Path, tmp_path: Path) -> None:
    data = json.loads(plan_text())
    data["bug"] = "the \U0001f600 button"
    data["hypotheses"][0]["description"] = "r\u00e9sum\u00e9 \U0001f4a5"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data), encoding="utf-8")  # "\ud83d\ude00": surrogate pairs
    assert "\\ud83d\\ude00" in plan.read_text(encoding="utf-8")
    proc = refute("run", plan, "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["session"]["bug"] == "the \U0001f600 button"
    assert doc["hypotheses"][0]["description"] == "r\u00e9sum\u00e9 \U0001f4a5"


def _strict_json(text: str) -> Any:
    def refuse(word: str) -> None:
        raise AssertionError(f"non-finite number {word} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_the_json_report_never_contains_non_finite_numbers() -> None:
    doc = make_document()
    doc["session"]["parallel_decision"]["sequential_time"] = float("inf")
    doc["summary"]["timing"]["speedup"] = float("inf")
    doc["hypotheses"][0]["runs"][0]["duration"] = float("inf")
    doc["hypotheses"][0]["score"] = float("nan")
    text = reports.render_json(doc)
    data = _strict_json(text)
    assert data["session"]["parallel_decision"]["sequential_time"] is None
    assert data["summary"]["timing"]["speedup"] is None
    assert data["hypotheses"][0]["runs"][0]["duration"] is None
    assert data["hypotheses"][0]["score"] is None
    assert "Infinity" not in text
    assert "NaN" not in text


def test_json_reports_from_the_cli_are_strict_json(repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(), encoding="utf-8")
    for args in (["run", plan, "--format", "json"], ["check", plan, "--format", "json"]):
        proc = refute(*args, cwd=repo)
        assert proc.returncode == 0, proc.stderr
        _strict_json(proc.stdout)
    proc = refute("show", "--format", "json", cwd=repo)
    _strict_json(proc.stdout)


SLOW_TEST = [sys.executable, "-c", "import time; time.sleep(10)"]
#: Seconds after the start at which Ctrl-C arrives: while Python starts, while refute is
#: imported, while the plan is read, and once tests run.
CTRL_C_DELAYS = (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def test_ctrl_c_at_any_moment_is_one_line_and_130(
    repo: Path, tmp_path: Path, test_tag: str
) -> None:
    hypotheses = [{"id": f"h{i}", "description": "d", "test": SLOW_TEST} for i in range(2)]
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(hypotheses=hypotheses), encoding="utf-8")
    before = fingerprint(repo)
    outcomes = []
    early: list[float] = []
    for delay in CTRL_C_DELAYS:
        proc = subprocess.Popen(
            [str(REFUTE), "run", str(plan), "-j", "2"],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        outcomes.append((delay, proc.returncode, err))
        assert "internal error" not in err, (delay, err)
        if "Traceback" in err:  # only from before refute's first instruction
            assert _before_refute(err), (delay, err)
            early.append(delay)
            continue
        if proc.returncode == -signal.SIGINT:  # before Python installed its handler
            assert err == "", (delay, err)
            continue
        if proc.returncode == 1 and err == "KeyboardInterrupt\n":
            # Python's own start-up (site, before any script runs) says just that and exits
            # 1; once a script runs, an escaped KeyboardInterrupt is a traceback and -2.
            early.append(delay)
            continue
        assert proc.returncode == 130, (delay, proc.returncode, err)
        errors = [line for line in err.splitlines() if line.startswith("refute: ")]
        assert errors, (delay, err)
        assert errors[-1].startswith("refute: interrupted"), (delay, err)
        assert all(line.strip() for line in err.splitlines()), (delay, err)  # no blank line
    assert wait_until_gone(test_tag) == []
    assert fingerprint(repo) == before
    assert_pool_idle(repo)
    assert any(code == 130 for _, code, _ in outcomes)
    print(f"Ctrl-C trials {len(outcomes)}, before refute's first instruction {early}")


def _before_refute(err: str) -> bool:
    """A KeyboardInterrupt traceback whose frames are Python's start-up or the generated
    `refute` script's own `import re`/`import sys` only: no frame of refute's code, no
    frame past the console script's first line that imports refute."""
    package = str(Path(reports.__file__).resolve().parents[1])
    frames = [line.strip() for line in err.splitlines() if line.strip().startswith("File ")]
    code = [line.strip() for line in err.splitlines() if line.startswith("    ")]
    return (
        err.rstrip().endswith("KeyboardInterrupt")
        and not any(package in frame for frame in frames)
        and not any("refute" in line for line in code)
    )


def test_ctrl_c_while_importing_is_caught_by_the_first_instruction(tmp_path: Path) -> None:
    """A SIGINT delivered while `refute.cli` is imported (made certain here by a
    sitecustomize that sends it from inside `import click`) is one line and 130."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import importlib.abc, os, signal, sys\n"
        "class Finder(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'click':\n"
        "            sys.meta_path.remove(self)\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Finder())\n",
        encoding="utf-8",
    )
    env = cli_env(PYTHONPATH=str(hook))
    for argv in ([str(REFUTE), "--version"], [sys.executable, "-m", "refute.cli", "--version"]):
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
        )
        assert proc.returncode == 130, (argv, proc.returncode, proc.stderr)
        assert proc.stderr == "refute: interrupted\n", proc.stderr
        assert proc.stdout == ""


def _run_closed_stdout(args: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`refute ARGS >&-`: fd 1 closed in the child, as the shell does."""
    read_err, write_err = os.pipe()
    try:
        proc = subprocess.Popen(
            [str(REFUTE), *map(str, args)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # replaced below: closed before exec
            stderr=write_err,
            env=cli_env(),
            preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - a test of exactly this
        )
        os.close(write_err)
        write_err = -1
        with os.fdopen(read_err, encoding="utf-8") as stream:
            read_err = -1
            err = stream.read()
        code = proc.wait(timeout=TIMEOUT)
    finally:
        for fd in (read_err, write_err):
            if fd >= 0:
                os.close(fd)
    return subprocess.CompletedProcess(args, code, "", err)


def test_a_closed_stdout_still_runs_and_exits_with_the_usual_code(
    repo: Path, tmp_path: Path
) -> None:
    # The test writes what its fd 1 is: with stdout closed and not re-pointed, the session
    # store or a log would have become fd 1 and received the test's output.
    code = "import os, sys; print(os.readlink('/proc/self/fd/1')); sys.exit(1)"
    hypotheses = [{"id": "alpha", "description": "d", "test": [sys.executable, "-c", code]}]
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(hypotheses=hypotheses), encoding="utf-8")
    before = fingerprint(repo)
    note = "refute: note: stdout is closed; the output is discarded"
    proc = _run_closed_stdout(["run", plan], repo)
    assert proc.returncode == 0, proc.stderr
    assert note in proc.stderr.splitlines()
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    shown = refute("show", "--format", "json", cwd=repo)
    doc = json.loads(shown.stdout)
    run = doc["hypotheses"][0]["runs"][0]
    assert run["result"] == "fail"
    assert run["stdout"].strip() != "", run
    assert not run["stdout"].strip().endswith((".db", ".sqlite", ".log")), run["stdout"]
    for args in (["show"], ["show", "--format", "json"], ["history"], ["check", plan]):
        proc = _run_closed_stdout(args, repo)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stderr.splitlines() == [note], (args, proc.stderr)
    assert fingerprint(repo) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository to another uid")
def test_a_repository_of_another_user_says_what_git_says(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "theirs")
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(), encoding="utf-8")
    fake_home = tmp_path / "home"  # no ~/.gitconfig: no safe.directory=* from the machine
    fake_home.mkdir()
    env = cli_env(HOME=str(fake_home), GIT_CONFIG_NOSYSTEM="1")
    env.pop("GIT_CONFIG_GLOBAL", None)
    env.pop("GIT_CONFIG_PARAMETERS", None)
    env.pop("GIT_CONFIG_COUNT", None)
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 12345, 12345)
    try:
        said = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if "dubious ownership" not in said.stderr:
            pytest.skip(f"this git does not refuse another user's repository: {said.stderr!r}")
        for args in (["check", plan], ["run", plan]):
            proc = refute(*args, "--repo", repo, cwd=tmp_path, env=env)
            line = assert_refused(proc, "detected dubious ownership in repository", str(repo))
            assert "not a git repository" not in line
            assert "safe.directory" in line
        assert home_files() == []
        # `clean` still stops processes, and says why it left the repository alone.
        proc = refute("clean", "--repo", repo, cwd=tmp_path, env=env)
        assert "dubious ownership" in proc.stderr, proc.stderr
        assert "not a git repository" not in proc.stderr, proc.stderr
    finally:
        uid, gid = os.getuid(), os.getgid()
        for path in [repo, *repo.rglob("*")]:
            os.lchown(path, uid, gid)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


# -- point 9: 3,000 hypotheses at -j 2 ------------------------------------------------------


def _registered_worktrees(repo: Path) -> int:
    out = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    ).stdout
    return out.count("worktree ") - 1  # the main one


def _slot_dirs() -> int:
    root = home() / "cache" / "worktrees"
    slots = root.glob("*/slots/*") if root.exists() else ()
    return sum(1 for slot in slots if slot.is_dir() and not slot.name.startswith("."))


@pytest.mark.slow
def test_1000_hypotheses_run_to_the_end_in_at_most_j_worktrees(
    repo: Path, tmp_path: Path, test_tag: str
) -> None:
    """The largest plan whose full run fits in about 30 s here; 3,000 is the next test."""
    count, jobs = 1000, 2
    hypotheses = [{"id": f"h{i}", "description": "d", "test": ["true"]} for i in range(count)]
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(hypotheses=hypotheses), encoding="utf-8")
    before = fingerprint(repo)
    peak = {"worktrees": 0, "slots": 0, "samples": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak["worktrees"] = max(peak["worktrees"], _registered_worktrees(repo))
            peak["slots"] = max(peak["slots"], _slot_dirs())
            peak["samples"] += 1

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        proc = refute("run", plan, "-j", jobs, "--format", "json", cwd=repo, timeout=600)
    finally:
        done.set()
        watcher.join(timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert len(doc["hypotheses"]) == count
    assert all(len(h["runs"]) == 1 for h in doc["hypotheses"])
    assert peak["samples"] > 3, peak
    assert 1 <= peak["worktrees"] <= jobs, peak
    assert peak["slots"] <= jobs, peak
    assert wait_until_gone(test_tag) == []
    assert fingerprint(repo) == before
    assert len(refute_worktrees(repo, home())) <= jobs
    assert_pool_idle(repo)
    print(f"{count} hypotheses at -j {jobs}: {elapsed:.1f} s, peak {peak}")


@pytest.mark.slow
def test_3000_hypotheses_interrupted_leave_nothing_behind(
    repo: Path, tmp_path: Path, test_tag: str
) -> None:
    count, jobs = 3000, 2
    hypotheses = [{"id": f"h{i}", "description": "d", "test": ["true"]} for i in range(count)]
    plan = tmp_path / "plan.json"
    plan.write_text(plan_text(hypotheses=hypotheses), encoding="utf-8")
    before = fingerprint(repo)
    log = tmp_path / "stderr.txt"  # a file, not a pipe: 3,000 progress lines fill a pipe
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [str(REFUTE), "run", str(plan), "-j", str(jobs)],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=cli_env(),
        )
    peak = 0
    deadline = time.monotonic() + 90
    started_runs = False
    try:
        while time.monotonic() < deadline:  # until tests run, then a few seconds more
            peak = max(peak, _registered_worktrees(repo))
            assert peak <= jobs, peak
            if not started_runs and "started   h" in log.read_text(encoding="utf-8"):
                started_runs, deadline = True, time.monotonic() + 3
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text(encoding="utf-8")
    assert started_runs
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("refute: interrupted, cleaned up"), err[-500:]
    assert 1 <= peak <= jobs
    assert wait_until_gone(test_tag) == []
    assert fingerprint(repo) == before
    assert_pool_idle(repo)
