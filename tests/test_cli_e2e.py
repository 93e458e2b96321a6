"""End-to-end tests of the `refute` command line, run as a user runs it.

Every test starts the installed `refute` (the one beside the test interpreter) as a
subprocess, in a real git repository made in `tmp_path`, with a plan written by the test
(tests are `[sys.executable, "-c", ...]` argv lists, patches are made with `git diff`).
The conftest gives each test its own REFUTE_HOME and a process tag; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import refute
from conftest import kill_watchdog_of, live_tagged, wait_until_gone
from gitutil import fingerprint, git, make_repo, refute_worktrees
from refute import reports

REFUTE = Path(sys.executable).parent / "refute"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120.0  # seconds any single command may take, on a loaded machine
FORMATS = ("text", "json", "markdown", "junit", "html")

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
CHECK = "import sys\n\nimport calc\n\nsys.exit(0 if calc.add(2, 2) == 4 else 1)\n"

#: The full plan's hypotheses, in the order ranking must give (probabilities descend).
ORDER = ["subtracts", "fix-subtraction", "repeat-sign", "returns-string", "windows-only"]
EXPECTED = {
    "subtracts": "supported",  # its test exits 1
    "fix-subtraction": "supported",  # supported_if: passes, and the patch fixes the bug
    "repeat-sign": "supported",  # repeat: 3, every run exits 1
    "returns-string": "falsified",  # its test exits 0
    "windows-only": "inconclusive",  # its test exits 125
}
RUNS = {
    "subtracts": 1,
    "fix-subtraction": 1,
    "repeat-sign": 3,
    "returns-string": 1,
    "windows-only": 1,
}


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# -- running refute ---------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The test's environment (REFUTE_HOME, the tag, git identity), as a pipe would see it:
    no COLUMNS/LINES, so the output width is the one of `refute ... | less`."""
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


def refute_cli(
    *args: object,
    cwd: Path,
    timeout: float = TIMEOUT,
    exe: Path = REFUTE,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(exe), *map(str, args)],
        cwd=cwd,
        env={**cli_env(), **(env_extra or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def session_id_of(stderr: str) -> str:
    match = re.search(r"^refute: session (\S+)$", stderr, re.MULTILINE)
    assert match, f"no session line on stderr:\n{stderr}"
    return match.group(1)


def stored_sessions(home: Path) -> list[str]:
    """Session ids in the store (read-only), [] when there is no store at all."""
    db = home / "state" / "refute.sqlite3"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM sessions")]


def lease_states(home: Path) -> list[str]:
    leases = sorted((home / "cache" / "worktrees").glob("*/leases/*.json"))
    return [json.loads(path.read_text(encoding="utf-8"))["state"] for path in leases]


def registered_worktrees(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def refute_refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "refs/refute/").strip()


# -- the project under test -------------------------------------------------------------------


class _NoAliases(yaml.SafeDumper):
    """Plans must not contain anchors (refute refuses them): never emit any."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - the dumper's signature
        return True


@dataclass
class Project:
    root: Path
    repo: Path
    plans: Path
    home: Path

    def write_plan(self, name: str, plan: dict[str, Any]) -> Path:
        path = self.plans / name
        path.write_text(
            yaml.dump(plan, Dumper=_NoAliases, sort_keys=False, width=1000), encoding="utf-8"
        )
        return path

    def run(self, *args: object, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return refute_cli(*args, cwd=self.repo, timeout=timeout)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def make_project(tmp_path: Path) -> Project:
    """A repository whose add() subtracts, and beside it a plans directory with a candidate
    fix made the way a developer makes one: edit, `git diff`, restore."""
    repo = make_repo(tmp_path / "repo", {"calc.py": BUGGY, "check.py": CHECK})
    plans = tmp_path / "plans"
    plans.mkdir()
    (repo / "calc.py").write_text(FIXED, encoding="utf-8")
    (plans / "fix.diff").write_text(git(repo, "diff", "--no-color"), encoding="utf-8")
    git(repo, "checkout", "--", "calc.py")
    assert git(repo, "status", "--porcelain") == ""
    return Project(tmp_path, repo, plans, Path(os.environ["REFUTE_HOME"]))


def full_plan(*, control_reproduces: bool = True) -> dict[str, Any]:
    control = [sys.executable, "check.py"] if control_reproduces else py("raise SystemExit(0)")
    return {
        "version": 1,
        "bug": "add(2, 2) returns 0 instead of 4",
        "defaults": {"timeout": 60},
        "control": {"test": control},
        "hypotheses": [
            {
                "id": "returns-string",
                "description": "add() returns a string",
                "test": py(
                    "import sys, calc; sys.exit(1 if isinstance(calc.add(1, 2), str) else 0)"
                ),
                "probability": 0.6,
            },
            {
                "id": "windows-only",
                "description": "the bug only shows on Windows",
                "test": py("import sys; sys.exit(0 if sys.platform == 'win32' else 125)"),
                "probability": 0.1,
            },
            {
                "id": "subtracts",
                "description": "add() subtracts its arguments",
                "test": py("import sys, calc; sys.exit(1 if calc.add(2, 2) == 0 else 0)"),
                "probability": 0.9,
            },
            {
                "id": "fix-subtraction",
                "description": "the patch makes add() add; the reproduction then passes",
                "test": [sys.executable, "check.py"],
                "patch": "fix.diff",
                "supported_if": "passes",
                "probability": 0.8,
            },
            {
                "id": "repeat-sign",
                "description": "add(0, 5) gives -5, every time",
                "test": py("import sys, calc; sys.exit(1 if calc.add(0, 5) == -5 else 0)"),
                "repeat": 3,
                "probability": 0.7,
            },
        ],
    }


# -- checking reports -------------------------------------------------------------------------


def check_json_report(doc: dict[str, Any], *, reproduced: bool = True) -> None:
    jsonschema.validate(doc, reports.REPORT_JSON_SCHEMA)
    assert doc["session"]["status"] == "completed"
    assert [h["id"] for h in doc["hypotheses"]] == ORDER
    verdicts = {h["id"]: h["verdict"] for h in doc["hypotheses"]}
    if reproduced:
        assert verdicts == EXPECTED
        assert doc["control"]["verdict"] == "reproduced"
        assert doc["session"]["exit_code"] == 0
    for hyp in doc["hypotheses"]:
        assert len(hyp["runs"]) == RUNS[hyp["id"]], hyp["id"]
        assert sorted(r["metrics"]["attempt"] for r in hyp["runs"]) == list(
            range(1, RUNS[hyp["id"]] + 1)
        )
        assert not any(r["metrics"].get("not_run") for r in hyp["runs"])
    by_id = {h["id"]: h for h in doc["hypotheses"]}
    assert by_id["repeat-sign"]["counts"]["fail"] == 3
    assert by_id["repeat-sign"]["reproduction_rate"] == 1.0
    assert by_id["fix-subtraction"]["supported_if"] == "passes"
    assert by_id["fix-subtraction"]["patch"]
    assert [r["result"] for r in by_id["fix-subtraction"]["runs"]] == ["pass"]
    assert [r["exit_code"] for r in by_id["windows-only"]["runs"]] == [125]
    assert len(doc["control"]["runs"]) == 1


def check_junit_report(text: str, doc: dict[str, Any]) -> None:
    root = ET.fromstring(text)  # noqa: S314 - our own output, parsed to check it
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    # The control is a testcase too (issue 10, point 13); it reproduced, so it passed.
    assert [case.get("name") for case in cases] == ["control"] + [
        h["id"] for h in doc["hypotheses"]
    ]
    assert {child.tag for child in cases[0]} & {"failure", "error", "skipped"} == set()
    for case, hyp in zip(cases[1:], doc["hypotheses"], strict=True):
        children = {child.tag for child in case} & {"failure", "error", "skipped"}
        if hyp["verdict"] == "falsified":
            assert children == set(), hyp["id"]
        elif hyp["verdict"] == "supported":
            assert children == {"failure"}, hyp["id"]
            assert case.find("failure").get("type") == "supported"  # type: ignore[union-attr]
        elif hyp["verdict"] == "inconclusive":
            assert len(children) == 1, hyp["id"]
            assert children <= {"skipped", "error"}, hyp["id"]
        else:  # pragma: no cover - the plans here give only those three
            pytest.fail(f"unexpected verdict {hyp['verdict']}")
    counts = doc["summary"]["counts"]
    assert int(suites[0].get("tests", "-1")) == len(doc["hypotheses"]) + 1
    assert int(suites[0].get("failures", "-1")) == counts["supported"] + counts["flaky"]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.iter()

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.unmatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {key: value or "" for key, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if self.stack[-1].tag == tag:
            self.stack.pop()
        else:
            self.unmatched.append(tag)


def parse_html(text: str) -> Node:
    tree = _Tree()
    tree.feed(text)
    tree.close()
    assert tree.unmatched == [], f"unbalanced end tags: {tree.unmatched}"
    assert [node.tag for node in tree.stack] == ["#document"], "unclosed elements"
    return tree.root


def check_html_report(text: str, doc: dict[str, Any]) -> None:
    root = parse_html(text)
    nodes = list(root.iter())
    # Self-contained: no script, no stylesheet link, no URL out of the page.
    assert not [n for n in nodes if n.tag in {"script", "link", "img", "iframe"}]
    for node in nodes:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if name in node.attrs:
                assert node.attrs[name].startswith("#"), f"{node.tag} {name}={node.attrs[name]}"
        assert not any("://" in value for value in node.attrs.values()), node.attrs
    # One section per hypothesis with its verdict.
    for hyp in doc["hypotheses"]:
        section = next(n for n in nodes if n.attrs.get("id") == f"hyp-{hyp['id']}")
        assert any(f"v-{hyp['verdict']}" in n.classes for n in section.iter()), hyp["id"]
    # The timeline: one lane per slot in slot order, one box per run, in its slot's lane.
    runs = [*doc["control"]["runs"], *(r for h in doc["hypotheses"] for r in h["runs"])]
    placed = [r for r in runs if "slot" in r["metrics"] and r["started_at"] > 0]
    assert len(placed) == len(runs)  # every run here started and held a slot
    slots = sorted({r["metrics"]["slot"] for r in placed})
    timeline = [n for n in nodes if "timeline" in n.classes]
    assert len(timeline) == 1
    lanes = [n for n in timeline[0].iter() if "lane" in n.classes]
    assert [int(lane.attrs["data-slot"]) for lane in lanes] == slots
    boxes: dict[str, int] = {}
    for lane in lanes:
        for node in lane.iter():
            if "run" in node.classes:
                assert node.attrs["id"] not in boxes
                boxes[node.attrs["id"]] = int(lane.attrs["data-slot"])
                assert "left:" in node.attrs["style"]
                assert "width:" in node.attrs["style"]
    expected = {f"run-{r['hypothesis_id']}-{r['metrics']['attempt']}": r for r in placed}
    assert set(boxes) == set(expected)
    for box, slot in boxes.items():
        assert expected[box]["metrics"]["slot"] == slot, box


def check_markdown_report(text: str, doc: dict[str, Any]) -> None:
    assert text.startswith("## refute: add")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if re.match(r"^\|\s*\d+\s*\|", line)
    ]
    assert [row[1] for row in rows] == [h["id"] for h in doc["hypotheses"]]
    # The verdict cell: the verdict, then (after <br>) what it means.
    verdicts = [row[3].split("<br>")[0].strip("*") for row in rows]
    assert verdicts == [h["verdict"] for h in doc["hypotheses"]]
    assert text.count("<details>") == len(doc["hypotheses"]) + 1  # and the control


def check_text_report(text: str, doc: dict[str, Any]) -> None:
    assert "\x1b[" not in text
    rows = re.findall(r"^\s*(\d+)\s+(\S+)\s+([A-Z]+)\b", text, re.MULTILINE)
    assert [(int(rank), hid) for rank, hid, _ in rows] == [
        (h["rank"], h["id"]) for h in doc["hypotheses"]
    ]
    assert [verdict.lower() for _, _, verdict in rows] == [h["verdict"] for h in doc["hypotheses"]]
    assert doc["session"]["id"] in text


def check_report(fmt: str, text: str, doc: dict[str, Any]) -> None:
    if fmt == "json":
        parsed = json.loads(text)
        check_json_report(parsed)
        assert parsed == doc
    elif fmt == "junit":
        check_junit_report(text, doc)
    elif fmt == "html":
        check_html_report(text, doc)
    elif fmt == "markdown":
        check_markdown_report(text, doc)
    else:
        check_text_report(text, doc)


def check_progress(stderr: str, doc: dict[str, Any]) -> None:
    """Not a terminal: plain progress lines on stderr, one started/finished per run."""
    assert "\x1b[" not in stderr
    assert f"refute: session {doc['session']['id']}" in stderr
    for hyp in [*doc["hypotheses"], {"id": "control", "runs": doc["control"]["runs"]}]:
        started = re.findall(
            rf"\] started\s+{re.escape(hyp['id'])} \(run \d+/\d+\)$", stderr, re.MULTILINE
        )
        finished = re.findall(rf"\] finished\s+{re.escape(hyp['id'])}: ", stderr, re.MULTILINE)
        assert len(started) == len(hyp["runs"]), (hyp["id"], stderr)
        assert len(finished) == len(hyp["runs"]), (hyp["id"], stderr)


def assert_renders(output: str, doc: dict[str, Any], fmt: str) -> None:
    """`output` is `doc` rendered in `fmt` (JSON: the same document; key order is free)."""
    if fmt == "json":
        assert json.loads(output) == doc
        return
    rendered = reports.render(doc, fmt)
    assert output == (rendered if rendered.endswith("\n") else rendered + "\n"), fmt


def stored_json(project: Project, session_id: str) -> dict[str, Any]:
    shown = project.run("show", session_id, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    doc: dict[str, Any] = json.loads(shown.stdout)
    return doc


# -- refute run ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_run_reports_in_every_format(project: Project, fmt: str) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    before = fingerprint(project.repo)
    proc = project.run("run", plan, "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert fingerprint(project.repo) == before
    doc = stored_json(project, session_id_of(proc.stderr))
    check_json_report(doc)
    check_progress(proc.stderr, doc)
    check_report(fmt, proc.stdout, doc)
    # What the run printed is the stored session rendered in that format.
    assert_renders(proc.stdout, doc, fmt)
    assert lease_states(project.home)
    assert set(lease_states(project.home)) == {"free"}
    assert refute_refs(project.repo) == ""


def test_run_json_stdout_is_only_the_document(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    before = fingerprint(project.repo)
    proc = project.run("run", plan, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole stdout, nothing else
    check_json_report(doc)
    assert doc["session"]["id"] == session_id_of(proc.stderr)
    assert doc["session"]["repo"] == str(project.repo.resolve())
    assert doc["session"]["plan_path"] == str(plan.resolve())
    assert doc["session"]["base"]["sha"] == git(project.repo, "rev-parse", "HEAD").strip()
    check_progress(proc.stderr, doc)
    assert fingerprint(project.repo) == before
    assert stored_sessions(project.home) == [doc["session"]["id"]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_run_output_file_in_every_format(project: Project, fmt: str) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    out = project.root / "reports" / f"report.{fmt}"
    out.parent.mkdir()
    before = fingerprint(project.repo)
    proc = project.run("run", plan, "--format", fmt, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert fingerprint(project.repo) == before
    assert f"report written to {out}" in proc.stderr
    doc = stored_json(project, session_id_of(proc.stderr))
    check_report(fmt, out.read_text(encoding="utf-8"), doc)
    # docs/cli.md: "-o, --output FILE  write the report to FILE instead of stdout".
    assert proc.stdout == ""


def test_run_control_not_reproduced_with_no_halt_runs_everything_and_exits_3(
    project: Project,
) -> None:
    plan = project.write_plan("plan.yaml", full_plan(control_reproduces=False))
    before = fingerprint(project.repo)
    proc = project.run("run", plan, "--format", "json", "--no-halt")
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    check_json_report(doc, reproduced=False)
    assert doc["control"]["verdict"] == "not_reproduced"
    assert doc["session"]["exit_code"] == 3
    assert all(h["unreliable"] is True for h in doc["hypotheses"])
    assert doc["summary"]["recommendation"]["action"] == "fix_control"
    # The verdicts themselves are still given, only marked.
    assert {h["id"]: h["verdict"] for h in doc["hypotheses"]} == EXPECTED
    assert fingerprint(project.repo) == before
    text = project.run("show", doc["session"]["id"])
    assert text.returncode == 0, text.stderr
    assert "unreliable" in text.stdout


def test_a_control_that_passes_halts_the_session_in_seconds(project: Project) -> None:
    """Control first, halt early: hypotheses that would sleep 60 s are stopped at once."""
    sleepy = py("import time; time.sleep(60)")
    plan = project.write_plan(
        "plan.yaml",
        {
            "version": 1,
            "bug": "b",
            "control": {"test": py("raise SystemExit(0)")},
            "hypotheses": [
                {"id": f"slow-{i}", "description": "sleeps", "test": sleepy} for i in range(3)
            ],
        },
    )
    start = time.monotonic()
    proc = project.run("run", plan, "--format", "json", "-j", "4")
    elapsed = time.monotonic() - start
    assert proc.returncode == 3, proc.stderr
    assert elapsed < 40, f"{elapsed:.1f}s: the 60 s tests were not stopped"
    assert "the control did not reproduce the bug" in proc.stderr
    assert "--no-halt" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["control"]["verdict"] == "not_reproduced"
    runs = [run for hyp in doc["hypotheses"] for run in hyp["runs"]]
    assert runs
    assert all(run["metrics"].get("not_run") for run in runs)


# -- check, show, history, schema, clean, help, version ---------------------------------------


def test_check_lists_every_problem_and_run_refuses_before_anything(project: Project) -> None:
    (project.plans / "stale.diff").write_text(
        "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-nothing like this\n+x\n",
        encoding="utf-8",
    )
    plan = project.write_plan(
        "plan.yaml",
        {
            "version": 1,
            "bug": "b",
            "setup": "pip install -e . && echo done",
            "hypotheses": [
                {"id": "stale", "description": "d", "test": py("pass"), "patch": "stale.diff"},
                {"id": "typo", "description": "d", "test": ["pytets", "-x"]},
                {"id": "no-test", "description": "no test and no seed script"},
            ],
        },
    )
    before = fingerprint(project.repo)
    proc = project.run("check", plan)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("refute: error: ")]
    assert any("setup:" in line and "'&&'" in line and "shell: true" in line for line in errors)
    assert any("(stale).patch:" in line and "does not apply" in line for line in errors)
    assert any("(no-test).test:" in line and "test_no-test.sh" in line for line in errors)
    # With a setup, a missing command is a warning: the setup may install it.
    assert any("(typo).test" in line and "pytets" in line for line in proc.stderr.splitlines())
    assert "Traceback" not in proc.stderr
    as_json = project.run("check", plan, "--format", "json")
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["valid"] is False
    assert {p["hypothesis"] for p in data["problems"]} >= {"stale", "no-test", None}
    run = project.run("run", plan)
    assert run.returncode == 2
    assert "does not apply" in run.stderr
    history = project.run("history")
    assert "no sessions yet" in history.stdout  # nothing was created
    assert fingerprint(project.repo) == before


def test_check_without_setup_a_missing_command_is_an_error(project: Project) -> None:
    plan = project.write_plan(
        "plan.yaml",
        {
            "version": 1,
            "bug": "b",
            "hypotheses": [{"id": "typo", "description": "d", "test": ["pytets", "-x"]}],
        },
    )
    proc = project.run("check", plan)
    assert proc.returncode == 2, proc.stderr
    assert "(typo).test: command 'pytets' not found on PATH" in proc.stderr


def test_check_runs_nothing(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    before = fingerprint(project.repo)
    proc = project.run("check", plan)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout
    assert re.search(r"^estimate: \d+ runs \(", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"\d+ at a time", " ".join(proc.stdout.split())), proc.stdout
    assert "control (on the unmodified base" in proc.stdout
    assert "would run" in proc.stdout
    assert "started" not in proc.stderr
    # Nothing ran and nothing was made.
    assert fingerprint(project.repo) == before
    assert registered_worktrees(project.repo) == [str(project.repo.resolve())]
    assert refute_worktrees(project.repo, project.home) == []
    assert stored_sessions(project.home) == []
    assert not (project.home / "state" / "refute.sqlite3").exists()
    assert not list((project.home / "cache").glob("worktrees/*/slots/*"))
    assert not list((project.home / "state").glob("logs/*"))


def check_rows(stdout: str) -> list[tuple[int, str]]:
    """(rank, id) of each row of `refute check`'s table, top to bottom."""
    rows = re.findall(r"^\W\s*(\d+)\s+\W\s+([a-z0-9][a-z0-9._-]*)\s+\W", stdout, re.MULTILINE)
    return [(int(rank), hid) for rank, hid in rows]


def test_check_shows_the_ranked_order(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    proc = project.run("check", plan)
    assert proc.returncode == 0, proc.stderr
    assert check_rows(proc.stdout) == list(enumerate(ORDER, start=1)), proc.stdout
    # --max-hypotheses keeps the best ones and says which were dropped.
    capped = project.run("check", plan, "--max-hypotheses", "3")
    assert capped.returncode == 0, capped.stderr
    assert check_rows(capped.stdout) == list(enumerate(ORDER[:3], start=1)), capped.stdout
    assert "dropped by max_hypotheses: returns-string, windows-only" in capped.stdout
    # A dependency runs first: fix-subtraction now waits for returns-string.
    dependent = full_plan()
    for hyp in dependent["hypotheses"]:
        if hyp["id"] == "fix-subtraction":
            hyp["depends_on"] = ["returns-string"]
    ordered = project.run("check", project.write_plan("deps.yaml", dependent))
    assert ordered.returncode == 0, ordered.stderr
    expected = ["subtracts", "repeat-sign", "returns-string", "fix-subtraction", "windows-only"]
    assert [hid for _, hid in check_rows(ordered.stdout)] == expected, ordered.stdout
    assert stored_sessions(project.home) == []


def test_run_options_override_the_plan(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    before = fingerprint(project.repo)
    proc = project.run(
        "run", plan, "--format", "json", "--repeat", "2", "--no-parallel", "-j", "3",
        "--timeout", "30", "--max-hypotheses", "4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, reports.REPORT_JSON_SCHEMA)
    settings = doc["session"]["settings"]
    assert settings["concurrency"] == 1
    assert settings["parallel"] is False
    assert settings["timeout"] == 30
    assert settings["repeat"] == 2
    assert settings["max_hypotheses"] == 4
    assert [h["id"] for h in doc["hypotheses"]] == ORDER[:4]
    for hyp in doc["hypotheses"]:
        assert hyp["repeat"] == 2, hyp["id"]
        assert hyp["timeout"] == 30, hyp["id"]
        assert len(hyp["runs"]) == 2, hyp["id"]
        assert hyp["verdict"] == EXPECTED[hyp["id"]], hyp["id"]
    assert len(doc["control"]["runs"]) == 2
    runs = [*doc["control"]["runs"], *(r for h in doc["hypotheses"] for r in h["runs"])]
    assert {r["metrics"]["slot"] for r in runs} == {0}  # one at a time
    assert fingerprint(project.repo) == before


def test_plan_text_is_never_read_as_markup(project: Project) -> None:
    """A plan's words are shown as written, even when they look like rich markup."""
    bug = "values[i] are [bold]wrong[/bold]; [/x] closes nothing"
    plan_doc = full_plan()
    plan_doc["bug"] = bug
    plan = project.write_plan("plan.yaml", plan_doc)
    checked = project.run("check", plan)
    assert checked.returncode == 0, checked.stderr
    assert bug in checked.stdout
    ran = project.run("run", plan)
    assert ran.returncode == 0, ran.stderr
    assert bug in ran.stdout
    history = project.run("history")
    assert history.returncode == 0, history.stderr
    assert bug in history.stdout


def test_include_uncommitted_leaves_the_checkout_alone(project: Project) -> None:
    repo = project.repo
    with open(repo / "calc.py", "a", encoding="utf-8") as handle:
        handle.write("# work in progress\n")
    (repo / "staged.txt").write_text("staged\n", encoding="utf-8")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n", encoding="utf-8")
    sees = (
        "import pathlib, sys\n"
        "wip = '# work in progress' in pathlib.Path('calc.py').read_text()\n"
        "others = pathlib.Path('staged.txt').exists() and pathlib.Path('untracked.txt').exists()\n"
        "sys.exit(1 if wip and others else 0)\n"
    )
    plan = project.write_plan(
        "wip.yaml",
        {
            "version": 1,
            "bug": "only with my uncommitted work",
            "include_uncommitted": True,
            "hypotheses": [
                {"id": "sees-wip", "description": "the worktree has my work", "test": py(sees)}
            ],
        },
    )
    before = fingerprint(repo)
    proc = project.run("run", plan, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["hypotheses"][0]["verdict"] == "supported"
    base = doc["session"]["base"]
    assert base["include_uncommitted"] is True
    assert base["snapshot_of"] == git(repo, "rev-parse", "HEAD").strip()
    assert base["sha"] != base["snapshot_of"]
    assert fingerprint(repo) == before
    assert refute_refs(repo) == ""
    assert "nothing to clean" in project.run("clean", "--dry-run").stdout


def test_show_renders_the_stored_session_in_every_format(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    ran = project.run("run", plan, "--format", "json")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    session = doc["session"]["id"]
    before = fingerprint(project.repo)
    latest = project.run("show")  # the latest session of this repository
    assert latest.returncode == 0, latest.stderr
    assert f"session {session}, status completed" in latest.stdout
    check_text_report(latest.stdout, doc)
    prefix = session[: len(session) - 3]
    for fmt in FORMATS:
        shown = project.run("show", prefix, "--format", fmt)
        assert shown.returncode == 0, (fmt, shown.stderr)
        assert shown.stderr == ""
        check_report(fmt, shown.stdout, doc)
        assert_renders(shown.stdout, doc, fmt)
    shown = json.loads(project.run("show", prefix, "--format", "json").stdout)
    assert {h["id"]: h["verdict"] for h in shown["hypotheses"]} == EXPECTED
    assert shown == doc
    # Showing, from anywhere with --repo, changes nothing.
    elsewhere = refute_cli("show", "--repo", project.repo, "--format", "json", cwd=project.root)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert json.loads(elsewhere.stdout) == doc
    assert fingerprint(project.repo) == before
    assert stored_sessions(project.home) == [session]


def _two_sessions(project: Project) -> list[str]:
    ids = []
    for name, reproduces, code in (("first.yaml", True, 0), ("second.yaml", False, 3)):
        plan = project.write_plan(name, full_plan(control_reproduces=reproduces))
        proc = project.run("run", plan, "--format", "json")
        assert proc.returncode == code, proc.stderr
        ids.append(json.loads(proc.stdout)["session"]["id"])
    return ids


def test_history_lists_the_sessions(project: Project, tmp_path: Path) -> None:
    _two_sessions(project)
    proc = project.run("history")
    assert proc.returncode == 0, proc.stderr
    assert "no sessions yet" not in proc.stdout
    assert len(re.findall(r"\bcompleted\b", proc.stdout)) == 2
    # Another repository has no sessions of its own; --all shows every repository's.
    other = make_repo(tmp_path / "other")
    alone = refute_cli("history", cwd=other)
    assert alone.returncode == 0, alone.stderr
    assert "no sessions yet" in alone.stdout
    everything = refute_cli("history", "--all", cwd=other)
    assert everything.returncode == 0, everything.stderr
    assert len(re.findall(r"\bcompleted\b", everything.stdout)) == 2


def test_history_shows_whole_session_ids_newest_first(project: Project) -> None:
    first, second = _two_sessions(project)
    proc = project.run("history")
    assert proc.returncode == 0, proc.stderr
    # The ids are what `refute show ID` and `refute resume ID` take: they must be whole.
    assert first in proc.stdout, proc.stdout
    assert second in proc.stdout, proc.stdout
    assert proc.stdout.index(second) < proc.stdout.index(first)


def test_schema_validates_the_plan(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    proc = refute_cli("schema", cwd=project.root)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    written = yaml.safe_load(plan.read_text(encoding="utf-8"))
    jsonschema.validate(written, schema)
    # ... and refuses what the loader refuses: an id that YAML reads as false.
    written["hypotheses"][0]["id"] = False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(written, schema)
    assert proc.stdout == refute_cli("schema", "--plan", cwd=project.root).stdout


def test_schema_report_validates_a_run(project: Project) -> None:
    proc = refute_cli("schema", "--report", cwd=project.root)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema == reports.REPORT_JSON_SCHEMA
    jsonschema.Draft202012Validator.check_schema(schema)
    plan = project.write_plan("plan.yaml", full_plan())
    ran = project.run("run", plan, "--format", "json")
    assert ran.returncode == 0, ran.stderr
    jsonschema.validate(json.loads(ran.stdout), schema)


def test_clean_after_a_normal_run_keeps_the_warm_pool(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    assert project.run("run", plan).returncode == 0
    pool = sorted(refute_worktrees(project.repo, project.home))
    assert pool
    before = fingerprint(project.repo)
    for args in (("clean", "--dry-run"), ("clean",)):
        proc = project.run(*args)
        assert proc.returncode == 0, proc.stderr
        assert "nothing to clean" in proc.stdout
        assert proc.stdout.count("(free pool slot)") == len(pool)
        assert sorted(refute_worktrees(project.repo, project.home)) == pool
    assert set(lease_states(project.home)) == {"free"}
    assert fingerprint(project.repo) == before


def _sleeping_test(
    project: Project, name: str, code: int, *, ignore_term: bool = False
) -> list[str]:
    """A test that, while the marker file exists, says it is ready then sleeps 30 s."""
    marker = project.root / "marker"
    ready = project.root / "ready" / name
    lines = [
        "import os, signal, sys, time",
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)" if ignore_term else "",
        f"if os.path.exists({str(marker)!r}):",
        f"    open({str(ready)!r}, 'w').close()",
        "    time.sleep(30)",
        f"sys.exit({code})",
    ]
    return py("\n".join(lines))


def sleeping_plan(project: Project) -> dict[str, Any]:
    (project.root / "ready").mkdir(exist_ok=True)
    (project.root / "marker").write_text("sleep\n", encoding="utf-8")
    return {
        "version": 1,
        "bug": "a slow bug",
        "concurrency": 5,  # every run at once (quick twice), whatever `auto` gives here
        "defaults": {"timeout": 120},
        "control": {"test": _sleeping_test(project, "control", 1)},
        "hypotheses": [
            {
                "id": "sleeper",
                "description": "sleeps, then reproduces",
                "test": _sleeping_test(project, "sleeper", 1),
                "probability": 0.9,
            },
            {
                "id": "stubborn",
                "description": "ignores SIGTERM while it sleeps, then passes",
                "test": _sleeping_test(project, "stubborn", 0, ignore_term=True),
                "probability": 0.8,
            },
            {
                "id": "quick",
                "description": "reproduces at once, twice",
                "test": py("raise SystemExit(1)"),
                "repeat": 2,
                "probability": 0.1,
            },
        ],
    }


SLEEPERS = ("control", "sleeper", "stubborn")


@contextlib.contextmanager
def background_run(project: Project, plan: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`refute run plan --format json` in the background; yields it and its stderr file once
    every sleeping test has said it is ready (so SIGTERM is already ignored where it is)."""
    stderr_path = project.root / "run.stderr"
    with (
        open(stderr_path, "w", encoding="utf-8") as err,
        open(project.root / "run.stdout", "w", encoding="utf-8") as out,
    ):
        proc = subprocess.Popen(
            [str(REFUTE), "run", str(plan), "--format", "json"],
            cwd=project.repo,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not all((project.root / "ready" / name).exists() for name in SLEEPERS):
            assert proc.poll() is None, stderr_path.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, stderr_path.read_text(encoding="utf-8")
            time.sleep(0.05)
        yield proc, stderr_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen[str], *, count: int = 1) -> None:
    """Wait until `pattern` matches `count` lines of the file `path` (refute's stderr)."""
    deadline = time.monotonic() + 60
    while len(re.findall(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)) < count:
        assert proc.poll() is None, path.read_text(encoding="utf-8")
        assert time.monotonic() < deadline, path.read_text(encoding="utf-8")
        time.sleep(0.02)


def assert_nothing_left(project: Project, tag: str, before: dict[str, object]) -> None:
    assert live_tagged(tag) == []
    states = lease_states(project.home)
    assert states
    assert set(states) == {"free"}, states
    assert refute_refs(project.repo) == ""
    assert fingerprint(project.repo) == before


def test_ctrl_c_then_resume(project: Project, test_tag: str) -> None:
    plan = project.write_plan("slow.yaml", sleeping_plan(project))
    before = fingerprint(project.repo)
    with background_run(project, plan) as (proc, stderr_path):
        wait_for_line(stderr_path, r"finished\s+quick: fail", proc, count=2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert time.monotonic() - sent < 60
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr
    session = session_id_of(stderr)
    assert f"refute resume {session}" in stderr
    assert (project.root / "run.stdout").read_text(encoding="utf-8") == ""
    assert_nothing_left(project, test_tag, before)

    interrupted = stored_json(project, session)
    assert interrupted["session"]["status"] == "interrupted"
    assert interrupted["session"]["exit_code"] == 130
    by_id = {h["id"]: h for h in interrupted["hypotheses"]}
    assert [r["result"] for r in by_id["quick"]["runs"]] == ["fail", "fail"]
    assert by_id["sleeper"]["counts"]["not_run"] == 1
    assert by_id["stubborn"]["counts"]["not_run"] == 1
    assert interrupted["control"]["counts"]["not_run"] == 1
    # Unfinished means pending, with "resume" as the advice, never final verdicts.
    assert by_id["quick"]["verdict"] == "supported"  # it finished: its verdict stands
    assert by_id["sleeper"]["verdict"] == by_id["stubborn"]["verdict"] == "pending"
    advice = interrupted["summary"]["recommendation"]
    assert advice["action"] == "resume"
    assert advice["next_steps"][0]["command"] == f"refute resume {session}"
    shown = project.run("show", session)
    assert "PENDING" in shown.stdout
    assert f"$ refute resume {session}" in shown.stdout

    # The sleeping tests now finish at once: resume runs exactly what did not finish.
    (project.root / "marker").unlink()
    resumed = project.run("resume", session, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    jsonschema.validate(doc, reports.REPORT_JSON_SCHEMA)
    assert doc["session"]["id"] == session
    assert doc["session"]["status"] == "completed"
    assert doc["session"]["exit_code"] == 0
    for hyp in doc["hypotheses"]:
        assert len(hyp["runs"]) == hyp["repeat"], hyp["id"]
        assert hyp["counts"]["not_run"] == 0, hyp["id"]
    assert {h["id"]: h["verdict"] for h in doc["hypotheses"]} == {
        "sleeper": "supported",
        "stubborn": "falsified",
        "quick": "supported",
    }
    assert doc["control"]["verdict"] == "reproduced"
    assert [r["result"] for r in doc["control"]["runs"]] == ["fail"]
    # Only the unfinished runs ran again: quick's two runs are the interrupted session's.
    assert re.findall(r"started\s+(\S+) \(run", resumed.stderr).count("quick") == 0
    assert_nothing_left(project, test_tag, before)

    shown = project.run("show")
    assert shown.returncode == 0, shown.stderr
    assert f"session {session}, status completed" in shown.stdout
    assert stored_sessions(project.home) == [session]


def test_ctrl_c_twice_during_cleanup(project: Project, test_tag: str) -> None:
    plan = project.write_plan("slow.yaml", sleeping_plan(project))
    before = fingerprint(project.repo)
    with background_run(project, plan) as (proc, stderr_path):
        proc.send_signal(signal.SIGINT)
        # The cleanup has begun (the plain sleeper is stopped) but the stubborn test is
        # still inside its SIGTERM grace period: press Ctrl-C again, twice.
        wait_for_line(stderr_path, r"finished\s+sleeper: not run", proc)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr
    assert re.search(r"finished\s+stubborn: not run", stderr), stderr
    assert "interrupted, cleaned up" in stderr
    assert_nothing_left(project, test_tag, before)
    doc = stored_json(project, session_id_of(stderr))
    assert doc["session"]["status"] == "interrupted"


def test_sigterm_stops_like_ctrl_c(project: Project, test_tag: str) -> None:
    plan = project.write_plan("slow.yaml", sleeping_plan(project))
    before = fingerprint(project.repo)
    with background_run(project, plan) as (proc, stderr_path):
        proc.terminate()
        assert proc.wait(timeout=60) == 130
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr
    assert "interrupted, cleaned up" in stderr
    assert_nothing_left(project, test_tag, before)
    assert stored_json(project, session_id_of(stderr))["session"]["status"] == "interrupted"


def slots_by_state(project: Project) -> dict[str, list[str]]:
    """The pool's slot paths (resolved), grouped by their lease's state."""
    grouped: dict[str, list[str]] = {}
    for lease in sorted((project.home / "cache" / "worktrees").glob("*/leases/*.json")):
        state = json.loads(lease.read_text(encoding="utf-8"))["state"]
        slot = lease.parent.parent / "slots" / lease.stem
        grouped.setdefault(state, []).append(str(slot.resolve()))
    return grouped


def resolved(paths: list[str]) -> list[str]:
    return sorted(str(Path(path).resolve()) for path in paths)


def test_clean_after_refute_was_killed(project: Project, test_tag: str) -> None:
    plan = project.write_plan("slow.yaml", sleeping_plan(project))
    before = fingerprint(project.repo)
    with background_run(project, plan) as (proc, _):
        kill_watchdog_of(proc.pid)  # what `clean` is for: refute's watchdog died with it
        proc.kill()  # SIGKILL: refute cannot clean anything up
        proc.wait(timeout=60)
    orphans = {p.pid for p in live_tagged(test_tag)}
    assert len(orphans) == len(SLEEPERS)
    slots = slots_by_state(project)
    leased = slots.get("leased", [])
    free = slots.get("free", [])
    assert len(leased) >= len(SLEEPERS), slots  # quick's may still be held too
    pool = resolved(refute_worktrees(project.repo, project.home))
    assert pool == sorted(leased + free)

    dry = project.run("clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    would_remove = resolved(re.findall(r"^would remove worktree (.+)$", dry.stdout, re.MULTILINE))
    would_stop = {
        int(pid) for pid in re.findall(r"^would stop process (\d+)$", dry.stdout, re.MULTILINE)
    }
    assert would_stop == orphans
    assert would_remove == sorted(leased)
    # A dry run changes nothing.
    assert {p.pid for p in live_tagged(test_tag)} == orphans
    assert resolved(refute_worktrees(project.repo, project.home)) == pool
    assert slots_by_state(project) == slots

    done = project.run("clean")
    assert done.returncode == 0, done.stderr
    assert (
        resolved(re.findall(r"^removed worktree (.+)$", done.stdout, re.MULTILINE)) == would_remove
    )
    stopped = {
        int(pid) for pid in re.findall(r"^stopped process (\d+)$", done.stdout, re.MULTILINE)
    }
    assert stopped == orphans
    assert wait_until_gone(test_tag, timeout=10) == []
    # Only the warm pool's free slots remain.
    assert resolved(refute_worktrees(project.repo, project.home)) == sorted(free)
    assert set(lease_states(project.home)) <= {"free"}
    assert refute_refs(project.repo) == ""
    assert fingerprint(project.repo) == before
    again = project.run("clean")
    assert again.returncode == 0, again.stderr
    assert "nothing to clean" in again.stdout


def test_help_mentions_the_exit_codes(tmp_path: Path) -> None:
    proc = refute_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Exit codes" in proc.stdout
    for code, words in (
        ("0", "completed"),
        ("2", "bad input"),
        ("3", "control"),
        ("4", "infrastructure"),
        ("130", "interrupted"),
    ):
        assert re.search(rf"^\s*{code}\s+.*{words}", proc.stdout, re.MULTILINE), (code, proc.stdout)
    for command in ("run", "check", "show", "history", "resume", "clean", "schema", "demo"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.MULTILINE), command
        sub = refute_cli(command, "--help", cwd=tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert sub.stdout.startswith("Usage: refute " + command)


def test_version(tmp_path: Path) -> None:
    proc = refute_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"refute, version {refute.__version__}\n"


# -- bad input: exit 2, one line, nothing created ---------------------------------------------

_HYP = "hypotheses:\n  - id: a\n    description: d\n    test: [python3, -c, 'pass']\n"
_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
)

BAD_PLANS: dict[str, str | None] = {
    "malformed-yaml": "version: 1\nbug: [unclosed\n" + _HYP,
    "python-tag": 'version: 1\nbug: !!python/object/apply:os.system ["touch PWNED"]\n' + _HYP,
    "python-tag-top": '!!python/object/apply:os.system ["touch PWNED"]\n',
    "duplicate-keys": "version: 1\nbug: one\nbug: two\n" + _HYP,
    "alias-bomb": "version: 1\nbug: lol\n" + _BOMB + _HYP,
    "wrong-types": "version: '1'\nbug: 12\nhypotheses:\n  - id: a\n    description: 3\n"
    "    timeout: soon\n    repeat: [3]\n",
    "id-no": "version: 1\nbug: b\nhypotheses:\n  - id: no\n    description: d\n",
    "duplicate-ids": "version: 1\nbug: b\n" + _HYP + "  - id: a\n    description: again\n",
    "hostile-id-dotdot": "version: 1\nbug: b\nhypotheses:\n  - id: ../../x\n    description: d\n",
    "hostile-id-option": "version: 1\nbug: b\nhypotheses:\n  - id: --lock\n    description: d\n",
    "missing-patch": "version: 1\nbug: b\n" + _HYP + "    patch: nowhere.diff\n",
    "empty-hypotheses": "version: 1\nbug: b\nhypotheses: []\n",
    "dependency-cycle": "version: 1\nbug: b\nhypotheses:\n"
    "  - {id: a, description: d, depends_on: [b]}\n"
    "  - {id: b, description: d, depends_on: [c]}\n"
    "  - {id: c, description: d, depends_on: [a]}\n",
    "huge-file": None,  # written by the test: 50 MB
    "top-level-list": "- version: 1\n- bug: b\n",
    "nonexistent": None,
}


def write_bad_plan(project: Project, case: str) -> Path:
    path = project.plans / f"{case}.yaml"
    if case == "nonexistent":
        return path
    if case == "huge-file":
        chunk = b"x" * (1 << 20)
        with open(path, "wb") as handle:
            handle.write(b"version: 1\nbug: big\n" + _HYP.encode() + b"# ")
            handle.writelines(chunk for _ in range(50))
            handle.write(b"\n")
        return path
    text = BAD_PLANS[case]
    assert text is not None
    path.write_text(text, encoding="utf-8")
    return path


def assert_refused(proc: subprocess.CompletedProcess[str], code: int = 2) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("refute: error:"), proc.stderr
    assert proc.stdout == ""


def assert_created_nothing(project: Project, before: dict[str, object]) -> None:
    assert fingerprint(project.repo) == before
    assert registered_worktrees(project.repo) == [str(project.repo.resolve())]
    assert refute_refs(project.repo) == ""
    assert stored_sessions(project.home) == []
    assert not list((project.home / "cache").glob("worktrees/*/slots/*"))
    assert not list((project.home / "state").glob("logs/*"))


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", list(BAD_PLANS))
def test_bad_plan_is_refused(project: Project, case: str, command: str) -> None:
    plan = write_bad_plan(project, case)
    before = fingerprint(project.repo)
    proc = project.run(command, plan)
    assert_refused(proc)
    assert_created_nothing(project, before)
    assert not list(project.root.rglob("PWNED"))
    assert not (project.root / "x").exists()
    if case == "huge-file":
        assert "too large" in proc.stderr


BAD_USAGE = {
    "jobs-zero": ("run", "{plan}", "-j", "0"),
    "negative-timeout": ("run", "{plan}", "--timeout", "-1"),
    "unknown-option": ("run", "{plan}", "--no-such-option"),
    "unknown-command": ("frobnicate",),
    "show-unknown-session": ("show", "nosuchsession"),
    "resume-unknown-session": ("resume", "nosuchsession"),
    "show-without-sessions": ("show",),
    "not-a-repository": ("run", "{plan}", "--repo", "{plain}"),
    "no-such-repository": ("run", "{plan}", "--repo", "{missing}"),
    "check-not-a-repository": ("check", "{plan}", "--repo", "{plain}"),
}


@pytest.mark.parametrize("case", list(BAD_USAGE))
def test_bad_usage_is_refused(project: Project, case: str) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    before = fingerprint(project.repo)
    plain = project.root / "plain"
    plain.mkdir()
    places = {"{plan}": plan, "{plain}": plain, "{missing}": project.root / "missing"}
    args = [places.get(arg, arg) for arg in BAD_USAGE[case]]
    proc = project.run(*args)
    assert_refused(proc)
    assert_created_nothing(project, before)


# -- the demo, installed the way the README says -----------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "v"
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert made.returncode == 0, made.stderr
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        timeout=360,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    proc = refute_cli("demo", cwd=tmp_path, exe=venv / "bin" / "refute")
    assert proc.returncode == 0, proc.stderr
    verdicts = dict(
        re.findall(
            r"^\s*\d+\s+(\S+)\s+(SUPPORTED|FALSIFIED|INCONCLUSIVE|FLAKY|PENDING)\b",
            proc.stdout,
            re.MULTILINE,
        )
    )
    assert verdicts == {
        "floor-division": "SUPPORTED",
        "parse-drops-decimals": "FALSIFIED",
        "report-rounds": "FALSIFIED",
        "windows-locale": "INCONCLUSIVE",
    }, proc.stdout
    assert "Control: reproduced" in proc.stdout
    # The throwaway repository (and the demo's own refute state) is gone afterwards.
    match = re.search(r"a throwaway repository at (\S+) \(removed afterwards\)", proc.stderr)
    assert match, proc.stderr
    assert not Path(match.group(1)).exists()
    assert not Path(match.group(1)).parent.exists()


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_base_that_is_not_a_commit_is_refused_before_anything_runs(
    project: Project, command: str
) -> None:
    plan = project.write_plan(
        "bad-base.yaml",
        {
            "version": 1,
            "bug": "a bug",
            "base": "no-such-branch",
            "hypotheses": [{"id": "h", "description": "d", "test": py("raise SystemExit(1)")}],
        },
    )
    before = fingerprint(project.repo)
    proc = project.run(command, plan)
    assert_refused(proc)
    assert "bad base" in proc.stderr
    assert_created_nothing(project, before)
