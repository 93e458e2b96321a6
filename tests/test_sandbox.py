"""`isolation: sandbox`: the launcher, the layout read from the repository, the plan field.

The launcher is run for real (`refute.engine.sandbox`, as the engine spawns it) on real
directories and real git repositories in tmp_path; a test of each layout the issue names
(a worktree inside the user's checkout, a common directory outside it) commits through
it. Skipped only where this machine cannot sandbox at all (the reason is shown).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import ScriptedBackend
from gitutil import git, make_repo
from refute import app
from refute.app.isolated import run_isolated
from refute.app.spec import spec_from_document
from refute.engine.local import run_one
from refute.engine.protocol import BatchSettings, Job
from refute.engine.sandbox import SandboxMounts, launcher_argv, unavailable_reason
from refute.engine.sweep import is_alive
from refute.errors import ConfigError, PlanError
from refute.model import FalsificationConfig, Hypothesis, TestResult
from refute.plan import parse_plan, to_control, to_hypotheses
from refute.workspace.confinement import SandboxLayout, admin_dir_of
from refute.workspace.worktrees import Repository
from sandbox_attacks import (
    ALLOWED,
    DAMAGING,
    attack_argv,
    holder_argv,
    read_report,
    repository_state,
    target_repo,
    write_targets,
)
from scripts import DOUBLE_FORK_DAEMON

PY = sys.executable
needs_sandbox = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"no sandbox here: {unavailable_reason()}"
)

# Reports, as JSON, what each action did: "ok" or the errno's name.
PROBE = r"""
import ctypes, errno, json, os, sys
from pathlib import Path

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
out = {"pid": os.getpid()}


def attempt(name, action):
    try:
        action()
        out[name] = "ok"
    except OSError as exc:
        out[name] = errno.errorcode.get(exc.errno, str(exc.errno))


def call(result):
    if result != 0:
        raise OSError(ctypes.get_errno(), "")


ro, rw, scratch = (Path(p) for p in sys.argv[1:4])
attempt("write_ro", lambda: (ro / "f").write_text("x"))
attempt("write_rw", lambda: (rw / "f").write_text("x"))
attempt("write_tmp", lambda: (scratch / "f").write_text("x"))
attempt("remount_rw", lambda: call(libc.mount(None, bytes(ro), None, 32 | 4096, None)))
attempt("write_after_remount", lambda: (ro / "f").write_text("x"))
attempt("umount", lambda: call(libc.umount2(bytes(ro), 2)))
(scratch / "mnt").mkdir(exist_ok=True)
attempt("bind_root", lambda: call(libc.mount(b"/", bytes(scratch / "mnt"), None, 4096, None)))
REC_BIND = 4096 | 16384
attempt("rbind_root", lambda: call(libc.mount(b"/", bytes(scratch / "mnt"), None, REC_BIND, None)))
attempt("write_via_rbind", lambda: (scratch / "mnt" / str(ro).lstrip("/") / "f").write_text("x"))
attempt("nested_unshare", lambda: call(libc.unshare(0x10000000 | 0x00020000)))
attempt("nested_remount", lambda: call(libc.mount(None, bytes(ro), None, 32 | 4096, None)))
attempt("write_after_nested", lambda: (ro / "f").write_text("x"))
print(json.dumps(out))
"""


def launch(mounts: SandboxMounts, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        launcher_argv(mounts, argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_sandbox
def test_read_only_stays_read_only_whatever_the_test_tries(tmp_path):
    ro = tmp_path / "checkout"
    rw = ro / "worktree"  # a writable directory inside the read-only one
    scratch = tmp_path / "scratch"
    for path in (rw, scratch):
        path.mkdir(parents=True)
    proc = launch(
        SandboxMounts((ro,), (rw,)), [PY, "-c", PROBE, str(ro), str(rw), str(scratch)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["write_ro"] == "EROFS"
    assert out["write_rw"] == out["write_tmp"] == "ok"
    # As root too: the mounts are locked, and the tree cannot be bound without them.
    assert out["remount_rw"] in ("EPERM", "EACCES")
    assert out["umount"] in ("EPERM", "EINVAL")
    assert out["bind_root"] in ("EINVAL", "EPERM")
    assert out["write_after_remount"] == out["write_after_nested"] == "EROFS"
    assert out["write_via_rbind"] in ("EROFS", "ENOENT")
    assert out["nested_remount"] in ("EPERM", "EACCES")
    assert not (ro / "f").exists()
    assert (rw / "f").read_text() == "x"


@needs_sandbox
def test_the_launcher_execs_so_the_tracked_pid_is_the_test(tmp_path):
    code = "import os, sys; sys.stdout.write(str(os.getpid()))"
    proc = subprocess.Popen(
        launcher_argv(SandboxMounts((tmp_path,), ()), [PY, "-c", code]),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, _ = proc.communicate(timeout=60)
    assert int(out) == proc.pid


@needs_sandbox
def test_a_missing_command_is_exit_127_and_a_bad_path_126(tmp_path):
    missing = launch(SandboxMounts((tmp_path,), ()), ["no-such-command-xyz"], tmp_path)
    assert missing.returncode == 127
    assert missing.stderr.strip() == "refute sandbox: test command not found: no-such-command-xyz"
    bad = launch(SandboxMounts((tmp_path / "absent",), ()), ["true"], tmp_path)
    assert bad.returncode == 126
    assert len(bad.stderr.strip().splitlines()) == 1


@needs_sandbox
@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_timeout_kills_the_whole_tree_through_the_launcher(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    job = Job(
        key="daemon",
        argv=[PY, "-c", DOUBLE_FORK_DAEMON, "timeout", str(pidfile)],
        cwd=tmp_path,
        timeout=3.0,
        sandbox=lambda cwd: SandboxMounts((cwd.parent,), (cwd,)),
    )
    result = await run_one(job, BatchSettings(kill_grace=1.0))
    assert result.result is TestResult.TIMEOUT, (result.error_message, result.stderr)
    daemon = int(pidfile.read_text())
    for _ in range(200):
        if not is_alive(daemon):
            break
        await asyncio.sleep(0.05)
    assert not is_alive(daemon)  # conftest also fails the test on any tagged leftover


def test_the_layout_of_a_pool_worktree(tmp_path):
    repo_path = make_repo(tmp_path / "repo")
    other = tmp_path / "users-other"
    git(repo_path, "worktree", "add", "-q", "--detach", str(other))
    pool = tmp_path / "pool"
    mine = pool / "slots" / "w1"
    git(repo_path, "worktree", "add", "-q", "--detach", str(mine))
    repo = asyncio.run(Repository.open(repo_path))
    read_only, writable = SandboxLayout(repo, pool).mounts(mine)
    common = repo.common_dir
    assert set(read_only) == {repo.root, common, pool, other.resolve()}
    assert writable == (mine.resolve(), common / "objects", common / "worktrees" / "w1")
    assert admin_dir_of(mine) == common / "worktrees" / "w1"
    assert admin_dir_of(repo.root) is None  # a checkout's .git is a directory


def _commit_through_the_sandbox(repo: Repository, worktree: Path, pool: Path) -> dict[str, str]:
    script = r"""
import json, subprocess, sys
from pathlib import Path
out = {}
def git(*args):
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    return "ok" if done.returncode == 0 else "git: " + done.stderr.strip().splitlines()[-1]
Path("new.txt").write_text("x\n")
out["add"] = git("add", "new.txt")
out["commit"] = git("commit", "-q", "-m", "inside")
out["config"] = git("config", "user.name", "pwned")
out["branch"] = git("branch", "-f", "main", "HEAD")
try:
    Path(sys.argv[1], "README.md").write_text("pwned\n")
    out["write_checkout"] = "ok"
except OSError as exc:
    out["write_checkout"] = exc.strerror
print(json.dumps(out))
"""
    mounts = SandboxMounts(*SandboxLayout(repo, pool).mounts(worktree))
    proc = launch(mounts, [PY, "-c", script, str(repo.root)], worktree)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout)
    return result


@needs_sandbox
def test_a_worktree_inside_the_users_checkout_stays_writable(tmp_path):
    repo_path = make_repo(tmp_path / "repo", {"README.md": "hello\n", ".gitignore": "inner/\n"})
    inner = repo_path / "inner" / "wt"
    git(repo_path, "worktree", "add", "-q", "--detach", str(inner))
    repo = asyncio.run(Repository.open(repo_path))
    before = git(repo_path, "for-each-ref"), (repo.common_dir / "config").read_bytes()
    out = _commit_through_the_sandbox(repo, inner, tmp_path / "pool")
    assert out["add"] == out["commit"] == "ok", out
    assert out["config"].startswith("git: "), out
    assert out["branch"].startswith("git: "), out
    assert out["write_checkout"] == "Read-only file system"
    assert (git(repo_path, "for-each-ref"), (repo.common_dir / "config").read_bytes()) == before
    assert git(inner, "log", "-1", "--format=%s").strip() == "inside"
    assert (repo_path / "README.md").read_text() == "hello\n"


@needs_sandbox
def test_a_common_dir_outside_the_checkout_is_read_only_but_its_objects(tmp_path):
    checkout = tmp_path / "checkout"
    separate = tmp_path / "elsewhere" / "repo.git"
    checkout.mkdir()
    separate.parent.mkdir()
    git(checkout, "init", "-q", "-b", "main", "--separate-git-dir", str(separate))
    (checkout / "README.md").write_text("hello\n")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "initial")
    worktree = tmp_path / "pool" / "slots" / "w"
    git(checkout, "worktree", "add", "-q", "--detach", str(worktree))
    repo = asyncio.run(Repository.open(checkout))
    assert not repo.common_dir.is_relative_to(repo.root)
    before = (separate / "config").read_bytes(), git(checkout, "for-each-ref")
    out = _commit_through_the_sandbox(repo, worktree, tmp_path / "pool")
    assert out["add"] == out["commit"] == "ok", out
    assert out["config"].startswith("git: "), out
    assert out["branch"].startswith("git: "), out
    assert ((separate / "config").read_bytes(), git(checkout, "for-each-ref")) == before


@needs_sandbox
@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_sandboxed_session_keeps_the_repository_and_records_the_isolation(tmp_path):
    repo, conf = target_repo(tmp_path)
    reports = write_targets(conf, repo, sandboxed=True)
    before = repository_state(repo)
    hypotheses = [
        Hypothesis(id="holder", description="h", test=holder_argv(conf), isolation="sandbox"),
        Hypothesis(id="attack", description="a", test=attack_argv(conf), isolation="sandbox"),
    ]
    config = FalsificationConfig(max_concurrent_tests=2, test_timeout=100)
    run = await run_isolated(repo, hypotheses, config)
    assert [r.result for r in run.results] == [TestResult.FAIL, TestResult.FAIL], [
        (r.error_message, r.stderr) for r in run.results
    ]
    report = read_report(reports)
    assert all(report[name] == "ok" for name in ALLOWED), report
    assert not any(report[name] == "ok" for name in DAMAGING), report
    assert repository_state(repo) == before


def test_the_plan_field_its_overrides_and_a_bad_value():
    text = """
version: 1
bug: b
isolation: sandbox
control: {test: [x]}
hypotheses:
  - {id: a, description: d, test: [x]}
  - {id: b, description: d, test: [x], isolation: worktree}
"""
    plan = parse_plan(text)
    assert [h.isolation for h in to_hypotheses(plan)] == ["sandbox", "worktree"]
    control = to_control(plan)
    assert control is not None
    assert control.isolation == "sandbox"
    assert [
        h.isolation for h in to_hypotheses(parse_plan(text.replace("sandbox", "worktree")))
    ] == [
        "worktree",
        "worktree",
    ]
    with pytest.raises(PlanError) as caught:
        parse_plan(text.replace("isolation: sandbox", "isolation: jail"))
    assert "isolation" in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError):
        Hypothesis(id="a", description="d", isolation="jail")


def test_a_stored_session_remembers_its_isolation():
    doc = {
        "schema": "refute.session/1",
        "session": {"id": "s1", "repo": "/r", "bug": "b"},
        "control": {"test": ["x"], "isolation": "sandbox", "runs": []},
        "hypotheses": [
            {"id": "a", "test": ["x"], "isolation": "sandbox", "runs": []},
            {"id": "b", "test": ["x"], "runs": []},
        ],
    }
    spec = spec_from_document(doc)
    assert [h.isolation for h in spec.hypotheses] == ["sandbox", "worktree"]
    assert spec.control is not None
    assert spec.control.isolation == "sandbox"


def test_unavailability_is_probed_once_and_is_one_line():
    first = unavailable_reason()
    assert unavailable_reason() is first  # cached per process
    assert first is None or "\n" not in first
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/ns/user"):
        assert unavailable_reason.cache_info().hits >= 1


# Inside a mount namespace of its own (root only): a shared tmpfs, a sandboxed test below it
# that waits, and the mounts this (outer) namespace sees meanwhile, printed as a count.
PROPAGATION = r"""
set -e
d="$1"; shift
mount -t tmpfs refute-test "$d"
mount --make-shared "$d"
mkdir -p "$d/ro/w"
wait_for_go='touch "$0/ready"; i=0
while [ ! -e "$0/go" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done'
"$@" sh -c "$wait_for_go" "$d" &
i=0; while [ ! -e "$d/ready" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
grep -c " $d/ro" /proc/self/mountinfo || true
touch "$d/go"
wait
"""


@needs_sandbox
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_the_sandbox_mounts_do_not_propagate_to_a_shared_parent(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    mounts = SandboxMounts((shared / "ro",), (shared / "ro" / "w",))
    argv = launcher_argv(mounts, ["__test__"])[:-1]  # the test itself comes from the script
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", PROPAGATION, "sh", str(shared), *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0", proc.stdout  # no bind of the sandbox showed up here


@needs_sandbox
@pytest.mark.asyncio
async def test_resume_with_sandbox_runs_and_records_the_rest_sandboxed(tmp_path):
    repo = make_repo(tmp_path / "repo")
    plan = tmp_path / "plan.json"
    hyps = [
        {"id": "done", "description": "d", "test": [PY, "-c", "0"], "probability": 0.9},
        {"id": "hung", "description": "h", "test": [PY, "-c", "0"], "probability": 0.1},
    ]
    plan.write_text(json.dumps({"version": 1, "bug": "b", "hypotheses": hyps}), encoding="utf-8")
    first = ScriptedBackend({"done": TestResult.FAIL}, hang={"hung"})
    created: list[str] = []
    task = asyncio.create_task(
        app.run_plan(
            plan, repo=repo, backend=first, on_created=lambda d: created.append(d["session"]["id"])
        )
    )
    await asyncio.wait_for(first.waiting.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(job.sandbox is None for job in first.jobs)  # the plan's default: worktree

    second = ScriptedBackend({"hung": TestResult.PASS})
    resumed = await app.resume(created[0], backend=second, sandbox=True)
    assert [job.key for job in second.jobs] == ["hung"]
    assert all(job.sandbox is not None for job in second.jobs)
    stored = await app.show(created[0])
    assert {h["id"]: h.get("isolation") for h in stored["hypotheses"]} == {
        "done": "sandbox",
        "hung": "sandbox",
    }
    assert resumed.document["session"]["status"] == "completed"
