"""Report renderers: every format renders the plain session document, safely.

The documents are built here by hand, as the session runner would store them, so these
tests depend on nothing but `refute.reports` and the contract in docs/report.md.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refute.errors import ConfigError
from refute.reports import (
    CHECKOUT_NOTE,
    DIFFERENT_NOTE,
    FORMATS,
    REPORT_JSON_SCHEMA,
    UNRELIABLE_NOTE,
    render,
    render_text,
)
from reportdocs import (
    SESSION_ID,
    SPEEDUP_1_44,
    XML_FORBIDDEN,
    all_runs,
    counts_of,
    make_document,
    make_run,
    make_unreliable_document,
)

# --- JSON and the schema ---------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(REPORT_JSON_SCHEMA)
    assert REPORT_JSON_SCHEMA["$schema"].endswith("/draft/2020-12/schema")


@pytest.mark.parametrize("factory", [make_document, make_unreliable_document])
def test_json_validates_and_round_trips(factory):
    doc = factory()
    text = render(doc, "json")
    assert json.loads(text) == doc
    jsonschema.validate(json.loads(text), REPORT_JSON_SCHEMA)
    assert "ünïcødé" in text  # ensure_ascii=False


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_json_is_the_document_as_is():
    doc = make_document()
    text = render(doc, "json")
    assert json.loads(text) == doc  # every key and value, unchanged (120 stays 120)
    assert '"timeout": 120,' in text


def test_json_has_one_key_order_whatever_order_the_document_came_in():
    doc = make_document()
    doc["session"]["extra_note"] = "kept"  # a key the models do not know: kept, last
    text = render(doc, "json")
    assert render(_reversed_keys(doc), "json") == text  # byte for byte
    top = list(json.loads(text))
    assert top[:4] == ["schema", "session", "control", "hypotheses"]
    session_keys = list(json.loads(text)["session"])
    assert session_keys[0] == "id"
    assert session_keys[-1] == "extra_note"


def _without(path: list[str | int]) -> dict[str, Any]:
    doc = make_document()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


@pytest.mark.parametrize(
    "path",
    [
        ["summary"],
        ["schema"],
        ["session", "id"],
        ["session", "base", "sha"],
        ["summary", "timing", "wall_seconds"],
        ["summary", "recommendation", "action"],
        ["hypotheses", 0, "verdict"],
        ["hypotheses", 0, "counts", "not_run"],
        ["hypotheses", 1, "runs", 0, "started_at"],
        ["control", "runs", 0, "result"],
    ],
)
def test_a_document_missing_a_required_key_fails_validation(path):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_without(path), REPORT_JSON_SCHEMA)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["schema"], "refute.session/2"),
        (["session", "status"], "done"),
        (["session", "exit_code"], "0"),
        (["hypotheses", 0, "verdict"], "SUPPORTED"),
        (["hypotheses", 0, "confidence"], "high"),
        (["hypotheses", 0, "confidence"], 1.5),
        (["hypotheses", 0, "unreliable"], 0),
        (["hypotheses", 0, "runs", 0, "duration"], "2s"),
        (["hypotheses", 0, "runs", 0, "result"], "crash"),
        (["hypotheses", 0, "runs", 0, "metrics", "slot"], "0"),
        (["control", "verdict"], "yes"),
        (["summary", "survivors"], "token-race"),
        (["summary", "recommendation", "next_steps"], [1]),
    ],
)
def test_a_document_with_a_wrong_type_fails_validation(path, value):
    doc = make_document()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, REPORT_JSON_SCHEMA)


def test_unknown_top_level_keys_fail_but_nested_additions_are_allowed():
    doc = make_document()
    doc["hypotheses"][0]["notes"] = "added later within version 1"
    doc["hypotheses"][0]["runs"][0]["metrics"]["cleanup_seconds"] = 0.01
    jsonschema.validate(doc, REPORT_JSON_SCHEMA)
    doc["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, REPORT_JSON_SCHEMA)


def test_a_document_without_control_validates_and_renders():
    doc = make_document()
    doc["control"] = None
    doc["summary"]["recommendation"] = None
    jsonschema.validate(doc, REPORT_JSON_SCHEMA)
    for fmt in FORMATS:
        assert render(doc, fmt)
    assert "Control: none" in render_text(doc)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_malformed_document_is_a_config_error(fmt):
    doc = make_document()
    doc["hypotheses"][0]["verdict"] = "SUPPORTED"
    with pytest.raises(ConfigError, match=r"document: .*hypotheses\[0\]\.verdict"):
        render(doc, fmt)
    with pytest.raises(ConfigError, match="document: must be a dict"):
        render([], fmt)  # type: ignore[arg-type]


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown report format 'pdf'"):
        render(make_document(), "pdf")


# --- JUnit -----------------------------------------------------------------------------


def parse_junit(doc: dict[str, Any]) -> ET.Element:
    text = render(doc, "junit")
    assert not XML_FORBIDDEN.search(text)
    return ET.fromstring(text.encode("utf-8"))  # noqa: S314 - our own output


def test_junit_has_one_testcase_per_hypothesis_with_the_mapping():
    doc = make_document()
    root = parse_junit(doc)
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == f"refute: {doc['session']['bug']}"
    cases = suite.findall("testcase")
    # Step 4: the control is a testcase, and the classname is the bug's, not the session's.
    assert [case.get("name") for case in cases] == ["control"] + [
        h["id"] for h in doc["hypotheses"]
    ]
    assert {case.get("classname") for case in cases} == {
        "refute.auth-service-randomly-rejects-valid-sessions-unicde"
    }
    properties = {prop.get("name"): prop.get("value") for prop in suite.iter("property")}
    assert properties["session"] == SESSION_ID
    by_name = {case.get("name"): case for case in cases}

    supported = by_name["token-race"]
    failure = supported.find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("supported: ")
    assert float(supported.get("time", "")) == pytest.approx(2.0)

    falsified = by_name["cache-stale"]
    assert [child.tag for child in falsified if child.tag not in {"system-out", "system-err"}] == []

    inconclusive = by_name["clock-skew"]
    skipped = inconclusive.find("skipped")
    assert skipped is not None
    assert skipped.get("message", "").startswith("inconclusive: ")
    assert inconclusive.find("error") is None

    flaky = by_name["retry-storm"]
    flaky_failure = flaky.find("failure")
    assert flaky_failure is not None
    assert flaky_failure.get("message", "").startswith("flaky: ")
    assert float(flaky.get("time", "")) == pytest.approx(1.5)

    # junit-10.xsd allows `skipped` on the suite only; the control (reproduced) passes.
    expected = {"tests": "5", "failures": "2", "errors": "0"}
    for element in (root, suite):
        assert {key: element.get(key) for key in expected} == expected
    assert suite.get("skipped") == "1"
    assert root.get("skipped") is None
    assert float(suite.get("time", "")) == pytest.approx(1.0 + 2.0 + 1.5 + 0.2 + 1.5)


def test_junit_inconclusive_by_timeout_is_an_error_and_pending_is_skipped():
    doc = make_document()
    clock = doc["hypotheses"][2]
    clock["runs"] = [make_run("clock-skew", "timeout", slot=0, start=2.0, duration=120.0)]
    clock["counts"] = counts_of(clock["runs"])
    doc["hypotheses"][1].update(verdict="pending", runs=[], counts=counts_of([]), runs_total=0)
    by_name = {case.get("name"): case for case in parse_junit(doc).iter("testcase")}
    error = by_name["clock-skew"].find("error")
    assert error is not None
    assert error.get("message", "").startswith("inconclusive: ")
    assert by_name["cache-stale"].find("skipped") is not None
    suite = parse_junit(doc).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("2", "1", "1")


def test_junit_outputs_are_cleaned_and_present():
    root = parse_junit(make_document())
    case = next(c for c in root.iter("testcase") if c.get("name") == "token-race")
    err = case.findtext("system-err") or ""
    assert "<script>alert('x')</script> & a|b `tick`" in err  # escaped by XML, intact as text
    assert "\x00" not in err
    assert "\x1b" not in err
    assert "red" in err
    assert "ünïcødé ✓" in err
    assert "collected 1 item" in (case.findtext("system-out") or "")
    suite_out = root.find("testsuite/system-out")
    assert suite_out is None or "control" in (suite_out.text or "")


def test_junit_marks_unreliable_verdicts():
    root = parse_junit(make_unreliable_document())
    failure = next(c for c in root.iter("testcase") if c.get("name") == "token-race").find(
        "failure"
    )
    assert failure is not None
    assert UNRELIABLE_NOTE in failure.get("message", "")


# --- HTML ------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source", "area", "base"}


class StrictParser(HTMLParser):
    """Records tags and attributes and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(doc: dict[str, Any]) -> tuple[str, StrictParser]:
    page = render(doc, "html")
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return page, parser


def boxes(parser: StrictParser) -> list[dict[str, str | None]]:
    return [
        attrs
        for tag, attrs in parser.starts
        if tag == "div" and "run" in (attrs.get("class") or "").split()
    ]


def test_html_parses_and_has_one_lane_per_slot_and_a_box_per_run():
    doc = make_document()
    page, parser = parse_html(doc)
    assert page.startswith("<!DOCTYPE html>")
    lanes = [attrs for tag, attrs in parser.starts if attrs.get("class") == "lane"]
    slots = {run["metrics"].get("slot") for run in all_runs(doc)} - {None}
    assert sorted(lane["data-slot"] for lane in lanes) == sorted(str(s) for s in slots)
    placed = [run for run in all_runs(doc) if run["metrics"].get("slot") is not None]
    found = boxes(parser)
    assert len(found) == len(placed)
    labels = {box["data-run"] for box in found}
    ids = {box["id"] for box in found}
    for run in placed:
        label = f"{run['hypothesis_id']} #{run['metrics']['attempt']}"
        assert label in labels
        assert f"run-{run['hypothesis_id']}-{run['metrics']['attempt']}" in ids
        # The visible label puts the attempt first, so a narrow box still shows it.
        attempt = run["metrics"]["attempt"]
        assert f'<span class="att">#{attempt}</span> {run["hypothesis_id"]}</div>' in page
    assert "run-control-1" in ids
    for box in found:
        style = box["style"] or ""
        left, width = (float(x) for x in re.findall(r"(?:left|width):([0-9.]+)%", style))
        assert 0 <= left <= 100
        assert 0 <= width <= 100 - left + 1e-9
        assert "o-" in (box["class"] or "")
        assert box["title"]
    # The earliest run starts at 0 %, the one that ends last reaches 100 %.
    spans = [
        tuple(float(x) for x in re.findall(r"(?:left|width):([0-9.]+)%", b["style"] or ""))
        for b in found
    ]
    assert min(left for left, _ in spans) == 0
    assert max(left + width for left, width in spans) == pytest.approx(100, abs=0.01)


def test_html_lists_runs_without_a_slot_separately():
    _, parser = parse_html(make_document())
    text = "".join(parser.text)
    assert "Runs without a slot" in text
    assert "clock-skew #2: not run" in text


def test_html_has_no_external_references():
    page, parser = parse_html(make_document())
    references = [
        value or ""
        for _, attrs in parser.starts
        for name, value in attrs.items()
        if name in {"src", "href", "action", "srcset", "poster", "data"}
    ]
    assert references  # the table links to each hypothesis' section
    for ref in references:
        assert ref.startswith("#"), ref
        assert "//" not in ref
    assert "http://" not in page
    assert "https://" not in page
    assert "url(" not in page
    assert "@import" not in page


def test_html_escapes_output():
    page, parser = parse_html(make_document())
    tags = {tag for tag, _ in parser.starts}
    assert "script" not in tags
    assert "b" not in tags  # from the description "<b>"
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "\x00" not in page
    assert "\x1b" not in page
    assert "ünïcødé ✓" in page


def test_html_marks_unreliable_verdicts():
    page, _ = parse_html(make_unreliable_document())
    assert page.count(UNRELIABLE_NOTE) >= 1 + 4  # the banner and every verdict


# --- Markdown --------------------------------------------------------------------------


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_table_escapes_pipes_and_backticks():
    doc = make_document()
    text = render(doc, "markdown")
    assert text.startswith(f"## refute: {doc['session']['bug']}")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(doc["hypotheses"])  # header + one per hypothesis
    for row in rows:
        assert unescaped_pipes(row) == 8, row  # 7 columns
    token = next(row for row in rows if "token-race" in row)
    assert r"Token expiry \| races with \`refresh\` &amp; &lt;b&gt;" in token
    assert "**supported**" in token


def test_markdown_has_recommendation_timing_and_details():
    doc = make_document()
    text = render(doc, "markdown")
    assert doc["summary"]["recommendation"]["message"] in text
    assert "**Timing:** wall 4.30s" in text
    assert text.count("<details>") == text.count("</details>") == 1 + len(doc["hypotheses"])
    assert r"the test failed \| exit \`1\`" in text
    assert "<script>" in text  # only inside a fenced block of stderr lines
    for line in text.splitlines():
        if "<script>" in line:
            assert line.startswith("AssertionError:"), line
    assert "\x00" not in text
    assert "\x1b" not in text


def test_markdown_fence_outlasts_backticks_in_output():
    doc = make_document()
    doc["hypotheses"][0]["runs"][0]["stderr"] = "before\n````\nafter\n"
    text = render(doc, "markdown")
    assert "`````text" in text


def test_markdown_marks_unreliable_verdicts():
    text = render(make_unreliable_document(), "markdown")
    assert "unreliable: control did not reproduce" in text
    assert "did NOT reproduce" in text


# --- text ------------------------------------------------------------------------------


def test_text_has_ids_recommendation_timing_and_every_log_path():
    doc = make_document()
    # Every log path with verbose=True (see test_report_text.py for the default listing);
    # prose wraps at word boundaries, so the sentences are read with the lines joined.
    text = " ".join(render_text(doc, verbose=True).split())
    for hyp in doc["hypotheses"]:
        assert hyp["id"] in text
    recommendation = doc["summary"]["recommendation"]
    assert recommendation["message"] in text
    for step in recommendation["next_steps"]:
        assert step["text"] in text
    assert "wall 4.30s" in text
    assert "sum of run time 6.20s" in text
    assert f"sum of run time 6.20s; {SPEEDUP_1_44}" in text
    for run in all_runs(doc):
        for key in ("stdout_log", "stderr_log"):
            if run[key]:
                assert run[key] in text
    assert "SUPPORTED" in text
    assert "1/3 pass, 2/3 fail" in text
    assert "Control: reproduced" in text
    assert UNRELIABLE_NOTE not in text


def test_text_is_plain_without_color_and_styled_with_it():
    doc = make_document()
    doc["session"]["bug"] = "bug with \x1b[31mescape\x1b[0m and \x00 and [bold]markup[/bold]"
    plain = render(doc, "text")
    assert "\x1b" not in plain
    assert "\x00" not in plain
    assert "[bold]markup[/bold]" in plain  # not interpreted as rich markup
    colored = render_text(doc, color=True)
    assert "\x1b[" in colored


def test_text_honours_width():
    text = render_text(make_document(), width=80)
    table_lines = [line for line in text.splitlines() if "token-race" in line][:1]
    assert table_lines
    assert all(len(line) <= 80 for line in table_lines)


def test_text_marks_unreliable_verdicts():
    text = render_text(make_unreliable_document())
    assert UNRELIABLE_NOTE in text  # the banner
    assert text.count("(unreliable)") >= 4  # every verdict
    assert "did NOT reproduce" in text


# --- every format ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_running_session(fmt):
    doc = make_document()
    doc["session"].update(status="running", finished_at=None)
    for hyp in doc["hypotheses"][2:]:
        hyp.update(verdict="pending", runs=[], counts=counts_of([]), runs_total=0, runs_valid=0)
    jsonschema.validate(doc, REPORT_JSON_SCHEMA)
    assert render(copy.deepcopy(doc), fmt)


ANALYSIS_FIELDS = (
    "verdict",
    "confidence",
    "unreliable",
    "reason",
    "counts",
    "runs_total",
    "runs_valid",
    "reproduction_rate",
    "wilson_95",
    "unreliable_reasons",
    "names_checkout",
    "failed_differently",
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_stored_document_before_analysis(fmt):
    # What the store holds while a session runs: no summary, no verdict fields yet.
    doc = make_document()
    doc["session"].update(status="running", finished_at=None, exit_code=None)
    doc["summary"] = None
    doc["control"] = {"test": ["pytest"], "verdict": "pending", "runs": []}
    for hyp in doc["hypotheses"]:
        for key in ANALYSIS_FIELDS:
            del hyp[key]
    assert render(doc, fmt)
    if fmt == "text":
        assert "PENDING" in render(doc, fmt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])
        | st.sampled_from("\x00\x1b<&|`"),
        max_size=200,
    )
)
def test_any_output_is_safe_in_every_format(text):
    doc = make_document()
    hyp = doc["hypotheses"][0]
    hyp["description"] = text
    hyp["reason"] = text
    hyp["runs"][0].update(stdout=text, stderr=text, error_message=text)
    doc["session"]["bug"] = text
    assert json.loads(render(doc, "json")) == doc
    junit = render(doc, "junit")
    assert not XML_FORBIDDEN.search(junit)
    ET.fromstring(junit.encode("utf-8"))  # noqa: S314 - our own output
    parser = StrictParser()
    parser.feed(render(doc, "html"))
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    assert {tag for tag, _ in parser.starts} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table",
        "thead", "tbody", "tr", "th", "td", "a", "span", "div", "ol", "li", "ul", "i",
        "section", "details", "summary", "pre", "code", "br", "strong",
    }  # fmt: skip
    for fmt in ("text", "markdown"):
        rendered = render(doc, fmt)
        assert "\x1b" not in rendered
        assert "\x00" not in rendered


# --- the timing estimate, the control's rate, and the caveats, in every format ------------

REPO = "/home/u/proj"
CHECKOUT_SENTENCE = (
    "run 2's output names /home/u/proj/src/calc.py, inside your checkout (not its worktree):"
    " it may have used your checkout's code"
)
DIFFERENT_SENTENCE = (
    "it failed on tests/x.py::test_a, the control on tests/x.py::test_b: maybe a different failure"
)
TEXT_FORMATS = ("text", "markdown", "junit", "html")


def shown(doc: dict[str, Any], fmt: str) -> str:
    """What a reader of `fmt` sees: text, Markdown unescaped, XML and HTML as parsed text."""
    rendered = render(doc, fmt)
    if fmt == "text":  # prose wraps at word boundaries: a sentence reads across its lines
        return " ".join(rendered.split())
    if fmt == "markdown":
        return re.sub(r"\\(.)", r"\1", rendered)
    if fmt == "junit":
        root = ET.fromstring(rendered.encode("utf-8"))  # noqa: S314 - our own output
        parts = [value for element in root.iter() for value in element.attrib.values()]
        return "\n".join(parts + [text for text in root.itertext() if text.strip()])
    if fmt == "html":
        parser = StrictParser()
        parser.feed(rendered)
        parser.close()
        titles = [attrs.get("title") or "" for _, attrs in parser.starts]
        return "".join(parser.text) + "\n".join(titles)
    return rendered


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_labels_the_speedup_an_estimate(fmt):
    doc = make_document()
    assert SPEEDUP_1_44 in shown(doc, fmt)
    doc["summary"]["timing"].update(wall_seconds=8.0, speedup=0.78)
    assert (
        "no faster than running them one after another (about 0.8x; an estimate: the sum of"
        " run times)"
    ) in shown(doc, fmt)
    doc["summary"]["timing"].update(wall_seconds=None, speedup=None)
    assert "no speedup estimate (no wall time)" in shown(doc, fmt)


def test_the_json_keeps_the_speedup_key():
    doc = json.loads(render(make_document(), "json"))
    assert doc["summary"]["timing"]["speedup"] == 1.44


def intermittent_control_document() -> dict[str, Any]:
    """A control that failed 1 of 3 valid runs: it reproduces, at a rate of 1/3."""
    doc = make_document()
    runs = [
        make_run("control", "fail", slot=0, start=0.0),
        make_run("control", "pass", attempt=2, slot=1, start=0.0),
        make_run("control", "pass", attempt=3, slot=0, start=1.0),
    ]
    doc["control"].update(
        runs=runs,
        counts=counts_of(runs),
        reproduction_rate=0.3333,
        wilson_95=[0.0615, 0.7923],
        reason="the control failed (bug reproduced) in 1 of 3 valid runs on the unmodified base",
    )
    return doc


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_shows_the_controls_reproduction_rate_and_interval(fmt):
    text = shown(intermittent_control_document(), fmt)
    assert (
        "reproduced the bug on the unmodified base, reproduction rate 33% of valid runs"
        " (95 % Wilson interval 6%-79%) [2/3 pass, 1/3 fail]"
    ) in text
    assert UNRELIABLE_NOTE not in text


def test_the_json_has_the_controls_rate_and_interval():
    doc = intermittent_control_document()
    out = json.loads(render(doc, "json"))
    jsonschema.validate(out, REPORT_JSON_SCHEMA)
    assert out["control"]["reproduction_rate"] == 0.3333
    assert out["control"]["wilson_95"] == [0.0615, 0.7923]


def test_a_control_without_the_rate_fields_renders_as_before():
    doc = make_document()
    for key in ("reproduction_rate", "wilson_95"):
        del doc["control"][key]
    jsonschema.validate(doc, REPORT_JSON_SCHEMA)  # an older version-1 report
    assert "reproduced the bug on the unmodified base [1/1 fail]" in render_text(doc)


def checkout_document() -> dict[str, Any]:
    """cache-stale (falsified) had a run that named the user's checkout; the control
    reproduced, so only that hypothesis is unreliable."""
    doc = make_document()
    doc["session"]["repo"] = REPO
    cache = doc["hypotheses"][1]
    cache.update(
        unreliable=True,
        names_checkout=True,
        unreliable_reasons=[CHECKOUT_SENTENCE],
        reason="the test passed (bug not reproduced) in 1 of 1 valid runs;"
        f" unreliable: {CHECKOUT_SENTENCE}",
    )
    cache["runs"][0]["stderr"] = '  File "/home/u/proj/src/calc.py", line 3\n'
    return doc


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_shows_a_run_that_named_the_checkout(fmt):
    doc = checkout_document()
    text = shown(doc, fmt)
    assert CHECKOUT_SENTENCE in text
    if fmt == "text":
        assert "FALSIFIED (unreliable)" in text
    elif fmt == "junit":  # a falsified testcase has no element: the suite's property says it
        assert f"cache-stale is unreliable: {CHECKOUT_SENTENCE}" in text
    else:
        assert CHECKOUT_NOTE in text
    # The control reproduced: no banner says otherwise, no other verdict is marked.
    assert UNRELIABLE_NOTE not in text
    assert "did NOT reproduce" not in text


def test_text_lists_the_checkout_caveat_under_the_table():
    text = render_text(checkout_document(), width=200)
    assert f"!! cache-stale is unreliable: {CHECKOUT_SENTENCE}" in text
    assert text.count("(unreliable)") == 1


def test_junit_carries_the_caveat_of_a_falsified_testcase_in_its_properties():
    root = parse_junit(checkout_document())
    properties = {prop.get("name"): prop.get("value") for prop in root.iter("property")}
    assert properties["unreliable"] == f"cache-stale is unreliable: {CHECKOUT_SENTENCE}"
    case = next(c for c in root.iter("testcase") if c.get("name") == "cache-stale")
    assert case.find("failure") is None  # falsified keeps its mapping


def test_markdown_and_html_mark_only_the_hypothesis_that_named_the_checkout():
    doc = checkout_document()
    markdown = render(doc, "markdown")
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    marked = [row for row in rows if CHECKOUT_NOTE in row]
    assert len(marked) == 1
    assert "cache-stale" in marked[0]
    page, _ = parse_html(doc)
    assert page.count(CHECKOUT_NOTE) == 2  # the table and the hypothesis' section


def test_json_has_the_checkout_fields():
    out = json.loads(render(checkout_document(), "json"))
    jsonschema.validate(out, REPORT_JSON_SCHEMA)
    cache = out["hypotheses"][1]
    assert cache["unreliable"] is True
    assert cache["names_checkout"] is True
    assert cache["unreliable_reasons"] == [CHECKOUT_SENTENCE]


def test_a_failed_control_and_a_named_checkout_show_both_notes():
    doc = make_unreliable_document()
    cache = doc["hypotheses"][1]
    cache.update(names_checkout=True)
    cache["unreliable_reasons"].append(CHECKOUT_SENTENCE)
    for fmt in TEXT_FORMATS:
        text = shown(doc, fmt)
        assert UNRELIABLE_NOTE in text
        assert CHECKOUT_SENTENCE in text, fmt


def different_document() -> dict[str, Any]:
    """token-race (supported) failed on another test than the control."""
    doc = make_document()
    token = doc["hypotheses"][0]
    token.update(
        failed_differently=True,
        reason=f"the test failed (bug reproduced) in 1 of 1 valid runs; {DIFFERENT_SENTENCE}",
    )
    token["runs"][0]["metrics"]["failing_tests"] = ["tests/x.py::test_a"]
    doc["control"]["runs"][0]["metrics"]["failing_tests"] = ["tests/x.py::test_b"]
    return doc


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_flags_a_different_failure(fmt):
    text = shown(different_document(), fmt)
    assert DIFFERENT_SENTENCE in text
    assert DIFFERENT_NOTE in text
    assert UNRELIABLE_NOTE not in text
    assert CHECKOUT_NOTE not in text
    assert "(unreliable)" not in text


def test_a_different_failure_keeps_its_verdict_in_junit_and_says_so():
    root = parse_junit(different_document())
    case = next(c for c in root.iter("testcase") if c.get("name") == "token-race")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "supported"
    assert failure.get("message", "").endswith(f"{DIFFERENT_SENTENCE} [{DIFFERENT_NOTE}]")


def test_json_has_the_failed_differently_flag():
    out = json.loads(render(different_document(), "json"))
    jsonschema.validate(out, REPORT_JSON_SCHEMA)
    assert out["hypotheses"][0]["failed_differently"] is True
    assert out["hypotheses"][1]["failed_differently"] is False
