"""The Markdown report as a pull-request comment (issue 10, points 14, 1 and 4): no local
absolute paths, commands in code spans, the last lines of stdout and of stderr, repeated
output shown once, each hypothesis' reading and patch source, and never more than GitHub's
65,536 characters.

Code spans are checked with a CommonMark parser (markdown-it-py, which rich depends on):
what a reader copies is what the parser sees, not what this module meant to write.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from markdown_it import MarkdownIt

from refute.reports import render
from reportdocs import (
    LOG_DIR,
    SESSION_ID,
    counts_of,
    make_document,
    make_hypothesis,
    make_run,
    make_unreliable_document,
)

LIMIT = 65_536
WORKTREE = "/cache/refute/worktrees/abc"


def markdown(doc: dict[str, Any]) -> str:
    return render(doc, "markdown")


def code_spans(text: str) -> list[str]:
    """The content of every inline code span, as CommonMark reads it."""
    parser = MarkdownIt("commonmark").enable("table")
    spans = []
    for token in parser.parse(text):
        spans += [child.content for child in token.children or [] if child.type == "code_inline"]
    return spans


def fences(text: str) -> list[str]:
    """The content of every fenced code block."""
    parser = MarkdownIt("commonmark").enable("table")
    return [token.content for token in parser.parse(text) if token.type == "fence"]


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def set_runs(hyp: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    hyp.update(runs=runs, counts=counts_of(runs), runs_total=len(runs), repeat=len(runs))


# --- no local paths -------------------------------------------------------------------------


def setup_failure_document() -> dict[str, Any]:
    """cache-stale's setup failed: its message names the setup log by its full path, and
    pytest's header on stdout names the worktree."""
    doc = make_document()
    cache = doc["hypotheses"][1]
    run = make_run(
        "cache-stale",
        "error",
        slot=1,
        start=1.2,
        exit_code=1,
        stdout=f"rootdir: {WORKTREE}/cache-stale\ncollected 0 items\n",
        message=f"setup failed: exit 1: no pip; log: {LOG_DIR}/cache-stale.setup.stderr.log",
    )
    run["metrics"]["setup"] = {
        "ok": False,
        "cached": False,
        "seconds": 0.5,
        "logs": [
            f"{LOG_DIR}/cache-stale.setup.stdout.log",
            f"{LOG_DIR}/cache-stale.setup.stderr.log",
        ],
    }
    set_runs(cache, [run])
    cache.update(
        verdict="inconclusive", reason=f"setup failed; see {LOG_DIR}/cache-stale.setup.stderr.log"
    )
    return doc


def test_no_local_absolute_path_but_logs_by_their_file_names():
    text = markdown(setup_failure_document())
    assert "/state/" not in text
    assert "/cache/" not in text
    assert not re.search(r"(?<![\w.`<])/(?:state|cache|abs)/", text)
    spans = code_spans(text)
    for name in (
        "token-race.run1.stdout",
        "token-race.run1.stderr",
        "control.run1.stderr",
        "cache-stale.setup.stdout.log",
        "cache-stale.setup.stderr.log",
    ):
        assert name in spans, name
    assert "log: cache-stale.setup.stderr.log" in text  # the message, its path shortened
    assert any(block.startswith("rootdir: <worktree>\n") for block in fences(text))


def test_the_markdown_says_where_the_logs_are():
    text = markdown(make_document())
    assert f"Logs are named by file below; `refute show {SESSION_ID}`" in text


# --- code spans -----------------------------------------------------------------------------


def test_commands_are_code_spans_even_with_backticks():
    doc = make_document()
    doc["hypotheses"][0]["test"] = ["sh", "-c", "echo `date` | tee x"]
    doc["hypotheses"][1]["test"] = "`which pytest` -x"  # a shell line starting with a backtick
    text = markdown(doc)
    spans = code_spans(text)
    assert "sh -c 'echo `date` | tee x'" in spans
    assert "`which pytest` -x" in spans
    assert "``sh -c 'echo `date` | tee x'``" in text
    assert "`` `which pytest` -x ``" in text
    assert "pytest -x tests/test_session.py" in spans  # the control's command


def test_next_steps_show_their_commands_as_code_spans():
    doc = make_document()
    doc["session"]["status"] = "interrupted"
    doc["summary"]["recommendation"] = {
        "action": "resume",
        "message": "The session was interrupted",
        "next_steps": [
            {
                "action": "resume",
                "command": f"refute resume {SESSION_ID}",
                "text": "resume the session",
            }
        ],
    }
    text = markdown(doc)
    assert f"1. resume the session — `refute resume {SESSION_ID}`" in text.splitlines()
    assert f"refute resume {SESSION_ID}" in code_spans(text)


def test_a_run_with_its_own_command_shows_it():
    doc = make_document()
    run = doc["hypotheses"][0]["runs"][0]
    run["command"] = ["pytest", "-x", "tests/test_token-race.py", "-k", "a b"]
    text = markdown(doc)
    assert "pytest -x tests/test_token-race.py -k 'a b'" in code_spans(text)
    other = markdown(make_document())
    assert "  - command:" not in other  # the same command as the hypothesis': not repeated


# --- output ---------------------------------------------------------------------------------


def test_tails_of_stdout_and_stderr_both_show():
    doc = make_document()
    token = doc["hypotheses"][0]
    token["runs"][0]["stdout"] = (
        "".join(f"line {n}\n" for n in range(40)) + "FAILED tests/x.py::t\n"
    )
    text = markdown(doc)
    blocks = fences(text)
    stdout = next(block for block in blocks if "FAILED tests/x.py::t" in block)
    assert stdout.splitlines()[0] == "line 21"  # the last 20 lines
    assert "Last lines of stdout:" in text
    assert any("AssertionError:" in block for block in blocks)  # stderr too


def retry_document(outputs: list[str]) -> dict[str, Any]:
    doc = make_document()
    retry = doc["hypotheses"][3]
    runs = [
        make_run("retry-storm", "fail", attempt=number, slot=0, start=3.0, stdout=out)
        for number, out in enumerate(outputs, start=1)
    ]
    set_runs(retry, runs)
    return doc


def test_identical_output_of_repeated_runs_shows_once_with_a_count():
    same = "E   assert token.valid\nFAILED tests/test_retry.py::test_retry\n"
    text = markdown(retry_document([same, "1 passed\n", same]))
    assert "**runs 1, 3 (2 runs): same output**" in text
    assert "**run 2**" in text
    assert sum(block == same for block in fences(text)) == 1
    assert text.count("FAILED tests/test_retry.py::test_retry") == 1


def test_runs_with_the_same_last_lines_only_say_so():
    head = "".join(f"noise {n}\n" for n in range(30))
    tail = "".join(f"tail {n}\n" for n in range(20))
    text = markdown(retry_document([head + tail, tail, "other\n"]))
    assert "**runs 1, 2 (2 runs): same last lines**" in text
    assert "same output" not in text


# --- reading, patch source, command ---------------------------------------------------------


def test_a_candidate_fix_shows_reading_patch_source_and_meaning():
    doc = make_document()
    runs = [make_run("fix-lock", "pass", slot=0, start=5.0)]
    fix = make_hypothesis(
        "fix-lock", 5, "supported", runs, reason="the test passed in 1 of 1 valid runs"
    )
    fix.update(supported_if="passes", patch="patches/lock.patch")
    doc["hypotheses"].append(fix)
    text = markdown(doc)
    row = next(line for line in text.splitlines() if line.startswith("| 5 | fix-lock"))
    assert "**supported**<br>the fix works: the reproduction passes with it" in row
    details = text[text.index("<summary>fix-lock: supported</summary>") :]
    assert "- **Reading:** candidate fix: the reproduction passes with the patch" in details
    assert "- **Patch source:** patch patches/lock.patch" in details
    assert "- **Command:** `pytest -x tests/test_fix-lock.py`" in details
    probe = text[text.index("<summary>token-race: supported</summary>") :]
    assert "- **Reading:** probe: the test fails (reproduces the bug)" in probe
    assert "- **Patch source:** none (the unchanged base)" in probe


def test_a_snapshot_base_is_shown():
    doc = make_document()
    doc["session"]["base"].update(sha="b" * 40, snapshot_of="c" * 40, include_uncommitted=True)
    text = markdown(doc)
    assert f"**Base:** `{'b' * 40}`, a snapshot of uncommitted work on top of `{'c' * 40}`" in text
    assert "**Base:**" not in markdown(make_document())


# --- the size of a comment ------------------------------------------------------------------


def huge_document(hypotheses: int, runs: int, output: int) -> dict[str, Any]:
    """`hypotheses` hypotheses of `runs` runs, each run `output` characters of its own
    stdout and stderr (astral characters among them: two UTF-16 units each)."""
    doc = make_document()
    entries = []
    for index in range(hypotheses):
        hid = f"h{index:04d}-{'x' * 50}"
        lines = f"{hid} 😀 output line |`<b>`|\n" * (output // 40)
        made = [
            make_run(
                hid,
                "fail",
                attempt=attempt,
                slot=attempt % 4,
                stdout=f"run {attempt}\n{lines}",
                stderr=f"run {attempt}\n{lines}",
                message="the test failed " * 40,
            )
            for attempt in range(1, runs + 1)
        ]
        entries.append(
            make_hypothesis(
                hid, index + 1, "supported", made, description="a long description " * 300
            )
        )
    doc["hypotheses"] = entries
    return doc


def omitted(text: str) -> int:
    match = re.search(
        r"\*\*… truncated: (\d+) runs omitted.*; see the full report with"
        rf" `refute show {SESSION_ID}`\*\*$",
        text.rstrip("\n").splitlines()[-1],
    )
    assert match is not None, text[-500:]
    return int(match.group(1))


def balanced(text: str) -> None:
    assert text.count("<details>") == text.count("</details>")
    lines = text.splitlines()
    opens = [line for line in lines if line.startswith("<details>")]
    assert len(opens) == text.count("<details>")
    assert len(re.findall(r"^`{3,}text$", text, flags=re.MULTILINE)) == len(fences(text))


def test_a_200_hypothesis_session_with_huge_output_fits_in_one_comment():
    doc = huge_document(200, 3, 200_000)
    text = markdown(doc)
    assert len(text) <= LIMIT
    assert utf16(text) <= LIMIT
    assert 0 < omitted(text) <= 600
    balanced(text)
    # What matters most is kept: the verdicts' start, the recommendation and the timing.
    assert "| 1 | h0000-" in text
    assert "**Recommendation (fix\\_inconclusive):**" in text
    assert "**Timing:** wall 4.30s" in text


def test_a_session_too_big_for_its_table_cuts_rows_and_says_how_many():
    doc = huge_document(2000, 1, 100)
    text = markdown(doc)
    assert utf16(text) <= LIMIT
    rows = [line for line in text.splitlines() if line.startswith("| ") and "h" in line[:12]]
    shown = len(rows) - 1  # the header
    assert 0 < shown < 2000
    assert f"… {2000 - shown} more hypotheses not shown here (truncated, see below)" in text
    assert f"(and {2000 - shown} of 2000 hypotheses from the table)" in text
    assert omitted(text) >= 2000 - shown
    balanced(text)


@pytest.mark.parametrize("doc", [make_document(), make_unreliable_document()])
def test_an_ordinary_session_is_not_truncated(doc):
    text = markdown(doc)
    assert "truncated" not in text
    balanced(text)
    assert text.count("<details>") == 1 + len(doc["hypotheses"])


def test_the_omitted_count_is_the_runs_not_shown():
    """With room for some details only, every run is either shown (its line) or counted."""
    doc = huge_document(40, 3, 20_000)
    text = markdown(doc)
    shown = len(re.findall(r"^- run \d+: fail", text, flags=re.MULTILINE))
    total = sum(len(hyp["runs"]) for hyp in doc["hypotheses"])
    assert shown < total
    assert omitted(text) >= total - shown


def test_one_hypothesis_with_thousands_of_runs_fits_too():
    text = markdown(huge_document(1, 2000, 400))
    assert utf16(text) <= LIMIT
    assert omitted(text) > 0
    balanced(text)
    assert "| 1 | h0000-" in text


def test_without_a_control_the_control_line_says_so_without_a_command():
    doc = make_document()
    doc["control"] = None
    text = markdown(doc)
    line = next(line for line in text.splitlines() if line.startswith("**Control:**"))
    assert line.startswith("**Control:** none (the plan has no control test")
    assert "`" not in line
    assert "<summary>control</summary>" not in text
