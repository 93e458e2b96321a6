"""The analysis layer: verdicts, confidence, repeat statistics, control, recommendation.

Pure functions over plain dicts, so every case is a small literal document.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refute.analysis import (
    EXIT_CONTROL_NOT_REPRODUCED,
    OUTCOME_KEYS,
    VERDICT_KEYS,
    analyze_session,
    control_verdict,
    count_outcomes,
    hypothesis_verdict,
    run_evidence,
    seed_confidence,
    session_exit_code,
    wilson_interval,
)
from refute.model import HypothesisStatus, TestExecutionResult, TestResult

# -- builders -------------------------------------------------------------------------------


def run(
    result: str, duration: float = 1.0, *, not_run: bool = False, hid: str = "h"
) -> dict[str, Any]:
    """A run dict exactly as the engine's `TestExecutionResult.to_dict()` makes it."""
    metrics: dict[str, Any] = {"attempt": 1, "confidence": 0.0}
    if not_run:
        metrics["not_run"] = True
    return TestExecutionResult(
        hypothesis_id=hid,
        result=TestResult(result),
        duration=duration,
        exit_code={"pass": 0, "fail": 1, "skip": 125, "error": 127, "timeout": 124}[result],
        metrics=metrics,
    ).to_dict()


def runs(*results: str, duration: float = 1.0) -> list[dict[str, Any]]:
    return [run(r, duration) for r in results]


def hyp(hid: str, rank: int, results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": hid,
        "description": f"{hid} is the cause",
        "rank": rank,
        "supported_if": "fails",
        "timeout": 60,
        "runs": results,
        **extra,
    }


def session_doc(
    hypotheses: list[dict[str, Any]],
    control: dict[str, Any] | None = None,
    started: str | None = "2026-11-28T01:15:00+00:00",
    finished: str | None = "2026-11-28T01:15:04+00:00",
) -> dict[str, Any]:
    return {
        "schema": "refute.session/1",
        "session": {
            "id": "20261128T011500-3f9a2c",
            "status": "completed",
            "started_at": started,
            "finished_at": finished,
            "base": {"ref": "HEAD", "sha": "a" * 40, "snapshot_of": None},
            "exit_code": 0,
            "error": None,
        },
        "control": control,
        "hypotheses": hypotheses,
    }


def control(*results: dict[str, Any]) -> dict[str, Any]:
    return {"test": ["pytest", "-x", "tests/test_session.py"], "runs": list(results)}


# -- Wilson interval ------------------------------------------------------------------------


def test_wilson_known_value_8_of_10():
    low, high = wilson_interval(8, 10) or (0.0, 0.0)
    assert round(low, 4) == 0.4902
    assert round(high, 4) == 0.9433


def test_wilson_known_value_1_of_1_matches_the_contract_example():
    low, high = wilson_interval(1, 1) or (0.0, 0.0)
    assert round(low, 4) == 0.2065
    assert high == 1.0


def test_wilson_no_observation_is_none():
    assert wilson_interval(0, 0) is None


def test_wilson_edges_are_exact_and_inside_unit_interval():
    low, high = wilson_interval(0, 5) or (-1.0, -1.0)
    assert low == 0.0
    assert 0.0 < high < 1.0
    low, high = wilson_interval(5, 5) or (-1.0, -1.0)
    assert high == 1.0
    assert 0.0 < low < 1.0


def test_wilson_other_z():
    # z = 1 (about 68 %) is narrower than the 95 % default.
    narrow = wilson_interval(3, 10, z=1.0) or (0.0, 1.0)
    wide = wilson_interval(3, 10) or (0.0, 1.0)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_rejects_impossible_counts(successes, n):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)


@pytest.mark.parametrize("z", [0.0, -1.0, float("nan"), float("inf")])
def test_wilson_rejects_bad_z(z):
    with pytest.raises(ValueError, match="z must be"):
        wilson_interval(1, 2, z=z)


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=10_000).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    )
)
def test_wilson_contains_the_estimate_and_stays_in_unit_interval(case):
    successes, n = case
    interval = wilson_interval(successes, n)
    assert interval is not None
    low, high = interval
    assert 0.0 <= low <= successes / n <= high <= 1.0


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=500).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n), st.integers(2, 20))
    )
)
def test_wilson_narrows_with_more_observations_at_the_same_rate(case):
    successes, n, factor = case
    small = wilson_interval(successes, n)
    large = wilson_interval(successes * factor, n * factor)
    assert small is not None
    assert large is not None
    assert large[1] - large[0] < small[1] - small[0]


# -- one run --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "supported_if", "expected"),
    [
        ("fail", "fails", "for"),
        ("pass", "fails", "against"),
        ("pass", "passes", "for"),
        ("fail", "passes", "against"),
        *[(r, s, None) for r in ("timeout", "error", "skip") for s in ("fails", "passes")],
    ],
)
def test_run_evidence_table(result, supported_if, expected):
    assert run_evidence(result, supported_if) == expected
    assert run_evidence(TestResult(result), supported_if) == expected


def test_run_evidence_rejects_unknown_reading():
    with pytest.raises(ValueError, match="supported_if"):
        run_evidence("fail", "sometimes")
    with pytest.raises(ValueError, match="supported_if"):
        hypothesis_verdict(runs("fail"), "FAILS")


def test_count_outcomes_keeps_not_run_apart_from_skip():
    counts = count_outcomes([run("skip"), run("skip", not_run=True), run("fail")])
    assert counts == {"pass": 0, "fail": 1, "timeout": 0, "error": 0, "skip": 1, "not_run": 1}
    assert tuple(counts) == OUTCOME_KEYS


# -- one hypothesis: verdicts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("supported_if", "results", "verdict", "reason"),
    [
        (
            "fails",
            ["fail"] * 3,
            "supported",
            "the test failed (bug reproduced) in 3 of 3 valid runs",
        ),
        (
            "fails",
            ["pass"] * 2,
            "falsified",
            "the test passed (bug not reproduced) in 2 of 2 valid runs",
        ),
        (
            "passes",
            ["pass"] * 2,
            "supported",
            "the test passed (bug not reproduced) in 2 of 2 valid runs",
        ),
        ("passes", ["fail"], "falsified", "the test failed (bug reproduced) in 1 of 1 valid runs"),
    ],
)
def test_agreeing_runs_give_supported_or_falsified(supported_if, results, verdict, reason):
    out = hypothesis_verdict(runs(*results), supported_if)
    assert out["verdict"] == verdict
    assert out["reason"] == reason
    assert out["runs_total"] == out["runs_valid"] == len(results)
    assert HypothesisStatus(out["verdict"])  # a real status value


def test_invalid_runs_do_not_count_but_are_mentioned():
    out = hypothesis_verdict([*runs("fail", "fail", "timeout"), run("skip", not_run=True)])
    assert out["verdict"] == "supported"
    assert out["runs_total"] == 4
    assert out["runs_valid"] == 2
    assert out["reason"] == (
        "the test failed (bug reproduced) in 2 of 2 valid runs; not counted: 1 timeout, 1 not run"
    )


@pytest.mark.parametrize("supported_if", ["fails", "passes"])
def test_disagreeing_valid_runs_are_flaky(supported_if):
    out = hypothesis_verdict(runs("fail", "pass", "fail"), supported_if)
    assert out["verdict"] == "flaky"
    assert out["reason"] == "valid runs disagree: 2 fail, 1 pass"


def test_flaky_reason_puts_the_majority_first():
    out = hypothesis_verdict(runs("pass", "pass", "fail", "error"))
    assert out["reason"] == "valid runs disagree: 2 pass, 1 fail; not counted: 1 error"


@pytest.mark.parametrize("supported_if", ["fails", "passes"])
def test_no_valid_run_is_inconclusive(supported_if):
    out = hypothesis_verdict(runs("timeout", "error"), supported_if)
    assert out["verdict"] == "inconclusive"
    assert out["reason"] == "no valid run: 1 timeout, 1 error"
    assert out["confidence"] == 0.0
    assert out["reproduction_rate"] is None
    assert out["wilson_95"] is None


def test_skips_and_a_not_run_are_inconclusive_when_something_finished():
    out = hypothesis_verdict([run("skip"), run("skip", not_run=True)])
    assert out["verdict"] == "inconclusive"
    assert out["counts"]["skip"] == 1
    assert out["counts"]["not_run"] == 1
    assert out["reason"] == "no valid run: 1 skip, 1 not run"


@pytest.mark.parametrize("supported_if", ["fails", "passes"])
def test_no_run_at_all_is_pending(supported_if):
    out = hypothesis_verdict([], supported_if)
    assert out["verdict"] == "pending"
    assert out["confidence"] == 0.0
    assert out["runs_total"] == 0
    assert out["reason"] == "no run yet"


def test_only_not_run_results_are_pending_and_counted_as_not_run():
    out = hypothesis_verdict([run("skip", not_run=True), run("skip", not_run=True)])
    assert out["verdict"] == "pending"
    assert out["counts"]["not_run"] == 2
    assert out["counts"]["skip"] == 0
    assert out["reason"] == "no run finished: 2 not run"


def test_result_fields_have_the_contract_keys():
    out = hypothesis_verdict(runs("fail"))
    assert set(out) == {
        "verdict",
        "confidence",
        "counts",
        "runs_total",
        "runs_valid",
        "reproduction_rate",
        "wilson_95",
        "reason",
    }
    assert out["counts"] == {
        "pass": 0,
        "fail": 1,
        "timeout": 0,
        "error": 0,
        "skip": 0,
        "not_run": 0,
    }


# -- one hypothesis: confidence and statistics ----------------------------------------------


@pytest.mark.parametrize(
    ("one_run", "expected"),
    [
        (run("fail", 0.5), 0.6),
        (run("pass", 4.99), 0.6),
        (run("fail", 5.0), 0.85),
        (run("pass", 30.0), 0.85),
        (run("timeout", 60.0), 0.3),
        (run("error", 0.1), 0.2),
        (run("skip", 0.1), 0.0),
        (run("skip", not_run=True), 0.0),
    ],
)
def test_single_run_confidence_is_the_seed_rule(one_run, expected):
    assert seed_confidence(one_run) == expected
    assert hypothesis_verdict([one_run])["confidence"] == expected
    assert hypothesis_verdict([one_run], "passes")["confidence"] == expected


def test_repeated_runs_confidence_is_the_wilson_lower_bound():
    out = hypothesis_verdict(runs("fail", "fail", "fail", duration=10.0))
    low, _ = wilson_interval(3, 3) or (0.0, 0.0)
    assert out["confidence"] == round(low, 4)
    assert out["confidence"] == pytest.approx(0.4385, abs=1e-4)


def test_repeated_runs_confidence_is_scaled_by_the_share_of_valid_runs():
    out = hypothesis_verdict(runs("pass", "pass", "pass", "timeout"))
    low, _ = wilson_interval(3, 3) or (0.0, 0.0)
    assert out["verdict"] == "falsified"
    assert out["confidence"] == round(low * 3 / 4, 4)


def test_repeated_runs_with_supported_if_passes_use_the_agreeing_share():
    out = hypothesis_verdict(runs("pass", "pass"), "passes")
    low, _ = wilson_interval(2, 2) or (0.0, 0.0)
    assert out["verdict"] == "supported"
    assert out["confidence"] == round(low, 4)


def test_flaky_confidence_is_that_of_the_majority():
    out = hypothesis_verdict(runs("fail", "fail", "fail", "pass", "error"))
    low, _ = wilson_interval(3, 4) or (0.0, 0.0)
    assert out["confidence"] == round(low * 4 / 5, 4)


def test_more_agreeing_runs_give_more_confidence():
    confidences = [hypothesis_verdict(runs(*["fail"] * n))["confidence"] for n in (2, 5, 20)]
    assert confidences == sorted(confidences)
    assert confidences[0] < confidences[-1]


def test_reproduction_rate_and_its_interval():
    out = hypothesis_verdict(runs(*["fail"] * 8, "pass", "pass", "timeout"))
    assert out["reproduction_rate"] == 0.8
    assert out["wilson_95"] == [0.4902, 0.9433]


def test_reproduction_rate_counts_failures_whatever_the_reading():
    # The rate says how often the bug reproduced, not how often the hypothesis held.
    out = hypothesis_verdict(runs("fail", "pass", "pass", "pass"), "passes")
    assert out["reproduction_rate"] == 0.25


def test_single_run_statistics_match_the_contract_example():
    out = hypothesis_verdict(runs("fail", duration=2.0))
    assert out["confidence"] == 0.6
    assert out["reproduction_rate"] == 1.0
    assert out["wilson_95"] == [0.2065, 1.0]


# -- the control ----------------------------------------------------------------------------


def test_control_reproduced_when_every_valid_run_fails():
    out = control_verdict([*runs("fail", "fail", "timeout")])
    assert out["verdict"] == "reproduced"
    assert out["counts"]["fail"] == 2
    assert "2 of 2 valid runs" in out["reason"]
    assert set(out) == {"verdict", "counts", "reason"}


@pytest.mark.parametrize(
    ("results", "phrase"),
    [
        (["pass"], "passed (bug not reproduced) in 1 of 1"),
        (["fail", "pass", "fail"], "passed (bug not reproduced) in 1 of 3"),
        (["timeout", "error"], "no valid control run (1 timeout, 1 error)"),
        (["skip"], "no valid control run (1 skip)"),
    ],
)
def test_control_not_reproduced(results, phrase):
    out = control_verdict(runs(*results))
    assert out["verdict"] == "not_reproduced"
    assert phrase in out["reason"]


def test_control_pending_without_a_finished_run():
    assert control_verdict([])["verdict"] == "pending"
    out = control_verdict([run("skip", not_run=True)])
    assert out["verdict"] == "pending"
    assert out["counts"]["not_run"] == 1


# -- the session ----------------------------------------------------------------------------


def test_analyze_session_fills_every_hypothesis_and_does_not_modify_its_input():
    doc = session_doc([hyp("token-race", 1, runs("fail")), hyp("cache-stale", 2, runs("pass"))])
    before = copy.deepcopy(doc)
    out = analyze_session(doc)
    assert doc == before
    race, cache = out["hypotheses"]
    assert race["verdict"] == "supported"
    assert race["unreliable"] is False
    assert cache["verdict"] == "falsified"
    assert race["runs"] == doc["hypotheses"][0]["runs"]
    assert race["description"] == "token-race is the cause"
    assert out["summary"]["counts"] == {
        "falsified": 1,
        "supported": 1,
        "inconclusive": 0,
        "flaky": 0,
        "pending": 0,
    }
    assert tuple(out["summary"]["counts"]) == VERDICT_KEYS
    assert out["summary"]["survivors"] == ["token-race"]
    assert out["control"] is None
    assert session_exit_code(out) == 0


def test_supported_if_is_read_per_hypothesis_and_defaults_to_fails():
    fix = hyp("fix-works", 1, runs("pass"), supported_if="passes")
    plain = hyp("plain", 2, runs("pass"))
    del plain["supported_if"]
    out = analyze_session(session_doc([fix, plain]))
    assert [h["verdict"] for h in out["hypotheses"]] == ["supported", "falsified"]


def test_survivors_follow_rank_not_document_order():
    doc = session_doc(
        [hyp("c", 3, runs("fail")), hyp("a", 1, runs("fail")), hyp("b", 2, runs("fail"))]
    )
    assert analyze_session(doc)["summary"]["survivors"] == ["a", "b", "c"]


def test_a_reproduced_control_keeps_verdicts_reliable():
    out = analyze_session(session_doc([hyp("a", 1, runs("fail"))], control(run("fail"))))
    assert out["control"]["verdict"] == "reproduced"
    assert out["control"]["test"] == ["pytest", "-x", "tests/test_session.py"]
    assert out["hypotheses"][0]["unreliable"] is False
    assert session_exit_code(out) == 0


def test_a_control_that_did_not_reproduce_makes_everything_unreliable_and_exits_3():
    doc = session_doc([hyp("a", 1, runs("fail")), hyp("b", 2, runs("pass"))], control(run("pass")))
    out = analyze_session(doc)
    assert out["control"]["verdict"] == "not_reproduced"
    assert all(h["unreliable"] is True for h in out["hypotheses"])
    assert session_exit_code(out) == EXIT_CONTROL_NOT_REPRODUCED == 3
    # Also from a raw document whose control has runs but no verdict yet.
    assert session_exit_code(doc) == 3


def test_a_pending_control_is_not_a_failed_control():
    out = analyze_session(session_doc([hyp("a", 1, [])], control(run("skip", not_run=True))))
    assert out["control"]["verdict"] == "pending"
    assert out["hypotheses"][0]["unreliable"] is False
    assert session_exit_code(out) == 0


def test_existing_summary_keys_are_kept():
    doc = session_doc([hyp("a", 1, runs("fail"))])
    doc["summary"] = {"note": "kept", "survivors": ["stale"]}
    summary = analyze_session(doc)["summary"]
    assert summary["note"] == "kept"
    assert summary["survivors"] == ["a"]


# -- recommendation -------------------------------------------------------------------------


def recommendation(doc: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = analyze_session(doc)["summary"]["recommendation"]
    assert set(rec) == {"action", "message", "next_steps"}
    assert isinstance(rec["message"], str)
    assert "\n" not in rec["message"]
    assert rec["next_steps"]
    assert all(isinstance(step, str) and step for step in rec["next_steps"])
    return rec


def test_recommend_fix_control_wins_over_everything():
    doc = session_doc(
        [hyp("a", 1, runs("timeout")), hyp("b", 2, runs("fail"))],
        control(run("pass")),
    )
    rec = recommendation(doc)
    assert rec["action"] == "fix_control"
    joined = " ".join(rec["next_steps"])
    assert "pytest -x tests/test_session.py" in joined
    assert "aaaaaaaaaaaa" in joined  # the base commit, abbreviated
    assert "unreliable" in joined


def test_recommend_fix_inconclusive_names_the_unclear_hypotheses():
    doc = session_doc(
        [
            hyp("token-race", 1, runs("fail")),
            hyp("slow-db", 2, runs("timeout")),
            hyp("cache-stale", 3, runs("fail", "pass", "fail")),
            hyp("bad-cmd", 4, runs("error")),
        ],
        control(run("fail")),
    )
    rec = recommendation(doc)
    assert rec["action"] == "fix_inconclusive"
    assert "slow-db inconclusive" in rec["message"]
    assert "cache-stale flaky" in rec["message"]
    steps = rec["next_steps"]
    assert any(s.startswith("Fix the test of slow-db") and "timeout (now 60 s)" in s for s in steps)
    assert any(s.startswith("Stabilise the test of cache-stale") and "67%" in s for s in steps)
    assert any(s.startswith("Fix the test of bad-cmd") and "command exists" in s for s in steps)
    assert any("Meanwhile supported: token-race" in s for s in steps)


def test_recommend_new_hypotheses_when_everything_was_falsified():
    doc = session_doc([hyp("a", 1, runs("pass")), hyp("b", 2, runs("pass", "pass"))])
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert rec["message"] == "No hypothesis survived (2 falsified)."
    joined = " ".join(rec["next_steps"])
    assert "ruled out: a and b" in joined
    assert "Add a control" in joined  # the plan had none


def test_recommend_new_hypotheses_with_a_control_does_not_suggest_adding_one():
    doc = session_doc([hyp("a", 1, runs("pass"))], control(run("fail")))
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert not any("Add a control" in s for s in rec["next_steps"])


def test_recommend_mentions_pending_hypotheses_to_resume():
    doc = session_doc([hyp("a", 1, runs("pass")), hyp("b", 2, [run("skip", not_run=True)])])
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert rec["message"] == "No hypothesis survived (1 falsified, 1 pending)."
    assert rec["next_steps"][0] == "Resume the session to run the pending hypothesis: b."


def test_recommend_with_no_hypotheses():
    rec = recommendation(session_doc([]))
    assert rec["action"] == "new_hypotheses"
    assert "tested none" in rec["message"]


def test_recommend_focus_on_the_single_survivor():
    doc = session_doc(
        [hyp("token-race", 1, runs("fail")), hyp("cache-stale", 2, runs("pass"))],
        control(run("fail")),
    )
    rec = recommendation(doc)
    assert rec["action"] == "focus"
    assert rec["message"] == "Focus on token-race: the only surviving hypothesis (confidence 0.60)."
    assert rec["next_steps"][0].startswith("Focus on token-race: token-race is the cause")
    assert any("repeat: 5 for token-race" in s for s in rec["next_steps"])
    assert any("supported_if: passes" in s for s in rec["next_steps"])


def test_recommend_focus_on_a_confirmed_candidate_fix():
    survivor = hyp("fix", 1, runs("pass", "pass", "pass"), supported_if="passes", patch="fix.diff")
    rec = recommendation(session_doc([survivor]))
    assert rec["action"] == "focus"
    assert not any("repeat: 5" in s for s in rec["next_steps"])  # already 3 valid runs
    assert any("(fix.diff) made the test pass" in s for s in rec["next_steps"])


def test_recommend_refine_tests_when_several_survive():
    doc = session_doc(
        [
            hyp("b", 2, runs("fail")),
            hyp("a", 1, runs("fail", "fail", "fail")),
            hyp("c", 3, runs("pass")),
        ]
    )
    rec = recommendation(doc)
    assert rec["action"] == "refine_tests"
    assert rec["message"] == "2 hypotheses survive (a, b): write tests that tell them apart."
    assert rec["next_steps"][0].startswith("Write tests that separate a and b")
    assert rec["next_steps"][1].startswith("Start with a,")
    assert any(s.startswith("Repeat the tests of b ") for s in rec["next_steps"])


# -- timing ---------------------------------------------------------------------------------


def test_timing_from_the_session_timestamps():
    doc = session_doc(
        [hyp("a", 1, runs("fail", duration=3.0)), hyp("b", 2, runs("pass", duration=2.5))],
        control(run("fail", 2.5)),
    )
    timing = analyze_session(doc)["summary"]["timing"]
    assert timing == {"wall_seconds": 4.0, "sum_run_seconds": 8.0, "speedup": 2.0}


def test_timing_accepts_a_z_suffix():
    doc = session_doc(
        [hyp("a", 1, runs("fail", duration=1.0))],
        started="2026-11-28T01:15:00Z",
        finished="2026-11-28T01:15:00.500Z",
    )
    assert analyze_session(doc)["summary"]["timing"]["speedup"] == 2.0


def test_timing_wall_seconds_argument_wins():
    doc = session_doc([hyp("a", 1, runs("fail", duration=3.0))])
    timing = analyze_session(doc, wall_seconds=1.5)["summary"]["timing"]
    assert timing == {"wall_seconds": 1.5, "sum_run_seconds": 3.0, "speedup": 2.0}


@pytest.mark.parametrize(
    ("started", "finished"),
    [
        ("2026-11-28T01:15:00+00:00", None),  # still running
        (None, None),
        ("not a time", "2026-11-28T01:15:04+00:00"),
        ("2026-11-28T01:15:00", "2026-11-28T01:15:04+00:00"),  # naive vs aware
        ("2026-11-28T01:15:04+00:00", "2026-11-28T01:15:00+00:00"),  # backwards
    ],
)
def test_timing_without_a_usable_wall_time_has_no_speedup(started, finished):
    doc = session_doc([hyp("a", 1, runs("fail", duration=3.0))], started=started, finished=finished)
    timing = analyze_session(doc)["summary"]["timing"]
    assert timing == {"wall_seconds": None, "sum_run_seconds": 3.0, "speedup": None}


def test_timing_zero_wall_has_no_speedup():
    doc = session_doc([hyp("a", 1, [])])
    timing = analyze_session(doc, wall_seconds=0.0)["summary"]["timing"]
    assert timing == {"wall_seconds": 0.0, "sum_run_seconds": 0.0, "speedup": None}


# -- the package ----------------------------------------------------------------------------


def test_the_package_exports_the_same_names_from_its_three_modules():
    from refute import analysis  # noqa: PLC0415 - the package under test
    from refute.analysis import advice, statistics, verdicts  # noqa: PLC0415

    for module in (statistics, verdicts, advice):
        assert module.__all__, module.__name__
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    assert set(analysis.__all__) == {
        "CONTROL_NOT_REPRODUCED",
        "CONTROL_PENDING",
        "CONTROL_REPRODUCED",
        "EXIT_CONTROL_NOT_REPRODUCED",
        "OUTCOME_KEYS",
        "SUPPORTED_IF_VALUES",
        "VERDICT_KEYS",
        "Z_95",
        "Evidence",
        "analyze_session",
        "control_verdict",
        "count_outcomes",
        "hypothesis_verdict",
        "run_evidence",
        "seed_confidence",
        "session_exit_code",
        "wilson_interval",
    }
    assert analysis.wilson_interval is statistics.wilson_interval
    assert analysis.analyze_session is verdicts.analyze_session
    assert verdicts.recommend is advice.recommend
