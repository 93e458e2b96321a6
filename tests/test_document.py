"""The typed session document: a real session's document round-trips through the models,
the JSON Schema generated from them validates real reports and rejects broken ones, and the
document's vocabulary is defined once (analysis, reports and store hold the same objects).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from refute import analysis, app, document, reports, store
from refute.app.example import write_demo_repository
from refute.document import (
    ANALYSIS_KEYS,
    OUTCOME_KEYS,
    SCHEMA,
    VERDICT_KEYS,
    VERDICTS,
    HypothesisAnalysis,
    OutcomeCounts,
    SessionDocument,
    VerdictCounts,
    document_json_schema,
    explain,
)
from refute.model import HypothesisStatus, TestResult
from refute.store import Store

SRC = Path(__file__).resolve().parents[1] / "src" / "refute"

#: The keys of a hypothesis entry as a new session writes them, in this order.
NEW_HYPOTHESIS_KEYS = [
    "rank",
    "score",
    "supported_if",
    "probability",
    "impact",
    "test_complexity",
    "estimated_test_time",
    "depends_on",
    "test_strategy",
    "expected_behavior",
    "id",
    "description",
    "test",
    "shell",
    "patch",
    "env",
    "repeat",
    "timeout",
    "runs",
]


def dump(model: SessionDocument) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


@pytest.fixture(scope="module")
def real_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The built-in example (four hypotheses, a control) run for real: its document as
    created, as analysed and returned, and as stored."""
    root = tmp_path_factory.mktemp("session")
    created: list[dict[str, Any]] = []

    def on_created(doc: dict[str, Any]) -> None:
        created.append(copy.deepcopy(doc))

    async def run() -> dict[str, Any]:
        repo, plan = await write_demo_repository(root)
        return await app.run_plan(plan, repo=repo, on_created=on_created)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REFUTE_HOME", str(root / "refute-home"))
        final = asyncio.run(run())
        with Store.open() as opened:
            stored = opened.load_document(final["session"]["id"])
    return {"created": created[0], "final": final, "stored": stored}


# -- round trips ------------------------------------------------------------------------------


def test_a_new_document_is_the_models_dump_key_for_key(real_session: dict[str, Any]):
    created = real_session["created"]
    parsed = SessionDocument.model_validate(created)
    assert json.dumps(dump(parsed)) == json.dumps(created)  # same keys, same order
    assert list(created) == [
        "schema",
        "refute_version",
        "session",
        "control",
        "hypotheses",
        "summary",
    ]
    assert created["summary"] is None
    assert list(created["hypotheses"][0]) == NEW_HYPOTHESIS_KEYS
    assert list(created["control"]) == [
        "test",
        "shell",
        "env",
        "repeat",
        "timeout",
        "verdict",
        "runs",
    ]
    assert parsed.hypotheses[0].verdict == "pending"  # not written yet: the default
    assert parsed.summary is None


def test_a_real_session_round_trips_through_the_models(real_session: dict[str, Any]):
    final, stored = real_session["final"], real_session["stored"]
    assert stored == final
    parsed = SessionDocument.model_validate(final)
    assert dump(parsed) == final
    assert SessionDocument.model_validate(dump(parsed)) == parsed
    # The typed fields are the document's values.
    assert parsed.version == SCHEMA
    assert parsed.session.id == final["session"]["id"]
    assert [h.id for h in parsed.hypotheses] == [h["id"] for h in final["hypotheses"]]
    first = parsed.hypotheses[0]
    assert first.counts is not None
    assert first.counts.as_dict() == final["hypotheses"][0]["counts"]
    assert OutcomeCounts.of(first.runs).as_dict() == final["hypotheses"][0]["counts"]
    assert parsed.summary is not None
    assert parsed.summary.counts.model_dump() == final["summary"]["counts"]
    run = parsed.hypotheses[0].runs[0]
    assert run.result == final["hypotheses"][0]["runs"][0]["result"]
    assert run.metrics.attempt == 1
    # Keys the models do not name are kept, not dropped.
    assert "stdout_bytes" in run.metrics.model_fields_set


def test_the_analysis_keys_are_what_analysis_writes(real_session: dict[str, Any]):
    hypothesis = real_session["final"]["hypotheses"][0]
    spec = {key for key in hypothesis if key != "runs"} - ANALYSIS_KEYS
    caveats = {"unreliable", "unreliable_reasons", "names_checkout", "failed_differently"}
    assert set(analysis.hypothesis_verdict([])) | caveats == ANALYSIS_KEYS
    assert set(hypothesis) >= ANALYSIS_KEYS
    assert spec == set(NEW_HYPOTHESIS_KEYS) - {"runs"}


# -- the schema -------------------------------------------------------------------------------


def test_the_report_schema_is_generated_from_the_models():
    schema = document_json_schema()
    assert schema == reports.REPORT_JSON_SCHEMA
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == f"refute session document ({SCHEMA})"
    assert schema["required"] == ["schema", "session", "control", "hypotheses", "summary"]
    assert schema["additionalProperties"] is False
    assert {"SessionInfo", "HypothesisEntry", "ControlEntry", "RunRecord", "Summary"} <= set(
        schema["$defs"]
    )
    counts = schema["$defs"]["OutcomeCounts"]
    assert counts["required"] == list(OUTCOME_KEYS)
    assert json.loads(json.dumps(schema)) == schema  # what `refute schema --report` prints


def test_the_schema_validates_a_real_report(real_session: dict[str, Any]):
    text = reports.render(real_session["final"], "json")
    jsonschema.validate(json.loads(text), reports.REPORT_JSON_SCHEMA)
    jsonschema.validate(real_session["stored"], reports.REPORT_JSON_SCHEMA)


def _broken(doc: dict[str, Any], how: str) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    if how == "extra top-level key":
        broken["extra"] = 1
    elif how == "verdict in capitals":
        broken["hypotheses"][0]["verdict"] = "SUPPORTED"
    elif how == "confidence above 1":
        broken["hypotheses"][0]["confidence"] = 1.5
    elif how == "result unknown":
        broken["control"]["runs"][0]["result"] = "crash"
    elif how == "exit code a string":
        broken["session"]["exit_code"] = "0"
    elif how == "counts a boolean":
        broken["hypotheses"][0]["counts"]["fail"] = True
    elif how == "names_checkout a string":
        broken["hypotheses"][0]["names_checkout"] = "yes"
    elif how == "unreliable_reasons a string":
        broken["hypotheses"][0]["unreliable_reasons"] = "the control"
    elif how == "control interval of three":
        broken["control"]["wilson_95"] = [0.1, 0.5, 0.9]
    elif how == "control rate above 1":
        broken["control"]["reproduction_rate"] = 1.5
    elif how == "repeated id":
        broken["hypotheses"][1]["id"] = broken["hypotheses"][0]["id"]
    return broken


@pytest.mark.parametrize(
    "how",
    [
        "extra top-level key",
        "verdict in capitals",
        "confidence above 1",
        "result unknown",
        "exit code a string",
        "counts a boolean",
        "names_checkout a string",
        "unreliable_reasons a string",
        "control interval of three",
        "control rate above 1",
    ],
)
def test_the_schema_and_the_models_reject_a_broken_report(real_session: dict[str, Any], how: str):
    broken = _broken(real_session["final"], how)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, reports.REPORT_JSON_SCHEMA)
    with pytest.raises(ValidationError):
        SessionDocument.model_validate(broken)


def test_a_report_has_the_new_analysis_fields_and_one_without_them_still_validates(
    real_session: dict[str, Any],
):
    final = real_session["final"]
    control = final["control"]
    assert control["verdict"] == "reproduced"
    assert control["reproduction_rate"] == 1.0
    assert control["wilson_95"] == [0.2065, 1.0]
    for hypothesis in final["hypotheses"]:
        assert hypothesis["unreliable"] is False
        assert hypothesis["unreliable_reasons"] == []
        assert hypothesis["names_checkout"] is False
        assert hypothesis["failed_differently"] is False
    # A version-1 report written before these fields existed is still a valid report.
    older = copy.deepcopy(final)
    for key in ("reproduction_rate", "wilson_95"):
        del older["control"][key]
    for hypothesis in older["hypotheses"]:
        for key in ("unreliable_reasons", "names_checkout", "failed_differently"):
            del hypothesis[key]
    jsonschema.validate(older, reports.REPORT_JSON_SCHEMA)
    parsed = SessionDocument.model_validate(older)
    assert parsed.hypotheses[0].unreliable_reasons == []
    assert parsed.control is not None
    assert parsed.control.reproduction_rate is None


def test_the_models_refuse_what_only_they_can_check(real_session: dict[str, Any]):
    with pytest.raises(ValidationError, match="reserved or repeated"):
        SessionDocument.model_validate(_broken(real_session["final"], "repeated id"))


def test_a_partial_document_is_accepted_but_is_not_a_report(real_session: dict[str, Any]):
    created = real_session["created"]
    SessionDocument.model_validate(created)  # what the store keeps while a session runs
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(created, reports.REPORT_JSON_SCHEMA)  # summary is null
    minimal = SessionDocument.model_validate({"session": {"id": "s"}})
    assert minimal.hypotheses == []
    assert minimal.control is None
    assert minimal.session.settings.repeat == 1


def test_explain_names_the_field_and_the_value():
    with pytest.raises(ValidationError) as info:
        SessionDocument.model_validate(
            {
                "session": {"id": "s", "status": "done"},
                "hypotheses": [{"id": "a", "probability": 2}],
                "oops": 1,
            }
        )
    text = explain(info.value)
    assert "session.status: Input should be" in text
    assert "(got 'done')" in text
    assert "hypotheses[0].probability: Input should be less than or equal to 1 (got 2)" in text
    assert "oops: unknown key" in text
    assert "\n" not in text


# -- the vocabulary ---------------------------------------------------------------------------


def test_analysis_reports_and_store_use_the_documents_vocabulary():
    assert analysis.OUTCOME_KEYS is document.OUTCOME_KEYS
    assert analysis.VERDICT_KEYS is document.VERDICT_KEYS
    assert analysis.SUPPORTED_IF_VALUES is document.SUPPORTED_IF_VALUES
    assert analysis.CONTROL_REPRODUCED is document.CONTROL_REPRODUCED
    assert analysis.CONTROL_NOT_REPRODUCED is document.CONTROL_NOT_REPRODUCED
    assert analysis.CONTROL_PENDING is document.CONTROL_PENDING
    assert document.EXIT_CODES["control_not_reproduced"] == analysis.EXIT_CONTROL_NOT_REPRODUCED
    assert reports.COUNT_KEYS is document.OUTCOME_KEYS
    assert reports.OUTCOMES is document.OUTCOMES
    assert reports.VERDICTS is document.VERDICTS
    assert reports.ACTIONS is document.ACTIONS
    assert reports.SCHEMA_VERSION is document.SCHEMA
    assert store.ANALYSIS_KEYS is document.ANALYSIS_KEYS
    assert store.CONTROL_ID is document.CONTROL_ID
    assert store.STATUSES is document.STATUSES
    assert store.DOCUMENT_SCHEMA is document.SCHEMA


def test_the_vocabulary_matches_the_model_and_the_count_models():
    assert tuple(result.value for result in TestResult) == document.OUTCOMES
    assert set(VERDICTS) == {status.value for status in HypothesisStatus}
    assert set(VERDICT_KEYS) == set(VERDICTS) - {"testing"}
    assert (*document.OUTCOMES, document.NOT_RUN) == OUTCOME_KEYS
    aliases = tuple(field.alias or name for name, field in OutcomeCounts.model_fields.items())
    assert aliases == OUTCOME_KEYS
    assert tuple(VerdictCounts.model_fields) == VERDICT_KEYS
    assert frozenset(HypothesisAnalysis.model_fields) == ANALYSIS_KEYS
    counts = analysis.analyze_session({"session": {"id": "s"}, "hypotheses": []})
    assert tuple(counts["summary"]["counts"]) == VERDICT_KEYS


# The word lists, spelled out: only refute.document may do that.
SPELLED = [
    r'"pass",\s*"fail",\s*"timeout"',
    r'"falsified",\s*"supported",\s*"inconclusive"',
    r'"reproduced",\s*"not_reproduced"',
    r'"fix_control",\s*"fix_inconclusive"',
    r'"verdict",\s*"confidence",\s*"unreliable"',
]


@pytest.mark.parametrize("package", ["analysis", "reports", "store"])
def test_no_other_module_spells_the_vocabulary(package: str):
    for path in sorted((SRC / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in SPELLED:
            assert not re.search(pattern, text), f"{path.name} spells {pattern}"
