"""Result shaping, shared by every backend: how a process' end becomes one
`TestExecutionResult` (exit classification, messages, metrics), what a run that never
started or never finished looks like, and how log files are named."""

from __future__ import annotations

import functools
import re
import signal
import time
from pathlib import Path
from typing import Any

from refute.document import FailureKind
from refute.engine import runners
from refute.engine.process import ProcessOutcome, ProcessSpec
from refute.engine.protocol import Job
from refute.model import TestExecutionResult, TestResult, classify_exit, seed_confidence

__all__ = [
    "NOT_RUN_MESSAGE",
    "checkout_failure",
    "error_result",
    "exit_message",
    "log_paths",
    "not_run_result",
    "outcome_result",
    "seed_script",
]

NOT_RUN_MESSAGE = "not run: the run was cancelled before this test finished"


def log_paths(log_dir: Path | None, job: Job) -> tuple[Path | None, Path | None]:
    """`<log_dir>/<stem>.stdout.log` and `.stderr.log`, or (None, None); the stem is the
    job's `log_stem`, by default `<key>.run<attempt>`."""
    if log_dir is None:
        return None, None
    stem = job.log_stem or f"{job.key}.run{job.attempt}"
    return log_dir / f"{stem}.stdout.log", log_dir / f"{stem}.stderr.log"


def seed_script(cwd: Path, job: Job) -> Path:
    """The seed's convention for a job without a command."""
    return cwd / ".falsification" / f"test_{job.key}.sh"


def outcome_result(
    job: Job, spec: ProcessSpec, outcome: ProcessOutcome, slot: int
) -> TestExecutionResult:
    """The result of a process that was started (or failed to start)."""
    exit_code: int
    message = ""
    stdout, stderr = outcome.stdout.text(), outcome.stderr.text()
    runner = _runner_of(tuple(spec.argv), job.runner)
    if outcome.spawn_error is not None:
        result, exit_code, message = _spawn_failure(outcome.spawn_error, spec)
    elif outcome.timed_out:
        result, exit_code = TestResult.TIMEOUT, 124
        message = (
            f"timed out after {spec.timeout:g}s (test timeout {spec.timeout:g}s);"
            " the test's process tree was stopped"
        )
    elif outcome.exit_code is None:
        result, exit_code, message = TestResult.ERROR, -1, outcome.status_error
    else:
        exit_code = outcome.exit_code
        result, message = _classify(job, runner, exit_code, stdout, stderr)
    failure = _failure(result, exit_code, message)
    metrics: dict[str, Any] = {
        "confidence": seed_confidence(result, outcome.duration),
        "attempt": job.attempt,
        "slot": slot,
        "stdout_bytes": outcome.stdout.total,
        "stderr_bytes": outcome.stderr.total,
        "stdout_truncated": outcome.stdout.truncated,
        "stderr_truncated": outcome.stderr.truncated,
        "cleanup_seconds": round(outcome.cleanup_seconds, 6),
    }
    log_notes: list[str] = []
    for name, capture in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if capture.log_dropped and not capture.log_error:
            metrics[f"{name}_log_dropped"] = capture.log_dropped
            log_notes.append(
                f"{name} log capped: {capture.log_dropped} bytes dropped from the middle"
                f" of {capture.log_path} (the cut is marked in the log)"
            )
    if failure is not None:
        metrics["failure"] = failure
    if outcome.leftovers_killed:
        metrics["leftover_processes_killed"] = outcome.leftovers_killed
    if outcome.output_abandoned:
        metrics["output_abandoned"] = True
    if runner.name != "none":
        metrics["runner"] = runner.name
        if result is TestResult.FAIL and runner.lists_failures:
            metrics["failing_tests"] = sorted(runners.failing_tests(runner, stdout, stderr))
    errors = (outcome.stdout.log_error, outcome.stderr.log_error)
    notes = [n for n in (*errors, *log_notes, *outcome.notes) if n]
    if notes:
        metrics["notes"] = notes
    return TestExecutionResult(
        hypothesis_id=job.key,
        result=result,
        duration=outcome.duration,
        stdout=stdout,
        stderr=stderr,
        exit_code=exit_code,
        worktree_path=str(spec.cwd),
        error_message=message,
        metrics=metrics,
        stdout_log=str(spec.stdout_log) if spec.stdout_log and not outcome.stdout.log_error else "",
        stderr_log=str(spec.stderr_log) if spec.stderr_log and not outcome.stderr.log_error else "",
        started_at=outcome.started_at,
    )


@functools.lru_cache(maxsize=512)
def _runner_of(argv: tuple[str, ...], choice: str) -> runners.Runner:
    """`runners.detect`, once per command: it is pure (it reads only the words), its answer
    is immutable, and a batch runs the same commands again and again (every repeat, and
    hypotheses that share a command); a shell command costs ~0.1 ms to parse each time."""
    return runners.detect(argv, choice)


def _classify(
    job: Job, runner: runners.Runner, exit_code: int, stdout: str, stderr: str
) -> tuple[TestResult, str]:
    """The plan's `exit_codes` first; then the runner's reading of its harness exits
    (`refute.engine.runners`); then the default table. A FAIL whose output does not match
    the job's `failure_pattern` failed differently: ERROR, no evidence."""
    if exit_code in job.exit_codes:
        result = job.exit_codes[exit_code]
        message = exit_message(exit_code, result)
    else:
        verdict = runners.classify(runner, exit_code, stdout, stderr)
        if verdict is not None:
            result, message = verdict.result, verdict.message
        else:
            result = classify_exit(exit_code)
            message = exit_message(exit_code, result)
    pattern = job.failure_pattern
    if (
        result is TestResult.FAIL
        and pattern is not None
        and not re.search(pattern, f"{stdout}\n{stderr}", re.MULTILINE)
    ):
        return TestResult.ERROR, (
            f"failed differently: exit {exit_code}, but the output does not match"
            f" failure_pattern {pattern!r}"
        )
    return result, message


def _failure(result: TestResult, exit_code: int, message: str) -> FailureKind | None:
    """How a finished run that is no evidence failed (`metrics.failure`); None otherwise."""
    if result is TestResult.TIMEOUT:
        return "timeout"
    if result is not TestResult.ERROR:
        return None
    if message.startswith("failed differently"):
        return "pattern"
    if exit_code in (126, 127):
        return "command"
    return "error" if exit_code == -1 else "harness"


def error_result(
    job: Job,
    message: str,
    exit_code: int,
    *,
    worktree: Path | str | None = None,
    failure: FailureKind = "error",
) -> TestExecutionResult:
    """A run that could not start: no place to run, a missing script, a failed checkout.
    `failure` says how (`metrics.failure`), so the advice can fit it."""
    return TestExecutionResult(
        hypothesis_id=job.key,
        result=TestResult.ERROR,
        duration=0.0,
        exit_code=exit_code,
        worktree_path=str(worktree or job.cwd or ""),
        error_message=message,
        metrics={
            "confidence": seed_confidence(TestResult.ERROR, 0.0),
            "attempt": job.attempt,
            "failure": failure,
        },
    )


def checkout_failure(message: str) -> FailureKind:
    """How a checkout failed, from its error: the patch, the setup, or the worktree."""
    if "does not apply" in message:
        return "patch"
    if message.startswith("setup failed"):
        return "setup"
    return "error"


def not_run_result(job: Job, *, started_at: float = 0.0) -> TestExecutionResult:
    """A run that was cancelled before it finished (or before it started). One that had
    started keeps its start time (`started_at`, epoch seconds) and the time it ran."""
    ran = max(0.0, time.time() - started_at) if started_at > 0 else 0.0
    return TestExecutionResult(
        hypothesis_id=job.key,
        result=TestResult.SKIP,
        duration=round(ran, 6),
        started_at=started_at,
        exit_code=-1,
        worktree_path=str(job.cwd or ""),
        error_message=NOT_RUN_MESSAGE,
        metrics={"not_run": True, "attempt": job.attempt, "confidence": 0.0},
    )


def _spawn_failure(exc: Exception, spec: ProcessSpec) -> tuple[TestResult, int, str]:
    command = spec.argv[0] if spec.argv else ""
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None and str(exc.filename) == str(spec.cwd):
            return TestResult.ERROR, 126, f"worktree not found: {spec.cwd}"
        return TestResult.ERROR, 127, f"test command not found: {command}"
    if isinstance(exc, PermissionError):
        return (
            TestResult.ERROR,
            126,
            f"test command is not executable (permission denied): {command}",
        )
    if isinstance(exc, OSError):
        return (
            TestResult.ERROR,
            126,
            f"could not start test command {command}: {exc.strerror or exc}",
        )
    return TestResult.ERROR, 126, f"invalid test command: {exc}"


def exit_message(exit_code: int, result: TestResult) -> str:
    """What an exit status means, for the result's `error_message` ("" for PASS/FAIL)."""
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"killed by {name}"
    if result is not TestResult.ERROR:
        return ""
    if exit_code == 126:
        return "exit 126: the test's command could not be executed"
    if exit_code == 127:
        return "exit 127: the test's command was not found"
    return f"exit {exit_code}: the test harness crashed (128+N means killed by signal N)"
