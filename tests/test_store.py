"""The session store against real SQLite files: round trips, crash safety, several processes
at once, schema versions, id prefixes, listing and what a resume must re-run."""

from __future__ import annotations

import copy
import json
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from refute.errors import RefuteError, SessionRunningError, StoreError
from refute.model import TestExecutionResult, TestResult
from refute.owners import process_token
from refute.paths import MARKER_FILE, state_dir
from refute.store import CONTROL_ID, Store, default_path, schema_version
from refute.store import sessions as store_module

SID = "20261128T011500-3f9a2c"
# What the engine stores for a test that printed invalid UTF-8: decoded with replacement.
MESSY_STDOUT = b"caf\xc3\xa9 \xff\xfe ok \xe2\x9c\x93 \xf0\x9f\x90\x9b\n".decode("utf-8", "replace")


def make_doc(
    sid: str = SID,
    *,
    repo: str = "/abs/repo",
    started_at: str = "2026-11-28T01:15:00+00:00",
    repeat: int = 1,
    control: bool = True,
    hypotheses: tuple[str, ...] = ("token-race", "cache-stale"),
) -> dict[str, Any]:
    return {
        "schema": "refute.session/1",
        "session": {
            "id": sid,
            "repo": repo,
            "plan_path": "/abs/plan.yaml",
            "bug": "Auth service randomly rejects valid sessions — ünïcode ✓",
            "status": "running",
            "started_at": started_at,
            "finished_at": None,
            "base": {
                "ref": "HEAD",
                "sha": "a" * 40,
                "snapshot_of": None,
                "include_uncommitted": False,
            },
            "settings": {
                "concurrency": 4,
                "timeout": 120,
                "repeat": repeat,
                "parallel": True,
                "max_hypotheses": 5,
            },
            "parallel_decision": {
                "parallel": True,
                "sequential_time": 90,
                "longest_test": 30,
                "overhead": 55,
                "cost_source": "seed",
                "reason": "worth it",
            },
            "exit_code": None,
            "error": None,
        },
        "control": (
            {
                "test": ["pytest", "-x", "tests/test_session.py"],
                "repeat": repeat,
                "verdict": "pending",
                "counts": {},
                "runs": [],
            }
            if control
            else None
        ),
        "hypotheses": [
            {
                "id": hid,
                "description": f"{hid} explains it",
                "rank": rank,
                "score": 0.56 - rank / 100,
                "probability": 0.7,
                "impact": 0.9,
                "test_complexity": 0.3,
                "estimated_test_time": 30,
                "supported_if": "fails",
                "test": ["pytest", "-x", f"tests/test_{hid}.py"],
                "shell": False,
                "patch": None,
                "depends_on": [],
                "repeat": repeat,
                "timeout": 120,
                "verdict": "pending",
                "confidence": 0.0,
                "runs": [],
            }
            for rank, hid in enumerate(hypotheses, start=1)
        ],
        "summary": {"counts": {"pending": len(hypotheses)}},
    }


def make_run(
    hid: str,
    attempt: int = 1,
    result: TestResult = TestResult.FAIL,
    *,
    not_run: bool = False,
    stdout: str = "",
) -> dict[str, Any]:
    metrics: dict[str, Any] = {"attempt": attempt, "confidence": 0.6, "slot": attempt % 4}
    if not_run:
        metrics.update(not_run=True, confidence=0.0)
    return TestExecutionResult(
        hypothesis_id=hid,
        result=result,
        duration=0.0 if not_run else 1.25 * attempt,
        stdout=stdout,
        stderr="" if not_run else "E   AssertionError: ✗\n",
        exit_code=0 if result is TestResult.PASS else 1,
        worktree_path=f"/cache/worktrees/{hid}",
        error_message="cancelled before it ran" if not_run else "",
        metrics=metrics,
        stdout_log="" if not_run else f"/state/logs/{hid}.run{attempt}.stdout",
        stderr_log="" if not_run else f"/state/logs/{hid}.run{attempt}.stderr",
        started_at=0.0 if not_run else 1_790_000_000.5 + attempt,
    ).to_dict()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "refute.sqlite3"


def run_child(script: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_of_a_full_session_document(db: Path):
    doc = make_doc(repeat=2)
    with Store.open(db) as store:
        store.create_session(doc)
        started = store.load_document(SID)
        assert started["session"]["status"] == "running"
        assert all(h["runs"] == [] for h in started["hypotheses"])
        assert started["control"]["runs"] == []

        control_runs = [make_run(CONTROL_ID, a, stdout=MESSY_STDOUT) for a in (2, 1)]
        race_runs = [make_run("token-race", a, stdout=f"run {a} \x00 ✓") for a in (1, 2)]
        stale_runs = [
            make_run("cache-stale", 1, TestResult.PASS),
            make_run("cache-stale", 2, TestResult.TIMEOUT),
        ]
        # Out of order on purpose: the document lists runs by attempt.
        for run in [stale_runs[1], *control_runs, race_runs[1], race_runs[0], stale_runs[0]]:
            assert store.add_run(SID, run) is True

        final = copy.deepcopy(doc)
        final["session"].update(
            status="completed", finished_at="2026-11-28T01:16:00+00:00", exit_code=0
        )
        final["control"].update(verdict="reproduced", counts={"fail": 2})
        final["control"]["runs"] = sorted(control_runs, key=lambda r: r["metrics"]["attempt"])
        final["hypotheses"][0].update(
            verdict="supported",
            confidence=0.34,
            unreliable=False,
            reason="the test failed (bug reproduced) in 2 of 2 valid runs",
            counts={"pass": 0, "fail": 2, "timeout": 0, "error": 0, "skip": 0, "not_run": 0},
            runs_total=2,
            runs_valid=2,
            reproduction_rate=1.0,
            wilson_95=[0.34, 1.0],
            runs=race_runs,
        )
        final["hypotheses"][1].update(verdict="falsified", runs=stale_runs)
        final["summary"] = {
            "counts": {"falsified": 1, "supported": 1, "inconclusive": 0, "flaky": 0},
            "survivors": ["token-race"],
            "recommendation": {"action": "focus", "message": "m", "next_steps": ["a", "b"]},
            "timing": {"wall_seconds": 2.1, "sum_run_seconds": 5.3, "speedup": 2.52},
        }
        store.finish_session(SID, "completed", 0, final)
        loaded = store.load_document(SID)

    assert loaded == final
    assert loaded["control"]["runs"][0]["stdout"] == MESSY_STDOUT
    assert "\ufffd" in loaded["control"]["runs"][0]["stdout"]
    # The runs come back as the engine's own objects.
    again = TestExecutionResult.from_dict(loaded["hypotheses"][0]["runs"][1])
    assert again.result is TestResult.FAIL
    assert again.metrics["attempt"] == 2
    # A fresh connection (another process, later) sees the same.
    with Store.open(db) as other:
        assert other.load_document(SID) == final
        assert other.unfinished(SID) == {}


def test_columns_mirror_the_runs_and_hypotheses(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc())
        store.add_run(SID, make_run("token-race", 1))
        store.add_run(SID, make_run("cache-stale", 1, not_run=True))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT hypothesis_id, attempt, result, exit_code, duration, started_at,"
            " finished_at, stdout_log, not_run FROM runs ORDER BY hypothesis_id"
        ).fetchall()
        hyps = conn.execute("SELECT id, rank, verdict FROM hypotheses ORDER BY rank").fetchall()
    conn.close()
    assert rows == [
        ("cache-stale", 1, "fail", 1, 0.0, None, None, None, 1),
        (
            "token-race",
            1,
            "fail",
            1,
            1.25,
            1_790_000_001.5,
            1_790_000_002.75,
            "/state/logs/token-race.run1.stdout",
            0,
        ),
    ]
    assert hyps == [("token-race", 1, "pending"), ("cache-stale", 2, "pending")]


def test_runs_in_the_created_document_are_stored(db: Path):
    doc = make_doc()
    doc["hypotheses"][0]["runs"] = [make_run("token-race", 1)]
    with Store.open(db) as store:
        store.create_session(doc)
        assert store.load_document(SID)["hypotheses"][0]["runs"] == [make_run("token-race", 1)]


def test_default_path_is_private_under_the_state_dir():
    with Store.open() as store:
        assert store.path == default_path() == state_dir() / "refute.sqlite3"
        store.create_session(make_doc())
    assert (state_dir() / MARKER_FILE).is_file()
    assert stat.S_IMODE(default_path().stat().st_mode) == 0o600
    with sqlite3.connect(default_path()) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    assert mode == "wal"
    assert version == schema_version() == 2


def test_explicit_path_in_a_new_directory(tmp_path: Path):
    path = tmp_path / "new" / "dir" / "db.sqlite3"
    with Store.open(path) as store:
        store.create_session(make_doc())
    assert (path.parent / MARKER_FILE).is_file()


# -- crash safety -----------------------------------------------------------------------------

CRASHER = r"""
import os, signal, sys
from pathlib import Path
from refute.model import TestExecutionResult, TestResult
from refute.owners import process_token
from refute.store import Store
from refute.store.rows import upsert_run

path, sid, count, how = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def run(attempt):
    return TestExecutionResult(
        "token-race", TestResult.FAIL, 0.5, stdout="x" * 1000, metrics={"attempt": attempt}
    ).to_dict()

store = Store.open(path)
for attempt in range(1, count + 1):
    store.add_run(sid, run(attempt))
if how == "exit":
    os._exit(9)
# Die in the middle of the next write: the row is inserted but never committed.
with store._write() as conn:
    upsert_run(conn, sid, "token-race", run(count + 1))
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize(("how", "code"), [("exit", 9), ("kill", -9)])
def test_a_crash_loses_nothing_already_finished(db: Path, how: str, code: int):
    with Store.open(db) as store:
        store.create_session(make_doc(repeat=10, control=False))
        proc = run_child(CRASHER, db, SID, 6, how)
        assert proc.returncode == code, proc.stderr
        doc = store.load_document(SID)
        assert [r["metrics"]["attempt"] for r in doc["hypotheses"][0]["runs"]] == [1, 2, 3, 4, 5, 6]
        assert store.list_sessions()[0]["status"] == "running"
        assert store.unfinished(SID) == {
            "token-race": [7, 8, 9, 10],
            "cache-stale": list(range(1, 11)),
        }
        # The dead writer left no lock behind.
        started = time.monotonic()
        store.add_run(SID, make_run("token-race", 7))
        assert time.monotonic() - started < 5
    with Store.open(db) as again:
        assert len(again.load_document(SID)["hypotheses"][0]["runs"]) == 7


# -- several processes at once ----------------------------------------------------------------

WRITER = r"""
import json, sys, time
from pathlib import Path
from refute.store import Store

path, doc, go = Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[4])
count = int(sys.argv[3])
sid = doc["session"]["id"]
while not go.exists():
    time.sleep(0.001)
with Store.open(path) as store:  # first open of a new file, racing the others
    store.create_session(doc)
    for attempt in range(1, count + 1):
        store.add_run(sid, {
            "hypothesis_id": "token-race", "result": "fail", "duration": 0.01,
            "stdout": "out" * 100, "exit_code": 1, "metrics": {"attempt": attempt},
        })
"""

READER = r"""
import sys, time
from pathlib import Path
from refute.store import Store

path, go, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
seen = {}
reads = 0
while not stop.exists():
    if not path.exists():
        continue
    with Store.open(path) as store:
        for _ in range(20):
            for entry in store.list_sessions():
                runs = store.load_document(entry["id"])["hypotheses"][0]["runs"]
                attempts = [r["metrics"]["attempt"] for r in runs]
                assert attempts == list(range(1, len(attempts) + 1)), attempts
                assert len(attempts) >= seen.get(entry["id"], 0), "runs went backwards"
                seen[entry["id"]] = len(attempts)
                reads += 1
print(reads)
"""


@pytest.mark.slow
def test_two_processes_write_the_same_database_at_once(tmp_path: Path, db: Path):
    count = 200
    go, stop = tmp_path / "go", tmp_path / "stop"
    writers = []
    for n in range(2):
        doc = make_doc(f"2026112{n}T000000-writer{n}", repeat=count, control=False)
        args = [db, json.dumps(doc), count, go]
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, *map(str, args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(db), str(go), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(0.5)  # let every interpreter start, then release them together
        go.touch()
        results = [proc.communicate(timeout=120) for proc in writers]
        stop.touch()
        reads = [proc.communicate(timeout=60) for proc in readers]
    finally:
        stop.touch()
        for proc in writers + readers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(writers, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    for proc, (out, err) in zip(readers, reads, strict=True):
        assert proc.returncode == 0, err
        assert int(out) > 0
    with Store.open(db) as store:
        sessions = store.list_sessions()
        assert len(sessions) == 2
        for entry in sessions:
            assert entry["runs"] == count
            runs = store.load_document(entry["id"])["hypotheses"][0]["runs"]
            assert [r["metrics"]["attempt"] for r in runs] == list(range(1, count + 1))
            assert store.unfinished(entry["id"]) == {"cache-stale": list(range(1, count + 1))}


def test_one_store_shared_by_threads(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(repeat=100, control=False))
        errors: list[BaseException] = []

        def work(hid: str) -> None:
            try:
                for attempt in range(1, 101):
                    store.add_run(SID, make_run(hid, attempt))
                    store.load_document(SID)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(h,)) for h in ("token-race", "cache-stale")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.unfinished(SID) == {}


# -- schema versions --------------------------------------------------------------------------


def test_a_version_1_database_opens(db: Path):
    # Built by hand from the version-1 statements, as an older refute would have left it.
    conn = sqlite3.connect(db)
    for statement in store_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO sessions (id, repo, plan_path, bug, status, started_at, document)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (SID, "/r", None, "b", "completed", "2026-01-01T00:00:00+00:00", json.dumps(make_doc())),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Store.open(db) as store:
        assert store.latest_session_id() == SID
        assert store.load_document(SID)["session"]["status"] == "completed"


def test_migrations_apply_in_order_and_keep_data(db: Path, monkeypatch: pytest.MonkeyPatch):
    with Store.open(db) as store:
        store.create_session(make_doc())
        store.add_run(SID, make_run("token-race"))
    migrations = [
        *store_module.MIGRATIONS,
        ("ALTER TABLE sessions ADD COLUMN note TEXT", "UPDATE sessions SET note = 'v2'"),
        ("UPDATE sessions SET note = note || '+v3'",),
    ]
    monkeypatch.setattr(store_module, "MIGRATIONS", migrations)
    with Store.open(db) as store:
        assert len(store.load_document(SID)["hypotheses"][0]["runs"]) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations)
    assert conn.execute("SELECT note FROM sessions").fetchone()[0] == "v2+v3"
    conn.close()


def test_a_failing_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch):
    with Store.open(db):
        pass
    broken = [*store_module.MIGRATIONS, ("CREATE TABLE extra (x)", "THIS IS NOT SQL")]
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="syntax error"):
        Store.open(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(broken) - 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "extra" not in tables


def test_a_newer_database_is_refused(db: Path):
    with Store.open(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99") as info:
        Store.open(db)
    assert isinstance(info.value, RefuteError)


def test_a_file_that_is_not_a_database_is_refused(db: Path):
    db.write_bytes(b"this is not sqlite\n" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store.open(db)


def test_a_closed_store_says_so(db: Path):
    store = Store.open(db)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_sessions()


# -- ids, listing ---------------------------------------------------------------------------


def test_prefix_resolution(db: Path):
    with Store.open(db) as store:
        for sid in ("20261128T011500-3f9a2c", "20261128T011500-3f9b00", "20261129T000000-aaaaaa"):
            store.create_session(make_doc(sid))
        assert store.resolve_session_id("20261128T011500-3f9a2c") == "20261128T011500-3f9a2c"
        assert store.resolve_session_id("20261129") == "20261129T000000-aaaaaa"
        assert store.resolve_session_id("20261128T011500-3f9a") == "20261128T011500-3f9a2c"
        with pytest.raises(StoreError, match="ambiguous") as info:
            store.resolve_session_id("20261128")
        assert "3f9a2c" in str(info.value)
        assert "3f9b00" in str(info.value)
        with pytest.raises(StoreError, match="no session matches"):
            store.resolve_session_id("2027")
        with pytest.raises(StoreError, match="no session matches"):
            store.resolve_session_id("%")  # no LIKE wildcards
        with pytest.raises(StoreError, match="required"):
            store.resolve_session_id("")


def test_list_newest_first_with_repo_filter(db: Path):
    with Store.open(db) as store:
        assert store.list_sessions() == []
        assert store.latest_session_id() is None
        store.create_session(make_doc("s-mid", repo="/a", started_at="2026-11-28T02:00:00+00:00"))
        store.create_session(make_doc("s-old", repo="/b", started_at="2026-11-28T01:00:00+00:00"))
        store.create_session(make_doc("s-new", repo="/a", started_at="2026-11-28T03:00:00+00:00"))
        store.create_session(make_doc("s-tie", repo="/b", started_at="2026-11-28T01:00:00+00:00"))
        assert [s["id"] for s in store.list_sessions()] == ["s-new", "s-mid", "s-tie", "s-old"]
        assert [s["id"] for s in store.list_sessions(limit=2)] == ["s-new", "s-mid"]
        assert [s["id"] for s in store.list_sessions("/b")] == ["s-tie", "s-old"]
        assert [s["id"] for s in store.list_sessions(Path("/a"))] == ["s-new", "s-mid"]
        assert store.list_sessions("/nowhere") == []
        assert store.latest_session_id() == "s-new"
        assert store.latest_session_id("/b") == "s-tie"
        assert store.latest_session_id("/nowhere") is None
        with pytest.raises(StoreError, match="limit"):
            store.list_sessions(limit=0)

        store.add_run("s-new", make_run("token-race"))
        store.add_run("s-new", make_run("cache-stale", not_run=True))
        final = make_doc("s-new", repo="/a", started_at="2026-11-28T03:00:00+00:00")
        final["summary"] = {"counts": {"supported": 1, "falsified": 1}}
        store.finish_session("s-new", "completed", 0, final)
        entry = store.list_sessions()[0]
    assert entry["counts"] == {"supported": 1, "falsified": 1}
    assert entry["runs"] == 1
    assert entry["status"] == "completed"
    assert entry["exit_code"] == 0
    assert entry["finished_at"]  # set to now when the document had none
    assert entry["bug"].endswith("✓")
    assert entry["repo"] == "/a"
    assert entry["plan_path"] == "/abs/plan.yaml"


# -- resume ---------------------------------------------------------------------------------


def test_unfinished_with_repeats_and_not_run_rows(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(repeat=3))
        assert store.unfinished(SID) == {
            CONTROL_ID: [1, 2, 3],
            "token-race": [1, 2, 3],
            "cache-stale": [1, 2, 3],
        }
        store.add_run(SID, make_run(CONTROL_ID, 1))
        store.add_run(SID, make_run(CONTROL_ID, 2))
        store.add_run(SID, make_run(CONTROL_ID, 3))
        store.add_run(SID, make_run("token-race", 1))
        store.add_run(SID, make_run("token-race", 2, not_run=True))
        store.add_run(SID, make_run("token-race", 3, TestResult.ERROR))  # final, no evidence
        store.add_run(SID, make_run("cache-stale", 2, TestResult.PASS))
        store.add_run(SID, make_run("cache-stale", 3, not_run=True))
        store.set_status(SID, "interrupted")
        assert store.unfinished(SID) == {"token-race": [2], "cache-stale": [1, 3]}
        # The not_run rows are still in the document, marked as such.
        doc = store.load_document(SID)
        assert doc["session"]["status"] == "interrupted"
        assert doc["session"]["finished_at"] is not None
        assert [r["metrics"].get("not_run", False) for r in doc["hypotheses"][0]["runs"]] == [
            False,
            True,
            False,
        ]


def test_unfinished_falls_back_to_the_session_repeat(db: Path):
    doc = make_doc(repeat=2)
    del doc["control"]["repeat"]
    del doc["hypotheses"][1]["repeat"]
    doc["hypotheses"][0]["repeat"] = 1
    with Store.open(db) as store:
        store.create_session(doc)
        assert store.unfinished(SID) == {
            CONTROL_ID: [1, 2],
            "token-race": [1],
            "cache-stale": [1, 2],
        }


def test_resume_replaces_a_not_run_row_never_a_real_one(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(control=False))
        store.add_run(SID, make_run("token-race", 1, not_run=True))
        store.add_run(SID, make_run("cache-stale", 1, TestResult.PASS))
        store.set_status(SID, "interrupted")
        assert store.unfinished(SID) == {"token-race": [1]}

        store.set_status(SID, "running")  # refute resume
        doc = store.load_document(SID)
        assert doc["session"]["finished_at"] is None
        assert doc["session"]["exit_code"] is None
        real = make_run("token-race", 1, TestResult.FAIL, stdout="reproduced")
        assert store.add_run(SID, real) is True
        # A late "did not run" must not erase the finished result.
        assert store.add_run(SID, make_run("cache-stale", 1, not_run=True)) is False
        assert store.unfinished(SID) == {}
        doc = store.load_document(SID)
    assert doc["hypotheses"][0]["runs"] == [real]
    assert doc["hypotheses"][1]["runs"] == [make_run("cache-stale", 1, TestResult.PASS)]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), sum(not_run) FROM runs").fetchone() == (2, 0)
    conn.close()


# -- refusals -------------------------------------------------------------------------------


def test_clear_errors_for_bad_input(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(control=False))
        with pytest.raises(StoreError, match="already exists"):
            store.create_session(make_doc())
        with pytest.raises(StoreError, match="no session 'nope'"):
            store.add_run("nope", make_run("token-race"))
        with pytest.raises(StoreError, match="no hypothesis 'other'"):
            store.add_run(SID, make_run("other"))
        with pytest.raises(StoreError, match="no control"):
            store.add_run(SID, make_run(CONTROL_ID))
        with pytest.raises(StoreError, match="invalid result"):
            store.add_run(SID, {**make_run("token-race"), "result": "maybe"})
        with pytest.raises(StoreError, match="invalid attempt"):
            store.add_run(SID, make_run("token-race", 0))
        with pytest.raises(StoreError, match="JSON"):
            store.add_run(SID, {**make_run("token-race"), "worktree_path": Path("/x")})
        with pytest.raises(StoreError, match="invalid session status"):
            store.set_status(SID, "done")
        with pytest.raises(StoreError, match="no session"):
            store.set_status("nope", "failed")
        with pytest.raises(StoreError, match="no session"):
            store.load_document("nope")
        with pytest.raises(StoreError, match="not 'nope'"):
            store.finish_session("nope", "completed", 0, make_doc())
        with pytest.raises(StoreError, match="schema"):
            store.create_session({**make_doc("x"), "schema": "refute.session/9"})
        with pytest.raises(StoreError, match="reserved or repeated"):
            store.create_session(make_doc("y", hypotheses=("a", "a")))
        with pytest.raises(StoreError, match="reserved or repeated"):
            store.create_session(make_doc("z", hypotheses=(CONTROL_ID,)))
        with pytest.raises(StoreError, match=r"session\.id"):
            store.create_session({"session": {"id": ""}})
        # Nothing half-written by the refusals.
        assert [s["id"] for s in store.list_sessions()] == [SID]
        assert store.unfinished(SID) == {"token-race": [1], "cache-stale": [1]}


def test_documents_and_runs_are_validated_with_the_models(db: Path):
    with Store.open(db) as store:
        bad = make_doc("typed")
        bad["hypotheses"][0]["probability"] = 2
        with pytest.raises(StoreError, match=r"hypotheses\[0\]\.probability: .* \(got 2\)"):
            store.create_session(bad)
        bad = make_doc("typed")
        bad["session"]["settings"]["repeat"] = "3"
        with pytest.raises(StoreError, match=r"session\.settings\.repeat"):
            store.create_session(bad)
        with pytest.raises(StoreError, match="extra: unknown key"):
            store.create_session({**make_doc("typed"), "extra": 1})
        store.create_session(make_doc())
        with pytest.raises(StoreError, match=r"run of 'token-race' is malformed: duration"):
            store.add_run(SID, {**make_run("token-race"), "duration": "1s"})
        final = make_doc()
        final["hypotheses"][1]["verdict"] = "SUPPORTED"
        with pytest.raises(StoreError, match=r"hypotheses\[1\]\.verdict"):
            store.finish_session(SID, "completed", 0, final)
        # Refused means not written: the session is still the one created.
        assert [s["id"] for s in store.list_sessions()] == [SID]
        assert store.load_document(SID)["hypotheses"][1]["verdict"] == "pending"
        assert store.load_document(SID)["hypotheses"][0]["runs"] == []


def test_control_runs_may_be_named_by_the_caller(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc())
        run = make_run("base", 1)  # whatever id the runner gave the control's run
        store.add_run(SID, run, hypothesis_id=CONTROL_ID)
        assert store.load_document(SID)["control"]["runs"] == [run]


# -- owners: a session whose refute died, resumes that claim it -------------------------------


def _token_of(proc: subprocess.Popen[bytes]) -> str:
    """The owner token (refute.owners: `<pid>.<start time>`) of a live child process."""
    stat = Path(f"/proc/{proc.pid}/stat").read_bytes()
    start = stat[stat.rfind(b")") + 2 :].split()[19].decode()
    return f"{proc.pid}.{start}"


def _dead_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        token = _token_of(proc)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return token


def test_a_running_session_whose_owner_died_reads_as_interrupted(db: Path):
    dead = _dead_token()
    with Store.open(db) as store:
        store.create_session(make_doc(), owner=dead)
        doc = store.load_document(SID)
        assert doc["session"]["status"] == "interrupted"
        assert f"pid {dead.split('.')[0]}" in doc["session"]["error"]
        assert f"refute resume {SID}" in doc["session"]["error"]
        assert [s["status"] for s in store.list_sessions()] == ["interrupted"]
        # What is stored is unchanged (reading never writes): still "running", no error.
        (status,) = store._conn().execute("SELECT status FROM sessions").fetchone()
        assert status == "running"


def test_a_running_session_whose_owner_lives_reads_as_running(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc())  # owned by this (live) process
        assert store.load_document(SID)["session"]["status"] == "running"
        assert store.load_document(SID)["session"].get("error") is None
        assert [s["status"] for s in store.list_sessions()] == ["running"]


def test_a_finished_session_keeps_its_status_whatever_its_owner(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(), owner=_dead_token())
        store.set_status(SID, "failed")
        assert store.load_document(SID)["session"]["status"] == "failed"


def test_claim_refuses_a_session_whose_owner_still_runs(db: Path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store.open(db) as store:
            store.create_session(make_doc(), owner=_token_of(proc))
            with pytest.raises(SessionRunningError, match=f"pid {proc.pid}") as excinfo:
                store.claim_session(SID)
            assert excinfo.value.kind == "usage"
            proc.kill()
            proc.wait(timeout=30)
            store.claim_session(SID)  # its owner is gone now: this process takes it over
            assert store.load_document(SID)["session"]["status"] == "running"
            (owner,) = store._conn().execute("SELECT owner FROM sessions").fetchone()
            assert owner == process_token()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_claim_resets_a_finished_session_to_running(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc(), owner=_dead_token())
        store.set_status(SID, "interrupted")
        store.claim_session(SID)
        doc = store.load_document(SID)
        assert doc["session"]["status"] == "running"
        assert doc["session"]["finished_at"] is None
        assert doc["session"]["exit_code"] is None


def test_mark_failed_records_status_exit_code_and_error(db: Path):
    with Store.open(db) as store:
        store.create_session(make_doc())
        store.mark_failed(SID, 4, "database or disk is full")
        doc = store.load_document(SID)
        assert doc["session"]["status"] == "failed"
        assert doc["session"]["exit_code"] == 4
        assert doc["session"]["error"] == "database or disk is full"
        assert doc["session"]["finished_at"]


def test_a_version_1_running_session_has_no_owner_and_reads_as_interrupted(db: Path):
    conn = sqlite3.connect(db)
    for statement in store_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO sessions (id, repo, plan_path, bug, status, started_at, document)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (SID, "/r", None, "b", "running", "2026-01-01T00:00:00+00:00", json.dumps(make_doc())),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Store.open(db) as store:
        assert store.load_document(SID)["session"]["status"] == "interrupted"
