"""The analysis layer: verdicts, confidence, repeat statistics, control, recommendation.

Pure functions over plain dicts, so every case is a small literal document.
"""

from __future__ import annotations

import copy
from statistics import NormalDist
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refute.analysis import (
    EXIT_CONTROL_NOT_REPRODUCED,
    OUTCOME_KEYS,
    VERDICT_KEYS,
    Z_95_ONE_SIDED,
    analyze_session,
    checkout_paths,
    checkout_reason,
    confidence_bound,
    control_verdict,
    count_outcomes,
    different_failure_reason,
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
            "the test passed with the fix (the bug is gone) in 2 of 2 valid runs",
        ),
        (
            "passes",
            ["fail"],
            "falsified",
            "the test still failed with the fix (the bug remains) in 1 of 1 valid runs",
        ),
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
    ("one_run", "seed", "confidence"),
    [
        (run("fail", 0.5), 0.6, 0.2699),
        (run("pass", 4.99), 0.6, 0.2699),
        (run("fail", 5.0), 0.85, 0.2699),
        (run("pass", 30.0), 0.85, 0.2699),
        (run("timeout", 60.0), 0.3, 0.0),
        (run("error", 0.1), 0.2, 0.0),
        (run("skip", 0.1), 0.0, 0.0),
        (run("skip", not_run=True), 0.0, 0.0),
    ],
)
def test_the_seed_rule_stays_but_a_single_run_hypothesis_gets_the_evidence_bound(
    one_run, seed, confidence
):
    # The seed's per-run rule is unchanged (it is what `metrics.confidence` holds); the
    # hypothesis' confidence is the one-sided Wilson bound of 1 agreeing run in 1, or 0.
    assert seed_confidence(one_run) == seed
    assert hypothesis_verdict([one_run])["confidence"] == confidence
    assert hypothesis_verdict([one_run], "passes")["confidence"] == confidence


def test_repeated_runs_confidence_is_the_one_sided_wilson_lower_bound():
    out = hypothesis_verdict(runs("fail", "fail", "fail", duration=10.0))
    low, _ = wilson_interval(3, 3, z=Z_95_ONE_SIDED) or (0.0, 0.0)
    assert out["confidence"] == round(low, 4)
    assert out["confidence"] == pytest.approx(0.5258, abs=1e-4)


def test_runs_that_are_no_evidence_do_not_change_the_confidence():
    out = hypothesis_verdict(runs("pass", "pass", "pass", "timeout"))
    assert out["verdict"] == "falsified"
    assert out["confidence"] == hypothesis_verdict(runs("pass", "pass", "pass"))["confidence"]
    assert out["confidence"] == 0.5258


def test_repeated_runs_with_supported_if_passes_use_the_agreeing_share():
    out = hypothesis_verdict(runs("pass", "pass"), "passes")
    assert out["verdict"] == "supported"
    assert out["confidence"] == round(confidence_bound(2, 2), 4) == 0.425


def test_flaky_confidence_is_that_of_the_majority():
    out = hypothesis_verdict(runs("fail", "fail", "fail", "pass", "error"))
    assert out["verdict"] == "flaky"
    assert out["confidence"] == round(confidence_bound(3, 4), 4) == 0.3562


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
    assert out["confidence"] == 0.2699
    assert out["reproduction_rate"] == 1.0
    assert out["wilson_95"] == [0.2065, 1.0]


# -- confidence: the definition of docs/report.md -------------------------------------------


@pytest.mark.parametrize(
    ("agreeing", "valid", "expected"),
    [
        (1, 1, 0.2699),  # the worked example of docs/report.md: 1 / (1 + 1.6449**2)
        (3, 3, 0.5258),  # 3 / (3 + 2.7055)
        (10, 10, 0.7871),  # 10 / (10 + 2.7055)
        (2, 2, 0.4250),
        (8, 10, 0.5408),
        (5, 10, 0.2693),
        (0, 0, 0.0),
    ],
)
def test_confidence_bound_known_values(agreeing, valid, expected):
    assert round(confidence_bound(agreeing, valid), 4) == expected


def test_confidence_bound_of_unanimous_runs_is_n_over_n_plus_z_squared():
    assert round(Z_95_ONE_SIDED, 12) == round(NormalDist().inv_cdf(0.95), 12)
    for n in range(1, 50):
        assert confidence_bound(n, n) == pytest.approx(n / (n + Z_95_ONE_SIDED**2), abs=1e-12)


@pytest.mark.parametrize(
    ("results", "supported_if", "confidence"),
    [
        (["fail"], "fails", 0.2699),
        (["fail"] * 3, "fails", 0.5258),
        (["fail"] * 10, "fails", 0.7871),
        (["pass"] * 10, "fails", 0.7871),  # falsified by 10 of 10
        (["pass"] * 3, "passes", 0.5258),  # a candidate fix confirmed 3 times
    ],
)
def test_the_documented_example_values(results, supported_if, confidence):
    assert hypothesis_verdict(runs(*results), supported_if)["confidence"] == confidence


def _counted_runs(n_fail: int, n_pass: int, n_other: int, duration: float) -> list[dict[str, Any]]:
    others = [run("timeout", duration), run("error", duration), run("skip", duration)]
    return [
        *(run("fail", duration) for _ in range(n_fail)),
        *(run("pass", duration) for _ in range(n_pass)),
        *(others[i % 3] for i in range(n_other)),
        *(run("skip", not_run=True) for _ in range(n_other // 2)),
    ]


def _agreeing_outcome(out: dict[str, Any], supported_if: str) -> list[str]:
    """The outcomes of a run that agrees with the verdict `out` (both when it is a tie or
    there is no valid run yet)."""
    supporting = "fail" if supported_if == "fails" else "pass"
    opposing = "pass" if supporting == "fail" else "fail"
    counts = out["counts"]
    if out["verdict"] == "supported":
        return [supporting]
    if out["verdict"] == "falsified":
        return [opposing]
    if counts["fail"] == counts["pass"]:
        return ["fail", "pass"]
    return ["fail" if counts["fail"] > counts["pass"] else "pass"]


COUNTS = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 6))


@settings(deadline=None, max_examples=300)
@given(counts=COUNTS, supported_if=st.sampled_from(["fails", "passes"]))
@example(counts=(0, 0, 0), supported_if="fails")
@example(counts=(1, 0, 0), supported_if="fails")  # 1 run, then 2
@example(counts=(0, 1, 0), supported_if="passes")
@example(counts=(1, 0, 3), supported_if="fails")
@example(counts=(2, 2, 0), supported_if="fails")  # a tie: either outcome agrees
def test_adding_an_agreeing_run_never_lowers_the_confidence(counts, supported_if):
    n_fail, n_pass, n_other = counts
    before = _counted_runs(n_fail, n_pass, n_other, 1.0)
    out = hypothesis_verdict(before, supported_if)
    assert 0.0 <= out["confidence"] <= 1.0
    for outcome in _agreeing_outcome(out, supported_if):
        after = hypothesis_verdict([*before, run(outcome)], supported_if)
        assert after["confidence"] >= out["confidence"], (outcome, out, after)
        if out["runs_valid"] == 0:
            assert after["confidence"] > 0.0


@settings(deadline=None, max_examples=200)
@given(counts=COUNTS, supported_if=st.sampled_from(["fails", "passes"]))
@example(counts=(2, 0, 1), supported_if="fails")
@example(counts=(0, 0, 2), supported_if="fails")
def test_runs_that_are_no_evidence_never_change_the_confidence(counts, supported_if):
    n_fail, n_pass, n_other = counts
    plain = hypothesis_verdict(_counted_runs(n_fail, n_pass, 0, 1.0), supported_if)
    noisy = hypothesis_verdict(_counted_runs(n_fail, n_pass, n_other, 1.0), supported_if)
    assert noisy["confidence"] == plain["confidence"]


@settings(deadline=None, max_examples=200)
@given(
    counts=COUNTS,
    supported_if=st.sampled_from(["fails", "passes"]),
    durations=st.tuples(
        st.floats(0.0, 1000.0, allow_nan=False), st.floats(0.0, 1000.0, allow_nan=False)
    ),
)
@example(counts=(1, 0, 0), supported_if="fails", durations=(0.1, 100.0))
@example(counts=(0, 3, 1), supported_if="passes", durations=(4.9, 5.0))
def test_the_confidence_does_not_depend_on_durations(counts, supported_if, durations):
    n_fail, n_pass, n_other = counts
    first, second = (
        hypothesis_verdict(_counted_runs(n_fail, n_pass, n_other, d), supported_if)
        for d in durations
    )
    assert first["confidence"] == second["confidence"]


@pytest.mark.parametrize("n", [1, 3, 10])
def test_fast_and_slow_tests_get_the_same_confidence(n):
    # The seed's rule gave 0.6 under 5 s and 0.85 from 5 s; the evidence does not care.
    fast = hypothesis_verdict(runs(*["fail"] * n, duration=0.1))
    slow = hypothesis_verdict(runs(*["fail"] * n, duration=100.0))
    assert fast["confidence"] == slow["confidence"] == round(confidence_bound(n, n), 4)


def test_more_agreeing_runs_raise_the_confidence_strictly():
    values = [hypothesis_verdict(runs(*["fail"] * n))["confidence"] for n in range(1, 21)]
    assert values == sorted(set(values))


# -- the control ----------------------------------------------------------------------------


def test_control_reproduced_when_every_valid_run_fails():
    out = control_verdict([*runs("fail", "fail", "timeout")])
    assert out["verdict"] == "reproduced"
    assert out["counts"]["fail"] == 2
    assert out["reason"] == (
        "the control failed (bug reproduced) in 2 of 2 valid runs on the unmodified base;"
        " not counted: 1 timeout"
    )
    assert set(out) == {"verdict", "counts", "reproduction_rate", "wilson_95", "reason"}
    assert out["reproduction_rate"] == 1.0
    assert out["wilson_95"] == [0.3424, 1.0]  # Wilson 95 % of 2 in 2


@pytest.mark.parametrize(
    ("results", "phrase", "rate", "interval"),
    [
        (["pass"], "passed (bug not reproduced) in 1 of 1", 0.0, [0.0, 0.7935]),
        (["pass", "pass", "error"], "passed (bug not reproduced) in 2 of 2", 0.0, [0.0, 0.6576]),
        (["timeout", "error"], "no valid control run (1 timeout, 1 error)", None, None),
        (["skip"], "no valid control run (1 skip)", None, None),
    ],
)
def test_control_not_reproduced_without_a_valid_failing_run(results, phrase, rate, interval):
    out = control_verdict(runs(*results))
    assert out["verdict"] == "not_reproduced"
    assert phrase in out["reason"]
    assert out["reproduction_rate"] == rate
    assert out["wilson_95"] == interval


@pytest.mark.parametrize("results", [["fail", "pass", "pass"], ["pass", "pass", "fail", "timeout"]])
def test_an_intermittent_control_reproduces_with_one_failing_valid_run(results):
    # 1 failure in 3 valid runs: the bug shows on the base, if only sometimes.
    out = control_verdict(runs(*results))
    assert out["verdict"] == "reproduced"
    assert out["reproduction_rate"] == 0.3333
    assert out["wilson_95"] == [0.0615, 0.7923]  # Wilson 95 % of 1 in 3
    assert out["reason"].startswith(
        "the control failed (bug reproduced) in 1 of 3 valid runs on the unmodified base"
        " (reproduction rate 33%, 95 % interval 6%-79%)"
    )


def test_an_intermittent_control_keeps_the_session_reliable():
    doc = session_doc([hyp("a", 1, runs("fail"))], control(*runs("pass", "fail", "pass")))
    out = analyze_session(doc)
    assert out["control"]["verdict"] == "reproduced"
    assert out["control"]["reproduction_rate"] == 0.3333
    assert out["hypotheses"][0]["unreliable"] is False
    assert out["summary"]["recommendation"]["action"] != "fix_control"
    assert session_exit_code(out) == 0


def test_control_pending_without_a_finished_run():
    assert control_verdict([])["verdict"] == "pending"
    out = control_verdict([run("skip", not_run=True)])
    assert out["verdict"] == "pending"
    assert out["counts"]["not_run"] == 1


# -- caveats: a run that names the checkout ------------------------------------------------

REPO = "/home/u/proj"
WORKTREE = "/home/u/.cache/refute/worktrees/3f9a2c/slot-1"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/home/u/proj/src/calc.py", line 3, in add\n'
    "    return a - b\n"
    "AssertionError: add(2, 3) gave -1\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TRACEBACK, ["/home/u/proj/src/calc.py"]),
        ("rootdir: /home/u/proj\nconfigfile: pyproject.toml", ["/home/u/proj"]),
        ("cd /home/u/proj && pytest", ["/home/u/proj"]),
        ("it ran in /home/u/proj.", ["/home/u/proj"]),
        ("/home/u/proj/src/calc.py:3: AssertionError", ["/home/u/proj/src/calc.py"]),
        ("'/home/u/proj/a.py' and /home/u/proj/a.py again", ["/home/u/proj/a.py"]),
        ("/home/u/project/src/calc.py", []),  # another directory
        ("/home/u/proj.git/config", []),
        ("/home/u/proj-old/x.py", []),
        ("/mnt/home/u/proj/x.py", []),  # a longer path that only ends like it
        (f'  File "{WORKTREE}/src/calc.py", line 3', []),  # the worktree: where it should be
        ("", []),
    ],
)
def test_checkout_paths_are_whole_paths_inside_the_repository(text, expected):
    assert checkout_paths(text, REPO) == expected
    assert checkout_paths(text, REPO + "/") == expected  # a trailing slash is the same root


def test_checkout_paths_leave_out_the_worktree_when_it_lies_inside_the_repository():
    worktree = f"{REPO}/.cache/refute/worktrees/slot-0"
    text = f"ran {worktree}/src/calc.py, then {REPO}/src/calc.py"
    assert checkout_paths(text, REPO, worktree) == [f"{REPO}/src/calc.py"]
    assert checkout_paths(text, "") == []


def leaky_run(result: str, attempt: int, *, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    data = run(result)
    data.update(stdout=stdout, stderr=stderr, worktree_path=WORKTREE)
    data["metrics"]["attempt"] = attempt
    return data


def test_checkout_reason_names_the_run_and_the_path():
    clean = leaky_run("fail", 1, stdout=f"collected 1 item\nrootdir: {WORKTREE}\n")
    leaky = leaky_run("fail", 2, stderr=TRACEBACK)
    assert checkout_reason([clean], REPO) is None
    assert checkout_reason([clean, leaky], REPO) == (
        "run 2's output names /home/u/proj/src/calc.py, inside your checkout (not its"
        " worktree): it may have used your checkout's code"
    )
    more = [clean, leaky, leaky_run("fail", 3, stdout=TRACEBACK)]
    assert checkout_reason(more, REPO) == (
        "run 2's output names /home/u/proj/src/calc.py, inside your checkout (not its"
        " worktree): it may have used your checkout's code (run 3 names your checkout too)"
    )
    assert checkout_reason(more, "") is None  # no repository recorded: nothing to look for


def test_a_run_naming_the_checkout_makes_only_its_hypothesis_unreliable():
    doc = session_doc(
        [
            hyp("leaky", 1, [leaky_run("fail", 1), leaky_run("fail", 2, stderr=TRACEBACK)]),
            hyp("clean", 2, [leaky_run("pass", 1, stdout=f"rootdir: {WORKTREE}")]),
        ],
        control(run("fail")),
    )
    doc["session"]["repo"] = REPO
    out = analyze_session(doc)
    leaky, clean = out["hypotheses"]
    sentence = (
        "run 2's output names /home/u/proj/src/calc.py, inside your checkout (not its"
        " worktree): it may have used your checkout's code"
    )
    assert leaky["verdict"] == "supported"  # the verdict stays; it is marked
    assert leaky["unreliable"] is True
    assert leaky["names_checkout"] is True
    assert leaky["unreliable_reasons"] == [sentence]
    assert leaky["reason"] == (
        f"the test failed (bug reproduced) in 2 of 2 valid runs; unreliable: {sentence}"
    )
    assert clean["unreliable"] is False
    assert clean["names_checkout"] is False
    assert clean["unreliable_reasons"] == []
    assert out["control"]["verdict"] == "reproduced"
    assert session_exit_code(out) == 0


def test_the_recommendation_asks_to_fix_a_test_that_named_the_checkout():
    doc = session_doc(
        [hyp("leaky", 1, [leaky_run("fail", 1, stdout=TRACEBACK)]), hyp("b", 2, runs("pass"))],
        control(run("fail")),
    )
    doc["session"]["repo"] = REPO
    rec = recommendation(doc)
    assert rec["action"] == "focus"
    assert any(
        step.startswith(
            "Make the test of leaky use its worktree, not your checkout (leaky:"
            " run 1's output names /home/u/proj/src/calc.py"
        )
        for step in _texts(rec)
    )


def test_a_failed_control_and_a_named_checkout_give_two_reasons():
    doc = session_doc(
        [hyp("leaky", 1, [leaky_run("fail", 1, stdout=TRACEBACK)])], control(run("pass"))
    )
    doc["session"]["repo"] = REPO
    leaky = analyze_session(doc)["hypotheses"][0]
    assert leaky["unreliable"] is True
    assert len(leaky["unreliable_reasons"]) == 2
    assert "control did not reproduce" in leaky["unreliable_reasons"][0]
    assert leaky["unreliable_reasons"][1].startswith(
        "run 1's output names /home/u/proj/src/calc.py"
    )


# -- caveats: a different failure than the control's ------------------------------------------


def failing(*tests: str, result: str = "fail") -> dict[str, Any]:
    data = run(result)
    data["metrics"].update(runner="pytest", failing_tests=sorted(tests))
    return data


A, B, C = "tests/x.py::test_a", "tests/x.py::test_b", "tests/x.py::test_c"


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ([failing(A)], [failing(B)], f"it failed on {A}, the control on {B}"),
        ([failing(A, C)], [failing(A)], f"it failed on {A} and {C}, the control on {A}"),
        (
            [failing(A), failing(C)],
            [failing(A), failing(B)],
            f"on {A} and {C}, the control on {A} and {B}",
        ),
        ([failing(A)], [failing(A)], None),
        ([failing(A)], [failing(A, B)], None),  # a narrower test of the same failure
        ([failing(A)], [run("fail")], None),  # the control's runner lists nothing
        ([run("fail")], [failing(B)], None),
        ([failing(A), run("pass")], [], None),
        ([failing(A)], [failing()], None),  # a runner that read no id
    ],
)
def test_different_failure_reason(mine, theirs, expected):
    reason = different_failure_reason(mine, theirs)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
        assert reason.endswith(": maybe a different failure")


def test_different_failure_reason_lists_a_few_tests_and_counts_the_rest():
    tests = [f"tests/t.py::test_{i}" for i in range(6)]
    reason = different_failure_reason([failing(*tests)], [failing(B)])
    assert reason == (
        "it failed on tests/t.py::test_0, tests/t.py::test_1, tests/t.py::test_2 and 3 more,"
        f" the control on {B}: maybe a different failure"
    )


def test_a_hypothesis_that_failed_differently_is_flagged_not_changed():
    doc = session_doc(
        [
            hyp("other-test", 1, [failing(A), failing(A)]),
            hyp("same-test", 2, [failing(B)]),
            hyp("with-pattern", 3, [failing(A)], failure_pattern="ZeroDivisionError"),
            hyp("passes", 4, [run("pass")]),
        ],
        control(failing(B)),
    )
    out = analyze_session(doc)
    other, same, pattern, passes = out["hypotheses"]
    assert other["verdict"] == "supported"
    assert other["failed_differently"] is True
    assert other["unreliable"] is False
    assert other["reason"] == (
        "the test failed (bug reproduced) in 2 of 2 valid runs;"
        f" it failed on {A}, the control on {B}: maybe a different failure"
    )
    assert same["failed_differently"] is False
    assert pattern["failed_differently"] is False  # the plan's pattern decided already
    assert "maybe a different failure" not in pattern["reason"]
    assert passes["failed_differently"] is False


def test_without_a_control_nothing_failed_differently():
    out = analyze_session(session_doc([hyp("a", 1, [failing(A)])]))
    assert out["hypotheses"][0]["failed_differently"] is False


def test_the_caveat_keys_are_always_written():
    out = analyze_session(session_doc([hyp("a", 1, runs("pass"))]))
    caveats = {"unreliable", "unreliable_reasons", "names_checkout", "failed_differently"}
    assert caveats <= set(out["hypotheses"][0])


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
    assert _texts(rec)
    assert all(isinstance(step, dict) and step["text"] for step in rec["next_steps"])
    return rec


def test_recommend_fix_control_wins_over_everything():
    doc = session_doc(
        [hyp("a", 1, runs("timeout")), hyp("b", 2, runs("fail"))],
        control(run("pass")),
    )
    rec = recommendation(doc)
    assert rec["action"] == "fix_control"
    joined = " ".join(_texts(rec))
    run_control = next(s for s in rec["next_steps"] if s["action"] == "run_control")
    assert run_control["command"] == "pytest -x tests/test_session.py"
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
    steps = _texts(rec)
    assert any(s.startswith("Fix the test of slow-db") and "timeout (now 60 s)" in s for s in steps)
    assert any(s.startswith("Stabilise the test of cache-stale") and "67%" in s for s in steps)
    assert any(
        s.startswith("Fix the test of bad-cmd") and "program exists on PATH" in s for s in steps
    )
    assert any("Meanwhile supported: token-race" in s for s in steps)


def test_recommend_new_hypotheses_when_everything_was_falsified():
    doc = session_doc([hyp("a", 1, runs("pass")), hyp("b", 2, runs("pass", "pass"))])
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert rec["message"] == "No hypothesis survived (2 falsified)."
    joined = " ".join(_texts(rec))
    assert "ruled out: a and b" in joined
    assert "Add a control" in joined  # the plan had none


def test_recommend_new_hypotheses_with_a_control_does_not_suggest_adding_one():
    doc = session_doc([hyp("a", 1, runs("pass"))], control(run("fail")))
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert not any("Add a control" in s for s in _texts(rec))


def test_recommend_mentions_pending_hypotheses_to_resume():
    doc = session_doc([hyp("a", 1, runs("pass")), hyp("b", 2, [run("skip", not_run=True)])])
    rec = recommendation(doc)
    assert rec["action"] == "new_hypotheses"
    assert rec["message"] == "No hypothesis survived (1 falsified, 1 pending)."
    # The command beside the prose (every format shows it), not inside it as well.
    assert _texts(rec)[0] == "Resume the session to run the pending hypothesis: b."
    assert rec["next_steps"][0]["action"] == "resume"
    assert rec["next_steps"][0]["command"] == "refute resume 20261128T011500-3f9a2c"


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
    assert rec["message"] == "Focus on token-race: the only surviving hypothesis (confidence 0.27)."
    assert _texts(rec)[0].startswith("Focus on token-race: token-race is the cause")
    assert any("repeat: 5 for token-race" in s for s in _texts(rec))
    assert any("supported_if: passes" in s for s in _texts(rec))


def test_recommend_focus_on_a_confirmed_candidate_fix():
    survivor = hyp("fix", 1, runs("pass", "pass", "pass"), supported_if="passes", patch="fix.diff")
    rec = recommendation(session_doc([survivor]))
    assert rec["action"] == "focus"
    assert not any("repeat: 5" in s for s in _texts(rec))  # already 3 valid runs
    assert any("(fix.diff) made the reproduction pass" in s for s in _texts(rec))


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
    assert _texts(rec)[0].startswith("Write tests that separate a and b")
    assert _texts(rec)[1].startswith("Start with a,")
    assert any(s.startswith("Repeat the tests of b ") for s in _texts(rec))


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


def test_the_package_exports_the_same_names_from_its_modules():
    from refute import analysis  # noqa: PLC0415 - the package under test
    from refute.analysis import advice, caveats, statistics, verdicts  # noqa: PLC0415

    for module in (statistics, verdicts, caveats, advice):
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
        "Z_95_ONE_SIDED",
        "Evidence",
        "analyze_session",
        "checkout_paths",
        "checkout_reason",
        "confidence_bound",
        "control_verdict",
        "count_outcomes",
        "different_failure_reason",
        "hypothesis_verdict",
        "run_evidence",
        "seed_confidence",
        "session_exit_code",
        "wilson_interval",
    }
    assert analysis.wilson_interval is statistics.wilson_interval
    assert analysis.analyze_session is verdicts.analyze_session
    assert verdicts.recommend is advice.recommend


def _texts(rec: dict[str, Any]) -> list[str]:
    """The prose of a recommendation's next steps."""
    return [step["text"] if isinstance(step, dict) else step for step in rec["next_steps"]]


# -- advice that fits the failure, and interrupted sessions ---------------------------------


def failed_run(
    message: str, exit_code: int, failure: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An ERROR/TIMEOUT run as the engine records it (with `metrics.failure` when given)."""
    result = "timeout" if failure == "timeout" else "error"
    record = run(result)
    record.update(exit_code=exit_code, error_message=message, **extra)
    if failure is not None:
        record["metrics"]["failure"] = failure
    return record


@pytest.mark.parametrize(
    ("failure", "message", "exit_code", "action", "words", "command"),
    [
        (
            "patch",
            "patch fix.diff does not apply: error: patch failed: src/a.py:3",
            -1,
            "fix_patch",
            "patch does not apply",
            "git apply --check fix.diff",
        ),
        ("setup", "setup failed (exit 1)", -1, "fix_setup", "setup failed", "pip install -e ."),
        (
            "command",
            "test command not found: pytset",
            127,
            "fix_command",
            "exists on PATH",
            "pytest -x tests/test_h.py",
        ),
        (
            "harness",
            "pytest usage error (exit 4): file or directory not found",
            4,
            "fix_harness",
            "harness failed, not the test",
            "pytest -x tests/test_h.py",
        ),
        ("timeout", "killed by SIGKILL", -9, "raise_timeout", "timed out", None),
        (
            "pattern",
            "failed differently: exit 1, but the output does not match failure_pattern 'X'",
            1,
            "fix_pattern",
            "not the way the bug does",
            "pytest -x tests/test_h.py",
        ),
    ],
)
def test_each_failure_kind_gets_its_own_next_step(
    failure, message, exit_code, action, words, command
):
    bad = hyp(
        "h",
        2,
        [failed_run(message, exit_code, failure)],
        patch="fix.diff",
        test=["pytest", "-x", "tests/test_h.py"],
        timeout=30,
    )
    doc = session_doc([hyp("a", 1, runs("fail")), bad], control(run("fail")))
    doc["session"]["settings"] = {"setup": ["pip", "install", "-e", "."]}
    rec = recommendation(doc)
    assert rec["action"] == "fix_inconclusive"
    step = next(step for step in rec["next_steps"] if step.get("hypothesis") == "h")
    assert step["action"] == action
    assert words in step["text"]
    assert step["command"] == command
    # No other kind's advice leaks in: a patch that does not apply is not told about 126/127.
    others = [w for _, _, _, a, w, _ in _KINDS if a != action]
    assert not any(other in step["text"] for other in others)


_KINDS = [
    ("patch", "", 0, "fix_patch", "patch does not apply", None),
    ("setup", "", 0, "fix_setup", "setup failed", None),
    ("command", "", 0, "fix_command", "exists on PATH", None),
    ("harness", "", 0, "fix_harness", "harness failed, not the test", None),
    ("timeout", "", 0, "raise_timeout", "timed out", None),
    ("pattern", "", 0, "fix_pattern", "not the way the bug does", None),
]


def test_a_failure_kind_is_read_from_older_documents_without_metrics_failure():
    bad = hyp(
        "h", 2, [failed_run("patch fix.diff does not apply: hunk 1 failed", -1)], patch="fix.diff"
    )
    rec = recommendation(session_doc([bad], control(run("fail"))))
    step = next(step for step in rec["next_steps"] if step.get("hypothesis") == "h")
    assert step["action"] == "fix_patch"
    assert "126/127" not in step["text"]


def interrupted_doc() -> dict[str, Any]:
    doc = session_doc(
        [
            hyp("a", 1, [run("fail"), run("skip", not_run=True), run("skip", not_run=True)]),
            hyp("b", 2, runs("pass")),
        ],
        control(run("fail")),
    )
    doc["session"]["status"] = "interrupted"
    return doc


def test_an_interrupted_session_leaves_unfinished_hypotheses_pending_and_says_resume():
    out = analyze_session(interrupted_doc())
    a, b = out["hypotheses"]
    assert a["verdict"] == "pending"
    assert a["confidence"] == 0.0
    assert "unfinished: 1 of 3 runs finished" in a["reason"]
    assert "1 fail so far" in a["reason"]
    assert b["verdict"] == "falsified"  # it finished: its verdict stands
    rec = out["summary"]["recommendation"]
    assert rec["action"] == "resume"
    assert "refute resume 20261128T011500-3f9a2c" in rec["message"]
    assert "No hypothesis survived" not in rec["message"]
    first = rec["next_steps"][0]
    assert first["action"] == "resume"
    assert first["command"] == "refute resume 20261128T011500-3f9a2c"
    assert out["summary"]["counts"]["pending"] == 1


def test_a_completed_session_with_not_run_runs_keeps_its_verdicts():
    doc = interrupted_doc()
    doc["session"]["status"] = "completed"  # e.g. halted on purpose: not "unfinished"
    out = analyze_session(doc)
    assert out["hypotheses"][0]["verdict"] == "supported"
    assert out["summary"]["recommendation"]["action"] != "resume"


def test_an_interrupted_control_is_pending_too():
    doc = interrupted_doc()
    doc["control"]["runs"].append(run("skip", not_run=True))
    out = analyze_session(doc)
    assert out["control"]["verdict"] == "pending"
    assert "unfinished" in out["control"]["reason"]
    assert out["summary"]["recommendation"]["action"] == "resume"
