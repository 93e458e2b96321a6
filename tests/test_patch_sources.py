"""Patches without patch files: `patch_text`, `commit`, `revert`, and a per-hypothesis `base`.

Real repositories and real worktrees; each hypothesis' test reads a file in its worktree,
so a change that was not applied (or applied to the wrong commit) fails the assertion.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitutil import FILES, check_file_hyp, fingerprint, git, make_repo
from gitutil import isolation_config as _config
from refute.app import check
from refute.app.isolated import run_isolated
from refute.app.run import new_document
from refute.app.spec import spec_from_document
from refute.errors import PlanError, RepositoryError
from refute.model import Hypothesis, TestResult
from refute.plan import parse_plan


def _history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """main: v1 -> v2 (README says v2) -> v3 (adds notes.txt); returns the shas."""
    repo = make_repo(tmp_path / "repo", {**FILES, "README.md": "v1\n"})
    shas = {"v1": git(repo, "rev-parse", "HEAD").strip()}
    (repo / "README.md").write_text("v2\n", encoding="utf-8")
    git(repo, "commit", "-qam", "v2")
    shas["v2"] = git(repo, "rev-parse", "HEAD").strip()
    (repo / "notes.txt").write_text("notes\n", encoding="utf-8")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-qm", "v3")
    shas["v3"] = git(repo, "rev-parse", "HEAD").strip()
    return repo, shas


INLINE = """\
--- a/README.md
+++ b/README.md
@@ -1 +1 @@
-v2
+patched inline
"""


@pytest.mark.asyncio
async def test_each_patch_source_changes_only_its_own_worktree(tmp_path: Path):
    repo, shas = _history(tmp_path)
    before = fingerprint(repo)
    hyps = [
        check_file_hyp("inline", "README.md", "patched inline\n", patch_text=INLINE),
        # the base is v3 (HEAD); reverting v2 brings README back to v1
        check_file_hyp("revert-v2", "README.md", "v1\n", revert=shas["v2"]),
        # at base v1, applying v3's change adds notes.txt (README stays v1)
        check_file_hyp("pick-v3", "notes.txt", "notes\n", base=shas["v1"], commit=shas["v3"]),
        check_file_hyp("old-base", "README.md", "v1\n", base="HEAD~2"),
        check_file_hyp("plain", "README.md", "v2\n"),
    ]
    run = await run_isolated(repo, hyps, _config())
    outcomes = {r.hypothesis_id: r.result for r in run.results}
    assert outcomes == {
        "inline": TestResult.PASS,
        "revert-v2": TestResult.PASS,
        "pick-v3": TestResult.PASS,
        "old-base": TestResult.PASS,
        "plain": TestResult.PASS,
    }, [(r.hypothesis_id, r.error_message, r.stdout, r.stderr) for r in run.results]
    picked = Path(run.worktrees["pick-v3"])
    assert (picked / "README.md").read_text(encoding="utf-8") == "v1\n"
    assert fingerprint(repo) == before


@pytest.mark.asyncio
async def test_a_change_that_does_not_apply_is_that_hypothesis_error(tmp_path: Path):
    repo, shas = _history(tmp_path)
    bad_inline = INLINE.replace("-v2", "-something else")
    hyps = [
        check_file_hyp("inline", "README.md", "x", patch_text=bad_inline),
        # v3 added notes.txt; at base v3 applying v3 again cannot add it a second time
        check_file_hyp("pick-again", "notes.txt", "notes\n", commit=shas["v3"]),
        check_file_hyp("fine", "README.md", "v2\n"),
    ]
    run = await run_isolated(repo, hyps, _config())
    by_id = {r.hypothesis_id: r for r in run.results}
    assert by_id["fine"].result is TestResult.PASS
    assert by_id["inline"].result is TestResult.ERROR
    assert "inline patch_text does not apply" in by_id["inline"].error_message
    assert by_id["pick-again"].result is TestResult.ERROR
    assert f"commit {shas['v3'][:12]} does not apply" in by_id["pick-again"].error_message


@pytest.mark.asyncio
async def test_a_merge_commit_is_refused_with_a_reason(tmp_path: Path):
    repo, _ = _history(tmp_path)
    git(repo, "switch", "-q", "-c", "side", "HEAD~1")
    (repo / "side.txt").write_text("side\n", encoding="utf-8")
    git(repo, "add", "side.txt")
    git(repo, "commit", "-qm", "side")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "side")
    merge = git(repo, "rev-parse", "HEAD").strip()
    run = await run_isolated(
        repo, [check_file_hyp("m", "side.txt", "side\n", revert=merge)], _config()
    )
    [result] = run.results
    assert result.result is TestResult.ERROR
    assert "is a merge" in result.error_message


@pytest.mark.asyncio
@pytest.mark.parametrize("field", ["base", "commit", "revert"])
async def test_an_unknown_commit_is_bad_input_before_anything_runs(tmp_path: Path, field: str):
    repo, _ = _history(tmp_path)
    hyp = Hypothesis(id="h", description="", test=["true"], **{field: "no-such-ref"})
    with pytest.raises(RepositoryError, match=f"hypothesis 'h': {field}: bad base 'no-such-ref'"):
        await run_isolated(repo, [hyp], _config())
    assert git(repo, "worktree", "list").count("\n") == 1  # nothing was created


def test_at_most_one_patch_source_per_hypothesis():
    text = """version: 1
bug: b
hypotheses:
  - id: a
    description: d
    test: "true"
    patch_text: "x"
    revert: HEAD~1
"""
    with pytest.raises(PlanError, match=r"hypotheses\[0\]\.revert: give at most one patch source"):
        parse_plan(text)


@pytest.mark.asyncio
async def test_a_session_records_full_shas_and_a_resume_gets_the_same_changes(tmp_path: Path):
    """The refs a plan names are resolved once; the document (and so a resume) keeps shas."""
    repo, shas = _history(tmp_path)
    plan = tmp_path / "plan.json"
    hyps = [
        {"id": "rev", "description": "d", "test": "true", "revert": "HEAD~1"},
        {"id": "old", "description": "d", "test": "true", "base": "HEAD~2", "runner": "none"},
        {"id": "txt", "description": "d", "test": "true", "patch_text": INLINE},
    ]
    hyps[1]["failure_pattern"] = "boom"
    plan.write_text(json.dumps({"version": 1, "bug": "b", "hypotheses": hyps}), "utf-8")
    report = await check(plan, repo=repo)
    assert report.valid, report.findings
    doc = new_document(report.spec, "20261201T000000-abcdef")
    by_id = {h["id"]: h for h in doc["hypotheses"]}
    assert by_id["rev"]["revert"] == shas["v2"]
    assert by_id["old"]["base"] == shas["v1"]
    assert (by_id["old"]["runner"], by_id["old"]["failure_pattern"]) == ("none", "boom")
    assert by_id["txt"]["patch_text"] == INLINE
    assert "commit" not in by_id["rev"]  # fields a plan does not use are not written
    again = {h.id: h for h in spec_from_document(doc).hypotheses}
    assert again["rev"].revert == shas["v2"]
    assert again["old"].base == shas["v1"]
    assert (again["old"].runner, again["old"].failure_pattern) == ("none", "boom")
    assert again["txt"].patch_text == INLINE
