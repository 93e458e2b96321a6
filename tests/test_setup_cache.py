"""Setup is cached per warm slot: skipped while the command, the change and the inputs
(lock and manifest files) are unchanged; run again when one of them changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitutil import PY, git, make_repo
from gitutil import isolation_config as _config
from refute.app.isolated import IsolationOptions, run_isolated
from refute.model import FalsificationConfig, Hypothesis, TestResult

# Counts its runs in a kept path (.venv survives a slot's refresh, as a real venv would).
SETUP = [
    PY,
    "-c",
    (
        "import pathlib; p = pathlib.Path('.venv/count'); p.parent.mkdir(exist_ok=True);"
        " p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))"
    ),
]
READ = [PY, "-c", "import pathlib, sys; print(pathlib.Path('.venv/count').read_text())"]


def _config_with_logs(tmp_path: Path) -> FalsificationConfig:
    cfg = _config(concurrency=1)
    cfg.log_dir = tmp_path / "logs"
    return cfg


async def _session(repo: Path, tmp_path: Path, setup: list[str] = SETUP):
    hyp = Hypothesis(id="h", description="", test=READ)
    return await run_isolated(
        repo, [hyp], _config_with_logs(tmp_path), IsolationOptions(setup=setup)
    )


@pytest.mark.asyncio
async def test_a_warm_slot_skips_an_unchanged_setup_and_reruns_a_changed_one(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"pyproject.toml": "[project]\nname='x'\n", "a.py": ""})
    first = await _session(repo, tmp_path)
    [run] = first.results
    assert run.result is TestResult.PASS, run.error_message
    assert run.stdout.strip() == "1"
    assert run.metrics["setup"]["cached"] is False
    assert run.metrics["setup"]["ok"] is True
    assert any(log.endswith("h.setup.stdout.log") for log in run.metrics["setup"]["logs"])

    # Unrelated change: the setup's inputs are the same, the setup is skipped.
    (repo / "a.py").write_text("x = 1\n", encoding="utf-8")
    git(repo, "commit", "-qam", "code change")
    second = await _session(repo, tmp_path)
    [run] = second.results
    assert second.worktrees["h"] == first.worktrees["h"], "the warm slot was not reused"
    assert run.stdout.strip() == "1"
    assert run.metrics["setup"]["cached"] is True

    # An input changed: the setup runs again.
    (repo / "pyproject.toml").write_text("[project]\nname='y'\n", encoding="utf-8")
    git(repo, "commit", "-qam", "dependency change")
    third = await _session(repo, tmp_path)
    [run] = third.results
    assert run.stdout.strip() == "2"
    assert run.metrics["setup"]["cached"] is False

    # A different setup command is a different setup, too.
    fourth = await _session(repo, tmp_path, [*SETUP, "--changed"])
    assert fourth.results[0].stdout.strip() == "3"


@pytest.mark.asyncio
async def test_a_failed_setup_says_where_its_log_is_and_is_not_cached(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    fail = [PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    first = await _session(repo, tmp_path, fail)
    [run] = first.results
    assert run.result is TestResult.ERROR
    assert "setup failed (exit 3" in run.error_message
    assert "boom" in run.error_message
    assert "log: " in run.error_message
    assert "h.setup.stderr.log" in run.error_message
    assert run.metrics["setup"]["ok"] is False
    second = await _session(repo, tmp_path, fail)
    assert second.results[0].metrics["setup"]["cached"] is False  # it ran (and failed) again


@pytest.mark.asyncio
async def test_every_report_shows_the_setup_time_and_its_logs(tmp_path: Path):
    from refute import app, reports  # noqa: PLC0415 - the session's use case and renderers

    repo = make_repo(tmp_path / "repo")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "bug": "b",
                "setup": SETUP,
                "hypotheses": [{"id": "h", "description": "d", "test": READ}],
            }
        ),
        encoding="utf-8",
    )
    first = await app.run_plan(plan, repo=repo)
    timing = first["summary"]["timing"]
    assert timing["setups_cached"] == 0
    assert timing["setup_seconds"] > 0
    # The setup logs of a run that went well are listed with verbose (-v); prose wraps at
    # word boundaries, so the text is read with its lines joined.
    text = " ".join(reports.render(first, "text", verbose=True).split())
    assert ", setup " in text
    assert "setup stdout log:" in text
    assert "setup stderr log:" in text
    for fmt in ("json", "markdown", "junit", "html"):
        assert "setup" in reports.render(first, fmt)
    second = await app.run_plan(plan, repo=repo)
    assert second["summary"]["timing"]["setups_cached"] == 1
    assert "1 cached" in " ".join(reports.render(second, "text").split())
