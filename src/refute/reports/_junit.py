"""The JUnit XML format: one testsuite, one testcase per hypothesis, for CI dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any, Final

from refute.reports._common import (
    Row,
    Run,
    RunText,
    bug_text,
    caveat_lines,
    clean_text,
    control_runs,
    control_text,
    hypothesis_rows,
    one_line_text,
    parse,
    recommendation,
    timing_text,
)

__all__ = ["JUNIT_STREAM_LIMIT", "render_junit"]

#: Characters of one stream of one run kept in a JUnit system-out/system-err block.
JUNIT_STREAM_LIMIT: Final = 16_000


def _junit_result(row: Row) -> tuple[str | None, str]:
    """(element, message) for a hypothesis; element None means the testcase passed."""
    note = "".join(f" [{note}]" for note in row.notes)
    reason = row.reason or row.runs_cell
    if row.verdict == "falsified":
        return None, ""
    if row.verdict in {"supported", "flaky"}:
        return "failure", f"{row.verdict}: {reason}{note}"
    if row.verdict == "inconclusive":
        invalid = row.counts["timeout"] + row.counts["error"]
        return ("error" if invalid else "skipped"), f"inconclusive: {reason}{note}"
    return "skipped", f"{row.verdict}: {reason or 'not run yet'}{note}"


def _bounded(text: str, limit: int = JUNIT_STREAM_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return (
        f"{text[:half]}\n[... refute: {len(text) - limit} characters left out ...]\n{text[-half:]}"
    )


#: The JUnit element each stream of a run goes to.
_STREAMS: Final[tuple[tuple[str, RunText], ...]] = (
    ("system-out", "stdout"),
    ("system-err", "stderr"),
)


def _streams(runs: Sequence[Run], key: RunText) -> str:
    blocks = []
    for run in runs:
        text = run.text(key)
        if text:
            blocks.append(f"--- {run.label}: {run.summary()} ---\n{_bounded(text).rstrip()}\n")
    return "".join(blocks)


def _add_streams(parent: ET.Element, runs: Sequence[Run]) -> None:
    for tag, key in _STREAMS:
        text = _streams(runs, key)
        if text:
            ET.SubElement(parent, tag).text = text


def render_junit(doc: Mapping[str, Any]) -> str:
    """JUnit XML: one testsuite, one testcase per hypothesis (docs/report.md's mapping)."""
    document = parse(doc)
    session = document.session
    rows = hypothesis_rows(document)
    results = [_junit_result(row) for row in rows]
    elements = [element for element, _ in results]
    failures, errors = elements.count("failure"), elements.count("error")
    skipped = elements.count("skipped")
    total_time = sum(row.seconds for row in rows)
    counts = {
        "tests": str(len(rows)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{total_time:.3f}",
    }
    root = ET.Element("testsuites", {"name": "refute", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": f"refute: {bug_text(document)}",
            **counts,
            "timestamp": clean_text(session.started_at or ""),
        },
    )
    properties = ET.SubElement(suite, "properties")
    action, message, _ = recommendation(document)
    for name, value in (
        ("session", session.id),
        ("status", session.status),
        ("exit_code", session.exit_code),
        ("control", control_text(document)),
        ("recommendation", f"{action}: {message}"),
        ("timing", timing_text(document)),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": one_line_text(value)})
    # A falsified testcase has no element to carry its caveats: the suite's properties do.
    for row in rows:
        for unreliable, line in caveat_lines(row):
            name = "unreliable" if unreliable else "failed_differently"
            ET.SubElement(properties, "property", {"name": name, "value": one_line_text(line)})
    classname = f"refute.{clean_text(session.id or 'session')}"
    for row, (element, text) in zip(rows, results, strict=True):
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": classname, "name": row.id, "time": f"{row.seconds:.3f}"},
        )
        if element is not None:
            child = ET.SubElement(
                case, element, {"message": one_line_text(text), "type": row.verdict}
            )
            details = [
                row.description,
                *(f"run {run.attempt}: {run.summary()}" for run in row.runs),
            ]
            child.text = "\n".join(part for part in details if part)
        _add_streams(case, row.runs)
    _add_streams(suite, control_runs(document))
    ET.indent(root)
    # Every value went through clean_text, so the tree holds only characters XML 1.0 allows.
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
