"""The command line as a newcomer meets it (Step 4, points 8-12): help, usage errors,
options validated before anything runs, JSON from every inspecting command, several
formats in one run, sessions shown from anywhere, the demo stored like any session.

Real `refute` processes on real repositories (the fixtures of test_cli_e2e)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gitutil import fingerprint
from test_cli_e2e import (  # the shared project fixture and runners
    Project,
    full_plan,
    make_project,
    py,
    refute_cli,
    session_id_of,
    stored_sessions,
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def test_refute_alone_prints_the_normal_help_and_exits_0(tmp_path: Path) -> None:
    proc = refute_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: refute")
    assert "Commands:" in proc.stdout
    for command in ("run", "check", "show", "history", "resume", "clean", "schema", "demo"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.MULTILINE), command
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (["run"], "refute run --help"),
        (["history", "-n", "0"], "refute history --help"),
        (["show", "--format", "pdf"], "refute show --help"),
        (["nonsense"], "refute --help"),
    ],
)
def test_usage_errors_point_to_the_subcommands_own_help(
    tmp_path: Path, args: list[str], help_of: str
) -> None:
    proc = refute_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("refute: error:")
    assert f"(see `{help_of}`)" in lines[0]


def test_run_help_has_two_examples_and_every_option_is_described(tmp_path: Path) -> None:
    proc = refute_cli("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = proc.stdout
    examples = re.findall(r"^\s+refute run \S+", text, re.MULTILINE)
    assert len(examples) >= 2, text
    for metavar in ("-j, --jobs N|auto", "--max-hypotheses K", "-o, --output FILE"):
        assert metavar in text, metavar
    for command in ("run", "check", "show", "history", "resume", "clean", "schema", "demo"):
        shown = refute_cli(command, "--help", cwd=tmp_path)
        assert shown.returncode == 0, command
        options = shown.stdout.split("Options:", 1)[1]
        # Each option starts a block "  -x, --xx META   help..." (help may wrap below it).
        blocks = re.split(r"\n(?=  -)", options.strip("\n"))
        for block in blocks:
            words = re.sub(r"^\s*-[^ ]*(, --[^ ]+)?( [A-Z|a-z\[\]|]+)?", "", block).strip()
            assert len(words) > 10, f"{command}: no help for {block!r}"


def test_format_is_case_insensitive(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    proc = project.run("check", plan, "--format", "JSON")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True


def test_an_unwritable_output_file_is_refused_before_anything_runs(project: Project) -> None:
    marker = project.root / "ran"
    plan = project.write_plan(
        "plan.yaml",
        {
            "version": 1,
            "bug": "b",
            "hypotheses": [
                {"id": "h", "description": "d", "test": py(f"open({str(marker)!r}, 'w')")}
            ],
        },
    )
    before = fingerprint(project.repo)
    for bad in (project.root / "no-such-dir" / "r.json", project.root):
        proc = project.run("run", plan, "-o", bad)
        assert proc.returncode == 2, proc.stderr
        assert "cannot write the report" in proc.stderr or "is a directory" in proc.stderr
        assert "Traceback" not in proc.stderr
        proc = project.run("run", plan, "--export-junit", bad)
        assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    assert stored_sessions(project.home) == []
    assert fingerprint(project.repo) == before


def test_run_writes_several_formats_in_one_run_and_still_prints_text(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    out = {fmt: project.root / f"report.{fmt}" for fmt in ("json", "markdown", "junit", "html")}
    proc = project.run(
        "run",
        plan,
        "--export-json",
        out["json"],
        "--export-markdown",
        out["markdown"],
        "--export-junit",
        out["junit"],
        "--export-html",
        out["html"],
    )
    assert proc.returncode == 0, proc.stderr
    assert "SUPPORTED" in proc.stdout  # the text report on stdout
    doc = json.loads(out["json"].read_text(encoding="utf-8"))
    assert doc["session"]["id"] == session_id_of(proc.stderr)
    assert out["junit"].read_text(encoding="utf-8").startswith("<?xml")
    assert "<html" in out["html"].read_text(encoding="utf-8").lower()
    assert "subtracts" in out["markdown"].read_text(encoding="utf-8")
    for path in out.values():
        assert f"report written to {path}" in proc.stderr
    # The same session, byte for byte, from `show`.
    shown = project.run("show", doc["session"]["id"], "--format", "json")
    assert shown.stdout == out["json"].read_text(encoding="utf-8")


def test_history_and_show_json_and_the_full_session_id_at_80_columns(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    ran = project.run("run", plan, "--format", "json")
    session = json.loads(ran.stdout)["session"]["id"]
    listed = project.run("history", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [row["id"] for row in data["sessions"]] == [session]
    narrow = refute_cli("history", cwd=project.repo, env_extra={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert session in narrow.stdout  # whole, on one line
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())


def test_show_and_history_outside_a_repository_say_so(project: Project, tmp_path: Path) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    ran = project.run("run", plan, "--format", "json")
    session = json.loads(ran.stdout)["session"]["id"]
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    shown = refute_cli("show", "--format", "json", cwd=outside)
    assert shown.returncode == 0, shown.stderr
    assert "not inside a git repository" in shown.stderr
    assert str(project.repo) in shown.stderr  # whose session it is
    assert json.loads(shown.stdout)["session"]["id"] == session
    listed = refute_cli("history", cwd=outside)
    assert "not inside a git repository" in listed.stderr
    inside = project.run("show", "--format", "json")
    assert inside.stderr == ""


@pytest.mark.parametrize(
    ("args", "title"),
    [(["plan"], "plan"), (["report"], "report"), (["--report"], "report"), ([], "plan")],
)
def test_schema_takes_plan_or_report_as_an_argument(
    tmp_path: Path, args: list[str], title: str
) -> None:
    proc = refute_cli("schema", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    if title == "report":
        assert "hypotheses" in data["properties"]
        assert "session" in data["properties"]
    else:
        assert "hypotheses" in data["properties"]
        assert "session" not in data["properties"]
    documented = (Path(__file__).resolve().parents[1] / "docs" / "plan.md").read_text()
    assert "refute schema plan" in documented


def test_check_says_how_long_in_plain_words_counting_repeats_and_the_control(
    project: Project,
) -> None:
    plan_data = full_plan()
    plan_data["control"]["repeat"] = 2
    plan = project.write_plan("plan.yaml", plan_data)
    proc = project.run("check", plan, "-j", "2")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("estimate:"))
    # 4 hypotheses x 1 + repeat-sign x 3 = 7 hypothesis runs, + 2 control runs.
    assert "9 runs (7 hypothesis runs + 2 control runs)" in line
    assert "2 at a time" in line
    assert "seed" not in proc.stdout
    assert not re.search(r"\d\.\d{3,}", line), line  # no 0.125822s
    # The commands as the reports show them.
    assert "subtracts: $ " in proc.stdout
    data = json.loads(project.run("check", plan, "-j", "2", "--format", "json").stdout)
    assert data["estimate"]["runs"] == 9
    assert data["estimate"]["control_runs"] == 2


def test_the_demo_is_stored_like_any_session_and_takes_format_and_output(tmp_path: Path) -> None:
    target = tmp_path / "demo.json"
    proc = refute_cli("demo", "--format", "json", "-o", target, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert "found the cause: floor-division" in proc.stderr
    session = doc["session"]["id"]
    assert f"refute show {session}" in proc.stderr
    shown = refute_cli("show", session, "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["session"]["id"] == session
    logs = [
        run["stdout_log"]
        for hyp in doc["hypotheses"]
        for run in hyp["runs"]
        if run.get("stdout_log")
    ]
    assert logs
    assert all(Path(log).is_file() for log in logs)
    # Its plan is gone with its repository: running it again is `refute demo`.
    commands = [step.get("command") for step in doc["summary"]["recommendation"]["next_steps"]]
    assert "refute demo" in commands
    assert not any(c and c.startswith("refute run") for c in commands)
    # The headline, on stdout, with the text report.
    text = refute_cli("demo", cwd=tmp_path, timeout=300)
    assert "refute demo: found the cause: floor-division" in text.stdout


def test_junit_supported_chooses_how_a_supported_hypothesis_shows(project: Project) -> None:
    plan = project.write_plan("plan.yaml", full_plan())
    ran = project.run("run", plan, "--format", "json")
    session = json.loads(ran.stdout)["session"]["id"]

    def subtracts_case(*extra: str) -> str:
        xml = project.run("show", session, "--format", "junit", *extra).stdout
        pattern = r'<testcase [^>]*name="subtracts"[^>]*(/>|>.*?</testcase>)'
        case = re.search(pattern, xml, re.DOTALL)
        assert case, xml
        return case.group(0)

    assert "<failure" in subtracts_case()  # the default: the cause found is a red test
    assert "<failure" in subtracts_case("--junit-supported", "failure")
    assert "<failure" not in subtracts_case("--junit-supported", "PASS")
    bad = project.run("show", session, "--format", "junit", "--junit-supported", "maybe")
    assert bad.returncode == 2
