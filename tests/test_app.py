"""The use cases of `refute.app`, over a scripted backend (tests/fakes.py) that runs nothing.

The repository is real (tests/gitutil.py's `make_repo`: the use cases open it and resolve
the base), the store is the real SQLite store under the test's REFUTE_HOME; only the
backend is a fake, so every outcome is the one the test scripted and every run a session
asks for is recorded by the fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fakes import ScriptedBackend
from gitutil import git, make_repo
from refute import app
from refute.errors import PlanError, RepositoryError, SessionRunningError, UnknownSessionError
from refute.model import TestResult
from refute.owners import process_token
from refute.store import default_path

PASS, FAIL, SKIP = TestResult.PASS, TestResult.FAIL, TestResult.SKIP
PY = sys.executable


def command_for(name: str) -> list[str]:
    """A test command; the fake backend never runs it, the jobs must carry it."""
    return [PY, "-c", f"print({name!r})"]


def hypothesis(hid: str, probability: float = 0.5, **fields: Any) -> dict[str, Any]:
    return {
        "id": hid,
        "description": f"hypothesis {hid}",
        "test": command_for(hid),
        "probability": probability,
        **fields,
    }


def write_plan(path: Path, hypotheses: list[dict[str, Any]], **top: Any) -> Path:
    plan = {"version": 1, "bug": "add() subtracts", "hypotheses": hypotheses, **top}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2), encoding="utf-8")  # JSON is read as YAML
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {h["id"]: h["verdict"] for h in doc["hypotheses"]}


def runs_of(doc: dict[str, Any]) -> dict[str, list[tuple[int, str, bool]]]:
    """(attempt, result, not_run) of every stored run, per hypothesis and the control."""
    out = {
        h["id"]: [
            (r["metrics"]["attempt"], r["result"], bool(r["metrics"].get("not_run")))
            for r in h["runs"]
        ]
        for h in doc["hypotheses"]
    }
    if doc.get("control"):
        out["control"] = [
            (r["metrics"]["attempt"], r["result"], bool(r["metrics"].get("not_run")))
            for r in doc["control"]["runs"]
        ]
    return out


# -- run_plan ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_plan_stores_the_session_and_returns_the_verdicts(repo: Path, tmp_path: Path):
    plans = tmp_path / "plans"
    plans.mkdir()
    # A real diff (check refuses one that does not apply); the fake backend never applies it.
    (plans / "fix.diff").write_text(
        "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-hello\n+fixed\n", encoding="utf-8"
    )
    plan = write_plan(
        plans / "plan.json",
        [
            hypothesis("fails", 0.9),
            hypothesis("passes", 0.8),
            hypothesis("skips", 0.7),
            hypothesis("fixed", 0.6, patch="fix.diff", supported_if="passes"),
            hypothesis("flaky", 0.5, repeat=2),
        ],
        control={"test": command_for("control")},
    )
    backend = ScriptedBackend(
        {
            "control": FAIL,
            "fails": FAIL,
            "passes": PASS,
            "skips": SKIP,
            "fixed": PASS,
            "flaky": [FAIL, PASS],
        }
    )
    created: list[str] = []

    doc = await app.run_plan(
        plan,
        repo=repo,
        backend=backend,
        on_created=lambda d: created.append(d["session"]["id"]),
    )

    assert verdicts(doc) == {
        "fails": "supported",
        "passes": "falsified",
        "skips": "inconclusive",
        "fixed": "supported",
        "flaky": "flaky",
    }
    assert doc["control"]["verdict"] == "reproduced"
    assert doc["summary"]["survivors"] == ["fails", "fixed"]
    assert doc["session"]["status"] == "completed"
    assert doc["session"]["exit_code"] == 0
    assert created == [doc["session"]["id"]]

    # One job per run, each with the plan's command and a checkout of the base.
    assert backend.runs() == [
        ("control", 1),
        ("fails", 1),
        ("fixed", 1),
        ("flaky", 1),
        ("flaky", 2),
        ("passes", 1),
        ("skips", 1),
    ]
    sha = head(repo)
    for job in backend.jobs:
        assert list(job.argv or []) == command_for(job.key)
        assert job.checkout is not None
        assert job.checkout.commit == sha
        assert job.checkout.owner == job.key
    [fixed_job] = [job for job in backend.jobs if job.key == "fixed"]
    assert fixed_job.checkout is not None
    assert Path(fixed_job.checkout.patch or "") == (plans / "fix.diff").resolve()

    stored = await app.show(doc["session"]["id"])
    assert stored["session"]["status"] == "completed"
    assert stored["session"]["exit_code"] == 0
    assert stored["session"]["base"]["sha"] == sha
    assert verdicts(stored) == verdicts(doc)
    assert runs_of(stored)["flaky"] == [(1, "fail", False), (2, "pass", False)]


@pytest.mark.asyncio
async def test_control_not_reproducing_records_exit_code_3(repo: Path, tmp_path: Path):
    plan = write_plan(
        tmp_path / "plan.json", [hypothesis("fails")], control={"test": command_for("control")}
    )
    backend = ScriptedBackend({"control": PASS, "fails": FAIL})

    doc = await app.run_plan(plan, repo=repo, backend=backend)

    assert doc["control"]["verdict"] == "not_reproduced"
    assert doc["session"]["status"] == "completed"
    assert doc["session"]["exit_code"] == 3
    assert doc["hypotheses"][0]["unreliable"] is True
    stored = await app.show(doc["session"]["id"])
    assert stored["session"]["exit_code"] == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["opening the batch", "mid-batch"])
async def test_infrastructure_failure_records_failed_with_exit_code_4(
    repo: Path, tmp_path: Path, where: str
):
    plan = write_plan(tmp_path / "plan.json", [hypothesis("first", 0.9), hypothesis("second")])
    if where == "opening the batch":
        backend = ScriptedBackend(fail_on_open=OSError("no space left on device"))
    else:
        backend = ScriptedBackend({"first": FAIL}, fail_after=1)

    doc = await app.run_plan(plan, repo=repo, backend=backend)

    assert doc["session"]["status"] == "failed"
    assert doc["session"]["exit_code"] == 4
    assert doc["session"]["error"]
    stored = await app.show(doc["session"]["id"])
    assert stored["session"]["status"] == "failed"
    assert stored["session"]["exit_code"] == 4
    if where == "mid-batch":
        # What finished before the failure is kept.
        assert runs_of(stored)["first"] == [(1, "fail", False)]


@pytest.mark.asyncio
async def test_worktrees_that_cannot_be_made_fail_the_session_not_the_tests(
    repo: Path, tmp_path: Path
):
    # The cache directory is a file: no worktree can be made (as with a read-only or full
    # cache, without needing root to mount one). Real backend, real git.
    home = Path(os.environ["REFUTE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "cache").write_text("not a directory\n", encoding="utf-8")
    plan = write_plan(
        tmp_path / "plan.json",
        [hypothesis("first", 0.9), hypothesis("second")],
        control={"test": command_for("control")},
    )

    doc = await app.run_plan(plan, repo=repo)

    assert doc["session"]["status"] == "failed"
    assert doc["session"]["exit_code"] == 4  # not 3: the control never ran
    assert "worktree failed" in doc["session"]["error"]
    stored = await app.show(doc["session"]["id"])
    assert stored["session"]["status"] == "failed"
    # Nothing ran, so nothing is evidence: every run is left for a resume.
    assert all(not_run for runs in runs_of(stored).values() for _, _, not_run in runs)
    assert stored["control"]["runs"][0]["metrics"]["infrastructure"].startswith("worktree failed")


# -- interrupted sessions and resume ----------------------------------------------------------


@pytest.mark.asyncio
async def test_interrupted_session_is_recorded_and_resume_runs_exactly_the_unfinished(
    repo: Path, tmp_path: Path
):
    plan = write_plan(
        tmp_path / "plan.json",
        [hypothesis("done", 0.9), hypothesis("half", 0.8, repeat=2), hypothesis("hung", 0.7)],
        control={"test": command_for("control")},
    )
    first = ScriptedBackend(
        {"control": FAIL, "done": FAIL, "half": FAIL, "hung": FAIL},
        hang={("half", 2), "hung"},
    )
    created: list[str] = []
    task = asyncio.create_task(
        app.run_plan(
            plan,
            repo=repo,
            backend=first,
            on_created=lambda d: created.append(d["session"]["id"]),
        )
    )
    await asyncio.wait_for(first.waiting.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [session_id] = created
    interrupted = await app.show(session_id)
    assert interrupted["session"]["status"] == "interrupted"
    assert interrupted["session"]["exit_code"] == 130
    runs = runs_of(interrupted)
    assert runs["done"] == [(1, "fail", False)]
    assert runs["control"] == [(1, "fail", False)]
    assert runs["half"] == [(1, "fail", False), (2, "skip", True)]
    assert runs["hung"] == [(1, "skip", True)]

    second = ScriptedBackend({"half": FAIL, "hung": PASS})
    resumed = await app.resume(session_id[:12], backend=second)

    assert resumed.ran is True
    assert second.runs() == [("half", 2), ("hung", 1)]
    doc = resumed.document
    assert doc["session"]["id"] == session_id
    assert doc["session"]["status"] == "completed"
    assert doc["session"]["exit_code"] == 0
    assert verdicts(doc) == {"done": "supported", "half": "supported", "hung": "falsified"}
    stored = await app.show(session_id)
    assert stored["session"]["status"] == "completed"
    assert runs_of(stored)["half"] == [(1, "fail", False), (2, "fail", False)]
    assert runs_of(stored)["hung"] == [(1, "pass", False)]


@pytest.mark.asyncio
async def test_resume_of_a_finished_session_runs_nothing(repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path / "plan.json", [hypothesis("only")])
    doc = await app.run_plan(plan, repo=repo, backend=ScriptedBackend({"only": FAIL}))

    again = ScriptedBackend()
    resumed = await app.resume(doc["session"]["id"], backend=again)

    assert resumed.ran is False
    assert again.jobs == []
    assert again.settings == []  # no batch was even opened
    assert resumed.document["session"]["id"] == doc["session"]["id"]
    assert resumed.document["session"]["status"] == "completed"


def _dead_owner() -> str:
    """The owner token (`<pid>.<start time>`) of a process that has exited."""
    proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_bytes()
        token = f"{proc.pid}.{stat[stat.rfind(b')') + 2 :].split()[19].decode()}"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return token


def _as_if_killed(session_id: str, owner: str) -> None:
    """Leave the stored session as a SIGKILL of its refute would: still "running", not
    finished, no summary, owned by a process that is gone."""
    conn = sqlite3.connect(default_path())
    with conn:
        conn.execute(
            "UPDATE sessions SET status = 'running', finished_at = NULL, exit_code = NULL,"
            " owner = ?, document = json_set(document, '$.summary', NULL) WHERE id = ?",
            (owner, session_id),
        )
    conn.close()


@pytest.mark.asyncio
async def test_resume_finishes_a_session_killed_after_every_run_was_stored(
    repo: Path, tmp_path: Path
):
    plan = write_plan(
        tmp_path / "plan.json",
        [hypothesis("only")],
        control={"test": command_for("control")},
    )
    doc = await app.run_plan(
        plan, repo=repo, backend=ScriptedBackend({"only": FAIL, "control": FAIL})
    )
    session_id = doc["session"]["id"]
    _as_if_killed(session_id, _dead_owner())

    shown = await app.show(session_id)
    assert shown["session"]["status"] == "interrupted"
    assert [row["status"] for row in await app.history(repo=repo)] == ["interrupted"]

    again = ScriptedBackend()
    resumed = await app.resume(session_id, backend=again)

    assert resumed.ran is False
    assert resumed.finished is True
    assert again.jobs == []
    final = resumed.document
    assert final["session"]["status"] == "completed"
    assert final["session"]["exit_code"] == 0
    assert final["session"]["error"] is None
    assert verdicts(final) == {"only": "supported"}
    assert final["summary"]["counts"]["supported"] == 1
    stored = await app.show(session_id)
    assert stored["session"]["status"] == "completed"
    assert verdicts(stored) == {"only": "supported"}


@pytest.mark.asyncio
async def test_resume_refuses_a_session_whose_refute_still_runs(repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path / "plan.json", [hypothesis("only")])
    doc = await app.run_plan(plan, repo=repo, backend=ScriptedBackend({"only": FAIL}))
    session_id = doc["session"]["id"]
    # "Running", owned by another live process (pytest's parent), with a run left to do.
    parent = os.getppid()
    stat = Path(f"/proc/{parent}/stat").read_bytes()
    _as_if_killed(session_id, f"{parent}.{stat[stat.rfind(b')') + 2 :].split()[19].decode()}")
    conn = sqlite3.connect(default_path())
    with conn:
        conn.execute("DELETE FROM runs")
    conn.close()
    again = ScriptedBackend()
    with pytest.raises(SessionRunningError) as excinfo:
        await app.resume(session_id, backend=again)
    assert excinfo.value.kind == "usage"
    assert again.jobs == []
    assert (await app.show(session_id))["session"]["status"] == "running"
    _as_if_killed(session_id, _dead_owner())
    resumed = await app.resume(session_id, backend=again)
    assert resumed.ran is True
    assert resumed.document["session"]["status"] == "completed"


@pytest.mark.asyncio
async def test_resume_runs_on_the_recorded_snapshot_and_never_overwrites_the_base(
    repo: Path, tmp_path: Path
):
    (repo / "README.md").write_text("uncommitted\n", encoding="utf-8")
    (repo / "new.txt").write_text("untracked\n", encoding="utf-8")
    plan = write_plan(
        tmp_path / "plan.json",
        [hypothesis("done", 0.9), hypothesis("hung", 0.5)],
        include_uncommitted=True,
    )
    first = ScriptedBackend({"done": FAIL}, hang={"hung"})
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
    [session_id] = created
    base = (await app.show(session_id))["session"]["base"]
    assert base["snapshot_of"] == head(repo)
    assert base["sha"] != head(repo)
    assert git(repo, "show", f"{base['sha']}:new.txt") == "untracked\n"
    # The snapshot ref outlives the refute that made it, as a SIGKILL would leave it.
    assert (
        git(repo, "for-each-ref", "--format=%(objectname)", base["snapshot_ref"]).strip()
        == (base["sha"])
    )
    assert [job.checkout.commit for job in first.jobs if job.checkout] == [base["sha"]] * 2
    _as_if_killed(session_id, _dead_owner())
    await app.clean(repo)  # a dead owner's session snapshot is kept while it is unfinished
    assert git(repo, "for-each-ref", base["snapshot_ref"]) != ""

    # The user moves on: a new commit, a clean tree.
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "moved on")
    second = ScriptedBackend({"hung": PASS})
    resumed = await app.resume(session_id, backend=second)

    assert resumed.ran is True
    assert [(job.key, job.checkout.commit if job.checkout else None) for job in second.jobs] == [
        ("hung", base["sha"])
    ]
    final = await app.show(session_id)
    assert final["session"]["status"] == "completed"
    assert final["session"]["base"] == base  # never overwritten by the resume
    assert verdicts(final) == {"done": "supported", "hung": "falsified"}
    # Completed with nothing left to run: the snapshot ref is gone.
    assert git(repo, "for-each-ref", "refs/refute/") == ""


@pytest.mark.asyncio
async def test_clean_keeps_the_snapshot_refs_a_resume_needs_and_only_those(
    repo: Path, tmp_path: Path
):
    plan = write_plan(tmp_path / "plan.json", [hypothesis("only")])
    done = await app.run_plan(plan, repo=repo, backend=ScriptedBackend({"only": FAIL}))
    open_one = await app.run_plan(plan, repo=repo, backend=ScriptedBackend({"only": FAIL}))
    _as_if_killed(open_one["session"]["id"], _dead_owner())
    conn = sqlite3.connect(default_path())
    with conn:
        conn.execute("DELETE FROM runs WHERE session_id = ?", (open_one["session"]["id"],))
    conn.close()
    dead = _dead_owner()
    refs = {
        name: f"refs/refute/snapshots/{dead}-session-{sid}"
        for name, sid in (
            ("completed", done["session"]["id"]),
            ("unfinished", open_one["session"]["id"]),
            ("unknown", "20260101T000000-abcdef"),
        )
    }
    for ref in refs.values():
        git(repo, "update-ref", ref, head(repo))

    dry = await app.clean(repo, dry_run=True)
    assert sorted(dry.report.refs) == sorted([refs["completed"], refs["unknown"]])
    assert len(git(repo, "for-each-ref", "refs/refute/").splitlines()) == 3
    result = await app.clean(repo)

    assert sorted(result.report.refs) == sorted([refs["completed"], refs["unknown"]])
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/refute/").split() == [
        refs["unfinished"]
    ]


@pytest.mark.asyncio
async def test_resume_never_resolves_the_base_again(repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path / "plan.json", [hypothesis("only")])
    doc = await app.run_plan(plan, repo=repo, backend=ScriptedBackend({"only": FAIL}))
    session_id = doc["session"]["id"]
    _as_if_killed(session_id, _dead_owner())
    conn = sqlite3.connect(default_path())
    with conn:  # as an older refute left a session killed before it stored its base
        conn.execute("DELETE FROM runs")
        conn.execute(
            "UPDATE sessions SET document = json_set(document, '$.session.base.sha', NULL)"
        )
    conn.close()
    again = ScriptedBackend()
    with pytest.raises(RepositoryError, match="recorded no base commit") as excinfo:
        await app.resume(session_id, backend=again)
    assert excinfo.value.kind == "usage"
    assert again.jobs == []


@pytest.mark.asyncio
async def test_resume_of_an_unknown_session_is_a_usage_error():
    with pytest.raises(UnknownSessionError) as excinfo:
        await app.resume("no-such-session", backend=ScriptedBackend())
    assert excinfo.value.kind == "usage"


# -- show and history ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_show_and_history_return_the_stored_sessions(tmp_path: Path):
    one = make_repo(tmp_path / "one")
    other = make_repo(tmp_path / "other")
    never = make_repo(tmp_path / "never")
    plan = write_plan(tmp_path / "plan.json", [hypothesis("only")])
    ids = []
    for where, outcome in ((one, FAIL), (other, PASS), (one, PASS)):
        doc = await app.run_plan(plan, repo=where, backend=ScriptedBackend({"only": outcome}))
        ids.append(doc["session"]["id"])

    listed = await app.history(repo=one)
    assert [s["id"] for s in listed] == [ids[2], ids[0]]  # newest first, this repo only
    assert all(s["repo"] == str(one.resolve()) for s in listed)
    assert all(s["status"] == "completed" and s["runs"] == 1 for s in listed)
    everywhere = await app.history(repo=one, all_repos=True)
    assert [s["id"] for s in everywhere] == [ids[2], ids[1], ids[0]]
    assert [s["id"] for s in await app.history(repo=one, limit=1)] == [ids[2]]
    assert await app.history(repo=never) == []

    latest = await app.show(None, repo=one)
    assert latest["session"]["id"] == ids[2]
    assert verdicts(latest) == {"only": "falsified"}
    by_id = await app.show(ids[0])
    assert verdicts(by_id) == {"only": "supported"}
    assert (await app.show(None, repo=other))["session"]["id"] == ids[1]
    with pytest.raises(UnknownSessionError):
        await app.show(None, repo=never)
    with pytest.raises(UnknownSessionError):
        await app.show("no-such-session")


# -- clean -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_clean_removes_what_a_dead_refute_left_and_reports_it(repo: Path, tmp_path: Path):
    # A snapshot ref of a refute that is gone (no pid above pid_max can exist) and one of
    # this live process, which must be kept.
    dead = "refs/refute/snapshots/999999999.1-dead00"
    alive = f"refs/refute/snapshots/{process_token()}-live00"
    git(repo, "update-ref", dead, "HEAD")
    git(repo, "update-ref", alive, "HEAD")

    preview = await app.clean(repo, dry_run=True)
    assert preview.repository == repo.resolve()
    assert preview.report.dry_run is True
    assert preview.report.refs == [dead]
    assert git(repo, "for-each-ref", "--format=%(refname)", dead).strip() == dead

    done = await app.clean(repo)
    assert done.report.dry_run is False
    assert done.report.refs == [dead]
    assert done.report.processes == []
    assert git(repo, "for-each-ref", "--format=%(refname)", dead).strip() == ""
    assert git(repo, "for-each-ref", "--format=%(refname)", alive).strip() == alive

    again = await app.clean(repo)
    assert again.report.nothing_to_do
    git(repo, "update-ref", "-d", alive)


@pytest.mark.asyncio
async def test_clean_outside_a_repository_checks_processes_only(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = await app.clean(plain)
    assert result.repository is None
    assert result.report.worktrees == []
    assert result.report.refs == []


# -- check --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_check_returns_the_ranked_spec_and_runs_nothing(repo: Path, tmp_path: Path):
    plan = write_plan(
        tmp_path / "plan.json",
        [hypothesis("unlikely", 0.1), hypothesis("likely", 0.9), hypothesis("middle", 0.5)],
        concurrency=3,
        defaults={"timeout": 42, "repeat": 2},
    )

    report = await app.check(plan, repo=repo)
    assert report.valid, report.findings
    spec = report.spec

    assert [h.id for h in spec.hypotheses] == ["likely", "middle", "unlikely"]
    assert [s["rank"] for s in spec.specs] == [1, 2, 3]
    assert spec.specs[0]["score"] > spec.specs[1]["score"] > spec.specs[2]["score"]
    assert spec.repo == repo.resolve()
    assert spec.config.concurrency() == 3
    assert spec.config.test_timeout == 42
    assert [h.repeat for h in spec.hypotheses] == [2, 2, 2]
    assert spec.hypotheses[0].argv() == command_for("likely")
    assert await app.history(repo=repo, all_repos=True) == []  # no session was created

    overridden = (
        await app.check(
            plan, repo=repo, options=app.RunOptions(jobs=1, timeout=5, repeat=1, max_hypotheses=2)
        )
    ).spec
    assert [h.id for h in overridden.hypotheses] == ["likely", "middle"]
    assert overridden.config.concurrency() == 1
    assert [h.timeout for h in overridden.hypotheses] == [5, 5]
    assert [h.repeat for h in overridden.hypotheses] == [1, 1]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"version": 2}, "version"),
        ({"bug": ""}, "bug"),
        ({"hypotheses": [{"id": "Bad Id", "description": "x", "test": "true"}]}, "id"),
        ({"hypotheses": [{"id": "control", "description": "x", "test": "true"}]}, "id"),
        ({"hypotheses": []}, "hypotheses"),
    ],
)
async def test_check_refuses_a_bad_plan_with_a_plan_error(
    repo: Path, tmp_path: Path, change: dict[str, Any], where: str
):
    plan = {"version": 1, "bug": "b", "hypotheses": [hypothesis("ok")], **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    with pytest.raises(PlanError) as excinfo:
        await app.check(path, repo=repo)
    assert where in excinfo.value.field
    assert str(excinfo.value).startswith(str(path))


@pytest.mark.asyncio
async def test_check_refuses_a_missing_plan_and_a_bad_base(repo: Path, tmp_path: Path):
    with pytest.raises(PlanError):
        await app.check(tmp_path / "missing.yaml", repo=repo)
    plan = write_plan(tmp_path / "plan.json", [hypothesis("ok")], base="no-such-branch")
    with pytest.raises(RepositoryError):
        await app.check(plan, repo=repo)
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    with pytest.raises(RepositoryError):
        await app.check(write_plan(tmp_path / "ok.json", [hypothesis("ok")]), repo=not_a_repo)
    assert not os.path.exists(Path(os.environ["REFUTE_HOME"]) / "state" / "refute.sqlite3")


@pytest.mark.asyncio
async def test_a_failing_progress_callback_does_not_leave_the_session_running(tmp_path):
    """Found by review: an unexpected exception must still finish the session (failed)."""
    repo = make_repo(tmp_path / "repo")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "b",
                "hypotheses": [
                    {"id": "one", "description": "d", "test": [sys.executable, "-c", "pass"]}
                ],
            }
        ),
        encoding="utf-8",
    )
    created: list[str] = []

    def on_event(event) -> None:
        raise RuntimeError("the live view broke")

    with pytest.raises(RuntimeError, match="the live view broke"):
        await app.run_plan(
            plan,
            repo=repo,
            on_event=on_event,
            on_created=lambda doc: created.append(doc["session"]["id"]),
        )
    stored = await app.show(created[0])
    assert stored["session"]["status"] == "failed"
    assert stored["session"]["exit_code"] == 4
    assert "the live view broke" in stored["session"]["error"]
