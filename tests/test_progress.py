"""The live progress (`refute.cli.progress`): the table on a terminal and the plain lines.

`Progress` is driven with the events and results the engine makes (`RunEvent`, and the
results of `refute.engine.results` for runs that failed before starting or never ran); the
table is drawn on a console writing to a string, at times set by a hand-moved clock, and
the plain lines are read from stderr.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from refute.cli.progress import Progress
from refute.cli.progress_rows import Row, clock_text, elapsed_text
from refute.engine import results
from refute.engine.protocol import Job, RunEvent
from refute.model import TestExecutionResult, TestResult

HEADERS = ("hypothesis", "state", "elapsed", "runs", "outcomes")


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def session(
    hypotheses: list[dict[str, Any]], *, control: int | None = 1, setup: str | None = None
) -> dict[str, Any]:
    """The document `created` gets: hypotheses (id, repeat, ...), the control's repeat."""
    settings: dict[str, Any] = {"concurrency": 2}
    if setup:
        settings["setup"] = setup
    return {
        "session": {"id": "20261202T120000-abc123", "settings": settings},
        "hypotheses": [{"runs": [], "repeat": 1, **hyp} for hyp in hypotheses],
        "control": {"repeat": control, "runs": []} if control else None,
    }


def progress(
    doc: dict[str, Any], *, width: int = 100, live: bool = False
) -> tuple[Progress, Clock]:
    clock = Clock()
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    view = Progress(live=live, console=console, clock=clock)
    view.created(doc)
    return view, clock


def draw(view: Progress) -> list[str]:
    """The live view as it is drawn now, line by line."""
    console = view.console
    assert isinstance(console.file, io.StringIO)
    console.file.seek(0)
    console.file.truncate()
    console.print(view.renderable())
    return console.file.getvalue().splitlines()


def table_rows(lines: list[str]) -> dict[str, dict[str, str]]:
    """The table's cells by hypothesis id (first line of each row), cut at the header's
    column positions: a cell that is not under its header is cut wrong and fails."""
    header = next(i for i, line in enumerate(lines) if line.startswith("hypothesis"))
    starts = [lines[header].index(name) for name in HEADERS]
    rows = {}
    for line in lines[header + 2 :]:
        cells = [
            line[start:end].strip()
            for start, end in zip(starts, [*starts[1:], len(line)], strict=True)
        ]
        if cells[0] and cells[1]:  # a folded id's second line has no state
            rows[cells[0]] = dict(zip(HEADERS, cells, strict=True))
    return rows


def column_starts(lines: list[str]) -> list[int]:
    header = next(line for line in lines if line.startswith("hypothesis"))
    # Right-justified columns (elapsed, runs): where the header word ends.
    return [header.index(name) + len(name) for name in HEADERS]


def job(key: str, attempt: int = 1) -> Job:
    return Job(key=key, attempt=attempt)


def outcome(key: str, attempt: int, result: TestResult, duration: float = 1.0) -> RunEvent:
    """A `finished` event of a run whose command ran."""
    ran = TestExecutionResult(
        hypothesis_id=key,
        result=result,
        duration=duration,
        exit_code={TestResult.PASS: 0, TestResult.FAIL: 1}.get(result, -1),
        error_message="timed out after 30s" if result is TestResult.TIMEOUT else "",
        metrics={"attempt": attempt, "confidence": 0.9},
    )
    return RunEvent("finished", key, attempt, 1.0, ran)


def run_once(
    view: Progress, clock: Clock, key: str, attempt: int, result: TestResult, seconds: float
) -> None:
    """One run as the engine reports it: preparing, started, `seconds` later finished."""
    view.event(RunEvent("preparing", key, attempt, 0.0))
    view.event(RunEvent("started", key, attempt, 0.0))
    clock.advance(seconds)
    view.event(outcome(key, attempt, result, seconds))


# -- fixed widths ----------------------------------------------------------------------------


def test_columns_stay_where_they_are_while_the_states_change() -> None:
    doc = session([{"id": "cache-stale", "repeat": 3}, {"id": "a"}, {"id": "patch-breaks"}])
    view, clock = progress(doc)
    drawn = [draw(view)]
    view.event(RunEvent("preparing", "cache-stale", 1, 0.0))
    view.event(RunEvent("started", "cache-stale", 1, 0.1))
    view.event(RunEvent("preparing", "patch-breaks", 1, 0.1))
    drawn.append(draw(view))
    clock.advance(75)
    view.event(outcome("cache-stale", 1, TestResult.FAIL, 75))
    message = "patch fix.diff does not apply: error: corrupt patch at line 3"
    failed = results.error_result(job("patch-breaks"), message, -1)
    view.event(RunEvent("finished", "patch-breaks", 1, 0.2, failed))
    drawn.append(draw(view))
    view.stop(interrupted=True)
    drawn.append(draw(view))

    starts = [column_starts(lines) for lines in drawn]
    assert all(s == starts[0] for s in starts), starts
    # Every row's cells sit under their headers, whatever they say.
    states = [{hid: cells["state"] for hid, cells in table_rows(lines).items()} for lines in drawn]
    assert states == [
        {"cache-stale": "queued", "a": "queued", "patch-breaks": "queued", "control": "queued"},
        {"cache-stale": "running", "a": "queued", "patch-breaks": "preparing", "control": "queued"},
        {"cache-stale": "queued", "a": "queued", "patch-breaks": "error", "control": "queued"},
        {
            "cache-stale": "interrupted",
            "a": "not run",
            "patch-breaks": "error",
            "control": "not run",
        },
    ]


def test_a_long_id_is_shown_whole_at_80_columns() -> None:
    long_id = "the-cache-key-ignores-the-locale-so-a-stale-entry-wins-after-swap"[:64]
    assert len(long_id) == 64
    view, clock = progress(session([{"id": long_id, "repeat": 12}]), width=80)
    run_once(view, clock, long_id, 1, TestResult.PASS, 3)
    lines = draw(view)
    assert max(map(len, lines)) <= 80, lines
    # Folded onto several lines of its column: put together again, it is the whole id.
    start = column_starts(lines)[0] - len("hypothesis")
    state_at = lines[next(i for i, x in enumerate(lines) if x.startswith("hypothesis"))].index(
        "state"
    )
    pieces = [line[start:state_at].strip() for line in lines[3:] if line[start:state_at].strip()]
    assert "".join(pieces[:-1]) == long_id, lines  # the last piece is the control's row
    assert table_rows(lines)[pieces[0]]["runs"] == "1/12"


# -- the session's line ----------------------------------------------------------------------


def test_the_session_line_counts_runs_and_says_eta_only_after_a_run_finished() -> None:
    hypotheses = [{"id": "one"}, {"id": "two"}, {"id": "three"}, {"id": "four"}]
    view, clock = progress(session(hypotheses))  # 5 runs with the control, 2 at once
    view.event(RunEvent("preparing", "control", 1, 0.0))
    view.event(RunEvent("started", "control", 1, 0.0))
    clock.advance(6)
    assert draw(view)[0] == "0/5 runs  0%  elapsed 0:06  ETA -"

    clock.advance(4)
    view.event(outcome("control", 1, TestResult.FAIL, 10))  # one run took 10 s
    view.event(RunEvent("preparing", "one", 1, 10.0))
    view.event(RunEvent("started", "one", 1, 10.0))
    clock.advance(4)
    # 4 runs left at 10 s each, less the 4 s "one" already ran, 2 at once: 18 s.
    assert draw(view)[0] == "1/5 runs  20%  elapsed 0:14  ETA 0:18"


def test_eta_counts_only_the_runs_that_can_go_at_once() -> None:
    view, clock = progress(session([{"id": "last"}], control=1))
    view.concurrency = 4
    run_once(view, clock, "control", 1, TestResult.FAIL, 100)
    view.event(RunEvent("preparing", "last", 1, 100.0))
    clock.advance(30)
    # One run left: it takes a mean run (100 s) less the 30 s it has had, alone.
    assert draw(view)[0] == "1/2 runs  50%  elapsed 2:10  ETA 1:10"
    clock.advance(10)
    view.event(outcome("last", 1, TestResult.PASS, 40))
    assert draw(view)[0] == "2/2 runs  100%  elapsed 2:20  ETA 0:00"


def test_clock_text() -> None:
    shown = [clock_text(s) for s in (0, 42.9, 98, 3723, None)]
    assert shown == ["0:00", "0:42", "1:38", "1:02:03", "-"]
    shown = [elapsed_text(s) for s in (0.42, 59.94, 60, 754, None)]
    assert shown == ["0.4s", "59.9s", "1:00", "12:34", ""]


# -- rows ------------------------------------------------------------------------------------


def test_repeats_show_tallies_in_their_tones() -> None:
    view, clock = progress(session([{"id": "flaky-cache", "repeat": 5}]))
    outcomes = [TestResult.PASS, TestResult.FAIL, TestResult.PASS, TestResult.TIMEOUT]
    for attempt, result in enumerate([*outcomes, TestResult.PASS], 1):
        run_once(view, clock, "flaky-cache", attempt, result, 2)
    cells = table_rows(draw(view))["flaky-cache"]
    assert cells["outcomes"] == "3 pass 1 fail 1 timeout"
    assert cells["runs"] == "5/5"
    assert cells["state"] == "done"
    # A probe (supported_if: fails): a fail speaks for it, a pass against it.
    assert view.rows["flaky-cache"].tallies() == [
        ("3 pass", "ruled_out"),
        ("1 fail", "survives"),
        ("1 timeout", "unclear"),
    ]


def test_a_candidate_fix_passing_is_the_surviving_tone() -> None:
    row = Row(id="fix", total=1, supported_if="passes")
    view, clock = progress(session([{"id": "fix", "supported_if": "passes"}]))
    run_once(view, clock, "fix", 1, TestResult.PASS, 1)
    assert view.rows["fix"].tallies() == [("1 pass", "survives")]
    assert row.tallies() == []  # nothing ran: nothing to count


def test_setup_state_while_the_setup_runs() -> None:
    view, clock = progress(session([{"id": "h"}], setup="make deps"))
    view.event(RunEvent("preparing", "h", 1, 0.0))
    clock.advance(5)
    assert table_rows(draw(view))["h"]["state"] == "setup"
    assert table_rows(draw(view))["h"]["elapsed"] == "5.0s"
    view.event(RunEvent("started", "h", 1, 5.0))
    assert table_rows(draw(view))["h"]["state"] == "running"

    plain, _ = progress(session([{"id": "h"}]))  # no setup: the worktree is being made
    plain.event(RunEvent("preparing", "h", 1, 0.0))
    assert table_rows(draw(plain))["h"]["state"] == "preparing"


def test_elapsed_ticks_while_running_and_freezes_when_done() -> None:
    view, clock = progress(session([{"id": "quick"}, {"id": "slow"}]))
    view.event(RunEvent("preparing", "slow", 1, 0.0))
    view.event(RunEvent("started", "slow", 1, 0.0))
    run_once(view, clock, "quick", 1, TestResult.PASS, 3)
    first = table_rows(draw(view))
    clock.advance(60)
    later = table_rows(draw(view))
    assert (first["quick"]["elapsed"], later["quick"]["elapsed"]) == ("3.0s", "3.0s")
    assert (first["slow"]["elapsed"], later["slow"]["elapsed"]) == ("3.0s", "1:03")
    assert first["control"]["elapsed"] == ""  # never started


def test_ids_are_not_read_as_markup() -> None:
    view, _ = progress(session([{"id": "[bold]x[/bold]"}]))
    assert "[bold]x[/bold]" in table_rows(draw(view))


def test_a_resumed_session_counts_the_runs_it_already_has() -> None:
    done = outcome("h", 1, TestResult.FAIL).result
    assert done is not None
    cut = results.not_run_result(job("h", 2))
    doc = session([{"id": "h", "repeat": 3, "runs": [done.to_dict(), cut.to_dict()]}])
    view, _ = progress(doc)
    cells = table_rows(draw(view))["h"]
    assert (cells["runs"], cells["outcomes"], cells["state"]) == ("1/3", "1 fail", "queued")


# -- Ctrl-C and the end ----------------------------------------------------------------------


def interrupted_session(*, live: bool) -> tuple[Progress, Clock]:
    """Four rows when Ctrl-C comes: one running (the engine already sent its not-run
    result), one in setup, one done, one queued."""
    hypotheses = [{"id": "running"}, {"id": "in-setup"}, {"id": "done"}, {"id": "queued"}]
    view, clock = progress(session(hypotheses, control=None, setup="make"), live=live)
    run_once(view, clock, "done", 1, TestResult.PASS, 2)
    view.event(RunEvent("preparing", "running", 1, 2.0))
    view.event(RunEvent("started", "running", 1, 2.0))
    view.event(RunEvent("preparing", "in-setup", 1, 2.0))
    clock.advance(3)
    view.event(RunEvent("finished", "running", 1, 5.0, results.not_run_result(job("running"))))
    view.event(RunEvent("finished", "queued", 1, 5.0, results.not_run_result(job("queued"))))
    return view, clock


def test_after_ctrl_c_nothing_reads_running_or_queued() -> None:
    view, clock = interrupted_session(live=True)
    view.stop(interrupted=True)
    # The last drawing stays on screen: it is what a terminal keeps after refute exits.
    console = view.console
    assert isinstance(console.file, io.StringIO)
    lines = console.file.getvalue().splitlines()
    cells = table_rows(lines)
    assert {hid: c["state"] for hid, c in cells.items()} == {
        "running": "interrupted",
        "in-setup": "interrupted",
        "done": "done",
        "queued": "not run",
    }
    assert (cells["queued"]["outcomes"], cells["queued"]["elapsed"]) == ("1 not run", "")
    assert cells["running"]["outcomes"] == "1 interrupted"
    assert lines[0] == "1/4 runs  25%  elapsed 0:05  interrupted  1 not run"
    # Frozen: time goes on, the drawing does not change; a second stop changes nothing.
    clock.advance(100)
    view.stop()
    assert table_rows(draw(view)) == cells
    assert draw(view)[0] == lines[0]


def test_a_session_that_ended_otherwise_cancels_what_still_ran() -> None:
    view, _ = interrupted_session(live=False)
    view.stop()  # the session failed: not Ctrl-C
    states = {hid: c["state"] for hid, c in table_rows(draw(view)).items()}
    assert states == {
        "running": "cancelled",
        "in-setup": "cancelled",
        "done": "done",
        "queued": "not run",
    }
    assert "ETA" not in draw(view)[0]


# -- runs that failed before starting ------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("patch fix.diff does not apply: error: corrupt patch", "the patch did not apply"),
        ("setup failed (exit 2: make: *** No rule to make target 'deps')", "the setup failed"),
    ],
)
def test_a_run_that_failed_before_starting_is_an_error(
    message: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    view, _ = progress(session([{"id": "broken", "repeat": 3}]))
    view.event(RunEvent("preparing", "broken", 1, 0.0))
    failed = results.error_result(
        job("broken"), message, -1, failure=results.checkout_failure(message)
    )  # as the engine makes it
    view.event(RunEvent("finished", "broken", 1, 0.4, failed))
    cells = table_rows(draw(view))["broken"]
    # Its other runs still wait, but the row already says it failed and how.
    assert cells["state"] == "error"
    assert cells["outcomes"] == f"1 error: {kind}"
    line = capsys.readouterr().err.splitlines()[-1]
    run = "(run 1/3, exit -1, 0.00s)"
    assert line == f"[   0.40s] finished  broken: error, {kind} {run}: {message}"


# -- plain lines -------------------------------------------------------------------------------


def test_plain_lines_carry_the_run_number(capsys: pytest.CaptureFixture[str]) -> None:
    view, _ = progress(session([{"id": "cache-stale", "repeat": 3}], control=None))
    for attempt, result in ((1, TestResult.PASS), (2, TestResult.TIMEOUT)):
        view.event(RunEvent("preparing", "cache-stale", attempt, 0.5))
        view.event(RunEvent("started", "cache-stale", attempt, 0.5))
        view.event(outcome("cache-stale", attempt, result, 1.2))
    cut = results.not_run_result(job("cache-stale", 3))
    view.event(RunEvent("finished", "cache-stale", 3, 2.0, cut))
    view.stop()
    err = capsys.readouterr().err
    assert "\x1b[" not in err
    assert err.splitlines() == [
        "refute: session 20261202T120000-abc123",
        "[   0.50s] started   cache-stale (run 1/3)",
        "[   1.00s] finished  cache-stale: pass (run 1/3, exit 0, 1.20s)",
        "[   0.50s] started   cache-stale (run 2/3)",
        "[   1.00s] finished  cache-stale: timeout (run 2/3, exit -1, 1.20s): timed out after 30s",
        "[   2.00s] finished  cache-stale: not run (run 3/3)",
    ]


def test_plain_line_of_a_run_stopped_while_it_ran(capsys: pytest.CaptureFixture[str]) -> None:
    interrupted_session(live=False)
    err = capsys.readouterr().err
    assert re.search(
        r"^\[   5.00s\] finished  running: not run \(run 1/1, stopped while it ran\)$",
        err,
        re.MULTILINE,
    ), err


def test_the_live_view_prints_no_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    view, clock = progress(session([{"id": "h"}]), live=True)
    run_once(view, clock, "h", 1, TestResult.PASS, 1)
    view.stop()
    assert capsys.readouterr().err == "refute: session 20261202T120000-abc123\n"
