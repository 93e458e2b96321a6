"""The JUnit report (issue 10, points 13, 1 and 15): valid against Jenkins' junit-10.xsd,
a testcase identity that stays the same from one session of a plan to the next, the control
as a testcase, the selectable mapping of SUPPORTED, and each hypothesis' reading, patch
source and commands where a CI tab (system-out) and a tool (properties) find them.

The documents are written by hand (tests/reportdocs.py); the schema is the test data
file tests/data/junit-10.xsd, read with xmlschema.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from refute.reports import JUNIT_SUPPORTED, render, render_junit
from reportdocs import (
    NASTY,
    SESSION_ID,
    counts_of,
    make_document,
    make_hypothesis,
    make_run,
    make_unreliable_document,
)

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
BUG_CLASS = "refute.auth-service-randomly-rejects-valid-sessions-unicde"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def interrupted_document() -> dict[str, Any]:
    """Ctrl-C during the session: retry-storm never finished (pending, its runs not run)."""
    doc = make_document()
    doc["session"].update(status="interrupted", exit_code=130, finished_at=None)
    retry = doc["hypotheses"][3]
    retry["runs"] = [
        make_run("retry-storm", "skip", attempt=number, not_run=True) for number in (1, 2, 3)
    ]
    retry.update(verdict="pending", confidence=None, counts=counts_of(retry["runs"]))
    doc["summary"]["recommendation"] = {
        "action": "resume",
        "message": "The session was interrupted: 1 hypothesis is not finished",
        "next_steps": [
            {
                "action": "resume",
                "hypothesis": None,
                "command": f"refute resume {SESSION_ID}",
                "text": "resume the session to finish the pending hypotheses",
            }
        ],
    }
    return doc


def no_control_document() -> dict[str, Any]:
    doc = make_document()
    doc["control"] = None
    return doc


def fix_document() -> dict[str, Any]:
    """A candidate fix that works (SUPPORTED), a run that recorded its own command, and a
    session on a snapshot of uncommitted work."""
    doc = make_document()
    runs = [
        make_run("fix-lock", "pass", slot=0, start=5.0),
        make_run("fix-lock", "pass", attempt=2, slot=1, start=5.0),
    ]
    runs[1]["command"] = ["pytest", "-x", "tests/test_lock.py", "-k", "two words"]
    fix = make_hypothesis(
        "fix-lock",
        5,
        "supported",
        runs,
        description="holding the lock fixes it",
        reason="the test passed (bug not reproduced) in 2 of 2 valid runs",
    )
    fix.update(supported_if="passes", patch="patches/lock.patch")
    fix["test"] = ["pytest", "-x", "tests/test_lock.py"]
    doc["hypotheses"].append(fix)
    doc["session"]["base"].update(
        sha="b" * 40, snapshot_of="c" * 40, include_uncommitted=True, snapshot_ref="refs/x"
    )
    return doc


def nasty_document() -> dict[str, Any]:
    doc = make_document()
    doc["session"]["bug"] = NASTY
    doc["hypotheses"][1]["description"] = NASTY
    doc["control"]["runs"][0]["stdout"] = NASTY
    return doc


DOCUMENTS = {
    "complete": make_document,
    "unreliable": make_unreliable_document,
    "interrupted": interrupted_document,
    "no-control": no_control_document,
    "candidate-fix": fix_document,
    "untrusted-text": nasty_document,
}


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))  # noqa: S314 - our own output


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def properties(root: ET.Element) -> dict[str, str]:
    return {prop.get("name", ""): prop.get("value", "") for prop in root.iter("property")}


def outcome(case: ET.Element) -> tuple[str, str] | None:
    """(element, type) of a testcase's result, None when it passed."""
    found = [child for child in case if child.tag in {"failure", "error", "skipped"}]
    assert len(found) <= 1
    return (found[0].tag, found[0].get("type", "")) if found else None


# --- validity -------------------------------------------------------------------------------


def test_the_schema_rejects_what_refute_wrote_before_step_4(schema):
    """The schema can fail: `skipped` on <testsuites> (the one error of Step 3's output),
    a <properties> in a testcase, a testsuite without `errors`."""
    suite = '<testsuite name="s" tests="{n}" failures="0" errors="0">{cases}</testsuite>'
    case = '<testcase name="c"><properties/></testcase>'
    bad = [
        f'<testsuites skipped="0">{suite.format(n=0, cases="")}</testsuites>',
        f"<testsuites>{suite.format(n=1, cases=case)}</testsuites>",
        '<testsuites><testsuite name="s" tests="0" failures="0"/></testsuites>',
    ]
    for text in bad:
        assert not schema.is_valid(text), text
    assert schema.is_valid(
        '<testsuites><testsuite name="s" tests="0" failures="0" errors="0" skipped="0"/>'
        "</testsuites>"
    )


@pytest.mark.parametrize("supported", JUNIT_SUPPORTED)
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_document_is_valid_against_junit_10_xsd(schema, name, supported):
    text = render(DOCUMENTS[name](), "junit", junit_supported=supported)
    errors = [f"{error.path}: {error.reason}" for error in schema.iter_errors(text)]
    assert errors == []


def test_counts_match_the_testcases():
    root = parse(render_junit(interrupted_document()))
    suite = root.find("testsuite")
    assert suite is not None
    results = [outcome(case) for case in suite.iter("testcase")]
    tags = [result[0] if result else "passed" for result in results]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "0")
    assert suite.get("skipped") == "2"  # clock-skew (skips) and retry-storm (pending)
    assert tags.count("failure") == 1
    assert tags.count("skipped") == 2
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "0")


# --- identity -------------------------------------------------------------------------------


def test_classname_comes_from_the_bug_and_is_the_same_in_every_session_of_the_plan():
    first, second = make_document(), make_document()
    second["session"]["id"] = "20261201T090000-77aa00"
    second["session"]["started_at"] = "2026-12-01T09:00:00+00:00"
    identities = []
    for doc in (first, second):
        root = parse(render_junit(doc))
        identities.append(
            [(case.get("classname"), case.get("name")) for case in root.iter("testcase")]
        )
        assert properties(root)["session"] == doc["session"]["id"]
        assert doc["session"]["id"] not in (root.find("testsuite").get("name") or "")
    assert identities[0] == identities[1]
    assert {classname for classname, _ in identities[0]} == {BUG_CLASS}


def test_classname_falls_back_to_the_plan_file_then_to_plan():
    doc = make_document()
    doc["session"].update(bug="", plan_path="/abs/repo/Auth Bug.plan.yaml")
    names = {case.get("classname") for case in parse(render_junit(doc)).iter("testcase")}
    assert names == {"refute.auth-bug-plan"}
    doc["session"].update(plan_path=None)
    names = {case.get("classname") for case in parse(render_junit(doc)).iter("testcase")}
    assert names == {"refute.plan"}


def test_classname_has_no_dot_after_refute_and_is_bounded():
    doc = make_document()
    doc["session"]["bug"] = "v1.2 crashes: " + "very long words " * 20
    (classname,) = {case.get("classname") for case in parse(render_junit(doc)).iter("testcase")}
    assert classname.startswith("refute.v1-2-crashes-very-long-words")
    assert classname.count(".") == 1
    assert len(classname) <= len("refute.") + 60
    assert not classname.endswith("-")


# --- the control ----------------------------------------------------------------------------


def test_a_control_that_reproduced_is_a_passing_testcase_first():
    root = parse(render_junit(make_document()))
    first = next(root.iter("testcase"))
    assert first.get("name") == "control"
    assert first.get("classname") == BUG_CLASS
    assert outcome(first) is None
    assert "$ pytest -x tests/test_session.py" in (first.findtext("system-out") or "")


def test_a_control_that_did_not_reproduce_is_an_error():
    root = parse(render_junit(make_unreliable_document()))
    control = cases(root)["control"]
    assert outcome(control) == ("error", "not_reproduced")
    error = control.find("error")
    assert error is not None
    assert error.get("message", "").startswith("not reproduced: ")
    assert "run 1: pass, exit 0" in (error.text or "")
    assert root.find("testsuite").get("errors") == "1"


def test_a_pending_control_is_skipped_and_no_control_no_testcase():
    doc = make_document()
    doc["control"].update(verdict="pending")
    assert outcome(cases(parse(render_junit(doc)))["control"]) == ("skipped", "pending")
    root = parse(render_junit(no_control_document()))
    assert "control" not in cases(root)
    assert root.find("testsuite").get("tests") == "4"
    assert properties(root)["control"].startswith("none (the plan has no control test")


# --- the mapping of SUPPORTED ---------------------------------------------------------------


def test_default_mapping_supported_fails_falsified_passes():
    by_name = cases(parse(render(make_document(), "junit")))
    assert outcome(by_name["token-race"]) == ("failure", "supported")
    assert outcome(by_name["cache-stale"]) is None
    assert outcome(by_name["retry-storm"]) == ("failure", "flaky")
    assert outcome(by_name["clock-skew"]) == ("skipped", "inconclusive")


def test_pass_mapping_supported_passes_falsified_fails():
    root = parse(render(make_document(), "junit", junit_supported="pass"))
    by_name = cases(root)
    assert outcome(by_name["token-race"]) is None
    assert outcome(by_name["cache-stale"]) == ("failure", "falsified")
    failure = by_name["cache-stale"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("falsified: ")
    # Flaky, inconclusive and the control do not depend on the mapping.
    assert outcome(by_name["retry-storm"]) == ("failure", "flaky")
    assert outcome(by_name["clock-skew"]) == ("skipped", "inconclusive")
    assert outcome(by_name["control"]) is None
    assert properties(root)["junit_supported"] == "pass"
    assert properties(parse(render_junit(make_document())))["junit_supported"] == "failure"


def test_an_unknown_mapping_is_refused():
    with pytest.raises(ValueError, match="supported must be one of"):
        render_junit(make_document(), supported="green")  # type: ignore[arg-type]


# --- reading, patch source, commands, base and snapshot ------------------------------------


def test_a_candidate_fix_shows_its_reading_and_patch_source():
    root = parse(render_junit(fix_document(), supported="pass"))
    fix = cases(root)["fix-lock"]
    out = fix.findtext("system-out") or ""
    assert "reading: candidate fix: the reproduction passes with the patch" in out
    assert "patch source: patch patches/lock.patch" in out
    assert "verdict: supported: the fix works: the reproduction passes with it" in out
    assert "command: pytest -x tests/test_lock.py" in out
    props = properties(root)
    assert props["fix-lock.reading"] == "candidate fix: the reproduction passes with the patch"
    assert props["fix-lock.patch_source"] == "patch patches/lock.patch"
    assert props["token-race.patch_source"] == ""
    assert props["token-race.reading"].startswith("probe: ")
    probe_out = cases(root)["token-race"].findtext("system-out") or ""
    assert "patch source: none (the test runs on the unchanged base)" in probe_out


def test_a_failing_testcase_says_what_its_verdict_means():
    root = parse(render_junit(make_document()))
    failure = cases(root)["token-race"].find("failure")
    assert failure is not None
    assert "supported: the test reproduced the bug: the hypothesis stands" in (failure.text or "")


def test_each_run_has_its_command_in_properties_and_system_out():
    root = parse(render_junit(fix_document()))
    props = properties(root)
    own = "pytest -x tests/test_lock.py -k 'two words'"
    assert props["fix-lock#1.command"] == "pytest -x tests/test_lock.py"  # none recorded
    assert props["fix-lock#2.command"] == own
    assert props["control#1.command"] == "pytest -x tests/test_session.py"
    out = cases(root)["fix-lock"].findtext("system-out") or ""
    second = out.index("--- fix-lock #2: pass")
    assert f"$ {own}" in out[second:]
    assert f"$ {own}" not in out[:second]


def test_base_and_snapshot_are_properties():
    props = properties(parse(render_junit(fix_document())))
    assert props["base_ref"] == "HEAD"
    assert props["base_sha"] == "b" * 40
    assert props["snapshot_of"] == "c" * 40
    assert props["include_uncommitted"] == "true"
    plain = properties(parse(render_junit(make_document())))
    assert plain["base_sha"] == "a" * 40
    assert "snapshot_of" not in plain


def test_next_steps_carry_their_commands():
    props = properties(parse(render_junit(interrupted_document())))
    assert props["recommendation"].startswith("resume: The session was interrupted")
    assert props["next_step.1"] == (
        f"resume the session to finish the pending hypotheses $ refute resume {SESSION_ID}"
    )


def test_untrusted_text_stays_text():
    doc = nasty_document()
    root = parse(render_junit(copy.deepcopy(doc)))
    suite = root.find("testsuite")
    assert suite is not None
    assert "<script>alert('x')</script>" in (suite.get("name") or "")
    out = cases(root)["control"].findtext("system-out") or ""
    assert "\x1b" not in out
    assert "\x00" not in out
    assert "<script>alert('x')</script> & a|b `tick` nul red" in out
