"""Runner awareness and `failure_pattern` in real sessions: harness failures are no evidence.

A small project with a real pytest suite; refute runs it through the CLI as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

from gitutil import make_repo
from refute.engine.runners import RUNNER_CHOICES
from refute.plan.fields import RunnerName

REFUTE = Path(sys.executable).parent / "refute"
TARGET = "tests/test_calc.py::test_add"
CALC = "def add(a, b):\n    return a - b\n"
TESTS = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 2) == 4\n\n\n"
    "def test_other():\n    assert True\n"
)
# A "fix" that breaks the import: with no failure_pattern it would look like a reproduction.
BREAKS_IMPORT = """\
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
-def add(a, b):
+def add(a, b)
     return a - b
"""


def test_the_plan_offers_exactly_the_runners_the_engine_knows():
    assert set(get_args(RunnerName)) == set(RUNNER_CHOICES)


def _run(repo: Path, plan: dict) -> dict:
    path = repo.parent / "plan.json"  # JSON: shared lists would become YAML anchors
    path.write_text(json.dumps(plan), encoding="utf-8")
    proc = subprocess.run(
        [str(REFUTE), "run", str(path), "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_pytest_usage_errors_are_inconclusive_not_supported(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    doc = _run(
        repo,
        {
            "version": 1,
            "bug": "add subtracts",
            "control": {"test": [*pytest, TARGET]},
            "hypotheses": [
                {
                    "id": "typo",
                    "description": "d",
                    "test": [*pytest, "tests/test_calc.py::test_ad"],
                },
                {"id": "empty-k", "description": "d", "test": [*pytest, "-k", "nomatch", "tests"]},
                {
                    "id": "real",
                    "description": "d",
                    "test": [*pytest, "tests/test_calc.py::test_add"],
                },
            ],
        },
    )
    verdicts = {h["id"]: h["verdict"] for h in doc["hypotheses"]}
    assert verdicts == {"typo": "inconclusive", "empty-k": "inconclusive", "real": "supported"}
    assert doc["control"]["verdict"] == "reproduced"
    typo = next(h for h in doc["hypotheses"] if h["id"] == "typo")
    [run] = typo["runs"]
    assert (run["result"], run["exit_code"]) == ("error", 4)
    assert run["metrics"]["runner"] == "pytest"
    real = next(h for h in doc["hypotheses"] if h["id"] == "real")
    assert real["runs"][0]["metrics"]["failing_tests"] == [TARGET]


def test_runner_none_keeps_the_plain_table(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    doc = _run(
        repo,
        {
            "version": 1,
            "bug": "b",
            "defaults": {"runner": "none"},
            "hypotheses": [
                {"id": "typo", "description": "d", "test": [*pytest, "tests/test_calc.py::test_ad"]}
            ],
        },
    )
    [hyp] = doc["hypotheses"]
    assert hyp["verdict"] == "supported"  # exit 4 read as "failed": what `none` asks for


def test_a_patch_that_breaks_the_import_fails_differently(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})
    test = [sys.executable, "-c", "from calc import add; assert add(2, 2) == 4"]
    doc = _run(
        repo,
        {
            "version": 1,
            "bug": "add subtracts",
            "defaults": {"failure_pattern": "AssertionError"},
            "control": {"test": test},
            "hypotheses": [
                {"id": "broken", "description": "d", "test": test, "patch_text": BREAKS_IMPORT},
                {"id": "plain", "description": "d", "test": test},
            ],
        },
    )
    by_id = {h["id"]: h for h in doc["hypotheses"]}
    assert by_id["plain"]["verdict"] == "supported"
    assert by_id["broken"]["verdict"] == "inconclusive"
    [run] = by_id["broken"]["runs"]
    assert run["result"] == "error"
    assert run["error_message"].startswith("failed differently")
    assert "SyntaxError" in run["stderr"]
