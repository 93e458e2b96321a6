"""Shared fixtures. Every test runs with a unique tag in the environment, inherited by every
process it starts; afterwards no live process may carry that tag (observed through /proc by
the tests themselves, independently of the engine's own marker and sweep)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

TAG_VARIABLE = "REFUTE_TEST_TAG"


def live_tagged(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose environment carries `REFUTE_TEST_TAG=<tag>`."""
    found = []
    needle = f"{TAG_VARIABLE}={tag}".encode()
    me = os.getpid()
    for pid in psutil.pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle not in handle.read():
                    continue
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def wait_until_gone(tag: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        alive = live_tagged(tag)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def watchdogs_of(refute_pid: int) -> list[int]:
    """Live crash watchdogs (refute.engine.watchdog) of the refute process `refute_pid`:
    their command line names the module and the marker prefix `<pid>.<start time>.`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if any("refute.engine.watchdog" in part for part in cmdline) and any(
            part.startswith(f"{refute_pid}.") for part in cmdline
        ):
            found.append(proc.pid)
    return found


def kill_watchdog_of(refute_pid: int) -> None:
    """SIGKILL the watchdog of `refute_pid`, so that killing refute next leaves the orphans
    that crash recovery (`refute clean`, the start-up sweep) exists for: refute and its
    watchdog both killed."""
    for pid in watchdogs_of(refute_pid):
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    deadline = time.monotonic() + 30
    while watchdogs_of(refute_pid) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def test_tag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_VARIABLE, tag)
    monkeypatch.setenv("REFUTE_HOME", str(tmp_path / "refute-home"))
    # No global git identity is guaranteed on a fresh machine.
    for var, value in (
        ("GIT_AUTHOR_NAME", "refute tests"),
        ("GIT_AUTHOR_EMAIL", "tests@refute.invalid"),
        ("GIT_COMMITTER_NAME", "refute tests"),
        ("GIT_COMMITTER_EMAIL", "tests@refute.invalid"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ):
        monkeypatch.setenv(var, value)
    yield tag
    leftover = live_tagged(tag)
    if leftover:
        names = []
        for proc in leftover:
            with contextlib.suppress(psutil.Error):
                names.append(f"{proc.pid}:{' '.join(proc.cmdline())[:60]}")
                proc.kill()
        pytest.fail(f"processes left running after the test: {', '.join(names)}")


@pytest.fixture
def python() -> str:
    return sys.executable
