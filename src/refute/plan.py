"""The plan file: its models, a safe YAML/JSON loader, validation, ranking, JSON Schema.

A plan (version 1, `docs/plan.md`) names the bug, the base commit, defaults, an optional
setup and control, and the hypotheses. `load_plan` turns a file into a `Plan` or raises
`PlanError` with a one-line message (`plan.yaml:12: hypotheses[2].timeout: must be a
number > 0`); nothing else escapes it for bad input. `rank` orders the hypotheses for a
session; `to_hypotheses` turns them into the seed's `Hypothesis` objects.
"""

from __future__ import annotations

import difflib
import heapq
import math
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from refute.errors import ConfigError, InvalidIdError, PlanError, one_line
from refute.model import FalsificationConfig, Hypothesis, TestResult
from refute.paths import check_id

try:
    from yaml import CSafeLoader as _SafeLoaderBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoaderBase  # type: ignore[assignment]

#: Plans larger than this are refused before a single byte is parsed.
MAX_PLAN_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists a plan may use (a real plan needs 4).
MAX_NESTING = 32
#: Ids a hypothesis may not take: "control" names the control run in sessions and reports.
RESERVED_IDS = frozenset({"control"})
PLAN_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"

Loc: TypeAlias = tuple[Any, ...]


# -- error messages --------------------------------------------------------------------------


def _fail(message: str, *loc: str | int) -> PydanticCustomError:
    """A validation error with a finished human message; `loc` extends the error's path.

    The message travels in the context (not the template) so that braces in user values
    are never read as placeholders.
    """
    return PydanticCustomError("refute", "{message}", {"message": message, "loc": loc})


def _show(value: object) -> str:
    """A short, one-line rendering of a value from the plan, in YAML's words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return one_line(text if len(text) <= 40 else text[:37] + "...")


def _expect(message: str) -> WrapValidator:
    """Replace every error of the wrapped type with one message (unions raise several)."""

    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            raise _fail(f"{message}, got {_show(value)}") from None

    return WrapValidator(validate)


# -- value types -----------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _fail("must not be blank")
    return value


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise _fail("must not contain a NUL character")
    return value


def _command(value: list[str] | str) -> list[str] | str:
    parts = value if isinstance(value, list) else [value]
    if any("\0" in part for part in parts):
        raise _fail("must not contain a NUL character")
    if not parts[0].strip():
        raise _fail("must not be empty" if isinstance(value, str) else "argv[0] must not be empty")
    return value


def _env(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not key or "=" in key or "\0" in key:
            raise _fail(f"{_show(key)} is not a valid variable name")
        if "\0" in item:
            raise _fail("must not contain a NUL character", key)
    return value


def _relative_path(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or not value or any(p in {"", ".", ".."} for p in parts):
        raise _fail(f"must be a relative path inside the worktree (like .venv), got {_show(value)}")
    return _no_nul(value)


def _commit_ish(value: str) -> str:
    if value.startswith("-") or not value.isprintable():
        raise _fail(f"must be a commit-ish such as HEAD or a sha, got {_show(value)}")
    return value


def _hypothesis_id(value: str) -> str:
    if len(value) > 64:
        raise _fail(f"must be at most 64 characters, got {len(value)}")
    try:
        check_id(value)
    except InvalidIdError as exc:
        raise _fail(exc.message) from None
    if value in RESERVED_IDS:
        raise _fail(f"{value!r} is reserved (it names the control run)")
    return value


def _exit_code_keys(value: object) -> object:
    """JSON object keys are strings: read "139" as the exit code 139 (YAML gives ints)."""
    if not isinstance(value, dict):
        return value
    codes: dict[object, object] = {}
    for key, outcome in value.items():
        code = int(key) if isinstance(key, str) and re.fullmatch(r"-?[0-9]{1,9}", key) else key
        if code in codes:
            raise _fail(f"exit code {code} is listed twice")
        if type(code) is int and not -64 <= code <= 255:
            raise _fail(f"exit code {code} cannot happen (0 to 255, or -1 to -64 for a signal)")
        codes[code] = outcome
    return codes


def _version(value: object) -> object:
    if type(value) is not int:  # Literal[1] alone would take True and 1.0 (both == 1)
        raise _fail(f"must be 1, got {_show(value)}")
    return value


Text = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False), _expect("must be a number > 0")]
Estimate = Annotated[float, Field(ge=0, allow_inf_nan=False), _expect("must be a number >= 0")]
Share = Annotated[
    float, Field(ge=0, le=1, allow_inf_nan=False), _expect("must be a number between 0 and 1")
]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False), _expect("must be a number >= 0")]
Count = Annotated[int, Field(ge=1), _expect("must be an integer >= 1")]
Command = Annotated[
    Annotated[list[str], Field(min_length=1)] | Annotated[str, Field(min_length=1)],
    _expect("must be a non-empty string or a list of strings"),
    AfterValidator(_command),
]
Env = Annotated[dict[str, str], AfterValidator(_env)]
Outcome = Literal["pass", "fail", "skip", "error"]


class _Strict(BaseModel):
    """No coercion (`id: no` stays False and is refused) and no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_test(spec: HypothesisSpec | ControlSpec) -> None:
    """A string test without `shell` must split into arguments (shlex)."""
    if isinstance(spec.test, str) and not spec.shell:
        try:
            argv = shlex.split(spec.test)
        except ValueError as exc:
            raise _fail(f"cannot be split into arguments ({exc})", "test") from None
        if not argv:
            raise _fail("must not be empty", "test")


class Defaults(_Strict):
    """Settings every hypothesis (and the control) inherits unless it sets its own."""

    timeout: Seconds = Field(default=300.0, description="Seconds one run may take (> 0).")
    repeat: Count = Field(default=1, description="Runs per hypothesis (>= 1).")
    env: Env = Field(default_factory=dict, description="Environment variables (str -> str).")


class ControlSpec(_Strict):
    """A test run on the unmodified base; it must reproduce the bug (fail)."""

    test: Command = Field(description="argv list, or a string split with shlex.")
    timeout: Seconds | None = Field(default=None, description="Default: defaults.timeout.")
    repeat: Count | None = Field(default=None, description="Default: defaults.repeat.")
    env: Env = Field(default_factory=dict, description="Merged over defaults.env.")
    shell: bool = Field(default=False, description="true: a string test runs with sh -c.")

    @model_validator(mode="after")
    def _splittable(self) -> Self:
        _check_test(self)
        return self


class Ranking(_Strict):
    """Weights of the score: probability·w_p + impact·w_i - test_complexity·w_c."""

    probability_weight: Weight = 0.5
    impact_weight: Weight = 0.3
    complexity_weight: Weight = 0.2


class HypothesisSpec(_Strict):
    """One hypothesis as written in the plan (defaults not applied yet)."""

    id: Annotated[str, AfterValidator(_hypothesis_id)] = Field(
        description="Safe slug [a-z0-9][a-z0-9._-]{0,63}; no '..', no '.lock' suffix, "
        "not 'control'; unique."
    )
    description: Text
    test: Command | None = Field(
        default=None, description="Default: the worktree's .falsification/test_<id>.sh."
    )
    shell: bool = Field(default=False, description="true: a string test runs with sh -c.")
    patch: Annotated[str, Field(min_length=1), AfterValidator(_no_nul)] | None = Field(
        default=None, description="A diff applied first; relative to the plan file's directory."
    )
    supported_if: Literal["fails", "passes"] = Field(
        default="fails", description="passes: the patch is a candidate fix."
    )
    estimated_test_time: Estimate = 0.0
    probability: Share = 0.5
    impact: Share = 0.5
    test_complexity: Share = 0.5
    timeout: Seconds | None = Field(default=None, description="Default: defaults.timeout.")
    repeat: Count | None = Field(default=None, description="Default: defaults.repeat.")
    env: Env = Field(default_factory=dict, description="Merged over defaults.env.")
    depends_on: list[str] = Field(default_factory=list, description="Ids that run first.")
    test_strategy: str = ""
    expected_behavior: str = ""

    @field_validator("patch")
    @classmethod
    def _patch_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        base_dir = (info.context or {}).get("base_dir")
        if value is not None and base_dir is not None:
            target = Path(base_dir) / value
            try:
                if target.is_file():
                    return value
                problem = "is not a file" if target.exists() else "not found"
            except OSError as exc:  # a name too long, a permission denied on the way
                problem = f"cannot be read ({exc.strerror or exc})"
            raise _fail(f"{problem}: {target}")
        return value

    @model_validator(mode="after")
    def _splittable(self) -> Self:
        _check_test(self)
        return self


class Plan(_Strict):
    """A plan file, version 1 (`docs/plan.md`)."""

    version: Annotated[Literal[1], BeforeValidator(_version)] = Field(
        description="Plan format version; must be 1."
    )
    bug: Text = Field(description="The bug being investigated.")
    base: Annotated[Text, AfterValidator(_commit_ish)] = Field(
        default="HEAD", description="The commit every worktree starts from."
    )
    include_uncommitted: bool = Field(
        default=False, description="Test a snapshot of uncommitted work."
    )
    defaults: Defaults = Defaults()
    setup: Command | None = Field(default=None, description="Runs once per worktree before tests.")
    setup_timeout: Seconds = Field(default=600.0, description="Seconds the setup may take.")
    control: ControlSpec | None = None
    ranking: Ranking = Ranking()
    max_hypotheses: Count | None = Field(default=None, description="Run only the top k by score.")
    concurrency: Annotated[
        Annotated[int, Field(ge=1)] | Literal["auto"],
        _expect("must be an integer >= 1 or 'auto'"),
    ] = Field(default=5, description="Tests run at once.")
    keep_paths: list[Annotated[str, AfterValidator(_relative_path)]] | None = Field(
        default=None, description="Paths the warm pool keeps between sessions (default: its own)."
    )
    exit_codes: Annotated[dict[int, Outcome], BeforeValidator(_exit_code_keys)] = Field(
        default_factory=dict,
        description="Exit code (or -N for signal N) -> outcome, over the default table.",
        json_schema_extra={"propertyNames": {"pattern": "^-?[0-9]+$"}},
    )
    hypotheses: list[HypothesisSpec] = Field(min_length=1)

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Self:
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.hypotheses):
            first = seen.setdefault(spec.id.casefold(), index)
            if first != index:
                raise _fail(f"duplicate id (also hypotheses[{first}])", "hypotheses", index, "id")
        for index, spec in enumerate(self.hypotheses):
            for position, dependency in enumerate(spec.depends_on):
                where = ("hypotheses", index, "depends_on", position)
                if dependency == spec.id:
                    raise _fail("a hypothesis cannot depend on itself", *where)
                if dependency not in seen:
                    raise _fail(f"unknown hypothesis id {_show(dependency)}", *where)
        cycle = _find_cycle(self.hypotheses)
        if cycle:
            index = next(i for i, spec in enumerate(self.hypotheses) if spec.id == cycle[0])
            path = " -> ".join(cycle)
            raise _fail(f"dependency cycle: {path}", "hypotheses", index, "depends_on")
        self._source = (info.context or {}).get("source")
        return self

    @property
    def source(self) -> Path | None:
        """The absolute path of the file this plan was loaded from, if any."""
        return self._source

    @property
    def base_dir(self) -> Path | None:
        """The directory patch paths are relative to (the plan file's directory)."""
        return self._source.parent if self._source else None

    def ranked(
        self, max_hypotheses: int | None = None, weights: Ranking | None = None
    ) -> list[HypothesisSpec]:
        """The hypotheses to run, in run order (see `rank`)."""
        return rank(self, max_hypotheses=max_hypotheses, weights=weights).specs

    def exit_code_overrides(self) -> dict[int, TestResult]:
        """`exit_codes` as `classify_exit` takes them."""
        return {code: TestResult(outcome) for code, outcome in self.exit_codes.items()}

    def setup_argv(self) -> list[str] | None:
        """The setup command as an argv list (a string is split with shlex), or None."""
        if self.setup is None:
            return None
        return shlex.split(self.setup) if isinstance(self.setup, str) else list(self.setup)

    @field_validator("setup")
    @classmethod
    def _setup_splittable(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, str):
            try:
                shlex.split(value)
            except ValueError as exc:
                raise _fail(f"cannot be split into arguments ({exc})") from None
        return value


def _find_cycle(specs: Sequence[HypothesisSpec]) -> list[str]:
    """One dependency cycle as `[a, b, ..., a]`, or [] (iterative: chains may be long)."""
    depends = {spec.id: [d for d in spec.depends_on if d != spec.id] for spec in specs}
    waiting = {node: len(deps) for node, deps in depends.items()}
    dependents: dict[str, list[str]] = {node: [] for node in depends}
    for node, deps in depends.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    while ready:
        for node in dependents.get(ready.pop(), []):
            waiting[node] -= 1
            if waiting[node] == 0:
                ready.append(node)
    stuck = [spec.id for spec in specs if waiting.get(spec.id, 0) > 0]
    if not stuck:
        return []
    # Every stuck node waits on another stuck node: walking dependencies must loop.
    path, position = [stuck[0]], {stuck[0]: 0}
    while True:
        step = next(d for d in depends[path[-1]] if waiting.get(d, 0) > 0)
        if step in position:
            return [*path[position[step] :], step]
        position[step] = len(path)
        path.append(step)


# -- ranking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedHypothesis:
    """A hypothesis with its score and its rank (1 = highest score among all of the plan)."""

    spec: HypothesisSpec
    score: float
    rank: int


@dataclass(frozen=True)
class RunOrder:
    """The outcome of ranking: what runs, in which order, and what was left out.

    `ignored_dependencies` lists `(hypothesis id, dependency id)` pairs whose dependency was
    dropped by `max_hypotheses`: the hypothesis runs anyway, without waiting for it.
    """

    selected: tuple[RankedHypothesis, ...]
    dropped: tuple[RankedHypothesis, ...]
    ignored_dependencies: tuple[tuple[str, str], ...]

    @property
    def specs(self) -> list[HypothesisSpec]:
        return [item.spec for item in self.selected]

    def by_id(self) -> dict[str, RankedHypothesis]:
        """Every hypothesis of the plan (selected and dropped) by id."""
        return {item.spec.id: item for item in (*self.selected, *self.dropped)}


def score(spec: HypothesisSpec, weights: Ranking | None = None) -> float:
    """probability·w_p + impact·w_i - test_complexity·w_c, rounded to 12 places so that
    equal scores compare equal (0.7·0.5 + 0.9·0.3 - 0.3·0.2 is 0.56, not 0.5600000000000001)."""
    w = weights or Ranking()
    raw = (
        spec.probability * w.probability_weight
        + spec.impact * w.impact_weight
        - spec.test_complexity * w.complexity_weight
    )
    return round(raw, 12)


def rank(
    plan: Plan, *, max_hypotheses: int | None = None, weights: Ranking | None = None
) -> RunOrder:
    """Order a plan's hypotheses for a session.

    Scores descending (ties keep plan order); `max_hypotheses` (else the plan's; else all)
    keeps the top k; the kept ones are then ordered so that each runs after those it
    depends on, otherwise by rank. A dependency that was not kept is ignored.
    """
    limit = max_hypotheses if max_hypotheses is not None else plan.max_hypotheses
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("max_hypotheses", f"must be an integer >= 1, got {limit!r}")
    w = weights or plan.ranking
    scored = [(score(spec, w), index, spec) for index, spec in enumerate(plan.hypotheses)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    ranked = [
        RankedHypothesis(spec, value, place) for place, (value, _, spec) in enumerate(scored, 1)
    ]
    kept = ranked if limit is None else ranked[:limit]
    dropped = [] if limit is None else ranked[limit:]
    kept_ids = {item.spec.id for item in kept}
    ignored = tuple(
        (item.spec.id, dep) for item in kept for dep in item.spec.depends_on if dep not in kept_ids
    )
    return RunOrder(tuple(_topological(kept, kept_ids)), tuple(dropped), ignored)


def _topological(items: list[RankedHypothesis], ids: set[str]) -> Iterator[RankedHypothesis]:
    """Kahn's algorithm, always taking the best-ranked hypothesis whose dependencies ran."""
    by_id = {item.spec.id: item for item in items}
    waiting = {item.spec.id: len({d for d in item.spec.depends_on if d in ids}) for item in items}
    dependents: dict[str, list[str]] = {item.spec.id: [] for item in items}
    for item in items:
        for dep in {d for d in item.spec.depends_on if d in ids}:
            dependents[dep].append(item.spec.id)
    ready = [(item.rank, item.spec.id) for item in items if waiting[item.spec.id] == 0]
    heapq.heapify(ready)
    while ready:
        _, node = heapq.heappop(ready)
        yield by_id[node]
        for follower in dependents[node]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, (by_id[follower].rank, follower))


# -- conversion to the seed's model ----------------------------------------------------------


def to_hypotheses(
    plan: Plan, specs: Sequence[HypothesisSpec] | None = None, *, base_dir: Path | None = None
) -> list[Hypothesis]:
    """The seed's `Hypothesis` objects for `specs` (default: `plan.ranked()`), in that order.

    Applies the plan's defaults (timeout, repeat, env merged under the hypothesis' own),
    resolves patch paths to absolute ones (against `base_dir`, else the plan file's
    directory, else the current directory) and keeps only dependencies among `specs`.
    """
    chosen = list(specs) if specs is not None else plan.ranked()
    root = base_dir or plan.base_dir or Path.cwd()
    ids = {spec.id for spec in chosen}
    result = []
    for spec in chosen:
        patch = str((root / spec.patch).resolve()) if spec.patch is not None else None
        result.append(
            Hypothesis(
                id=spec.id,
                description=spec.description,
                test_strategy=spec.test_strategy,
                expected_behavior=spec.expected_behavior,
                estimated_test_time=spec.estimated_test_time,
                probability=spec.probability,
                impact=spec.impact,
                test_complexity=spec.test_complexity,
                dependencies=[dep for dep in dict.fromkeys(spec.depends_on) if dep in ids],
                test=_copy_command(spec.test),
                shell=spec.shell,
                patch=patch,
                env={**plan.defaults.env, **spec.env},
                repeat=spec.repeat if spec.repeat is not None else plan.defaults.repeat,
                timeout=spec.timeout if spec.timeout is not None else plan.defaults.timeout,
            )
        )
    return result


def to_control(plan: Plan) -> Hypothesis | None:
    """The control run as a `Hypothesis` with id "control" (no patch), or None."""
    control = plan.control
    if control is None:
        return None
    return Hypothesis(
        id="control",
        description="control: the unmodified base must reproduce the bug",
        test=_copy_command(control.test),
        shell=control.shell,
        env={**plan.defaults.env, **control.env},
        repeat=control.repeat if control.repeat is not None else plan.defaults.repeat,
        timeout=control.timeout if control.timeout is not None else plan.defaults.timeout,
    )


def to_config(
    plan: Plan,
    *,
    max_hypotheses: int | None = None,
    concurrency: int | Literal["auto"] | None = None,
    log_dir: Path | None = None,
) -> FalsificationConfig:
    """A `FalsificationConfig` from the plan's settings; arguments (the CLI's) win."""
    limit = max_hypotheses or plan.max_hypotheses or len(plan.hypotheses)
    return FalsificationConfig(
        test_timeout=plan.defaults.timeout,
        max_concurrent_tests=concurrency if concurrency is not None else plan.concurrency,
        max_hypotheses=limit,
        probability_weight=plan.ranking.probability_weight,
        impact_weight=plan.ranking.impact_weight,
        complexity_weight=plan.ranking.complexity_weight,
        log_dir=log_dir,
        exit_code_overrides=plan.exit_code_overrides(),
    )


def _copy_command(command: list[str] | str | None) -> list[str] | str | None:
    return list(command) if isinstance(command, list) else command


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of a plan file (what `refute schema` prints)."""
    schema = Plan.model_json_schema()
    schema["title"] = "refute plan (version 1)"
    return {"$schema": PLAN_SCHEMA_URI, **schema}


# -- loading ---------------------------------------------------------------------------------

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)


class _PlanLoader(_SafeLoaderBase):
    """The safe loader, plus JSON's exponent floats (`1e3`, which YAML 1.1 reads as a
    string). `_compose` drives it event by event, so anchors, aliases, duplicate keys and
    tags outside the core schema are refused before anything is built from them."""


_PlanLoader.add_implicit_resolver(
    _CORE + "float",
    re.compile(r"^[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class _Lines:
    """1-based line numbers of values (and of mapping keys) by their path in the plan."""

    values: dict[Loc, int]
    keys: dict[Loc, int]

    def find(self, loc: Loc, *, key: bool = False) -> int | None:
        if key and loc in self.keys:
            return self.keys[loc]
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.values:
                return self.values[loc[:end]]
        return None


class _Container:
    __slots__ = ("data", "key", "loc")

    def __init__(self, data: dict[Any, Any] | list[Any], loc: Loc) -> None:
        self.data = data
        self.loc = loc
        self.key: Any = _NO_KEY


_NO_KEY = object()


def _compose(loader: _PlanLoader, name: str) -> tuple[object, _Lines]:
    """Build plain data from the loader's events, recording where each value is."""
    lines = _Lines({}, {})

    def refuse(message: str, line: int, loc: Loc = ()) -> PlanError:
        return PlanError(name, _format_loc(loc), message, line)

    loader.get_event()  # StreamStartEvent
    if loader.check_event(yaml.StreamEndEvent):
        return None, lines
    loader.get_event()  # DocumentStartEvent
    stack: list[_Container] = []
    root: object = None
    while True:
        event = loader.get_event()
        if event is None:  # pragma: no cover - the parser raises before running out
            raise refuse("unexpected end of the YAML text", 1)
        line = event.start_mark.line + 1 if event.start_mark else 1
        top = stack[-1] if stack else None
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            if not stack:
                break
            continue
        if top is None:
            loc: Loc = ()
        elif isinstance(top.data, list):
            loc = (*top.loc, len(top.data))
        else:
            loc = top.loc if top.key is _NO_KEY else (*top.loc, top.key)
        if isinstance(event, yaml.AliasEvent):
            raise refuse("YAML aliases (*name) are not allowed", line, loc)
        if getattr(event, "anchor", None) is not None:
            raise refuse("YAML anchors (&name) are not allowed", line, loc)
        value: object
        if isinstance(event, yaml.ScalarEvent):
            value = _scalar(loader, event, refuse, line, loc)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
            tag = event.tag
            if tag not in {None, "!", _CORE + kind}:
                raise refuse(f"YAML tag {_short_tag(tag)} is not allowed", line, loc)
            if isinstance(top, _Container) and isinstance(top.data, dict) and top.key is _NO_KEY:
                raise refuse("a mapping key must be a plain value", line, loc)
            if len(stack) >= MAX_NESTING:
                raise refuse(f"nested more than {MAX_NESTING} levels deep", line, loc)
            value = {} if kind == "map" else []
        else:  # pragma: no cover - the parser emits no other event inside a document
            raise refuse(f"unexpected YAML event {type(event).__name__}", line, loc)
        # Place the value: as the root, a list item, a mapping key, or a mapping value.
        if top is None:
            root, here = value, ()
        elif isinstance(top.data, list):
            here = (*top.loc, len(top.data))
            top.data.append(value)
        elif top.key is _NO_KEY:
            here = (*top.loc, value)
            if value in top.data:
                raise refuse(f"duplicate key {_show(value)}", line, here)
            top.key = value
            lines.keys[here] = line
            continue
        else:
            here = (*top.loc, top.key)
            top.data[top.key] = value
            top.key = _NO_KEY
        lines.values[here] = line
        if isinstance(value, dict | list):
            stack.append(_Container(value, here))
        elif not stack:
            break
    loader.get_event()  # DocumentEndEvent
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.peek_event()
        mark = event.start_mark if event else None
        second = mark.line + 1 if mark else None
        raise PlanError(name, "", "a plan is one YAML document (found a second one)", second)
    return root, lines


def _scalar(
    loader: _PlanLoader,
    event: yaml.ScalarEvent,
    refuse: Callable[[str, int, Loc], PlanError],
    line: int,
    loc: Loc,
) -> object:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    if tag == _CORE + "merge":
        raise refuse("YAML merge keys (<<) are not allowed", line, loc)
    if tag not in _SCALAR_TAGS:
        raise refuse(f"YAML tag {_short_tag(tag)} is not allowed", line, loc)
    node = yaml.ScalarNode(tag, event.value, None, None, event.style)
    try:
        return loader.construct_object(node)
    except Exception:  # the constructors raise ValueError, AttributeError, ...: all bad input
        raise refuse(f"cannot read {_show(event.value)} as {_short_tag(tag)}", line, loc) from None


def _short_tag(tag: str | None) -> str:
    tag = tag or "?"
    return one_line("!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag)


def _read(path: Path, name: str) -> bytes:
    """The file's bytes; refuses directories, FIFOs and devices, and anything > 1 MiB
    before reading it (O_NONBLOCK: opening a FIFO must not wait for a writer)."""

    def too_large(size: object) -> PlanError:
        limit = f"a plan may have at most {MAX_PLAN_BYTES} bytes (1 MiB)"
        return PlanError(name, "", f"is too large ({size} bytes; {limit})")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PlanError(name, "", "file not found") from None
    except PermissionError:
        raise PlanError(name, "", "permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PlanError(name, "", f"cannot open: {getattr(exc, 'strerror', None) or exc}") from None
    data = bytearray()
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise PlanError(name, "", "is a directory, not a plan file")
        if not stat.S_ISREG(info.st_mode):
            raise PlanError(name, "", "is not a regular file")
        if info.st_size > MAX_PLAN_BYTES:
            raise too_large(info.st_size)
        while len(data) <= MAX_PLAN_BYTES:
            chunk = os.read(fd, MAX_PLAN_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise PlanError(name, "", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PLAN_BYTES:  # it grew after fstat
        raise too_large(f"more than {MAX_PLAN_BYTES}")
    return bytes(data)


def load_plan(path: Path | str) -> Plan:
    """Read, parse and validate a plan file (YAML or JSON); raise `PlanError` if unusable.

    Patch paths are checked against the file's directory, and `Plan.source` remembers the
    file. Error messages name the file as given.
    """
    name = os.fspath(path)
    data = _read(Path(path), name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start]
        raise PlanError(name, "", f"is not UTF-8 text (byte 0x{bad:02x})", line) from None
    source = Path(path).resolve()
    return parse_plan(text, name=name, base_dir=source.parent, source=source)


def parse_plan(
    text: str, *, name: str = "<plan>", base_dir: Path | None = None, source: Path | None = None
) -> Plan:
    """Parse and validate plan text. Patch files are checked only when `base_dir` is given.

    `name` is what error messages call the plan.
    """
    loader = _PlanLoader(text)
    try:
        data, lines = _compose(loader, name)
    except PlanError:
        raise
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = exc.problem or exc.context or "malformed"
        raise PlanError(name, "", f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise PlanError(name, "", f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        raise PlanError(name, "", "the plan is empty")
    if not isinstance(data, dict):
        raise PlanError(
            name, "", f"the top level must be a mapping (key: value), got {_show(data)}", 1
        )
    try:
        return Plan.model_validate(data, context={"base_dir": base_dir, "source": source})
    except ValidationError as exc:
        raise _plan_error(name, exc, lines) from None


# -- translating pydantic's errors -----------------------------------------------------------

_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): Plan,
    ("defaults",): Defaults,
    ("control",): ControlSpec,
    ("ranking",): Ranking,
    ("hypotheses", "#"): HypothesisSpec,
}

_PLAIN = {
    "missing": "required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
}


def _plan_error(name: str, exc: ValidationError, lines: _Lines) -> PlanError:
    """The first problem in file order, as a PlanError."""
    found: list[tuple[float, int, Loc, str, int | None]] = []
    for error in exc.errors():
        loc, message, key = _describe(error)
        line = lines.find(loc, key=key)
        found.append((line if line is not None else math.inf, len(found), loc, message, line))
    _, _, loc, message, line = min(found)
    return PlanError(name, _format_loc(loc), message, line)


def _describe(error: ErrorDetails) -> tuple[Loc, str, bool]:
    """(path, message, whether the key's line is the better one) for one pydantic error."""
    loc: Loc = tuple(error["loc"])
    kind, context = error["type"], error.get("ctx") or {}
    value = error.get("input")
    if kind == "refute":
        return (*loc, *context.get("loc", ())), str(context["message"]), False
    if kind == "extra_forbidden":
        return loc, _unknown_field(loc), True
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        what = "an integer (an exit code)" if kind == "int_type" else "a string"
        return loc[:-1], f"key {_show(value)} must be {what}", True
    if kind == "literal_error":
        options = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        choice = f"one of: {options}" if "," in options else options
        return loc, f"must be {choice}, got {_show(value)}", False
    if kind == "too_short":
        return loc, "must not be empty", False
    message = _PLAIN.get(kind)
    if message is None:
        message = error["msg"].replace("Input should be", "must be")
    if kind != "missing":
        message += f", got {_show(value)}"
        if kind == "string_type" and isinstance(value, bool):
            message += " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote it)"
    return loc, message, False


def _unknown_field(loc: Loc) -> str:
    field = str(loc[-1])
    shape = tuple("#" if isinstance(part, int) else str(part) for part in loc[:-1])
    model = _MODELS.get(shape)
    message = f"unknown field {_show(field)}"
    if model is not None:
        close = difflib.get_close_matches(field, list(model.model_fields), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _format_loc(loc: Loc) -> str:
    """`("hypotheses", 2, "timeout")` -> `hypotheses[2].timeout`."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{_show(part)}]"
    return text
