"""The text report (issue 10, points 1, 2, 4, 5, 6): what it shows, in which order, and
that nothing is lost in 80 or 60 columns.

The documents are written by hand (tests/reportdocs.py); the expected words are spelled
out here, not read from the code under test.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from refute.reports import render, render_text
from refute.reports._text_layout import command_lines
from reportdocs import (
    LOG_DIR,
    SESSION_ID,
    all_runs,
    counts_of,
    make_document,
    make_hypothesis,
    make_run,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOLD_RED = "\x1b[1;31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
LONG_ID = "connection-pool-exhaustion-under-" + "x" * 31  # 64 characters
assert len(LONG_ID) == 64
LONG_WORDS = (
    "When many concurrent requests arrive the pool hands out connections that were"
    " already closed by the server so authentication rejects perfectly valid sessions"
)


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def joined(text: str) -> str:
    """The text with its line breaks and indents folded into single spaces."""
    return " ".join(text.split())


def line_index(lines: list[str], pattern: str) -> int:
    matches = [number for number, line in enumerate(lines) if re.search(pattern, line)]
    assert matches, pattern
    return matches[0]


def fix_hypothesis(verdict: str = "supported") -> dict[str, Any]:
    """A candidate fix (`supported_if: passes`, a patch) whose one run passed."""
    runs = [make_run("fix-retry", "pass", slot=1, start=1.0, duration=1.0)]
    hyp = make_hypothesis(
        "fix-retry",
        2,
        verdict,
        runs,
        description="Retry the token refresh once",
        reason="the test passed (bug not reproduced) in 1 of 1 valid runs",
    )
    hyp.update(supported_if="passes", patch="fixes/retry.patch", test=["pytest", "-x", "t.py"])
    return hyp


def fix_document() -> dict[str, Any]:
    """A probe that reproduced (SUPPORTED), a candidate fix that works (SUPPORTED) and a
    probe ruled out by a pass (FALSIFIED)."""
    doc = make_document()
    token, cache = doc["hypotheses"][0], doc["hypotheses"][1]
    cache["rank"] = 3
    doc["hypotheses"] = [token, fix_hypothesis(), cache]
    return doc


# --- point 1: the reading, the change and the command of each hypothesis ------------------


def test_a_candidate_fix_says_a_pass_supports_it_and_shows_its_patch_and_command():
    text = render_text(fix_document(), width=100)
    flat = joined(text)
    assert (
        "2. fix-retry: Retry the token refresh once"
        " candidate fix: the reproduction passes with the patch"
        " change: patch fixes/retry.patch"
        " $ pytest -x t.py"
        " SUPPORTED: the fix works: the reproduction passes with it"
        " (the test passed (bug not reproduced) in 1 of 1 valid runs)"
    ) in flat
    assert (
        "1. token-race: Token expiry | races with `refresh` & <b>"
        " probe: the test fails (reproduces the bug) if the hypothesis holds"
        " $ pytest -x tests/test_token-race.py"
        " SUPPORTED: the test reproduced the bug: the hypothesis stands"
    ) in flat
    assert "FALSIFIED: the test did not reproduce the bug: ruled out" in flat
    # In the table, the fix is marked as one under its id; the probes are not.
    lines = lines_of(text)
    row = line_index(lines, r"^2\s+fix-retry\s+SUPPORTED\b")
    assert lines[row + 1].strip() == "(candidate fix)"
    token_row = line_index(lines, r"^1\s+token-race\s+SUPPORTED\b")
    assert "candidate fix" not in lines[token_row + 1]


def test_a_failing_candidate_fix_reads_as_a_fix_that_does_not_work():
    doc = make_document()
    hyp = fix_hypothesis("falsified")
    hyp["runs"] = [make_run("fix-retry", "fail")]
    hyp.update(counts=counts_of(hyp["runs"]), reason="the test failed in 1 of 1 valid runs")
    doc["hypotheses"] = [hyp]
    assert "FALSIFIED: the fix does not work: the bug still reproduces with it" in joined(
        render_text(doc)
    )


# --- point 4: one colour per tone, for the verdict and the runs that speak for it ---------


def test_a_verdict_and_the_runs_that_support_it_share_a_colour():
    text = render_text(fix_document(), color=True, width=100)
    lines = text.split("\n")
    fix = next(line for line in lines if "fix-retry" in line and "SUPPORTED" in line)
    probe = next(line for line in lines if "cache-stale" in line and "FALSIFIED" in line)
    token = next(line for line in lines if "token-race" in line and "SUPPORTED" in line)
    # SUPPORTED is bold red everywhere, and so is a run that supports its hypothesis: a
    # pass of a candidate fix, a fail of a probe. A pass of a probe is green, as FALSIFIED.
    assert f"{BOLD_RED}SUPPORTED" in fix
    assert f"{BOLD_RED}1/1 pass" in fix
    assert f"{BOLD_RED}1/1 fail" in token
    assert f"{GREEN}FALSIFIED" in probe
    assert f"{GREEN}1/1 pass" in probe
    # The details line of each hypothesis colours its verdict the same way.
    details = [line for line in lines if re.search(r"(SUPPORTED|FALSIFIED).*: the ", line)]
    assert all(BOLD_RED in line for line in details if "SUPPORTED" in line)
    assert all(GREEN in line for line in details if "FALSIFIED" in line)
    assert len(details) == 3


def test_a_listed_run_is_coloured_like_the_verdict_it_speaks_for():
    lines = render_text(attention_document(), color=True, width=120).split("\n")
    timeout = next(line for line in lines if "(the run timed out)" in line)
    checkout = next(line for line in lines if "(unreliable: a run named your checkout)" in line)
    assert timeout.startswith(f"  {YELLOW}run 1")  # no evidence: the tone of INCONCLUSIVE
    assert checkout.startswith(f"  {GREEN}run 1")  # a probe's pass: the tone of FALSIFIED


def test_a_seed_test_without_a_command_is_not_shown_as_one():
    doc = make_document()
    doc["hypotheses"][0]["test"] = None
    text = joined(render_text(doc))
    assert "test: (the seed's script .falsification/test_<id>.sh)" in text
    assert "$ (the seed" not in text


def test_plain_text_has_no_escape_codes():
    for doc in (fix_document(), long_document(), attention_document(), interrupted_document()):
        for width in (60, 80, 100):
            assert "\x1b" not in render_text(doc, width=width)


# --- point 5: the summary last, the log listing only for runs that need attention ---------


def test_the_summary_comes_last_in_pytests_order():
    lines = lines_of(render_text(make_document(), width=100))
    order = [
        line_index(lines, r"^Runs that need attention$"),
        line_index(lines, r"^Hypotheses$"),
        line_index(lines, r"^\s*#\s+Hypothesis\s+Verdict"),
        line_index(lines, r"^Control: "),
        line_index(lines, r"^Recommendation \(fix_inconclusive\): "),
        line_index(lines, r"^Timing: "),
    ]
    assert order == sorted(order)
    # The timing paragraph is the end: nothing but its own wrapped lines follow it.
    assert all(line.startswith("  ") for line in lines[order[-1] + 1 :])
    assert "about 1.4x faster" in joined("\n".join(lines[order[-1] :]))


def sixty_run_document() -> dict[str, Any]:
    """20 hypotheses x 3 runs, all a plain pass or fail, and no control: 60 runs."""
    doc = make_document()
    doc["control"] = None
    hypotheses = []
    for number in range(20):
        hid = f"cause-{number:02d}"
        result = "fail" if number == 0 else "pass"
        runs = [make_run(hid, result, attempt=k, slot=k, start=k) for k in (1, 2, 3)]
        verdict = "supported" if number == 0 else "falsified"
        hypotheses.append(make_hypothesis(hid, number + 1, verdict, runs))
    doc["hypotheses"] = hypotheses
    return doc


def test_a_sixty_run_session_of_normal_runs_lists_no_log_path():
    doc = sixty_run_document()
    text = render_text(doc, width=100)
    assert LOG_DIR not in text
    assert " log: " not in text
    flat = joined(text)
    assert (
        f"Runs and logs: none of the 60 runs needs attention; to list them and their logs:"
        f" $ refute show {SESSION_ID} -v"
    ) in flat
    lines = lines_of(text)
    assert lines[-1].startswith(("Timing: ", "  "))
    # The table (20 rows), the control, the recommendation and the timing end the report.
    assert line_index(lines, r"^\s*#\s+Hypothesis\s+Verdict") > len(lines) - 32
    # verbose lists every run and both of its logs.
    verbose = render_text(doc, width=100, verbose=True)
    assert verbose.count(" log: ") == 120
    for run in all_runs(doc):
        assert f"stdout log: {run['stdout_log']}" in verbose
        assert f"stderr log: {run['stderr_log']}" in verbose
    assert "refute show" not in verbose
    assert render(doc, "text", verbose=True) == verbose


def attention_document() -> dict[str, Any]:
    """One run of each kind that needs attention, beside runs that do not."""
    doc = make_document()
    timeout = make_run("slow-io", "timeout", duration=120.0, message="timed out after 120s")
    patch = make_run("bad-patch", "error", exit_code=1, message="patch does not apply: x.diff")
    setup = make_run("no-deps", "error", exit_code=1, message="see the setup log")
    setup["metrics"]["failure"] = "setup"
    fine = make_run("fine", "pass")
    hypotheses = [
        make_hypothesis("slow-io", 5, "inconclusive", [timeout]),
        make_hypothesis("bad-patch", 6, "inconclusive", [patch]),
        make_hypothesis("no-deps", 7, "inconclusive", [setup]),
        make_hypothesis("fine", 8, "falsified", [fine]),
    ]
    doc["hypotheses"][1].update(names_checkout=True, unreliable=True)  # cache-stale
    doc["hypotheses"] += hypotheses
    return doc


def test_only_runs_that_need_attention_are_listed_with_why_and_their_logs():
    doc = attention_document()
    text = render_text(doc, width=120)
    flat = joined(text)
    expected = {
        "slow-io": "run 1 (the run timed out): timeout, exit 124",
        "bad-patch": "run 1 (the patch did not apply): error, exit 1",
        "no-deps": "run 1 (the setup failed): error, exit 1",
        "clock-skew": "run 1 (the test skipped itself, no evidence): skip, exit 125",
        "cache-stale": "run 1 (unreliable: a run named your checkout): pass, exit 0",
    }
    for hid, line in expected.items():
        assert line in flat, hid
        assert f"{LOG_DIR}/{hid}.run1.stdout" in text
        assert f"{LOG_DIR}/{hid}.run1.stderr" in text
    for hid in ("fine", "token-race", "retry-storm", "control"):
        assert f"{LOG_DIR}/{hid}.run" not in text, hid
    # 12 runs: 5 listed, clock-skew's not-run attempt and 6 normal runs are not.
    assert (
        "Not listed: 6 runs with a plain pass or fail and 1 not run; to list every run and its"
        f" logs: $ refute show {SESSION_ID} -v"
    ) in flat
    lines = lines_of(text)
    assert line_index(lines, "^Runs that need attention$") < line_index(lines, r"^#\s+Hyp")


def test_the_runs_of_a_control_that_did_not_reproduce_are_listed():
    doc = make_document()
    doc["control"]["verdict"] = "not_reproduced"
    doc["control"]["runs"] = [make_run("control", "pass")]
    text = render_text(doc, width=120)
    assert "run 1 (the control did not reproduce the bug): pass, exit 0" in joined(text)
    assert f"{LOG_DIR}/control.run1.stdout" in text


# --- point 6: nothing lost at 80 or 60 columns --------------------------------------------


def long_document() -> dict[str, Any]:
    """A 64-character id whose runs have every outcome, long prose everywhere."""
    doc = make_document()
    results = ["pass", "fail", "timeout", "error", "skip"]
    runs = [
        make_run(LONG_ID, result, attempt=k, slot=0, start=k, message=LONG_WORDS)
        for k, result in enumerate(results, start=1)
    ]
    runs.append(make_run(LONG_ID, "skip", attempt=6, not_run=True))
    hyp = make_hypothesis(
        LONG_ID, 1, "inconclusive", runs, description=LONG_WORDS, reason=LONG_WORDS
    )
    hyp["test"] = ["pytest", "-x", "-k", "token and not slow", f"tests/test_{LONG_ID}.py"]
    doc["hypotheses"] = [hyp, *doc["hypotheses"][1:]]
    doc["summary"]["recommendation"]["message"] = LONG_WORDS
    doc["summary"]["recommendation"]["next_steps"] = [
        {"action": "fix_test", "hypothesis": LONG_ID, "command": None, "text": LONG_WORDS}
    ]
    return doc


def column(lines: list[str], header: str, name: str, following: str | None) -> list[str]:
    """The text of column `name` on each line of the table under `header`."""
    start = header.index(name)
    end = header.index(following) if following else None
    return [line[start:end].strip() for line in lines]


@pytest.mark.parametrize("width", [60, 80])
def test_at_narrow_widths_no_line_is_too_long_and_nothing_is_lost(width):
    doc = long_document()
    text = render_text(doc, width=width)
    lines = lines_of(text)
    assert max(len(line) for line in lines) <= width
    # The table: the id folds within its column, the counts break only between counts.
    top = line_index(lines, r"^\s*#\s+Hypothesis\s+Verdict")
    header = lines[top]
    below = lines[top + 2 :]
    row_lines = below[: next(n for n, line in enumerate(below[1:], 1) if line[:1].isdigit())]
    ids = column(row_lines, header, "Hypothesis", "Verdict")
    assert "".join(ids) == LONG_ID
    runs = [cell for cell in column(row_lines, header, "Runs", None) if cell]
    counts = ["1/6 pass", "1/6 fail", "1/6 timeout", "1/6 error", "1/6 skip", "1/6 not run"]
    assert " ".join(runs) == ", ".join(counts)
    assert all(piece.rstrip(",") in counts for cell in runs for piece in cell.split(", "))
    # Prose wraps at word boundaries: every word is whole on some line.
    for word in LONG_WORDS.split():
        assert any(re.search(rf"(^|\s|\(){re.escape(word)}(\s|$|\)|;)", line) for line in lines)
    flat = joined(text)
    assert f"Recommendation (fix_inconclusive): {LONG_WORDS}" in flat
    assert f"1. {LONG_WORDS}" in flat
    assert f"INCONCLUSIVE: no valid run: no evidence either way ({LONG_WORDS})" in flat
    # The 64-character id is longer than a line in the details: folded, not lost.
    assert LONG_ID in "".join(text.split())


@pytest.mark.parametrize("width", [30, 40, 50])
def test_too_narrow_for_the_table_each_hypothesis_is_a_line_and_nothing_is_cut(width):
    text = render_text(long_document(), width=width)
    assert max(len(line) for line in lines_of(text)) <= width
    assert "…" not in text
    assert "Conf." not in text  # no table
    flat = joined(text)
    assert (
        "2. cache-stale: FALSIFIED; confidence 0.60; 1.50s; 1/1 pass"
        " 3. clock-skew: INCONCLUSIVE; confidence 0.00; 0.20s; 1/2 skip, 1/2 not run"
    ) in flat
    row = "".join(flat.split(" 2. cache-stale: FALSIFIED")[0].rsplit(" 1. ", 1)[1].split())
    assert row == (
        f"{LONG_ID}:INCONCLUSIVE;confidence0.60;5.00s;"
        "1/6pass,1/6fail,1/6timeout,1/6error,1/6skip,1/6notrun"
    )


def command_block(lines: list[str], start: int) -> str:
    """The shell text of the `$ ...` command starting at lines[start], as a shell reads
    it: backslash-newline is a line continuation."""
    end = start
    while lines[end].endswith("\\"):
        end += 1
    block = "\n".join(lines[start : end + 1]).replace("\\\n", "")
    return block.strip().removeprefix("$ ")


@pytest.mark.parametrize("width", [60, 80])
def test_a_wrapped_command_pastes_into_a_shell_as_the_same_command(width):
    doc = long_document()
    argv = doc["hypotheses"][0]["test"]
    lines = lines_of(render_text(doc, width=width))
    start = line_index(lines, r"^\s*\$ pytest -x")
    assert lines[start].endswith("\\")  # it did wrap
    assert shlex.split(command_block(lines, start)) == argv


def test_a_command_with_a_long_single_quoted_word_keeps_every_character():
    command = "sh -c 'echo a very long quoted string that goes on and on' && echo done"
    lines = command_lines(command, 30, 2)
    assert max(len(line) for line in lines) <= 30
    assert any(not line.endswith("\\") for line in lines[:-1])  # a fold in the quotes
    # A line ending in " \" ends a word (the next line's indent is not part of the
    # command); any other line is a fold of a word that goes on at the next line's start.
    rebuilt, after_word = "", True
    for line in lines:
        piece = line.lstrip() if after_word else line
        after_word = piece.endswith(" \\")
        rebuilt += piece.removesuffix(" \\") + (" " if after_word else "")
    assert rebuilt == f"$ {command}"


def test_a_wide_terminal_shows_a_long_id_whole():
    lines = lines_of(render_text(long_document(), width=180))
    row = line_index(lines, rf"^1\s+{LONG_ID}\s+INCONCLUSIVE\b")
    assert "1/6 pass, 1/6 fail, 1/6 timeout, 1/6 error, 1/6 skip, 1/6 not run" in lines[row]


# --- point 2 (display): an interrupted session is pending, and says how to resume ---------


def interrupted_document() -> dict[str, Any]:
    doc = make_document()
    doc["session"].update(status="interrupted", exit_code=130, finished_at=None)
    for hyp in doc["hypotheses"][1:]:
        runs = [make_run(hyp["id"], "skip", not_run=True)]
        hyp.update(
            verdict="pending",
            confidence=None,
            runs=runs,
            counts=counts_of(runs),
            runs_total=1,
            runs_valid=0,
            reason="not finished: the session was interrupted",
        )
    doc["summary"]["recommendation"] = {
        "action": "resume",
        "message": "The session was interrupted before every hypothesis was tested",
        "next_steps": [
            {
                "action": "resume",
                "hypothesis": None,
                "command": f"refute resume {SESSION_ID}",
                "text": "resume the session: the runs that did not finish run again",
            }
        ],
    }
    return doc


def test_an_interrupted_session_shows_pending_hypotheses_and_the_resume_command():
    text = render_text(interrupted_document(), width=80)
    lines = lines_of(text)
    for hid in ("cache-stale", "clock-skew", "retry-storm"):
        line_index(lines, rf"^\d+\s+{hid}\s+PENDING\s+-\s+0\.00s\s+1/1 not run$")
    assert "FALSIFIED" not in text
    assert "PENDING: not finished: resume the session" in joined(text)
    rec = line_index(lines, r"^Recommendation \(resume\): The session was interrupted")
    assert lines[rec + 1 :].count(f"     $ refute resume {SESSION_ID}") == 1
    assert "1. resume the session: the runs that did not finish run again" in joined(
        "\n".join(lines[rec:])
    )
    assert lines[line_index(lines, r"^Timing: ") - 1].strip() == f"$ refute resume {SESSION_ID}"


# --- any text, any width: no line too long ------------------------------------------------

ANY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from("\t\n\r\x1b\x00 -'\"\\$漢字"),
    max_size=300,
)

#: Shell words with quotes and backslashes, one of them longer than any line.
WORD = st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Zl", "Zp", "Cc"])
WORD |= st.sampled_from("'\"\\$漢")
COMMAND = st.tuples(
    st.lists(st.text(alphabet=WORD, min_size=1, max_size=30), max_size=4),
    st.text(alphabet=WORD, min_size=150, max_size=300),
).map(lambda parts: " ".join([*parts[0], parts[1]]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=ANY_TEXT, command=COMMAND, width=st.integers(min_value=30, max_value=140))
# Found by this test in CI: a folded quoted word left no room for the next line's " \".
@example(text="", command="0 00000000' 000000000' " + "0" * 150, width=30)
def test_no_line_is_wider_than_the_width_whatever_the_text(text, command, width):
    doc = long_document()
    hyp = doc["hypotheses"][0]
    hyp.update(description=text, reason=text, test=command)
    hyp["shell"] = True
    hyp["runs"][2]["error_message"] = text  # the timeout, which is listed
    doc["session"]["bug"] = text
    doc["summary"]["recommendation"]["message"] = text
    doc["summary"]["recommendation"]["next_steps"] = [
        {"action": "fix_test", "hypothesis": LONG_ID, "command": command, "text": text}
    ]
    for verbose in (False, True):
        rendered = render_text(doc, width=width, verbose=verbose)
        assert "\x1b" not in rendered
        assert max(cell_len(line) for line in lines_of(rendered)) <= width
        assert LONG_ID in "".join(rendered.split())
