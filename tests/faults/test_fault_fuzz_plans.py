"""A plan fuzzer (Hypothesis, derandomized): whatever the plan file holds, `refute check`
and `refute run` exit 0 or 2 (run: or 3, the control's), with one-line messages on
stderr, never a traceback, and an exit 2 creates nothing: no file under REFUTE_HOME, no
worktree, ref or file in the repository.

Plans are YAML or JSON, written from near-valid plans with one to three fields replaced
(wrong types, huge numbers, NaN and infinities, unicode, NUL, lone surrogates, deep
nesting, huge strings, refute's own variables) and from random structures; hostile
documents (duplicate keys, anchors and aliases, a billion laughs, tags, merge keys, deep
nesting, NUL bytes, invalid UTF-8, a file past the size limit) are listed explicitly.
`check` runs in this process through `refute.cli.main`, the console script's own entry
point; a smaller number of `run`s start `python -m refute.cli` as a user would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitutil import assert_pool_idle, fingerprint, make_repo
from refute.cli import main

TIMEOUT = 120.0
#: Examples per property: enough to reach every kind of value, few enough for ~60 s here.
CHECK_EXAMPLES = 120
RUN_EXAMPLES = 8

VALID: dict[str, Any] = {
    "version": 1,
    "bug": "a bug",
    "defaults": {"timeout": 30, "repeat": 1, "env": {"A": "1"}},
    "control": {"test": ["false"]},
    "hypotheses": [
        {"id": "alpha", "description": "first", "test": ["true"], "probability": 0.7},
        {"id": "beta", "description": "second", "test": "false", "depends_on": ["alpha"]},
    ],
}

#: Where a mutation may land: top-level fields, defaults, the control, a hypothesis.
PATHS: list[tuple[Any, ...]] = [
    *(
        (key,)
        for key in (
            "version",
            "bug",
            "base",
            "include_uncommitted",
            "defaults",
            "setup",
            "setup_timeout",
            "control",
            "ranking",
            "max_hypotheses",
            "concurrency",
            "keep_paths",
            "exit_codes",
            "hypotheses",
            "unknown",
        )
    ),
    *(("defaults", key) for key in ("timeout", "repeat", "env", "runner", "failure_pattern")),
    *(("control", key) for key in ("test", "timeout", "repeat", "env", "shell")),
    *(("ranking", key) for key in ("probability_weight", "impact_weight")),
    *(
        ("hypotheses", index, key)
        for index in (0, 1)
        for key in (
            "id",
            "description",
            "test",
            "shell",
            "patch",
            "patch_text",
            "commit",
            "base",
            "supported_if",
            "estimated_test_time",
            "probability",
            "timeout",
            "repeat",
            "env",
            "depends_on",
            "runner",
            "failure_pattern",
        )
    ),
]

_HOSTILE_TEXT = [
    "",
    " ",
    "\0",
    "a\0b",
    "\ud800",
    "\udc00x\ud83d",
    "\U0001f600",
    "\u202e\u2028",
    "REFUTE_SCOPE",
    "REFUTE_RUN_ID",
    "control",
    "a..b",
    "x.lock",
    "-rf",
    "$(touch pwned)",
    "../../etc/passwd",
    "/etc/passwd",
    "HEAD~99999",
    "a" * 200_000,
]
_NUMBERS = (
    st.integers()
    | st.sampled_from([0, -1, 1, 256, 257, 1000, 1001, 10_001, 2**31, 2**63, 10**20, 10**400])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -1e308, 5e-324, 604800.0, 604800.5])
)
_TEXT = st.text(max_size=20) | st.sampled_from(_HOSTILE_TEXT)
_SCALARS = st.none() | st.booleans() | _NUMBERS | _TEXT
_KEYS = st.sampled_from(
    ["id", "test", "env", "REFUTE_SCOPE", "PATH", "timeout", "1", "-11"]
) | st.text(max_size=6)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _nest(depth: int, kind: str) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@st.composite
def plans(draw: st.DrawFn, least: int = 1) -> object:
    """A near-valid plan with `least` to three fields replaced, or any structure at all."""
    if draw(st.integers(0, 9)) == 9:  # not 0, which Hypothesis draws first
        return draw(_VALUES)
    data = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(least, 3))):
        path = draw(st.sampled_from(PATHS))
        value = draw(
            _VALUES
            | st.builds(_nest, st.integers(30, 400), st.sampled_from(["list", "map"]))
            | st.just(None)
        )
        target = data
        for step in path[:-1]:
            if (isinstance(target, dict) and isinstance(target.get(step), dict | list)) or (
                isinstance(target, list) and isinstance(step, int) and step < len(target)
            ):
                target = target[step]
            else:
                break
        else:
            last = path[-1]
            if isinstance(target, dict) or (
                isinstance(target, list) and isinstance(last, int) and last < len(target)
            ):
                target[last] = value
    return data


def render(data: object, fmt: str, variant: bool) -> str | None:
    """The plan's text as YAML or JSON (`variant`: non-ASCII written as is), or None."""
    try:
        if fmt == "json":
            return json.dumps(data, ensure_ascii=not variant, indent=1 if variant else None)
        return yaml.safe_dump(data, allow_unicode=variant, sort_keys=False)
    except (ValueError, TypeError, yaml.YAMLError, RecursionError, UnicodeError):
        return None


def home() -> Path:
    return Path(os.environ["REFUTE_HOME"])


def home_files() -> list[str]:
    root = home()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def write_plan(folder: Path, text: str | bytes, fmt: str) -> Path:
    path = folder / f"plan.{fmt}"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    return path


def check_in_process(plan: Path, repo: Path) -> tuple[int, str, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["check", str(plan), "--repo", str(repo)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
    return code, err.getvalue(), time.monotonic() - started


def assert_clean_messages(code: int, err: str, allowed: tuple[int, ...]) -> None:
    assert code in allowed, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert "internal error" not in err, err[-2000:]
    if code == 2:
        lines = err.splitlines()
        assert lines, "exit 2 without a message"
        assert all(line.startswith("refute: ") for line in lines), err[-2000:]
        assert any(line.startswith("refute: error: ") for line in lines), err[-2000:]


class Figures:
    """What a property saw, for docs/reliability.md."""

    def __init__(self) -> None:
        self.counts = {"trials": 0, "exit 0": 0, "exit 2": 0, "exit 3": 0, "skipped": 0}
        self.slowest = 0.0

    def add(self, code: int | None, seconds: float = 0.0) -> None:
        self.counts["trials"] += 1
        self.counts["skipped" if code is None else f"exit {code}"] += 1
        self.slowest = max(self.slowest, seconds)

    def __str__(self) -> str:
        return f"{self.counts}, slowest {self.slowest:.2f} s"


# -- check, in this process --------------------------------------------------------------


@settings(
    max_examples=CHECK_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=plans(), fmt=st.sampled_from(["yaml", "json"]), variant=st.booleans())
def test_check_of_any_plan_is_0_or_2_and_creates_nothing(
    tmp_path_factory: pytest.TempPathFactory, data: object, fmt: str, variant: bool
) -> None:
    repo, folder = _workspace(tmp_path_factory)
    text = render(data, fmt, variant)
    if text is None:
        _FIGURES["check"].add(None)
        return
    before = fingerprint(repo)
    code, err, seconds = check_in_process(write_plan(folder, text, fmt), repo)
    _FIGURES["check"].add(code, seconds)
    assert_clean_messages(code, err, (0, 2))
    assert seconds < 60, seconds
    assert home_files() == []
    assert fingerprint(repo) == before


_WORKSPACES: dict[str, tuple[Path, Path]] = {}
_FIGURES = {"check": Figures(), "hostile": Figures(), "run": Figures()}


def _workspace(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One repository and plan folder per test (fixtures are not per example)."""
    key = os.environ["REFUTE_HOME"]
    if key not in _WORKSPACES:
        root = factory.mktemp("fuzz")
        _WORKSPACES[key] = (make_repo(root / "repo"), root)
    return _WORKSPACES[key]


def _many(count: int) -> list[dict[str, Any]]:
    return [{"id": f"h{i}", "description": "d", "test": ["true"]} for i in range(count)]


BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
VALID_YAML = yaml.safe_dump(VALID, sort_keys=False)
HOSTILE: list[tuple[str, str | bytes, str]] = [
    ("billion laughs", BILLION_LAUGHS, "yaml"),
    ("billion laughs in a plan", VALID_YAML + "x: &x [1, 2]\ny: [*x, *x]\n", "yaml"),
    ("merge key", VALID_YAML + "defaults2: {<<: {a: 1}}\n", "yaml"),
    ("python tag", "version: !!python/object/apply:os.system ['touch pwned']\n", "yaml"),
    ("custom tag", VALID_YAML.replace("bug: a bug", "bug: !custom a bug"), "yaml"),
    ("duplicate key", VALID_YAML + "bug: again\n", "yaml"),
    ("two documents", VALID_YAML + "---\n" + VALID_YAML, "yaml"),
    ("deep flow nesting", "a: " + "[" * 50_000 + "]" * 50_000 + "\n", "yaml"),
    ("deep block nesting", "".join("  " * i + "k:\n" for i in range(500)), "yaml"),
    ("NUL byte", VALID_YAML.replace("a bug", "a\0bug"), "yaml"),
    ("escaped NUL", VALID_YAML.replace("bug: a bug", 'bug: "a\\0bug"'), "yaml"),
    ("invalid UTF-8", VALID_YAML.encode() + b"x: \xff\xfe\n", "yaml"),
    ("too large", VALID_YAML + "# " + "x" * (1024 * 1024) + "\n", "yaml"),
    ("huge string", VALID_YAML.replace("a bug", "b" * 1_000_000), "yaml"),
    ("json duplicate key", json.dumps(VALID)[:-1] + ', "bug": "again"}', "json"),
    ("json NaN", json.dumps(VALID).replace('"timeout": 30', '"timeout": NaN'), "json"),
    ("json Infinity", json.dumps(VALID).replace('"repeat": 1', '"repeat": Infinity'), "json"),
    ("json 1e400", json.dumps(VALID).replace('"timeout": 30', '"timeout": 1e400'), "json"),
    ("json huge int", json.dumps(VALID).replace('"repeat": 1', '"repeat": ' + "9" * 5000), "json"),
    ("json lone surrogate", json.dumps(VALID).replace("a bug", "\\ud800"), "json"),
    ("json surrogate pair", json.dumps({**VALID, "bug": "\U0001f600"}), "json"),
    ("json deep nesting", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "json"),
    ("json trailing text", json.dumps(VALID) + " {}", "json"),
    ("json single quotes", json.dumps(VALID).replace('"', "'"), "json"),
    ("json NUL escape", json.dumps({**VALID, "bug": "a\0b"}), "json"),
    ("json control char", json.dumps(VALID).replace("a bug", "a\tbug"), "json"),
    ("json as yaml", json.dumps({**VALID, "bug": "\U0001f600"}), "yaml"),
    ("yaml as json", VALID_YAML, "json"),
    ("10001 hypotheses", json.dumps({**VALID, "hypotheses": _many(10_001)}), "json"),
]


@pytest.mark.parametrize(
    ("text", "fmt"), [(t, f) for _, t, f in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_documents_are_0_or_2_quickly_and_create_nothing(
    tmp_path: Path, text: str | bytes, fmt: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    before = fingerprint(repo)
    code, err, seconds = check_in_process(write_plan(tmp_path, text, fmt), repo)
    _FIGURES["hostile"].add(code, seconds)
    assert_clean_messages(code, err, (0, 2))
    assert seconds < 30, seconds  # a billion laughs is refused, not expanded
    assert home_files() == []
    assert fingerprint(repo) == before


# -- run, as a user runs it ----------------------------------------------------------------


@settings(
    max_examples=RUN_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=plans(least=0), fmt=st.sampled_from(["yaml", "json"]), variant=st.booleans())
def test_run_of_any_plan_is_0_2_or_3_and_an_exit_2_creates_nothing(
    tmp_path_factory: pytest.TempPathFactory, data: object, fmt: str, variant: bool
) -> None:
    repo, folder = _workspace(tmp_path_factory)
    text = render(data, fmt, variant)
    if text is None:
        _FIGURES["run"].add(None)
        return
    plan = write_plan(folder, text, fmt)
    before, files = fingerprint(repo), home_files()
    started = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "refute.cli", "run", str(plan), "--repo", str(repo)),
            *("--repeat", "1", "--timeout", "20", "-j", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    _FIGURES["run"].add(proc.returncode, time.monotonic() - started)
    assert_clean_messages(proc.returncode, proc.stderr, (0, 2, 3))
    assert fingerprint(repo) == before
    if proc.returncode == 2:
        assert home_files() == files
    else:
        assert_pool_idle(repo)


def test_the_run_property_reaches_every_exit_code_it_allows() -> None:
    """Runs last (module order): the fuzzer above saw exits 0 and 2, so it ran plans too."""
    figures = _FIGURES["run"].counts
    if not figures["trials"]:
        pytest.skip("the run property did not run in this session (-k, -x or random order)")
    print(f"fuzz figures: {{{', '.join(f'{k}: {v}' for k, v in _FIGURES.items())}}}")
    assert figures["exit 2"] >= 1
