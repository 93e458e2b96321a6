"""The JUnit XML format: one testsuite, one testcase per hypothesis and one for the control,
for CI test tabs.

The output is valid against the `junit-10.xsd` Jenkins' xUnit plugin checks reports with
(the strictest common reader): `skipped` only on `<testsuite>`, nothing but `name`, `time`,
`classname` and `group` on a `<testcase>`, and no `<properties>` inside one. So what a
testcase cannot carry as an attribute goes into its `<system-out>` (for the reader of the
CI tab) and into the suite's properties (for tools).
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final, Literal

from refute.document import (
    CONTROL_ID,
    CONTROL_NOT_REPRODUCED,
    CONTROL_REPRODUCED,
    SessionDocument,
)
from refute.reports._common import (
    Row,
    Run,
    RunText,
    bug_text,
    caveat_lines,
    clean_text,
    command_text,
    control_runs,
    control_text,
    hypothesis_rows,
    one_line_text,
    parse,
    recommendation,
    timing_text,
)

__all__ = ["JUNIT_STREAM_LIMIT", "JUNIT_SUPPORTED", "JunitSupported", "render_junit"]

#: Characters of one stream of one run kept in a JUnit system-out/system-err block.
JUNIT_STREAM_LIMIT: Final = 16_000

JunitSupported = Literal["failure", "pass"]
#: How JUnit shows a SUPPORTED hypothesis (`--junit-supported`): as a failing testcase (the
#: default: a CI gate goes red while a hypothesis about the bug's cause stands) or as a
#: passing one (a plan of candidate fixes: the gate is green when a fix works, and a
#: FALSIFIED one, a fix that does not work, is the failure instead).
JUNIT_SUPPORTED: Final[tuple[JunitSupported, ...]] = ("failure", "pass")

#: Characters of the bug's slug in the testcases' `classname`.
_SLUG_LIMIT: Final = 60


def _junit_result(row: Row, supported: JunitSupported) -> tuple[str | None, str]:
    """(element, message) for a hypothesis; element None means the testcase passed."""
    note = "".join(f" [{note}]" for note in row.notes)
    reason = row.reason or row.runs_cell
    message = f"{row.verdict}: {reason}{note}"
    if row.verdict in {"supported", "falsified"}:
        # The one verdict that fails the testcase is the one the mapping names.
        failing = "supported" if supported == "failure" else "falsified"
        return ("failure", message) if row.verdict == failing else (None, "")
    if row.verdict == "flaky":
        return "failure", message
    if row.verdict == "inconclusive":
        invalid = row.counts["timeout"] + row.counts["error"]
        return ("error" if invalid else "skipped"), message
    return "skipped", f"{row.verdict}: {reason or 'not run yet'}{note}"


def _control_result(document: SessionDocument) -> tuple[str | None, str] | None:
    """(element, message) for the control's testcase, or None without a control.

    The control is expected to reproduce the bug: it passes when it did, and one that did
    not is an error (no verdict of the session is evidence then), not a failure."""
    control = document.control
    if control is None or not (control.model_fields_set or control.model_extra):
        return None
    what = control_text(document)
    if control.verdict == CONTROL_REPRODUCED:
        return None, ""
    if control.verdict == CONTROL_NOT_REPRODUCED:
        return "error", f"not reproduced: {clean_text(control.reason) or what}"
    return "skipped", f"pending: {what}"


def _slug(text: str) -> str:
    """Lowercase ASCII words joined by hyphens: no dot, which CI tabs read as a package."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:_SLUG_LIMIT].rstrip("-")


def classname(document: SessionDocument) -> str:
    """Every testcase's `classname`: the same for every session of one plan, so a CI keeps
    each hypothesis' history: "refute." + a slug of the bug description, else of the plan
    file's name, else "refute.plan". Never the session id (new for every session)."""
    session = document.session
    plan = PurePath(clean_text(session.plan_path or "")).stem
    return "refute." + (_slug(clean_text(session.bug)) or _slug(plan) or "plan")


def _bounded(text: str, limit: int = JUNIT_STREAM_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return (
        f"{text[:half]}\n[... refute: {len(text) - limit} characters left out ...]\n{text[-half:]}"
    )


def _streams(runs: Sequence[Run], key: RunText, command: str) -> str:
    blocks = []
    for run in runs:
        text = run.text(key)
        header = f"--- {run.label}: {run.summary()} ---\n"
        if key == "stdout":  # every run's header and command, output or not
            blocks.append(f"{header}$ {run.command(command)}\n")
            if text:
                blocks.append(f"{_bounded(text).rstrip()}\n")
        elif text:
            blocks.append(f"{header}{_bounded(text).rstrip()}\n")
    return "".join(blocks)


#: The JUnit element each stream of a run goes to.
_STREAMS: Final[tuple[tuple[str, RunText], ...]] = (
    ("system-out", "stdout"),
    ("system-err", "stderr"),
)


def _add_streams(parent: ET.Element, runs: Sequence[Run], head: str, command: str) -> None:
    for tag, key in _STREAMS:
        text = (head if key == "stdout" else "") + _streams(runs, key, command)
        if text:
            ET.SubElement(parent, tag).text = text


def _head(row: Row) -> str:
    """What a hypothesis is and how it is tested, at the top of its system-out."""
    lines = [
        f"hypothesis: {row.id}: {row.description}",
        f"verdict: {row.verdict_label}: {row.meaning}",
        f"reading: {row.reading}",
        f"patch source: {row.patch_source or 'none (the test runs on the unchanged base)'}",
        f"command: {row.command}",
    ]
    return "\n".join(lines) + "\n"


def _base_properties(document: SessionDocument) -> list[tuple[str, object]]:
    base = document.session.base
    properties: list[tuple[str, object]] = [("base_ref", base.ref), ("base_sha", base.sha or "")]
    if base.include_uncommitted or base.snapshot_of:
        properties += [
            ("snapshot_of", base.snapshot_of or ""),
            ("include_uncommitted", str(base.include_uncommitted).lower()),
        ]
    return properties


def _properties(
    document: SessionDocument, rows: Sequence[Row], supported: JunitSupported
) -> Iterable[tuple[str, object]]:
    """The suite's properties: the session, then one group per hypothesis and run.

    A hypothesis' names are "<id>.<field>", a run's "<id>#<attempt>.command": ids contain
    no "#", so no two names collide."""
    session = document.session
    action, message, steps = recommendation(document)
    yield from [
        ("session", session.id),
        ("refute_version", document.refute_version or ""),
        ("status", session.status),
        ("exit_code", session.exit_code),
        ("plan", session.plan_path or ""),
        *_base_properties(document),
        ("junit_supported", supported),
        ("control", control_text(document)),
        ("recommendation", f"{action}: {message}"),
    ]
    for number, step in enumerate(steps, start=1):
        yield f"next_step.{number}", step.text + (f" $ {step.command}" if step.command else "")
    yield "timing", timing_text(document)
    # A passing testcase has no element to carry its caveats: the suite's properties do.
    for row in rows:
        for unreliable, line in caveat_lines(row):
            yield ("unreliable" if unreliable else "failed_differently"), line
    control = document.control
    fallback = command_text(control.test) if control is not None else ""
    for run in control_runs(document):
        yield f"{CONTROL_ID}#{run.attempt}.command", run.command(fallback)
    for row in rows:
        yield f"{row.id}.reading", row.reading
        yield f"{row.id}.patch_source", row.patch_source
        yield f"{row.id}.command", row.command
        for run in row.runs:
            yield f"{row.id}#{run.attempt}.command", run.command(row.command)


@dataclass(frozen=True)
class _Case:
    """One testcase: its result (element None: it passed), the text under the result's
    element, and the runs whose output its system-out/system-err hold."""

    name: str
    seconds: float
    element: str | None
    kind: str  # the result element's `type`: the verdict
    message: str
    details: str
    runs: Sequence[Run]
    head: str  # the top of its system-out
    command: str  # the command its runs ran, for runs that did not record their own


def _control_case(document: SessionDocument) -> _Case | None:
    result = _control_result(document)
    if result is None or document.control is None:
        return None
    runs = control_runs(document)
    command = command_text(document.control.test)
    return _Case(
        name=CONTROL_ID,
        seconds=sum(run.duration for run in runs),
        element=result[0],
        kind=document.control.verdict,
        message=result[1],
        details="\n".join(f"run {run.attempt}: {run.summary()}" for run in runs),
        runs=runs,
        head=f"control: {control_text(document)}\ncommand: {command}\n",
        command=command,
    )


def _hypothesis_case(row: Row, supported: JunitSupported) -> _Case:
    element, message = _junit_result(row, supported)
    details = [
        row.description,
        f"{row.verdict}: {row.meaning}",
        *(f"run {run.attempt}: {run.summary()}" for run in row.runs),
    ]
    return _Case(
        name=row.id,
        seconds=row.seconds,
        element=element,
        kind=row.verdict,
        message=message,
        details="\n".join(part for part in details if part),
        runs=row.runs,
        head=_head(row),
        command=row.command,
    )


def render_junit(doc: Mapping[str, Any], *, supported: JunitSupported = "failure") -> str:
    """JUnit XML: the control's testcase, then one per hypothesis (docs/report.md's mapping).

    `supported` ("failure", the default, or "pass") is how a SUPPORTED hypothesis shows;
    see `JUNIT_SUPPORTED`."""
    if supported not in JUNIT_SUPPORTED:
        raise ValueError(f"supported must be one of {JUNIT_SUPPORTED}, got {supported!r}")
    document = parse(doc)
    session = document.session
    rows = hypothesis_rows(document)
    control = _control_case(document)
    cases = ([control] if control is not None else []) + [
        _hypothesis_case(row, supported) for row in rows
    ]
    elements = [case.element for case in cases]
    total_time = f"{sum(case.seconds for case in cases):.3f}"
    counts = {
        "tests": str(len(cases)),
        "failures": str(elements.count("failure")),
        "errors": str(elements.count("error")),
    }
    # junit-10.xsd allows `skipped` on <testsuite> only, not on <testsuites>.
    root = ET.Element("testsuites", {"name": "refute", **counts, "time": total_time})
    suite_attributes = {
        "name": f"refute: {bug_text(document)}",
        **counts,
        "skipped": str(elements.count("skipped")),
        "time": total_time,
    }
    if session.started_at:
        suite_attributes["timestamp"] = clean_text(session.started_at)
    suite = ET.SubElement(root, "testsuite", suite_attributes)
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(document, rows, supported):
        ET.SubElement(
            properties, "property", {"name": clean_text(name), "value": one_line_text(value)}
        )
    name_of_class = classname(document)
    for case in cases:
        element = ET.SubElement(
            suite,
            "testcase",
            {"classname": name_of_class, "name": case.name, "time": f"{case.seconds:.3f}"},
        )
        if case.element is not None:
            child = ET.SubElement(
                element, case.element, {"message": one_line_text(case.message), "type": case.kind}
            )
            child.text = case.details
        _add_streams(element, case.runs, case.head, case.command)
    ET.indent(root)
    # Every value went through clean_text, so the tree holds only characters XML 1.0 allows.
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
