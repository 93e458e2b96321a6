"""Fault suite: logs do not grow without bound, and old state can be pruned.

* A test that prints 200 MiB leaves, through the real CLI, a log of at most the cap
  (64 MiB by default) plus one marker line: its first and last halves, the cut marked in
  the log and in the run's result; refute's memory stays small meanwhile.
* `refute run --log-limit SIZE` sets the cap; bad sizes are one line and exit 2.
* `refute clean --older-than AGE` deletes old sessions with their logs (and old log
  directories of no session), `--dry-run` first says what; `--max-size SIZE` deletes the
  oldest logs until the state directory fits, keeping the records. A running session and
  its logs are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faultutil
import pytest

from gitutil import fingerprint, make_repo

TIMEOUT = 120
MIB = 1 << 20
LOG_MARKER = re.compile(
    rb"\n\[\.\.\. refute: (\d+) bytes of output dropped here; this log keeps the first"
    rb" (\d+) and the last (\d+) bytes \(log limit (\d+)\) \.\.\.\]\n"
)
# 200 chunks of 1 MiB, chunk i filled with the letter i % 26.
WRITER = (
    "import sys\n"
    "w = sys.stdout.buffer\n"
    "for i in range(200):\n"
    "    w.write(bytes([65 + i % 26]) * (1 << 20))\n"
)
# Runs refute in a fresh interpreter so that the peak RSS of its children is refute's own
# (the writer keeps one 1 MiB chunk).
PEAK = (
    "import resource, subprocess, sys\n"
    "proc = subprocess.run(sys.argv[1:], capture_output=True, timeout=300)\n"
    "sys.stderr.buffer.write(proc.stderr)\n"
    "sys.stdout.buffer.write(proc.stdout)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(proc.returncode)\n"
)


def cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "refute.cli", *args]


def refute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faultutil.run_cli(cli(*args, cwd=cwd), cwd=cwd, timeout=TIMEOUT, clean="both")


def plan(tmp_path: Path, name: str, test: list[str], timeout: float = 60) -> Path:
    path = tmp_path / f"{name}.json"
    data = {
        "version": 1,
        "bug": f"plan {name}",
        "defaults": {"timeout": timeout},
        "hypotheses": [{"id": "writes", "description": "writes output", "test": test}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def state() -> Path:
    return Path(os.environ["REFUTE_HOME"]) / "state"


# -- the log cap ----------------------------------------------------------------------------


@pytest.mark.slow
def test_200_mib_of_output_leaves_a_capped_log_and_a_marked_result(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    before = fingerprint(repo)
    path = plan(tmp_path, "bulk", [sys.executable, "-c", WRITER])
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, *cli("run", str(path), "--format", "json", cwd=repo)],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mib < 150, f"refute's peak RSS was {peak_mib:.0f} MiB for 200 MiB of output"
    [hyp] = json.loads(proc.stdout)["hypotheses"]
    [run] = hyp["runs"]
    total, cap = 200 * MIB, 64 * MIB
    assert run["metrics"]["stdout_bytes"] == total
    assert run["metrics"]["stdout_log_dropped"] == total - cap
    assert any("stdout log capped" in note for note in run["metrics"]["notes"])
    log = Path(run["stdout_log"])
    assert log.is_relative_to(state() / "logs")
    with log.open("rb") as handle:
        for i in range(32):
            assert handle.read(MIB) == bytes([65 + i % 26]) * MIB, f"head chunk {i}"
        match = LOG_MARKER.match(handle.read(400))
        assert match is not None
        assert [int(g) for g in match.groups()] == [total - cap, cap // 2, cap // 2, cap]
        handle.seek(cap // 2 + match.end())
        for i in range(168, 200):
            assert handle.read(MIB) == bytes([65 + i % 26]) * MIB, f"tail chunk {i}"
        assert handle.read(1) == b""
    assert log.stat().st_size == cap + match.end()  # cap + one marker line, nothing else
    assert not list(log.parent.glob("*.capping"))
    assert fingerprint(repo) == before
    print(f"200 MiB run: {elapsed:.1f}s, peak RSS {peak_mib:.0f} MiB")


@pytest.mark.slow
def test_log_limit_option_sets_the_cap_and_refuses_bad_sizes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    code = "import sys; sys.stdout.buffer.write(b'h' * 300000 + b't' * 300000)"
    path = plan(tmp_path, "small", [sys.executable, "-c", code])
    proc = refute("run", str(path), "--log-limit", "256K", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [run] = json.loads(proc.stdout)["hypotheses"][0]["runs"]
    text = Path(run["stdout_log"]).read_bytes()
    half = 128 * 1024
    match = LOG_MARKER.search(text)
    assert match is not None
    assert text[: match.start()] == b"h" * half
    assert text[match.end() :] == b"t" * half
    assert run["metrics"]["stdout_log_dropped"] == 600000 - 2 * half
    for bad in ("1K", "5G", "lots", "-3M"):
        refused = refute("run", str(path), "--log-limit", bad, cwd=repo)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith("refute: error: --log-limit:"), refused.stderr


# -- retention ------------------------------------------------------------------------------


def _age(session_id: str, days: float) -> None:
    """Make a stored session `days` old (start and end), as if it had run back then."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    db = state() / "refute.sqlite3"
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.execute(
            "UPDATE sessions SET started_at = ?,"
            " finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? END WHERE id = ?",
            (when, when, session_id),
        )


def _sessions() -> list[str]:
    db = state() / "refute.sqlite3"
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return sorted(row[0] for row in conn.execute("SELECT id FROM sessions"))


def _session_of(stderr: str) -> str:
    match = re.search(r"^refute: session (\S+)$", stderr, re.MULTILINE)
    assert match, stderr
    return match.group(1)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A session that is running for as long as the test needs it; stopped afterwards."""
    repo = make_repo(tmp_path / "running-repo")
    marker = tmp_path / "started"
    code = (
        "import pathlib, sys, time\n"
        "sys.stdout.write('r' * 100000); sys.stdout.flush()\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "time.sleep(100)\n"
    )
    path = plan(tmp_path, "running", [sys.executable, "-c", code], timeout=110)
    err = tmp_path / "running.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            cli("run", str(path), cwd=repo),
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the running session never started its test"
            time.sleep(0.05)
        yield proc, err
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    repo = make_repo(tmp_path / f"{name}-repo")
    code = "import sys; sys.stdout.write('x' * (1 << 20))"
    return subprocess.Popen(
        cli("run", str(plan(tmp_path, name, [sys.executable, "-c", code])), cwd=repo),
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_older_than_and_max_size_prune_but_never_a_running_session(
    tmp_path: Path, running: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, err = running
    live = _session_of(err.read_text())
    # Three finished sessions at once, each with a 1 MiB log.
    starts = {name: _start(tmp_path, name) for name in ("old", "recent", "older")}
    ids = {}
    for name, started in starts.items():
        _, stderr = started.communicate(timeout=TIMEOUT)
        assert started.returncode == 0, stderr
        ids[name] = _session_of(stderr)
    _age(ids["old"], 40)
    _age(ids["older"], 20)
    _age(live, 400)  # old, but running: never pruned
    logs = state() / "logs"
    orphan_old, orphan_new = logs / "20200101T000000-aaaaaa", logs / "20990101T000000-bbbbbb"
    for orphan in (orphan_old, orphan_new):
        orphan.mkdir()
        (orphan / "x.run1.stdout.log").write_bytes(b"o" * 1000)
    long_ago = time.time() - 90 * 86400
    os.utime(orphan_old / "x.run1.stdout.log", (long_ago, long_ago))
    os.utime(orphan_old, (long_ago, long_ago))
    cwd = tmp_path
    everything = sorted([*ids.values(), live])

    dry = refute("clean", "--older-than", "30d", "--dry-run", cwd=cwd)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove session {ids['old']}" in dry.stdout
    assert f"would remove logs {logs / ids['old']}" in dry.stdout
    assert f"would remove logs {orphan_old}" in dry.stdout
    assert _sessions() == everything
    assert (logs / ids["old"]).is_dir()
    assert orphan_old.is_dir()

    done = refute("clean", "--older-than", "30d", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert f"removed session {ids['old']}" in done.stdout
    assert "kept 1 running session(s) and their logs" in done.stdout
    assert _sessions() == sorted([ids["recent"], ids["older"], live])
    assert not (logs / ids["old"]).exists()
    assert not orphan_old.exists()
    assert orphan_new.is_dir()
    assert (logs / live).is_dir()
    assert (logs / ids["recent"]).is_dir()
    shown = refute("show", ids["old"], cwd=cwd)
    assert shown.returncode == 2, shown.stderr  # gone: an unknown session

    # A budget just below the current size: the oldest finished session's logs go first,
    # its record stays; the running session's logs stay whatever the budget.
    size = sum(p.stat().st_size for p in state().rglob("*") if p.is_file())
    budget = refute("clean", "--max-size", str(size - 1), cwd=cwd)
    assert budget.returncode == 0, budget.stderr
    assert f"removed logs {logs / ids['older']}" in budget.stdout
    assert (logs / ids["recent"]).is_dir()
    assert (logs / live).is_dir()
    assert _sessions() == sorted([ids["recent"], ids["older"], live])
    tiny = refute("clean", "--max-size", "1", cwd=cwd)
    assert tiny.returncode == 0, tiny.stderr
    assert "still" in tiny.stdout
    assert "over" in tiny.stdout
    assert (logs / live).is_dir()
    assert proc.poll() is None  # the running session ran on throughout
    assert _sessions() == sorted([ids["recent"], ids["older"], live])


def test_bad_retention_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (
        ("--older-than", "30x"),
        ("--older-than", "0d"),
        ("--older-than", "-1d"),
        ("--max-size", "0"),
        ("--max-size", "1Q"),
    ):
        proc = refute("clean", *args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"refute: error: {args[0]}:"), proc.stderr
