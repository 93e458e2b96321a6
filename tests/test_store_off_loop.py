"""A locked session database never delays a test's deadline: the store runs off the loop.

Another process holds the SQLite write lock (`BEGIN IMMEDIATE` on the same file) for a
few seconds while a real session runs. One hypothesis finishes while the lock is held, so
its run is written (and waits for the lock) at that moment; another is still running and
must time out after 1 s. If that write happened on the event loop, the loop would stand
still until the lock is released and the timeout could only fire then: the TIMEOUT run
would last about as long as the lock is held. With the store on its own thread it lasts
about 1 s, and the session completes once the lock is released.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitutil import make_repo
from refute import app
from refute.store import Store, default_path

PY = sys.executable
HOLD = 5.0  # seconds the other process holds the write lock
TIMEOUT = 1.0  # the slow test's timeout
SLACK_LIMIT = 4.0  # the TIMEOUT run must last less than this (well under HOLD)

# Waits for `go`, takes the write lock, says so, holds it, says it is letting go, lets go.
LOCKER = r"""
import os, sqlite3, sys, time
db, go, locked, releasing, hold = sys.argv[1:6]
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit(2)
    time.sleep(0.005)
conn = sqlite3.connect(db, timeout=30, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
open(locked, "w").close()
time.sleep(float(hold))
open(releasing, "w").close()
conn.execute("ROLLBACK")
conn.close()
"""

# Once the slow test runs: starts the locker, waits until it holds the lock, exits 1.
FIRST = r"""
import os, sys, time
slow_started, go, locked = sys.argv[1:4]
deadline = time.monotonic() + 60
while not os.path.exists(slow_started):
    assert time.monotonic() < deadline
    time.sleep(0.005)
open(go, "w").close()
while not os.path.exists(locked):
    assert time.monotonic() < deadline
    time.sleep(0.005)
sys.exit(1)
"""


@pytest.mark.asyncio
async def test_a_locked_database_does_not_delay_a_timeout(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    signals = tmp_path / "signals"
    signals.mkdir()
    slow_started, go, locked, releasing = (
        signals / name for name in ("slow-started", "go", "locked", "releasing")
    )
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "the store must not block the loop",
                "concurrency": 2,
                "hypotheses": [
                    {
                        "id": "slow",
                        "description": "sleeps far past its timeout",
                        # A shell starts faster than Python: the file appears at once.
                        "test": [
                            "/bin/sh",
                            "-c",
                            'touch "$1" && exec sleep 30',
                            "sh",
                            str(slow_started),
                        ],
                        "timeout": TIMEOUT,
                        "probability": 0.9,
                    },
                    {
                        "id": "first",
                        "description": "finishes while the lock is held",
                        "test": [PY, "-c", FIRST, str(slow_started), str(go), str(locked)],
                        "timeout": 60,
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    # The database exists (schema and WAL mode) before the other process locks it.
    Store.open().close()
    locker = subprocess.Popen(
        [PY, "-c", LOCKER, str(default_path()), str(go), str(locked), str(releasing), str(HOLD)],
        stdin=subprocess.DEVNULL,
    )
    try:
        began = time.monotonic()
        doc = await app.run_plan(plan, repo=repo)
        wall = time.monotonic() - began
        finished_after_release = releasing.exists()
    finally:
        try:
            locker.wait(timeout=60)
        finally:
            if locker.poll() is None:
                locker.kill()
                locker.wait()
    assert locker.returncode == 0
    assert locked.exists()  # the lock really was held during the session

    runs = {h["id"]: h["runs"] for h in doc["hypotheses"]}
    [slow] = runs["slow"]
    [first] = runs["first"]
    assert first["result"] == "fail", first
    assert slow["result"] == "timeout", slow
    assert slow["exit_code"] == 124
    assert TIMEOUT * 0.9 <= slow["duration"] < SLACK_LIMIT, (
        f"the 1 s timeout took {slow['duration']:.2f}s: the event loop was blocked"
    )

    # The session's end had to wait for the lock, and then completed.
    assert finished_after_release
    assert wall >= HOLD * 0.5
    assert doc["session"]["status"] == "completed"
    stored = await app.show(doc["session"]["id"])
    assert stored["session"]["status"] == "completed"
    stored_runs = {h["id"]: [r["result"] for r in h["runs"]] for h in stored["hypotheses"]}
    assert stored_runs == {"slow": ["timeout"], "first": ["fail"]}
