"""The README's two commands stay true, and .ci/run runs exactly the test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    commands = []
    for block in blocks[:2]:
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        assert len(lines) == 1, block
        commands.append(lines[0])
    return commands


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert demo.endswith("refute demo")
    assert "'.[dev]'" in tests
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci


def test_demo_command_runs_and_finds_the_planted_bug(tmp_path):
    env = {**os.environ, "REFUTE_HOME": str(tmp_path / "home")}  # its session is stored
    proc = subprocess.run(
        [sys.executable, "-m", "refute.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    # The verdict table's rows (rank, id, verdict), not other lines that start with a number.
    verdict = r"^\s*\d+\s+(\S+)\s+(SUPPORTED|FALSIFIED|INCONCLUSIVE|FLAKY|PENDING)\b"
    rows = dict(re.findall(verdict, proc.stdout, re.MULTILINE))
    assert rows == {
        "floor-division": "SUPPORTED",
        "parse-drops-decimals": "FALSIFIED",
        "report-rounds": "FALSIFIED",
        "windows-locale": "INCONCLUSIVE",
    }, proc.stdout
    assert "reproduced the bug" in proc.stdout
    assert "started   floor-division" in proc.stderr
