"""Test runners: detection from the argv, and the harness exits that are no evidence.

Classification is checked against real runs of the runners installed here (pytest and
unittest always; cargo, node, npm, go, jest when on PATH, skipped with a reason when not),
and against captured output strings for the rows that come from documentation only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refute.engine.runners import (
    RUNNER_CHOICES,
    Runner,
    RunnerVerdict,
    classify,
    detect,
    failing_tests,
)
from refute.model import TestResult

PY = sys.executable


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    """Run a real process to the end (never left running: subprocess.run kills on timeout)."""
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NODE_"))}
    merged.update(env or {})
    return subprocess.run(
        argv, cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout, check=False
    )


def verdict(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    proc = run(argv, cwd, env, timeout)
    found = classify(detect(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc, found


def assert_error(found: RunnerVerdict | None, *needles: str) -> None:
    assert found is not None
    assert found.result is TestResult.ERROR, found
    assert "\n" not in found.message
    for needle in needles:
        assert needle in found.message, (needle, found.message)


# --- detection -----------------------------------------------------------------------

DETECTED = [
    (["pytest"], "pytest"),
    (["pytest", "-x", "tests/test_a.py::test_b"], "pytest"),
    (["py.test", "-q"], "pytest"),
    (["./venv/bin/pytest", "-q"], "pytest"),
    (["/home/me/.venv/bin/py.test"], "pytest"),
    (["python", "-m", "pytest"], "pytest"),
    (["python3", "-m", "py.test"], "pytest"),
    (["python3.11", "-X", "dev", "-m", "pytest", "-x"], "pytest"),
    (["/usr/bin/python3.12", "-u", "-W", "error", "-m", "pytest"], "pytest"),
    (["python", "-Bm", "pytest"], "pytest"),
    (["python", "-mpytest"], "pytest"),
    (["python", "-Xdev", "-I", "-m", "pytest"], "pytest"),
    (["pypy3", "-m", "pytest"], "pytest"),
    (["python", ".venv/bin/pytest", "-q"], "pytest"),
    (["uv", "run", "pytest", "-q"], "pytest"),
    (["uv", "run", "--with", "pytest-cov", "--python", "3.12", "pytest"], "pytest"),
    (["uv", "run", "-m", "pytest"], "pytest"),
    (["uv", "run", "python", "-m", "pytest"], "pytest"),
    (["uvx", "pytest"], "pytest"),
    (["poetry", "run", "pytest"], "pytest"),
    (["poetry", "-C", "sub", "run", "python", "-m", "pytest"], "pytest"),
    (["pipx", "run", "pytest"], "pytest"),
    (["pdm", "run", "pytest"], "pytest"),
    (["env", "-u", "HOME", "PYTHONHASHSEED=0", "pytest"], "pytest"),
    (["timeout", "-s", "KILL", "60", "pytest"], "pytest"),
    (["coverage", "run", "-m", "pytest"], "pytest"),
    (["coverage", "run", "--source", "src", "-m", "pytest"], "pytest"),
    (["python", "-m", "coverage", "run", "-m", "pytest"], "pytest"),
    (["python", "-m", "unittest"], "unittest"),
    (["python3", "-m", "unittest", "discover", "-s", "tests"], "unittest"),
    (["coverage", "run", "-m", "unittest", "discover"], "unittest"),
    (["go", "test", "./..."], "go"),
    (["go", "test", "-run", "TestX", "."], "go"),
    (["cargo", "test"], "cargo"),
    (["cargo", "+nightly", "test", "--", "--nocapture"], "cargo"),
    (["cargo", "-q", "t"], "cargo"),
    (["cargo", "nextest", "run"], "nextest"),
    (["npm", "test"], "npm"),
    (["npm", "run", "test"], "npm"),
    (["npm", "run", "test:unit"], "npm"),
    (["npm", "--prefix", "web", "test"], "npm"),
    (["npm", "t"], "npm"),
    (["npx", "jest"], "jest"),
    (["npx", "--yes", "jest", "--ci"], "jest"),
    (["jest", "src"], "jest"),
    (["./node_modules/.bin/jest"], "jest"),
    (["node", "node_modules/jest/bin/jest.js"], "jest"),
    (["node", "--test"], "node"),
    (["node", "--test-reporter", "tap", "--test", "tests/"], "node"),
    (["/bin/sh", "-c", "pytest -x"], "pytest"),
    (["sh", "-c", "cd sub && pytest -q"], "pytest"),
    (["bash", "-euo", "pipefail", "-c", "cd sub; export A=1; python3 -m pytest"], "pytest"),
    (["bash", "-lc", "source .venv/bin/activate && pytest"], "pytest"),
    (["sh", "-c", "set -e\ncd sub\npytest tests/x.py::test_y 2>&1"], "pytest"),
    (["sh", "-c", "cd sub || exit 1; A=1 exec pytest"], "pytest"),
    (["sh", "-c", "# run it\ncd x && go test ./..."], "go"),
    (["sh", "-c", "sh -c 'cd a && cargo test'"], "cargo"),
    (["sh", "-c", "cd web && npm test"], "npm"),
]

NOT_DETECTED = [
    ["pytest-watch"],
    ["ptw"],
    ["python", "-m", "pytest_cov"],
    ["python", "-m", "pytest.whatever"],
    ["python", "-c", "import pytest; pytest.main()"],
    ["python", "script.py", "-m", "pytest"],
    ["python", "-m"],
    ["make", "test"],
    ["tox"],
    ["go", "vet", "./..."],
    ["go", "build"],
    ["cargo", "build"],
    ["cargo", "nextest", "list"],
    ["npm", "install"],
    ["node", "script.js", "--test"],
    ["node", "-e", "1", "--test"],
    ["npx", "-c", "jest"],
    [".falsification/test_x.sh"],
    ["sh", "script.sh"],
    ["sh", "-c", "pytest | tee log"],
    ["sh", "-c", "pytest; echo done"],
    ["sh", "-c", "pytest || true"],
    ["sh", "-c", "pytest &"],
    ["sh", "-c", "(cd x && pytest)"],
    ["sh", "-c", "cd $(mktemp -d) && pytest"],
    ["sh", "-c", "make && pytest"],
    ["sh", "-c", "cd x"],
    ["sh", "-c", "exit 0; pytest"],
    ["sh", "-c", "if true; then pytest; fi"],
    ["sh", "-c", "pytest 'unbalanced"],
    ["sh", "-c", "&& pytest"],
    ["sh", "-c"],
    [],
]


@pytest.mark.parametrize(
    ("argv", "name"), DETECTED, ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_detect_recognises_runners(argv, name):
    assert detect(argv).name == name


@pytest.mark.parametrize("argv", NOT_DETECTED, ids=" ".join)
def test_unknown_commands_are_the_none_runner(argv):
    runner = detect(argv)
    assert runner.name == "none"
    assert runner.command == tuple(argv)
    assert not runner.lists_failures


def test_detect_reports_the_runners_own_command_and_the_shell():
    runner = detect(["sh", "-c", "cd sub && timeout 60 python3 -X dev -m pytest -x"])
    assert runner == Runner(
        "pytest", ("python3", "-X", "dev", "-m", "pytest", "-x"), via_shell=True
    )
    assert detect(["env", "A=1", "pytest"]) == Runner("pytest", ("pytest",), via_shell=False)
    assert detect(["pytest"]).lists_failures


def test_an_explicit_choice_wins_and_a_bad_choice_is_refused():
    assert detect(["make", "test"], "pytest").name == "pytest"
    assert detect(["pytest"], "none") == Runner("none", ("pytest",))
    assert detect(["sh", "-c", "cd x && pytest"], "unittest").via_shell
    assert {"auto", "pytest", "unittest", "none", "go", "cargo", "npm", "jest", "node"} <= set(
        RUNNER_CHOICES
    )
    with pytest.raises(ValueError, match="runner must be one of"):
        detect(["pytest"], "nose")


def test_the_none_runner_and_signals_keep_the_default_table():
    none = detect(["make", "test"])
    for code in (0, 1, 2, 4, 5, 101, 125, 127, 139, -9):
        assert classify(none, code, "no tests ran\nERROR: not found", "Missing script:") is None
    assert classify(detect(["pytest"]), -11, "", "") is None


# --- pytest, real runs ---------------------------------------------------------------

PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def pytest_project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # pins rootdir and config here
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_ok():
                assert True

            def test_bad():
                assert 1 == 2

            @pytest.fixture
            def broken():
                raise RuntimeError("fixture boom")

            def test_uses(broken):
                pass

            @pytest.mark.parametrize("x", ["a b", "c - d"])
            def test_param(x):
                assert x == "zz"
            """
        )
    )
    return tmp_path


def pytest_argv(*args: str) -> list[str]:
    return [PY, "-m", "pytest", "-p", "no:cacheprovider", *args]


def test_pytest_node_id_typo_is_an_error_not_a_reproduction(pytest_project):
    proc, found = verdict(pytest_argv("tests/test_a.py::test_typo"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 4
    assert_error(found, "usage error (exit 4)", "not found:", "test_a.py::test_typo")


def test_pytest_missing_path_is_an_error(pytest_project):
    proc, found = verdict(pytest_argv("tests/nope.py"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 4
    assert_error(found, "file or directory not found: tests/nope.py")


def test_pytest_unknown_option_is_an_error(pytest_project):
    proc, found = verdict(pytest_argv("--no-such-option"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 4
    assert_error(found, "unrecognized arguments: --no-such-option")


def test_pytest_empty_k_filter_is_an_error(pytest_project):
    proc, found = verdict(pytest_argv("-k", "nomatch", "tests"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 5
    assert_error(found, "collected no tests (exit 5)", "-k/-m filter matched nothing")


def test_pytest_no_test_files_is_an_error(pytest_project):
    (pytest_project / "empty").mkdir()
    proc, found = verdict(pytest_argv("empty"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 5
    assert_error(found, "collected no tests (exit 5)")


FAILING = {
    "tests/test_a.py::test_bad",
    "tests/test_a.py::test_uses",
    "tests/test_a.py::test_param[a b]",
    "tests/test_a.py::test_param[c - d]",
}


def test_pytest_real_failures_and_passes_keep_the_default(pytest_project):
    proc, found = verdict(pytest_argv("tests"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 1
    assert found is None
    assert failing_tests(detect(["pytest"]), proc.stdout, proc.stderr) == FAILING
    passed, found = verdict(pytest_argv("tests/test_a.py::test_ok"), pytest_project, PYTEST_ENV)
    assert passed.returncode == 0
    assert found is None


def test_pytest_failing_tests_from_verbose_lines_alone(pytest_project):
    proc = run(pytest_argv("-v", "-rN", "tests"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 1
    assert "short test summary" not in proc.stdout
    assert failing_tests(detect(["pytest"]), proc.stdout, proc.stderr) == FAILING


def test_pytest_import_error_of_a_test_module_is_an_error(pytest_project):
    (pytest_project / "tests" / "test_imp.py").write_text("import no_such_module_xyz\n")
    proc, found = verdict(pytest_argv("tests/test_imp.py"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 2  # observed: "Interrupted: 1 error during collection"
    assert_error(found, "interrupted (exit 2)", "No module named 'no_such_module_xyz'")
    assert failing_tests(detect(["pytest"]), proc.stdout, proc.stderr) == {"tests/test_imp.py"}


def test_pytest_import_error_of_a_conftest_is_an_error(pytest_project):
    (pytest_project / "tests" / "conftest.py").write_text("import no_such_module_xyz\n")
    proc, found = verdict(pytest_argv("tests"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 4  # observed: a usage error, on stderr
    assert_error(found, "ImportError while loading conftest", "no_such_module_xyz")


def test_pytest_skipping_every_test_is_a_skip(pytest_project):
    (pytest_project / "tests" / "test_s.py").write_text(
        "import pytest\n\n@pytest.mark.skip(reason='no db')\ndef test_s():\n    pass\n"
    )
    proc, found = verdict(pytest_argv("tests/test_s.py"), pytest_project, PYTEST_ENV)
    assert proc.returncode == 0
    assert found is not None
    assert found.result is TestResult.SKIP
    quiet = classify(Runner("pytest"), 0, "s   [100%]\n1 skipped, 2 deselected in 0.01s\n", "")
    assert quiet is not None
    assert quiet.result is TestResult.SKIP


def test_a_failed_cd_before_pytest_is_an_error_not_an_interrupt(pytest_project):
    script = f"cd no-such-dir && {PY} -m pytest -p no:cacheprovider"
    for shell in filter(None, (shutil.which("sh"), shutil.which("bash"))):
        proc, found = verdict([shell, "-c", script], pytest_project, PYTEST_ENV)
        assert proc.returncode in {1, 2}  # dash: 2, bash: 1
        assert_error(found, "the shell failed before the test started", "no-such-dir")
    proc, found = verdict(["sh", "-c", f"cd tests && {PY} -m pytest -k nomatch"], pytest_project)
    assert proc.returncode == 5
    assert_error(found, "exit 5")


def test_a_shell_error_inside_a_failing_tests_output_is_the_tests(pytest_project):
    (pytest_project / "tests" / "test_sh.py").write_text(
        "import subprocess\n\ndef test_sh():\n"
        "    subprocess.run(['sh', '-c', 'cd no-such-dir'])\n    assert False\n"
    )
    script = f"cd tests && {PY} -m pytest -p no:cacheprovider -s test_sh.py"
    proc, found = verdict(["sh", "-c", script], pytest_project, PYTEST_ENV)
    assert proc.returncode == 1
    assert "can't cd" in proc.stderr or "No such file" in proc.stderr
    assert found is None
    traced, found = verdict(["sh", "-xc", "cd no-such-dir && pytest"], pytest_project)
    assert traced.stderr.startswith("+ cd")
    assert_error(found, "the shell failed")


# --- unittest, real runs -------------------------------------------------------------


@pytest.fixture
def unittest_project(tmp_path: Path) -> Path:
    (tmp_path / "test_u.py").write_text(
        textwrap.dedent(
            """
            import unittest

            class T(unittest.TestCase):
                def test_ok(self):
                    pass

                def test_bad(self):
                    self.assertEqual(1, 2)

                def test_err(self):
                    raise RuntimeError("boom")
            """
        )
    )
    (tmp_path / "test_imp.py").write_text("import no_such_module_xyz\n")
    (tmp_path / "test_none.py").write_text("X = 1\n")
    (tmp_path / "test_class.py").write_text(
        "import unittest\n\nclass C(unittest.TestCase):\n    @classmethod\n"
        "    def setUpClass(cls):\n        raise RuntimeError('class boom')\n\n"
        "    def test_x(self):\n        pass\n"
    )
    (tmp_path / "test_skip.py").write_text(
        "import unittest\n\nclass S(unittest.TestCase):\n"
        "    def test_s(self):\n        self.skipTest('no db')\n"
    )
    return tmp_path


def interpreters() -> list[str]:
    """sys.executable and each other CPython >= 3.10 that runs here, one per version
    (unittest's behaviour differs: exit 5 for "no tests ran" from 3.12)."""
    found = {sys.version: PY}
    candidates = [shutil.which(f"python3.{minor}") for minor in range(10, 15)]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.1[0-9]*/bin/python3")]
    for exe in filter(None, candidates):
        probe = run([exe, "-c", "import sys; print(sys.version)"], Path.cwd(), timeout=30)
        if probe.returncode == 0:
            found.setdefault(probe.stdout.strip(), exe)
    return sorted(found.values())


@pytest.mark.parametrize("python", interpreters())
def test_unittest_import_error_and_no_tests_are_errors(unittest_project, python):
    proc, found = verdict([python, "-m", "unittest", "test_imp"], unittest_project)
    assert proc.returncode == 1
    assert_error(found, "could not load the test test_imp", "No module named 'no_such_module_xyz'")
    proc, found = verdict([python, "-m", "unittest", "test_none"], unittest_project)
    assert proc.returncode in {0, 5}  # 0 up to 3.11 ("Ran 0 tests"), 5 from 3.12
    assert_error(found, "unittest ran no tests")
    proc, found = verdict([python, "-m", "unittest", "-k", "nomatch", "test_u"], unittest_project)
    assert_error(found, "unittest ran no tests")
    proc, found = verdict([python, "-m", "unittest", "test_class"], unittest_project)
    assert proc.returncode in {1, 5}  # a raising setUpClass: 1 on 3.11, 5 on 3.12 and 3.13
    assert found is None  # a failure of the test, not of the harness


def test_unittest_real_failures_keep_the_default(unittest_project):
    proc, found = verdict([PY, "-m", "unittest", "test_u"], unittest_project)
    assert proc.returncode == 1
    assert found is None
    assert failing_tests(detect([PY, "-m", "unittest"]), proc.stdout, proc.stderr) == {
        "test_u.T.test_bad",
        "test_u.T.test_err",
    }


def test_unittest_loader_failures_are_errors(unittest_project):
    proc, found = verdict([PY, "-m", "unittest", "test_u.T.test_typo"], unittest_project)
    assert proc.returncode == 1
    assert_error(found, "AttributeError", "test_typo")
    proc, found = verdict([PY, "-m", "unittest", "discover", "-s", "nosuchdir"], unittest_project)
    assert proc.returncode == 1
    assert_error(found, "failed before running tests", "Start directory is not importable")
    proc, found = verdict([PY, "-m", "unittest", "--bogus"], unittest_project)
    assert proc.returncode == 2
    assert_error(found, "usage error (exit 2)", "--bogus")


def test_unittest_skipping_every_test_is_a_skip(unittest_project):
    proc, found = verdict([PY, "-m", "unittest", "test_skip"], unittest_project)
    assert proc.returncode == 0
    assert found is not None
    assert found.result is TestResult.SKIP


# --- cargo, real runs ----------------------------------------------------------------

CARGO = shutil.which("cargo")
needs_cargo = pytest.mark.skipif(CARGO is None, reason="cargo is not installed here")

CARGO_TOML = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[[test]]
name = "custom"
harness = false
"""


def cargo_crate(root: Path, name: str, lib: str) -> Path:
    crate = root / name
    (crate / "src").mkdir(parents=True)
    (crate / "tests").mkdir()
    (crate / "Cargo.toml").write_text(CARGO_TOML.format(name=name))
    (crate / "src" / "lib.rs").write_text(lib)
    (crate / "tests" / "custom.rs").write_text("fn main() { std::process::exit(1); }\n")
    return crate


@pytest.fixture(scope="module")
def cargo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("cargo-target")
    return {"CARGO_TARGET_DIR": str(target), "CARGO_TERM_COLOR": "never"}


LIB_FAILING = """
pub fn add(a: i32, b: i32) -> i32 { a + b }
#[cfg(test)]
mod tests {
    #[test]
    fn good() { assert_eq!(super::add(1, 1), 2); }
    #[test]
    fn bad() { assert_eq!(super::add(1, 1), 3); }
}
"""


@needs_cargo
@pytest.mark.slow
def test_cargo_failures_stay_failures_and_harness_errors_are_errors(tmp_path, cargo_env):
    crate = cargo_crate(tmp_path, "failing", LIB_FAILING)
    cargo = [str(CARGO), "test", "--offline", "-q"]
    proc, found = verdict([*cargo, "--lib"], crate, cargo_env, timeout=180)
    assert proc.returncode == 101
    assert found is None  # a failed test: FAIL by the default table
    assert failing_tests(detect(cargo), proc.stdout, proc.stderr) == {"tests::bad"}
    proc, found = verdict([*cargo, "--test", "custom"], crate, cargo_env, timeout=180)
    assert proc.returncode == 1  # a harness = false test exiting 1 is a test failure too
    assert found is None
    proc, found = verdict([*cargo, "--lib", "nomatch"], crate, cargo_env, timeout=180)
    assert proc.returncode == 0
    assert_error(found, "ran no test", "2 filtered out")
    proc, found = verdict([*cargo, "--test", "nosuch"], crate, cargo_env, timeout=180)
    assert proc.returncode == 101
    assert_error(found, "no test target named")
    proc, found = verdict([*cargo, "--bogus"], crate, cargo_env, timeout=180)
    assert proc.returncode == 1
    assert_error(found, "usage error (exit 1)", "--bogus")


@needs_cargo
@pytest.mark.slow
def test_cargo_compile_error_is_an_error(tmp_path, cargo_env):
    crate = cargo_crate(tmp_path, "broken", 'pub fn add(a: i32) -> i32 { a + "x" }\n')
    proc, found = verdict([str(CARGO), "test", "--offline", "-q"], crate, cargo_env, timeout=180)
    assert proc.returncode == 101
    assert_error(found, "could not build or find the tests (exit 101)", "error[E")


# --- node and npm, real runs ---------------------------------------------------------

NODE, NPM = shutil.which("node"), shutil.which("npm")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed here")
needs_npm = pytest.mark.skipif(NPM is None or NODE is None, reason="npm is not installed here")
NODE_TEST = """const test = require('node:test');
const assert = require('node:assert');
test('good', () => { assert.strictEqual(1, 1); });
test('bad', () => { assert.strictEqual(1, 2); });
test('later', { skip: true }, () => {});
"""


@needs_node
def test_node_test_runner(tmp_path):
    (tmp_path / "a.test.js").write_text(NODE_TEST)
    (tmp_path / "skip.test.js").write_text(
        "const test = require('node:test');\ntest('s', { skip: true }, () => {});\n"
    )
    (tmp_path / "empty").mkdir()
    node = [str(NODE), "--test"]
    for reporter in ("tap", "spec"):
        proc, found = verdict([*node, f"--test-reporter={reporter}", "a.test.js"], tmp_path)
        assert proc.returncode == 1
        assert found is None
        assert failing_tests(detect(node), proc.stdout, proc.stderr) == {"bad"}, reporter
        proc, found = verdict([*node, f"--test-reporter={reporter}"], tmp_path / "empty")
        assert proc.returncode == 0
        assert_error(found, "found no tests")
    proc, found = verdict([*node, "nosuch.test.js"], tmp_path)
    assert proc.returncode == 1
    assert_error(found, "Could not find", "nosuch.test.js")
    proc, found = verdict([*node, "--test-name-pattern=zzz", "a.test.js"], tmp_path)
    assert proc.returncode == 0
    assert found is not None
    assert found.result in {TestResult.ERROR, TestResult.SKIP}
    proc, found = verdict([*node, "skip.test.js"], tmp_path)
    assert proc.returncode == 0
    assert found is not None
    assert found.result is TestResult.SKIP


@needs_npm
def test_npm_scripts(tmp_path):
    env = {
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    scripts = {
        "placeholder": 'echo "Error: no test specified" && exit 1',
        "fails": "exit 3",
        "empty": "node --test empty",
    }
    (tmp_path / "empty").mkdir()
    package = {"name": "t", "version": "1.0.0", "scripts": scripts}
    (tmp_path / "package.json").write_text(json.dumps(package))
    npm = [str(NPM), "run"]
    proc, found = verdict([*npm, "placeholder"], tmp_path, env)
    assert proc.returncode == 1
    assert_error(found, "Error: no test specified")
    proc, found = verdict([*npm, "nosuch"], tmp_path, env)
    assert proc.returncode == 1
    assert_error(found, "Missing script")
    proc, found = verdict([*npm, "fails"], tmp_path, env)
    assert proc.returncode == 3  # npm passes the script's status on
    assert found is None
    proc, found = verdict([*npm, "empty"], tmp_path, env)
    assert proc.returncode == 0
    assert_error(found, "found no tests")


# --- go and jest: real runs where installed, else captured output ---------------------

GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="go is not installed here; see the captured-output test")
@pytest.mark.slow
def test_go_test_runner(tmp_path):
    env = {
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(tmp_path / "gocache"),
        "GOPATH": str(tmp_path / "gopath"),
    }
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.20\n")
    (tmp_path / "m_test.go").write_text(
        'package m\n\nimport "testing"\n\nfunc TestBad(t *testing.T) { t.Fatal("no") }\n'
    )
    proc, found = verdict([str(GO), "test", "./..."], tmp_path, env, timeout=180)
    assert proc.returncode == 1
    assert found is None
    assert failing_tests(detect(["go", "test"]), proc.stdout, proc.stderr) == {"TestBad"}
    proc, found = verdict([str(GO), "test", "-run", "NoMatch", "./..."], tmp_path, env, 180)
    assert proc.returncode == 0
    assert_error(found, "ran no tests")
    (tmp_path / "broken.go").write_text('package m\n\nfunc F() int { return "x" }\n')
    proc, found = verdict([str(GO), "test", "./..."], tmp_path, env, timeout=180)
    assert proc.returncode in {1, 2}
    assert_error(found)


@pytest.mark.skipif(shutil.which("jest") is None, reason="jest is not installed here")
def test_jest_without_tests(tmp_path):
    (tmp_path / "package.json").write_text('{"name": "t", "version": "1.0.0"}')
    proc, found = verdict([str(shutil.which("jest")), "--ci"], tmp_path)
    assert proc.returncode == 1
    assert_error(found, "No tests found")


# Output as the runners' sources and docs show it (not run here: see the module docstring).
CAPTURED = [
    (
        "go",
        1,
        (
            '# example.com/m\n./broken.go:3:23: cannot use "x"\n'
            "FAIL\texample.com/m [build failed]\nFAIL\n"
        ),
        "build failed",
    ),
    ("go", 1, "FAIL\texample.com/m [setup failed]\n", "setup failed"),
    (
        "go",
        2,
        "flag provided but not defined: -bogus\nusage: go test [build/test flags]\n",
        "flag provided",
    ),
    ("go", 0, "?   \texample.com/m\t[no test files]\n", "ran no tests"),
    ("go", 0, "ok  \texample.com/m\t0.002s [no tests to run]\n", "ran no tests"),
    (
        "go",
        0,
        "testing: warning: no tests to run\nPASS\nok  \texample.com/m\t0.002s\n",
        "ran no tests",
    ),
    (
        "jest",
        1,
        "No tests found, exiting with code 1\nRun with `--passWithNoTests` to exit with code 0\n",
        "No tests found",
    ),
    ("jest", 0, "No tests found, exiting with code 0\n", "No tests found"),
    (
        "jest",
        1,
        (
            " FAIL  ./test.js\n  \u25cf Test suite failed to run\n\n"
            "    Your test suite must contain at least one test.\n\n"
            "Test Suites: 1 failed, 1 total\nTests:       0 total\n"
        ),
        "must contain at least one test",
    ),
    ("npm", 1, "No test files found, exiting with code 1\n", "No test files found"),
    ("nextest", 4, "error: no tests to run\n", "exit 4"),
    (
        "nextest",
        101,
        "error[E0425]: cannot find value `x`\nerror: could not compile `m`\n",
        "build failed",
    ),
    (
        "pytest",
        3,
        "INTERNALERROR> Traceback\nINTERNALERROR> RuntimeError: boom\n",
        "RuntimeError: boom",
    ),
    ("pytest", 6, "Tests pass, but maximum allowed warnings exceeded: 1 > 0\n", "max-warnings"),
    ("pytest", 1, "/usr/bin/python3: No module named pytest\n", "not installed"),
]

KEPT = [
    (
        "go",
        1,
        "--- FAIL: TestBad (0.00s)\n    m_test.go:5: no\nFAIL\nFAIL\texample.com/m\t0.002s\nFAIL\n",
    ),
    ("go", 0, "ok  \texample.com/m\t0.002s\n?   \texample.com/m/sub\t[no test files]\n"),
    ("jest", 1, "Tests:       1 failed, 1 passed, 2 total\n"),
    ("nextest", 100, "error: test run failed\n"),
    ("nextest", 0, ""),
    ("pytest", 0, "===== 1 passed, 1 skipped in 0.02s =====\n"),
    ("pytest", 1, "FAILED tests/test_a.py::test_b - assert 1 == 2\n"),
]


@pytest.mark.parametrize(("name", "code", "output", "needle"), CAPTURED)
def test_captured_harness_errors(name, code, output, needle):
    found = classify(Runner(name), code, output, "")
    assert found is not None
    assert found.result is TestResult.ERROR
    assert needle in found.message


@pytest.mark.parametrize(("name", "code", "output"), KEPT)
def test_captured_evidence_keeps_the_default(name, code, output):
    assert classify(Runner(name), code, output, "") is None


def test_output_reading_ignores_colour_codes():
    output = "\x1b[1mNo tests found, exiting with code 1\x1b[22m\n"
    found = classify(Runner("jest"), 1, output, "")
    assert found is not None
    assert "\x1b" not in found.message
    tap = "\x1b[31mnot ok 1 - bad\x1b[39m\n"
    assert failing_tests(Runner("node"), tap, "") == {"bad"}


def test_failing_tests_is_empty_where_the_report_is_not_read():
    for name in ("npm", "jest", "nextest", "none"):
        assert failing_tests(Runner(name), "FAILED x.py::t - boom\nnot ok 1 - t\n", "") == set()
    assert failing_tests(Runner("pytest"), "", "") == frozenset()


_WORDS = st.sampled_from(
    ["sh", "-c", "bash", "-o", "python", "-m", "-X", "pytest", "uv", "run", "env", "timeout",
     "cd", "&&", "||", ";", "|", "exit", "1", "--", "-", "npm", "test", "node", "--test", "npx",
     "coverage", "'", '"', "$(x)", "#", "\n", "A=1", "cargo", "nextest", "go", ""]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(argv=st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=8))
def test_detect_never_raises(argv):
    runner = detect(argv)
    assert runner.name in RUNNER_CHOICES
    script = " ".join(argv)
    assert detect(["sh", "-c", script]).name in RUNNER_CHOICES


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["pytest", "unittest", "go", "cargo", "nextest", "npm", "jest", "node"]),
    code=st.integers(-20, 260),
    text=st.text(max_size=200),
    via_shell=st.booleans(),
)
def test_classify_and_failing_tests_never_raise(name, code, text, via_shell):
    runner = Runner(name, via_shell=via_shell)
    found = classify(runner, code, text, text)
    assert found is None or "\n" not in found.message
    assert isinstance(failing_tests(runner, text, text), frozenset)
