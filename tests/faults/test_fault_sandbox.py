"""`isolation: sandbox` under attack, through the `refute` command as a user runs it.

A real session runs two tests concurrently in the warm pool: `holder` keeps a worktree
leased, `attack` tries every documented way of damaging the user's repository (write the
checkout by absolute path, plant a hook, `git branch -f`, `git update-ref`, `git config`,
`git stash clear`, remove the user's other worktree and the sibling's, write through
`/proc/<refute>/root`, then undo the sandbox: remount read-write, unmount, the same from a
namespace of its own). In the sandbox every one fails while the test still writes and
commits in its worktree and writes /tmp, and the repository is byte-identical afterwards;
without the sandbox the same attacks succeed (the documented limits), so the sandbox
test can fail. When the sandbox is unavailable (a user namespace whose
`max_user_namespaces` is 0: real, and local to that namespace), `run --sandbox`,
`isolation: sandbox` and `check --sandbox` exit 2 with one line, changing nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import faultutil
import pytest
import yaml

from conftest import live_tagged
from gitutil import git
from refute.engine.sandbox import unavailable_reason
from sandbox_attacks import (
    ALLOWED,
    DAMAGING,
    ESCAPES,
    attack_argv,
    holder_argv,
    read_report,
    repository_state,
    target_repo,
    write_targets,
)

REFUTE = faultutil.REFUTE
TIMEOUT = 120.0
TRIALS = 3

needs_sandbox = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"no sandbox here: {unavailable_reason()}"
)


def refute_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faultutil.refute(*args, cwd=cwd, timeout=TIMEOUT, clean="both")


def write_plan(repo: Path, conf: Path, *, isolation: str | None) -> Path:
    """A plan beside the checkout (it stays untouched), named for its isolation."""
    plan: dict[str, object] = {
        "version": 1,
        "bug": "a test that reaches outside its worktree",
        "concurrency": 2,
        "defaults": {"timeout": 100, "runner": "none"},
        "hypotheses": [
            # Ranked first, so it is leased first and is the attacker's sibling.
            {"id": "holder", "description": "holds a slot", "probability": 0.9, "test": []},
            {"id": "attack", "description": "attacks", "probability": 0.1, "test": []},
        ],
    }
    hypotheses = plan["hypotheses"]
    assert isinstance(hypotheses, list)
    hypotheses[0]["test"] = holder_argv(conf)
    hypotheses[1]["test"] = attack_argv(conf)
    if isolation is not None:
        plan["isolation"] = isolation
    path = repo.parent / f"plan-{isolation or 'default'}.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def refute_worktrees(repo: Path, home: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    paths = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]
    leased = []
    for path in paths:
        if Path(path).resolve().is_relative_to(home.resolve()):
            lease = Path(path).parent.parent / "leases" / f"{Path(path).name}.json"
            state = json.loads(lease.read_text(encoding="utf-8")).get("state")
            if state != "free":  # free slots are the warm pool, not debris
                leased.append(f"{path} ({state})")
    return leased


@pytest.mark.slow
@needs_sandbox
def test_every_attack_fails_in_the_sandbox_and_the_repository_is_untouched(tmp_path, test_tag):
    repo, conf = target_repo(tmp_path)
    home = tmp_path / "refute-home"
    figures = {"orphans": 0, "stale": 0, "changed": 0, "lost": 0, "tracebacks": 0, "hangs": 0}
    for trial in range(TRIALS):
        reports = write_targets(conf, repo, sandboxed=True)
        plan = write_plan(repo, conf, isolation="sandbox" if trial % 2 else None)
        before = repository_state(repo)
        flag = [] if trial % 2 else ["--sandbox"]  # the plan field and the flag, in turn
        proc = refute_cli("run", plan, "--format", "json", *flag, cwd=repo)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert {h["id"]: h.get("isolation") for h in doc["hypotheses"]} == {
            "holder": "sandbox",
            "attack": "sandbox",
        }
        runs = [run for h in doc["hypotheses"] for run in h["runs"]]
        figures["lost"] += sum(run["result"] != "fail" for run in runs) + (2 - len(runs))
        report = read_report(reports)
        for name in ALLOWED:
            assert report[name] == "ok", (name, report)
        for name in DAMAGING:
            assert report[name] != "ok", (name, report)
        assert report["write_checkout"] == "EROFS"
        assert report["proc_root"] == "EACCES"
        assert report["config"].startswith("git: ")
        assert report["update_ref"].startswith("git: ")
        for name in ESCAPES:
            assert report[name] != "ok", (name, report)
        assert report["write_after_remount"] == report["write_after_nested"] == "EROFS"
        figures["changed"] += repository_state(repo) != before
        figures["stale"] += len(refute_worktrees(repo, home))
        figures["orphans"] += len(live_tagged(test_tag))
    print(f"\nsandbox attacks: trials={TRIALS} {figures}")
    assert figures == dict.fromkeys(figures, 0)


@pytest.mark.slow
def test_without_the_sandbox_the_same_attacks_succeed(tmp_path):
    """The documented limits of plain worktrees: what the sandbox test must catch."""
    repo, conf = target_repo(tmp_path)
    reports = write_targets(conf, repo, sandboxed=False)
    before = repository_state(repo)
    proc = refute_cli("run", write_plan(repo, conf, isolation="worktree"), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    report = read_report(reports)
    assert {name: report[name] for name in (*DAMAGING, *ALLOWED)} == dict.fromkeys(
        (*DAMAGING, *ALLOWED), "ok"
    )
    after = repository_state(repo)
    assert after != before
    assert git(repo, "config", "user.name").strip() == "pwned"
    assert git(repo, "stash", "list") == ""
    assert after["user_worktree"] == "missing"


def in_a_namespace_without_user_namespaces(*argv: object) -> list[str]:
    """`argv` run as root of a user namespace of its own whose max_user_namespaces is 0:
    creating a user namespace there fails (ENOSPC), as on a machine that disallows it.
    The limit is the namespace's own: nothing outside it changes."""
    script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh", *map(str, argv)]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_an_unavailable_sandbox_is_exit_2_with_one_line_and_nothing_changes(tmp_path):
    repo, conf = target_repo(tmp_path)
    probe = subprocess.run(
        in_a_namespace_without_user_namespaces("true"),
        capture_output=True,
        check=False,
        timeout=TIMEOUT,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user namespace here: {probe.stderr.decode().strip()}")
    write_targets(conf, repo, sandboxed=True)
    home = tmp_path / "refute-home"
    before = repository_state(repo)
    for args in (
        ["run", write_plan(repo, conf, isolation=None), "--sandbox"],
        ["run", write_plan(repo, conf, isolation="sandbox")],
        ["check", write_plan(repo, conf, isolation=None), "--sandbox"],
    ):
        proc = subprocess.run(
            in_a_namespace_without_user_namespaces(REFUTE, *args),
            cwd=repo,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "'sandbox' is unavailable" in lines[0], lines
        assert "max_user_namespaces" in lines[0], lines
        assert "Traceback" not in proc.stdout + proc.stderr
        assert not (tmp_path / "reports" / "attack.json").exists()  # no test ran
    assert repository_state(repo) == before
    assert not list((home / "cache").glob("worktrees/*/slots/*"))  # nothing was created
