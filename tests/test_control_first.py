"""The control starts first, and a control that does not reproduce the bug stops the rest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitutil import PY, make_repo
from gitutil import isolation_config as _config
from refute.app.isolated import run_isolated
from refute.document import CONTROL_ID
from refute.model import Hypothesis, TestResult

SLEEP_60 = [PY, "-c", "import time; time.sleep(60)"]


def _hyps(control_exit: int, count: int = 3) -> list[Hypothesis]:
    hyps = [Hypothesis(id=f"h{i}", description="", test=SLEEP_60) for i in range(count)]
    control = Hypothesis(
        id=CONTROL_ID, description="", test=[PY, "-c", f"raise SystemExit({control_exit})"]
    )
    return [*hyps, control]  # listed last, as sessions list it


@pytest.mark.asyncio
async def test_a_control_that_passes_stops_every_other_run_at_once(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    start = time.monotonic()
    run = await run_isolated(repo, _hyps(control_exit=0), _config(concurrency=4))
    elapsed = time.monotonic() - start
    assert run.halted
    assert elapsed < 30, f"took {elapsed:.1f}s: the 60 s tests were not stopped"
    by_id = {r.hypothesis_id: r for r in run.results}
    assert by_id[CONTROL_ID].result is TestResult.PASS
    assert all(by_id[f"h{i}"].not_run for i in range(3))


@pytest.mark.asyncio
async def test_without_halt_everything_runs(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    quick = [Hypothesis(id="h0", description="", test=[PY, "-c", "pass"])]
    control = Hypothesis(id=CONTROL_ID, description="", test=[PY, "-c", "pass"])
    run = await run_isolated(repo, [*quick, control], _config(), halt=False)
    assert not run.halted
    assert [r.result for r in run.results] == [TestResult.PASS, TestResult.PASS]


@pytest.mark.asyncio
async def test_the_control_starts_before_any_hypothesis(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    started: list[str] = []

    def on_event(event) -> None:
        if event.kind == "started":
            started.append(event.hypothesis_id)

    hyps = [Hypothesis(id=f"h{i}", description="", test=[PY, "-c", "pass"]) for i in range(3)]
    control = Hypothesis(id=CONTROL_ID, description="", test=[PY, "-c", "raise SystemExit(1)"])
    run = await run_isolated(repo, [*hyps, control], _config(concurrency=1), on_event=on_event)
    assert started[0] == CONTROL_ID
    assert not run.halted  # it reproduced
    assert all(r.result is TestResult.PASS for r in run.results if r.hypothesis_id != CONTROL_ID)


@pytest.mark.asyncio
async def test_a_repeated_control_reproduces_when_one_valid_run_fails(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    counter = tmp_path / "count"
    flaky = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]);"
        " n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1));"
        " raise SystemExit(1 if n == 1 else 0)"
    )
    control = Hypothesis(
        id=CONTROL_ID, description="", test=[PY, "-c", flaky, str(counter)], repeat=3
    )
    hyp = Hypothesis(id="h0", description="", test=[PY, "-c", "pass"])
    run = await run_isolated(repo, [hyp, control], _config(concurrency=1))
    assert not run.halted
    outcomes = sorted(r.result.value for r in run.results if r.hypothesis_id == CONTROL_ID)
    assert outcomes == ["fail", "pass", "pass"]
