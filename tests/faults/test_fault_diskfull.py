"""Infrastructure failures are the session's, not the tests': a full disk, a read-only cache.

Real filesystems, mounted for the test (root only; skipped with the reason otherwise): a
small tmpfs as REFUTE_HOME (state and cache), a small tmpfs as the state directory alone
while the tests write more output than it holds, and a read-only tmpfs as the cache. Each
`refute run` must exit 4 with one line on stderr saying why (never 0, never 3 "control
did not reproduce"), leave its session "failed" (not "running") whenever the database
could be written at all, leave the user's checkout byte-identical and no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from checkout_fingerprint import checkout_fingerprint

from conftest import wait_until_gone
from gitutil import make_repo

TIMEOUT = 120.0
PY = sys.executable
ENTRY = "import sys; from refute.cli.main import main; main(sys.argv[1:])"
TRIALS = 2  # per scenario


def refute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-c", ENTRY, *args],
        cwd=cwd,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@contextlib.contextmanager
def mounted(target: Path, options: str) -> Iterator[Path]:
    """A tmpfs at `target` with mount `options`; unmounted afterwards, whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], check=False)


def big_output_test(exit_code: int) -> list[str]:
    """Writes 6 MiB to stdout (refute logs every byte), then exits with `exit_code`."""
    return [PY, "-c", f"import sys; sys.stdout.write('x' * (6 << 20)); sys.exit({exit_code})"]


def write_plan(path: Path) -> Path:
    plan = {
        "version": 1,
        "bug": "output the state directory cannot hold",
        "concurrency": 2,
        "include_uncommitted": True,
        "control": {"test": big_output_test(1)},
        "hypotheses": [
            {"id": "first", "description": "first", "test": big_output_test(1)},
            {"id": "second", "description": "second", "test": big_output_test(0)},
        ],
    }
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def project(root: Path) -> tuple[Path, Path]:
    repo = make_repo(root / "repo", {"README.md": "committed\n", "src/app.py": "print(1)\n"})
    (repo / "README.md").write_text("dirty\n", encoding="utf-8")
    (repo / "untracked.txt").write_text("untracked\n", encoding="utf-8")
    return repo, write_plan(root / "plan.json")


def stored_status(repo: Path, session: str) -> str | None:
    shown = refute("show", session, "--format", "json", cwd=repo)
    if shown.returncode != 0:  # the database itself could not be read
        return None
    status: str = json.loads(shown.stdout)["session"]["status"]
    return status


def session_id(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.startswith("refute: session "):
            return line.split()[2]
    return None


def run_infrastructure_failure(root: Path, tag: str, words: tuple[str, ...]) -> dict[str, int]:
    """`refute run` once: exit 4, one line saying why (with one of `words`), the session
    failed, the checkout unchanged, nothing left running. Returns the trial's figures."""
    repo, plan = project(root)
    before = checkout_fingerprint(repo)
    try:
        result = refute("run", str(plan), "--format", "json", cwd=repo)
    except subprocess.TimeoutExpired:
        pytest.fail("refute run hung")
    errors = [line for line in result.stderr.splitlines() if line.startswith("refute: error:")]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 4, result.stderr
    assert len(errors) == 1, result.stderr
    assert any(word in errors[0] for word in words), errors[0]
    assert checkout_fingerprint(repo) == before
    session = session_id(result.stderr)
    status = stored_status(repo, session) if session else None
    if status is not None:
        assert status == "failed", (status, result.stderr)
    orphans = len(wait_until_gone(tag, timeout=30))
    assert orphans == 0
    print(f"\nrefute-fault-diskfull trial: status={status} why={errors[0]!r}")
    return {"orphans": orphans, "tracebacks": 0, "checkout_changes": 0, "hangs": 0}


@pytest.mark.slow
def test_a_full_refute_home_fails_the_session_with_exit_4(tmp_path: Path, test_tag: str) -> None:
    home = Path(os.environ["REFUTE_HOME"])
    with mounted(home, "size=8m"):
        for trial in range(TRIALS):
            run_infrastructure_failure(tmp_path / f"t{trial}", test_tag, ("disk", "space", "full"))


@pytest.mark.slow
def test_a_full_state_filesystem_fails_the_session_not_leaves_it_running(
    tmp_path: Path, test_tag: str
) -> None:
    # Worktrees fit (the cache is on the ordinary disk); the tests' logs fill the state
    # directory, which also holds the session database.
    state = Path(os.environ["REFUTE_HOME"]) / "state"
    with mounted(state, "size=8m"):
        for trial in range(TRIALS):
            run_infrastructure_failure(tmp_path / f"t{trial}", test_tag, ("disk", "space", "full"))
            for log in (state / "logs").glob("*/*.log"):  # room again for the next trial
                log.unlink()


@pytest.mark.slow
def test_a_read_only_cache_fails_the_session_with_exit_4_not_3(
    tmp_path: Path, test_tag: str
) -> None:
    cache = Path(os.environ["REFUTE_HOME"]) / "cache"
    with mounted(cache, "ro,size=8m"):
        for trial in range(TRIALS):
            run_infrastructure_failure(tmp_path / f"t{trial}", test_tag, ("Read-only", "read-only"))
