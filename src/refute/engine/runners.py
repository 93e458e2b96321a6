"""Test runners: which one a test command runs, and which of its exits are no evidence.

A test's exit code is evidence only when the runner really ran the test: a mistyped pytest
node id exits 4, "no tests collected" exits 5, and DESIGN.md's table reads both as FAIL
(bug reproduced). `detect` recognises the common runners from the argv; `classify` maps
their harness exits to ERROR (SKIP when every selected test skipped) or returns None to
leave `refute.model.classify_exit` alone; the "none" runner changes nothing. Order, for
whoever shapes results: the plan's `exit_codes` first; `classify` only for an exit code
they do not list; then `classify_exit`. `classify` is for processes that exited (not a
timeout, a spawn failure or a signal) and reads the bounded head and tail of the output.

| runner   | exit  | output read                                                  | -> | src |
|----------|-------|--------------------------------------------------------------|----|-----|
| pytest   | 2     | collection error (import or syntax error), interrupted       | E  | D R |
| pytest   | 3 / 6 | INTERNALERROR / --max-warnings exceeded (pytest 9.2+)        | E  | D R |
| pytest   | 4     | "ERROR: not found:", "file or directory not found", unknown  | E  | D R |
|          |       | option, "ImportError while loading conftest"                 |    |     |
| pytest   | 5     | no tests collected (e.g. an empty -k/-m filter)              | E  | D R |
| pytest   | 1 / 0 | "No module named pytest" / summary counts only skipped (S)   | E  | R   |
| unittest | 1     | "ERROR: x (unittest.loader._FailedTest...)" (an import error | E  | R   |
|          |       | or unknown name); a traceback through unittest, no "Ran N"   |    |     |
| unittest | 2     | usage error                                                  | E  | R   |
| unittest | 5 / 0 | no tests ran (exit 5 from 3.12 unless "FAILED ("; "Ran 0    | E  | D R |
|          |       | tests" on 3.11)                                              |    |     |
| unittest | 0 / 5 | "(skipped=N)" with N >= the tests run                        | S  | R   |
| go       | 2 / 1 | usage (and, older Go, build) error / "[build|setup failed]"  | E  | S   |
| go       | 0     | only "[no test files]" / "[no tests to run]"                 | E  | S   |
| cargo    | 101   | an "error:"/"error[E..]:" (could not compile, no such target)| E  | R   |
|          |       | and no "test result: FAILED" / "error: test failed"          |    |     |
| cargo    | 1 / 0 | no "error: test failed" (cargo usage) / every result 0 run   | E  | R   |
| nextest  | many  | 1 4 70 90 92-96 101-106 110 (100 is a failed test: kept)     | E  | S   |
| npm      | any   | "Missing script:", "Error: no test specified", no            | E  | R   |
|          |       | package.json; then the jest and node rows (its script's)     |    |     |
| jest     | any   | "No tests found"; "Test suite failed to run" and 0 total     | E  | S   |
| node     | 1 / 0 | "Could not find '<file>'" / "tests 0", or a name pattern     | E  | R   |
|          |       | that matched nothing; every test skipped (S)                 |    |     |
| sh -c    | not 0 | nothing but the shell's own cd/source/. error on stderr      | E  | R   |

E ERROR, S SKIP. Sources: D the runner's documentation (pytest's "Exit codes", Python
3.12's What's New); S its source or its own tests (cmd/go/internal/test/test.go,
nextest-metadata's `NextestExitCode`, jest's e2e noTestsFound; vitest's "No test files
found" from memory of its docs); R observed here (pytest 9.2, Python 3.10-3.13, cargo 1.95,
node 20, npm 11, dash, bash), repeated by tests/test_runners.py where installed.

How far `detect` looks: the wrappers `env`, `timeout`, `exec`, `command`, `NAME=value`,
`uv run` (also `-m`), `uvx`, `uv tool run`, `poetry run`, `pipx run`, `pdm run`, `npx`,
`coverage run`; `python[3[.X]]`/`pypy3` with options before `-m` (`-X dev`, `-u`, `-Bm`);
a script path named like the runner (`./venv/bin/pytest`). In `sh|bash|dash|zsh|ksh -c
SCRIPT`, the last simple command counts when all before it is preparation (`cd`, `set`,
`export`, `source`, `.`, `pushd`, `echo`, `mkdir`, ...; each may add `|| exit N`) joined by
`;`, `&&` or newlines. Pipes, `&`, subshells, `$(...)`, another `||` or a command after
the runner give "none": the script's status would not be the runner's.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final, Literal, cast, get_args

from refute.model import TestResult

__all__ = [
    "RUNNER_CHOICES",
    "RUNNER_NAMES",
    "Runner",
    "RunnerName",
    "RunnerVerdict",
    "classify",
    "detect",
    "failing_tests",
]

RunnerName = Literal["pytest", "unittest", "go", "cargo", "nextest", "npm", "jest", "node", "none"]
RUNNER_NAMES: Final[tuple[RunnerName, ...]] = get_args(RunnerName)
#: What a plan's `runner:` may say: `auto` (detect it from the command) or a runner's name.
RUNNER_CHOICES: Final[tuple[str, ...]] = ("auto", *RUNNER_NAMES)


@dataclass(frozen=True)
class Runner:
    """A test runner as `detect` found it: its `name`, the runner's own `command` (the argv
    without wrappers and shell preparation; the argv itself for "none") and whether it
    runs `via_shell` (then a failed `cd` before it is recognised too)."""

    name: RunnerName = "none"
    command: tuple[str, ...] = ()
    via_shell: bool = False

    @property
    def lists_failures(self) -> bool:
        """True when `failing_tests` reads this runner's failing test ids."""
        return self.name in _FAILURE_READERS


@dataclass(frozen=True)
class RunnerVerdict:
    """How `classify` reads one run: the outcome and a one-line message saying why."""

    result: TestResult
    message: str


# --- detection -----------------------------------------------------------------------

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})
_PREPARATION = frozenset(
    {"cd", "pushd", "popd", "set", "export", "source", ".", "unset", "ulimit", "umask", "true",
     ":", "echo", "printf", "mkdir", "sleep", "shopt", "trap", "hash"}
)  # fmt: skip
_PYTHON = re.compile(r"(?:python|pypy)(?:\d+(?:\.\d+)?t?)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
_MODULES: dict[str, RunnerName] = {"pytest": "pytest", "py.test": "pytest", "unittest": "unittest"}
#: The subcommands of go, cargo and npm that run tests (after their global options).
_SUBCOMMAND = re.compile(
    r"(?:(?P<go>go test)|(?P<cargo>cargo t(?:est)?)|(?P<nextest>cargo nextest r(?:un)?)"
    r"|(?P<npm>npm (?:t|tst|test|run|run-script)))(?: |$)"
)
_MODULE_OPTION = frozenset({"-m", "--module"})
#: `python -Bm X`, `-mX`: the `-m` of a cluster of flags, and its value when attached.
_PYTHON_M = re.compile(r"-[bBdEhiIOPqRsSuvV]*m(.*)")
#: Per wrapper, the options that take a separate value (anything else is a flag).
_VALUED: Final[dict[str, frozenset[str]]] = {
    name: frozenset(options.split())
    for name, options in {
        "env": "-u --unset -C --chdir -S --split-string",
        "timeout": "-s --signal -k --kill-after",
        "python": "-X -W --check-hash-based-pycs",
        "uv run": "--with --with-requirements -w --python -p --package --extra --group --env-file"
        " --directory --project --index -i --index-url --extra-index-url --find-links -f",
        "pipx": "--spec --python -p --from --with --pip-args --index-url -i",
        "poetry": "-C --directory -P --project",
        "pdm": "-p --project",
        "npx": "-p --package",
        "coverage": "--rcfile --source --omit --include --context --data-file --concurrency",
        "go": "-C",
        "cargo": "-Z --color --config -C",
        "npm": "--prefix -C -w --workspace",
        "node": "-r --require --import --loader --experimental-loader --test-reporter -C"
        " --test-reporter-destination --test-name-pattern --test-concurrency --test-shard",
    }.items()
}


def detect(argv: Sequence[str], choice: str = "auto") -> Runner:
    """The runner of a test command. `choice` is the plan's `runner:` (`RUNNER_CHOICES`):
    `auto` recognises it from `argv`; a runner's name forces that runner."""
    if choice not in RUNNER_CHOICES:
        raise ValueError(f"runner must be one of: {', '.join(RUNNER_CHOICES)}; got {choice!r}")
    name, command, via_shell = _recognise(list(argv), via_shell=False, depth=0)
    return Runner(name if choice == "auto" else cast("RunnerName", choice), command, via_shell)


def _skip_options(
    words: list[str], valued: frozenset[str], stop: frozenset[str] = frozenset()
) -> list[str]:
    """`words` without its leading options (`--` ends them); stops at an option in `stop`."""
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] not in stop | {"-"}:
        if words[i] == "--":
            return words[i + 1 :]
        i += 2 if words[i] in valued else 1
    return words[i:]


def _recognise(
    words: list[str], *, via_shell: bool, depth: int
) -> tuple[RunnerName, tuple[str, ...], bool]:
    none: tuple[RunnerName, tuple[str, ...], bool] = ("none", tuple(words), via_shell)
    words = _unwrap(words)
    if not words or depth > 4:
        return none
    head, rest, found = PurePath(words[0]).name, words[1:], cast("RunnerName | None", None)
    inner: list[str] | None = None
    if head in _SHELLS:
        script = _shell_script(rest)
        inner = None if script is None else _final_command(script)
        via_shell = via_shell or inner is not None
    elif _PYTHON.fullmatch(head) or head == "coverage":
        if head == "coverage":
            module, target = _target(rest[1:], "coverage") if rest[:1] == ["run"] else (None, [])
        else:
            module, target = _target([w for word in rest for w in _split_m(word)], "python")
        inner = ["coverage", *target] if module == "coverage" else target if not module else None
        found = _MODULES.get(module or "")
    elif head in {"pytest", "py.test", "jest"}:
        found = "jest" if head == "jest" else "pytest"
    elif head == "npx":
        inner = _skip_options(rest, _VALUED["npx"], stop=frozenset({"-c", "--call"}))
        inner = inner if inner[:1] and not inner[0].startswith("-") else None
    elif head in {"node", "nodejs"}:
        node_script = _skip_options(rest, _VALUED["node"])
        if "--test" in rest[: len(rest) - len(node_script)]:
            found = "node"
        elif node_script and PurePath(node_script[0]).name in {"jest", "jest.js"}:
            found = "jest"
    elif head in {"go", "cargo", "npm"}:
        sub = [w for w in _skip_options(rest, _VALUED[head]) if not w.startswith("+")][:2]
        match = _SUBCOMMAND.match(" ".join([head, *sub]))
        found = cast("RunnerName", match.lastgroup) if match else None
    if found is None and inner:
        deeper = _recognise(inner, via_shell=via_shell, depth=depth + 1)
        return none if deeper[0] == "none" else deeper
    return none if found is None else (found, tuple(words), via_shell)


def _unwrap(words: list[str]) -> list[str]:
    """`words` without the wrappers that run another command with the same exit status."""
    while words:
        head = PurePath(words[0]).name
        if _ASSIGNMENT.match(words[0]) or head in {"exec", "command"}:
            words = words[1:]
        elif head == "env":
            words = _skip_options(words[1:], _VALUED[head])
            while words and _ASSIGNMENT.match(words[0]):
                words = words[1:]
        elif head == "timeout":
            words = _skip_options(words[1:], _VALUED["timeout"])[1:]  # [1:]: the duration
        elif head == "uv" and words[1:2] == ["run"]:
            words = _skip_options(words[2:], _VALUED["uv run"], stop=_MODULE_OPTION)
            words = ["python", *words] if words[:1] and words[0] in _MODULE_OPTION else words
        elif head == "uvx" or (head == "uv" and words[1:3] == ["tool", "run"]):
            words = _skip_options(words[1 if head == "uvx" else 3 :], _VALUED["pipx"])
        elif head in {"pipx", "pdm", "poetry"}:
            start = _skip_options(words[1:], _VALUED["poetry"]) if head == "poetry" else words[1:]
            if start[:1] != ["run"]:
                break
            words = _skip_options(start[1:], _VALUED["pipx" if head == "pipx" else "pdm"])
        else:
            break
    return words


def _split_m(word: str) -> list[str]:
    """`-Bmpytest` -> `-m pytest`, `-um` -> `-m`: python's `-m` inside a cluster of flags."""
    match = _PYTHON_M.fullmatch(word)
    return [word] if match is None else ["-m", match[1]] if match[1] else ["-m"]


def _target(words: list[str], options: str) -> tuple[str | None, list[str]]:
    """What `python WORDS` / `coverage run WORDS` runs: (module, its args) for `-m`, else
    (None, the script's argv); (None, []) for `-c` code."""
    rest = _skip_options(words, _VALUED[options], stop=_MODULE_OPTION | {"-c"})
    if rest[:1] and rest[0] in _MODULE_OPTION:
        return (rest[1] if len(rest) > 1 else None), rest[2:]
    return None, [] if rest[:1] == ["-c"] else rest


def _shell_script(args: list[str]) -> str | None:
    """The SCRIPT of `sh [options] -c SCRIPT [name args...]`, or None."""
    has_c, i = False, 0
    while i < len(args) and args[i].startswith(("-", "+")) and args[i] not in {"-", "--"}:
        has_c = has_c or (not args[i].startswith("--") and "c" in args[i][1:])
        short = not args[i].startswith("--")
        i += 2 if args[i] in {"--rcfile", "--init-file"} or (short and args[i][-1] in "oO") else 1
    i += i < len(args) and args[i] == "--"
    return args[i] if has_c and i < len(args) else None


def _final_command(script: str) -> list[str] | None:
    """The last simple command of `script` when everything before it only prepares it."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace, lexer.whitespace_split = " \t\r", True  # a comment eats its newline
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: sh refuses the script too
        return None
    commands: list[tuple[str, list[str]]] = [(";", [])]  # (the operator before it, its words)
    for token in tokens:
        if token and all(c in ";&|()<>\n" for c in token):
            if any(c in "()" for c in token):
                return None
            redirection = any(c in "<>" for c in token)
            for op in [] if redirection else re.findall(r"&&|\|\||[;&|\n]", token):
                if commands[-1][1]:
                    commands.append((op, []))
                elif op not in {";", "\n"}:
                    return None  # an operator after no command
        else:  # a word (a redirection's target too, harmlessly)
            commands[-1][1].append(token)
    if any(op in {"|", "&"} for op, _ in commands):
        return None  # a pipeline or a background job: its status is not the runner's
    commands = [(op, words) for op, words in commands if words]
    steps = [(op, (_unwrap(words) or [""])[0]) for op, words in commands]
    prepares = [head in _PREPARATION or (head, op) == ("exit", "||") for op, head in steps]
    joined = all(op != "||" or head == "exit" for op, head in steps)
    if not steps or not joined or not all(prepares[:-1]) or prepares[-1] or not steps[-1][1]:
        return None
    return commands[-1][1]


# --- classification ------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SHELL_PREP_ERROR = (
    r"^(?:\S*/)?(?:ba|da|z|k|mk)?sh: (?:line \d+: |\d+: )?"
    r"(?:(?:cd|pushd|source|\.): |.*(?:No such file or directory|can't cd|cannot open))"
)
#: pytest's `E   ModuleNotFoundError: ...` line: the exception of a failed import.
_EXCEPTION_E = r"^E\s+\w+(?:Error|Exception)\b"
_SKIPPED_ONLY = frozenset({"skipped", "deselected", "warnings", "warning"})
_NEXTEST_CODES = frozenset({1, 4, 70, 90, 92, 93, 94, 95, 96, 101, 102, 103, 104, 105, 106, 110})


def classify(runner: Runner, exit_code: int, stdout: str, stderr: str) -> RunnerVerdict | None:
    """The outcome of a run as its runner reads it, or None for the default table.

    Consult it only for a process that exited with `exit_code` (negative: killed by a
    signal, never reclassified) and only when the plan's `exit_codes` do not list the code.
    """
    reader = _CLASSIFIERS.get(runner.name)
    if reader is None or exit_code < 0:
        return None
    text = _ANSI.sub("", f"{stdout}\n{stderr}")
    # Only a run where the runner printed nothing at all: the shell's error alone on stderr
    # (with `set -x` traces). A line like it in the output of a test that ran is the test's.
    lines = [ln for ln in _ANSI.sub("", stderr).splitlines() if ln.strip() and ln[0] != "+"]
    alone = len(lines) == 1 and not stdout.strip() and re.match(_SHELL_PREP_ERROR, lines[0])
    if runner.via_shell and exit_code != 0 and alone:
        return _error(f"the shell failed before the test started (exit {exit_code}): {lines[0]}")
    return reader(exit_code, text)


def _first(pattern: str, text: str) -> str:
    """The whole first line where `pattern` matches (stripped, at most 200 chars), or ""."""
    match = re.search(rf"(?m)^.*(?:{pattern}).*$", text)
    line = match[0].strip() if match else ""
    return line if len(line) <= 200 else line[:197] + "..."


def _error(message: str) -> RunnerVerdict:
    return RunnerVerdict(TestResult.ERROR, message)


def _skip(message: str) -> RunnerVerdict:
    return RunnerVerdict(TestResult.SKIP, f"no evidence: {message}")


def _pytest(code: int, text: str) -> RunnerVerdict | None:  # noqa: PLR0911 - a return per row
    if code == 0:
        summary = re.findall(r"(?m)^=*\s*((?:\d+ \w+, )*\d+ \w+) in [\d.]+s\b", text)[-1:]
        counts = {kind: int(n) for line in summary for n, kind in re.findall(r"(\d+) (\w+)", line)}
        if counts.get("skipped") and set(counts) <= _SKIPPED_ONLY:
            return _skip(f"pytest skipped every selected test ({counts['skipped']}; -rs says why)")
        return None
    if code == 1 and (line := _first(r"No module named '?pytest'?$", text)):
        return _error(f"pytest is not installed where the test ran: {line}; a `setup` may fix it")
    if code == 2:
        interrupted = _first(r"Interrupted: ", text).strip("! ")  # drop pytest's !!! banner
        cause = f"{interrupted}: {_first(_EXCEPTION_E, text)}".strip(": ")
        return _error(f"pytest was interrupted (exit 2): {cause or 'see its output'}")
    if code == 3:
        cause = _first(r"^INTERNALERROR> \w+(?:Error|Exception)\b", text) or "see its output"
        return _error(f"pytest internal error (exit 3): {cause}")
    if code == 4:
        if conftest := _first(r"ImportError while loading conftest", text):
            cause = _first(_EXCEPTION_E, text[text.find(conftest) :])
            return _error(f"pytest usage error (exit 4): {conftest} {cause}")
        line = _first(r": error: ", text) or _first(r"^ERROR: ", text) or "see its output"
        hint = (
            "; paths are relative to the worktree" if "file or directory" in line
            else "; `pytest --collect-only -q` lists the test ids" if "not found: " in line
            else ""
        )  # fmt: skip
        return _error(f"pytest usage error (exit 4): {line}{hint}")
    if code == 5:
        filtered = _first(r"\d+ deselected", text) and "; the -k/-m filter matched nothing"
        return _error(f"pytest collected no tests (exit 5){filtered or '; check the path'}")
    if code == 6:
        return _error("pytest: the tests ran but --max-warnings was exceeded (exit 6)")
    return None


def _unittest(code: int, text: str) -> RunnerVerdict | None:
    ran = [int(n) for n in re.findall(r"(?m)^Ran (\d+) tests? in", text)]
    skipped = re.search(r"(?m)^(?:OK|NO TESTS RAN) \(.*skipped=(\d+)", text)
    if code in {0, 5} and ran and skipped and int(skipped.group(1)) >= ran[-1]:
        return _skip(f"unittest skipped every test ({skipped.group(1)} skipped)")
    # 3.12 and 3.13 also exit 5 when a setUpClass raises ("FAILED (errors=1)"): a failure,
    # as 3.11 and 3.14 (gh-136442) report it.
    if (code == 5 and "FAILED (" not in text) or (code == 0 and ran and ran[-1] == 0):
        return _error(f"unittest ran no tests (exit {code}): check the module, pattern or -k")
    loader = _first(r"^(?:ERROR|FAIL): \S+ \(unittest\.loader\._FailedTest\b", text)
    if code == 1 and loader:
        block = re.split(r"\n(?:-{20,}|={20,})\n", text[text.find(loader) :] + "\n")[1:2]
        causes = re.findall(r"(?m)^\w+(?:Error|Exception): .*$", "".join(block)) or [loader]
        return _error(f"unittest could not load the test {loader.split()[1]}: {causes[-1]}")
    if code == 1 and not ran and re.search(r'File ".*unittest[/\\](?:main|loader)\.py"', text):
        cause = _first(r"^\w+(?:Error|Exception): ", text.rsplit("Traceback", 1)[-1])
        return _error(f"unittest failed before running tests: {cause or 'see its output'}")
    if code == 2 and (line := _first(r"^\S.*: error: ", text)):
        return _error(f"unittest usage error (exit 2): {line}")
    return None


def _go(code: int, text: str) -> RunnerVerdict | None:
    if code == 2:
        line = _first(r"^\S", text) or "see its output"
        return _error(f"go test failed to start (exit 2, a usage or build error): {line}")
    if code == 1 and (line := _first(r"\[(?:build|setup) failed\]", text)):
        cause = _first(r"^\S+\.go:\d+(?::\d+)?: ", text)
        return _error(f"go test could not build the tests: {line}{'; ' + cause if cause else ''}")
    if code == 0:
        oks = re.findall(r"(?m)^ok\s+\S+\s.*$", text)
        if "testing: warning: no tests to run" in text and len(oks) <= 1:
            oks = []  # local directory mode: one package, its ok line has no marker
        ran = [line for line in oks if "[no tests to run]" not in line]
        if not ran and re.search(r"\[no test files\]|no tests to run", text):
            return _error("go test ran no tests (no test files, or -run matched nothing)")
    return None


def _cargo(code: int, text: str) -> RunnerVerdict | None:
    failed = re.search(r"(?m)^test result: FAILED|^error: test failed", text)
    if code == 101 and not failed and (line := _first(r"^error(?:\[E\d+\])?: ", text)):
        return _error(f"cargo test could not build or find the tests (exit 101): {line}")
    if code == 1 and not failed:
        return _error(f"cargo usage error (exit 1): {_first('^error: ', text) or 'see output'}")
    pattern = r"(?m)^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored; .*?(\d+) filt"
    results = re.findall(pattern, text) if code == 0 else []
    if results and all(passed == failed == "0" for passed, failed, _, _ in results):
        ignored, filtered = (sum(int(r[k]) for r in results) for k in (2, 3))
        return _error(f"cargo test ran no test ({filtered} filtered out, {ignored} ignored)")
    return None


def _nextest(code: int, text: str) -> RunnerVerdict | None:
    if code not in _NEXTEST_CODES:
        return None
    what = {4: "no tests were run", 101: "the build failed"}.get(code, "its own error")
    return _error(f"cargo nextest: {what} (exit {code}): {_first('^error', text) or 'see output'}")


def _jest(code: int, text: str) -> RunnerVerdict | None:
    if line := _first(r"No tests found|No test files found", text):
        return _error(f"no tests found (exit {code}): {line}; check the path pattern or testMatch")
    if "Test suite failed to run" in text and re.search(r"(?m)^Tests:\s+0 total", text):
        cause = _first(r"\S", text[text.find("Test suite failed to run") + 24 :])
        return _error(f"a test suite failed to load (Test suite failed to run): {cause}")
    return None


def _node(code: int, text: str) -> RunnerVerdict | None:
    if code == 1 and (line := _first(r"^Could not find '", text)):
        return _error(f"node --test: {line}; check the test file path")
    counts = dict(re.findall(r"(?m)^(?:# |\u2139 )(tests|pass|fail|cancelled) (\d+)$", text))
    if code != 0 or counts.get("tests") is None:
        return None
    if counts["tests"] == "0":
        return _error("node --test found no tests (tests 0): check the file names or patterns")
    if counts.get("pass") == counts.get("fail") == counts.get("cancelled", "0") == "0":
        if "test name does not match pattern" in text:
            return _error("node --test ran no test: --test-name-pattern matched nothing")
        return _skip(f"node --test skipped all {counts['tests']} tests")
    return None


def _npm(code: int, text: str) -> RunnerVerdict | None:
    npm_error = r"(?i:missing script:)|Error: no test specified|Could not read package\.json"
    if line := _first(npm_error, text):
        return _error(f"npm could not run the test script (exit {code}): {line}")
    return _jest(code, text) or _node(code, text)


_CLASSIFIERS: Final[dict[str, Callable[[int, str], RunnerVerdict | None]]] = {
    "pytest": _pytest, "unittest": _unittest, "go": _go, "cargo": _cargo, "nextest": _nextest,
    "npm": _npm, "jest": _jest, "node": _node,
}  # fmt: skip


# --- failing tests -------------------------------------------------------------------

_PYTEST_FAILURES = (
    r"(?m)^(?:\[gw\d+\] \[\s*\d+%\] )?(?:FAILED|ERROR) ([^\s\[]+(?:\[.*?\])?)(?= - |\s*$)"
    r"|^([^\s\[]+::[^\s\[]+(?:\[.*?\])?) (?:FAILED|ERROR)(?:\s|$)"
)


#: node --test: TAP's `not ok N - name` and the spec reporter's `\u2716 name (1.2ms)`.
_NODE_FAILURES = (
    r"(?m)^\s*not ok \d+ - (.+?)(?:\s+# (?:SKIP|TODO)\b.*)?$|^\s*\u2716 (.+?) \([\d.]+m?s\)$"
)


def _unittest_failures(text: str) -> set[str]:
    headers = re.findall(r"(?m)^(?:FAIL|ERROR|UNEXPECTED SUCCESS): (\S+) \(([^)]*)\)", text)
    return {where if where.endswith(f".{name}") else f"{where}.{name}" for name, where in headers}


def _cargo_failures(text: str) -> set[str]:
    found = set(re.findall(r"(?m)^test (\S+) \.\.\. FAILED$", text))
    for block in re.findall(r"(?m)^failures:\n((?:    \S+\n)+)", text):
        found.update(block.split())
    return found


_FAILURE_READERS: Final[dict[str, Callable[[str], set[str]]]] = {
    "pytest": lambda text: {a or b for a, b in re.findall(_PYTEST_FAILURES, text)},
    "unittest": _unittest_failures,
    "cargo": _cargo_failures,
    "node": lambda text: {a or b for a, b in re.findall(_NODE_FAILURES, text)},
    "go": lambda text: set(re.findall(r"(?m)^\s*--- FAIL: (\S+)", text)),
}


def failing_tests(runner: Runner, stdout: str, stderr: str) -> frozenset[str]:
    """The ids of the tests a run reports as failed or errored, as the runner prints them:
    pytest node ids (short summary and -v lines), unittest `module.Class.test`, cargo test
    paths, node test names (TAP or spec), go test names; empty for npm, jest, nextest and
    "none", whose reports are not read."""
    reader = _FAILURE_READERS.get(runner.name)
    if reader is None:
        return frozenset()
    return frozenset(reader(_ANSI.sub("", f"{stdout}\n{stderr}")))
