"""The plan file: its models, a safe YAML/JSON loader, validation, ranking, JSON Schema.

A plan (version 1, `docs/plan.md`) names the bug, the base commit, defaults, an optional
setup and control, and the hypotheses. `load_plan` turns a file into a `Plan` or raises
`PlanError` with a one-line message (`plan.yaml:12: hypotheses[2].timeout: must be a
number > 0`); nothing else escapes it for bad input. `rank` orders the hypotheses for a
session; `to_hypotheses` turns them into the seed's `Hypothesis` objects. Reading and YAML
parsing live in `_plan_loader`, the field types in `_plan_fields`, messages in `_plan_errors`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from refute.document import CONTROL_ID
from refute.model import (
    DEFAULT_SETUP_TIMEOUT,
    DEFAULT_TEST_TIMEOUT,
    MAX_HYPOTHESES,
    FalsificationConfig,
    Hypothesis,
    TestResult,
)
from refute.plan.errors import Models, invalid, one_message, plan_error, show_value
from refute.plan.fields import (
    Command,
    Concurrency,
    Env,
    Estimate,
    Outcome,
    Pattern,
    Repeat,
    RunnerName,
    Seconds,
    Share,
    Text,
    Weight,
    commit_ish,
    exit_code_keys,
    hypothesis_id,
    no_nul,
    relative_path,
    version_one,
)
from refute.plan.loader import parse_text, read_text

__all__ = [
    "PATCH_SOURCES",
    "PLAN_SCHEMA_URI",
    "ControlSpec",
    "Defaults",
    "HypothesisSpec",
    "Plan",
    "Ranking",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
    "to_config",
    "to_control",
    "to_hypotheses",
]

PLAN_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
#: The fields that give a hypothesis' patch, at most one per hypothesis.
PATCH_SOURCES = ("patch", "patch_text", "commit", "revert")


#: `isolation`: a worktree of its own (the default), or also a sandbox (docs/sandbox.md).
Isolation = Literal["worktree", "sandbox"]


class _Strict(BaseModel):
    """No coercion (`id: no` stays False and is refused) and no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_test(spec: HypothesisSpec | ControlSpec) -> None:
    """A string test without `shell` must split into arguments (shlex)."""
    if isinstance(spec.test, str) and not spec.shell:
        try:
            argv = shlex.split(spec.test)
        except ValueError as exc:
            raise invalid(f"cannot be split into arguments ({exc})", "test") from None
        if not argv:
            raise invalid("must not be empty", "test")


class Defaults(_Strict):
    """Settings every hypothesis (and the control) inherits unless it sets its own."""

    timeout: Seconds = Field(
        default=DEFAULT_TEST_TIMEOUT, description="Seconds one run may take (> 0)."
    )
    repeat: Repeat = Field(default=1, description="Runs per hypothesis (1 to 1000).")
    env: Env = Field(default_factory=dict, description="Environment variables (str -> str).")
    runner: RunnerName = Field(
        default="auto",
        description="How exit codes are read: auto recognises pytest, unittest, go test, "
        "cargo test, jest/npm test and node --test by their command; none: the plain table.",
    )
    failure_pattern: Pattern | None = Field(
        default=None,
        description="A failing run whose output does not match this regex failed differently "
        "(ERROR, no evidence).",
    )


class ControlSpec(_Strict):
    """A test run on the unmodified base; it must reproduce the bug (fail)."""

    test: Command = Field(description="argv list, or a string split with shlex.")
    timeout: Seconds | None = Field(default=None, description="Default: defaults.timeout.")
    repeat: Repeat | None = Field(default=None, description="Default: defaults.repeat.")
    env: Env = Field(default_factory=dict, description="Merged over defaults.env.")
    shell: bool = Field(default=False, description="true: a string test runs with sh -c.")
    runner: RunnerName | None = Field(default=None, description="Default: defaults.runner.")
    failure_pattern: Pattern | None = Field(
        default=None, description="Default: defaults.failure_pattern."
    )
    isolation: Isolation | None = Field(default=None, description="Default: the plan's.")

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

    id: Annotated[str, AfterValidator(hypothesis_id)] = Field(
        description="Safe slug [a-z0-9][a-z0-9._-]{0,63}; no '..', no '.lock' suffix, "
        "not 'control'; unique."
    )
    description: Text
    test: Command | None = Field(
        default=None, description="Default: the worktree's .falsification/test_<id>.sh."
    )
    shell: bool = Field(default=False, description="true: a string test runs with sh -c.")
    patch: Annotated[str, Field(min_length=1), AfterValidator(no_nul)] | None = Field(
        default=None, description="A diff applied first; relative to the plan file's directory."
    )
    patch_text: Annotated[str, Field(min_length=1), AfterValidator(no_nul)] | None = Field(
        default=None, description="A unified diff, inline, applied first."
    )
    commit: Annotated[Text, AfterValidator(commit_ish)] | None = Field(
        default=None, description="Apply this commit's change on the base first."
    )
    revert: Annotated[Text, AfterValidator(commit_ish)] | None = Field(
        default=None, description="Apply the reverse of this commit's change on the base first."
    )
    base: Annotated[Text, AfterValidator(commit_ish)] | None = Field(
        default=None, description="This hypothesis tests at another commit (default: the plan's)."
    )
    supported_if: Literal["fails", "passes"] = Field(
        default="fails", description="passes: the patch is a candidate fix."
    )
    estimated_test_time: Estimate = 0.0
    probability: Share = 0.5
    impact: Share = 0.5
    test_complexity: Share = 0.5
    timeout: Seconds | None = Field(default=None, description="Default: defaults.timeout.")
    repeat: Repeat | None = Field(default=None, description="Default: defaults.repeat.")
    env: Env = Field(default_factory=dict, description="Merged over defaults.env.")
    depends_on: list[str] = Field(default_factory=list, description="Ids that run first.")
    runner: RunnerName | None = Field(default=None, description="Default: defaults.runner.")
    failure_pattern: Pattern | None = Field(
        default=None, description="Default: defaults.failure_pattern."
    )
    isolation: Isolation | None = Field(default=None, description="Default: the plan's.")
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
            raise invalid(f"{problem}: {target}")
        return value

    @model_validator(mode="after")
    def _splittable(self) -> Self:
        _check_test(self)
        return self

    @model_validator(mode="after")
    def _one_patch_source(self) -> Self:
        given = [name for name in PATCH_SOURCES if getattr(self, name) is not None]
        if len(given) > 1:
            raise invalid(
                f"give at most one patch source, not {' and '.join(given)}"
                f" (one of: {', '.join(PATCH_SOURCES)})",
                given[1],
            )
        return self

    @property
    def patch_source(self) -> tuple[str, str] | None:
        """`(kind, value)` of the hypothesis' patch source, or None."""
        for name in PATCH_SOURCES:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None


def _at_most_hypotheses(value: object) -> object:
    """Refused before 10,000 hypotheses are validated one by one (a huge list is bad input)."""
    if isinstance(value, list) and len(value) > MAX_HYPOTHESES:
        raise invalid(f"a plan may have at most {MAX_HYPOTHESES} hypotheses, got {len(value)}")
    return value


class Plan(_Strict):
    """A plan file, version 1 (`docs/plan.md`)."""

    version: Annotated[Literal[1], BeforeValidator(version_one)] = Field(
        description="Plan format version; must be 1."
    )
    bug: Text = Field(description="The bug being investigated.")
    base: Annotated[Text, AfterValidator(commit_ish)] = Field(
        default="HEAD", description="The commit every worktree starts from."
    )
    include_uncommitted: bool = Field(
        default=False, description="Test a snapshot of uncommitted work."
    )
    defaults: Defaults = Defaults()
    setup: Command | None = Field(
        default=None,
        description="Runs once per worktree before tests. Also written as a mapping"
        " {command: ..., shell: true}.",
    )
    setup_shell: bool = Field(
        default=False, description="true: a string setup runs with sh -c (`setup.shell`)."
    )
    setup_timeout: Seconds = Field(
        default=DEFAULT_SETUP_TIMEOUT, description="Seconds the setup may take."
    )
    setup_inputs: list[Annotated[str, AfterValidator(relative_path)]] | None = Field(
        default=None,
        description="Files (or globs) a warm worktree's setup depends on; it is skipped while "
        "they and the setup command are unchanged (default: the usual lock and manifest files).",
    )
    runner: RunnerName | None = Field(
        default=None, description="The same as defaults.runner (give one of the two)."
    )
    control: ControlSpec | None = None
    isolation: Isolation = Field(
        default="worktree",
        description="worktree: each test in a worktree of its own; sandbox: also in a private "
        "mount namespace where the user's checkout, refs, config, stash and other worktrees "
        "are read-only (Linux; docs/sandbox.md).",
    )
    ranking: Ranking = Ranking()
    max_hypotheses: (
        Annotated[
            int,
            Field(ge=1, le=MAX_HYPOTHESES),
            one_message(f"must be an integer from 1 to {MAX_HYPOTHESES}"),
        ]
        | None
    ) = Field(default=None, description="Run only the top k by score.")
    concurrency: Concurrency = Field(
        default="auto",
        description="Tests run at once: a number (1 to 256), or auto (the CPUs available,"
        " capped by memory).",
    )
    keep_paths: list[Annotated[str, AfterValidator(relative_path)]] | None = Field(
        default=None, description="Paths the warm pool keeps between sessions (default: its own)."
    )
    exit_codes: Annotated[dict[int, Outcome], BeforeValidator(exit_code_keys)] = Field(
        default_factory=dict,
        description="Exit code (or -N for signal N) -> outcome, over the default table.",
        json_schema_extra={"propertyNames": {"pattern": "^-?[0-9]+$"}},
    )
    hypotheses: Annotated[list[HypothesisSpec], BeforeValidator(_at_most_hypotheses)] = Field(
        min_length=1, max_length=MAX_HYPOTHESES, description=f"At most {MAX_HYPOTHESES}."
    )

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Self:
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.hypotheses):
            first = seen.setdefault(spec.id.casefold(), index)
            if first != index:
                raise invalid(f"duplicate id (also hypotheses[{first}])", "hypotheses", index, "id")
        for index, spec in enumerate(self.hypotheses):
            for position, dependency in enumerate(spec.depends_on):
                where = ("hypotheses", index, "depends_on", position)
                if dependency == spec.id:
                    raise invalid("a hypothesis cannot depend on itself", *where)
                if dependency not in seen:
                    raise invalid(f"unknown hypothesis id {show_value(dependency)}", *where)
        cycle = _find_cycle(self.hypotheses)
        if cycle:
            index = next(i for i, spec in enumerate(self.hypotheses) if spec.id == cycle[0])
            path = " -> ".join(cycle)
            raise invalid(f"dependency cycle: {path}", "hypotheses", index, "depends_on")
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
        """The hypotheses to run, in run order (see `refute.plan.ranking.rank`)."""
        from refute.plan.ranking import rank  # noqa: PLC0415 - ranking imports this module

        return rank(self, max_hypotheses=max_hypotheses, weights=weights).specs

    def exit_code_overrides(self) -> dict[int, TestResult]:
        """`exit_codes` as `classify_exit` takes them."""
        return {code: TestResult(outcome) for code, outcome in self.exit_codes.items()}

    @property
    def setup_command(self) -> list[str] | str | None:
        """The setup command as written (a string or an argv list), or None."""
        return self.setup

    @model_validator(mode="before")
    @classmethod
    def _setup_mapping(cls, data: object) -> object:
        """`setup: {command: ..., shell: true}` is `setup: ...` plus `setup_shell: true`."""
        if not isinstance(data, dict) or not isinstance(data.get("setup"), dict):
            return data
        mapping = data["setup"]
        for key in mapping:
            if key not in ("command", "shell"):
                hint = " (did you mean 'command'?)" if key in ("cmd", "run", "test") else ""
                raise invalid(f"unknown field {show_value(key)}{hint}", "setup", key)
        if "command" not in mapping:
            raise invalid("required", "setup", "command")
        if "setup_shell" in data:
            raise invalid("give the shell either as setup.shell or as setup_shell", "setup")
        return {**data, "setup": mapping["command"], "setup_shell": mapping.get("shell", False)}

    def setup_argv(self) -> list[str] | None:
        """The setup command as an argv list (a string is split with shlex, or run with
        `/bin/sh -c` when the setup says `shell: true`), or None."""
        command = self.setup_command
        if command is None:
            return None
        if self.setup_shell:
            script = command if isinstance(command, str) else shlex.join(command)
            return ["/bin/sh", "-c", script]
        return shlex.split(command) if isinstance(command, str) else list(command)

    @property
    def default_runner(self) -> str:
        """The runner of the plan's tests unless a hypothesis or the control says otherwise."""
        return self.runner or self.defaults.runner

    @model_validator(mode="after")
    def _setup_splittable(self) -> Self:
        if isinstance(self.setup, str) and not self.setup_shell:
            try:
                shlex.split(self.setup)
            except ValueError as exc:
                raise invalid(f"cannot be split into arguments ({exc})", "setup") from None
        return self

    @model_validator(mode="after")
    def _one_runner_setting(self) -> Self:
        if self.runner is not None and self.defaults.runner not in ("auto", self.runner):
            raise invalid(
                f"runner {self.runner!r} and defaults.runner {self.defaults.runner!r} disagree;"
                " give one of the two",
                "runner",
            )
        return self


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
                runner=spec.runner or plan.default_runner,
                failure_pattern=spec.failure_pattern or plan.defaults.failure_pattern,
                patch_text=spec.patch_text,
                commit=spec.commit,
                revert=spec.revert,
                base=spec.base,
                isolation=spec.isolation or plan.isolation,
            )
        )
    return result


def to_control(plan: Plan) -> Hypothesis | None:
    """The control run as a `Hypothesis` with id "control" (no patch), or None."""
    control = plan.control
    if control is None:
        return None
    return Hypothesis(
        id=CONTROL_ID,
        description="control: the unmodified base must reproduce the bug",
        test=_copy_command(control.test),
        shell=control.shell,
        env={**plan.defaults.env, **control.env},
        repeat=control.repeat if control.repeat is not None else plan.defaults.repeat,
        timeout=control.timeout if control.timeout is not None else plan.defaults.timeout,
        runner=control.runner or plan.default_runner,
        failure_pattern=control.failure_pattern or plan.defaults.failure_pattern,
        isolation=control.isolation or plan.isolation,
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

#: The models by where they sit in a plan, for "did you mean" hints on unknown fields.
_MODELS: Models = {
    (): Plan,
    ("defaults",): Defaults,
    ("control",): ControlSpec,
    ("ranking",): Ranking,
    ("hypotheses", "#"): HypothesisSpec,
}


def load_plan(path: Path | str) -> Plan:
    """Read, parse and validate a plan file (YAML or JSON); raise `PlanError` if unusable.

    Patch paths are checked against the file's directory, and `Plan.source` remembers the
    file. Error messages name the file as given.
    """
    name = os.fspath(path)
    text = read_text(Path(path), name)
    source = Path(path).resolve()
    return parse_plan(text, name=name, base_dir=source.parent, source=source)


def parse_plan(
    text: str, *, name: str = "<plan>", base_dir: Path | None = None, source: Path | None = None
) -> Plan:
    """Parse and validate plan text. Patch files are checked only when `base_dir` is given.

    `name` is what error messages call the plan.
    """
    data, lines = parse_text(text, name)
    try:
        return Plan.model_validate(data, context={"base_dir": base_dir, "source": source})
    except ValidationError as exc:
        raise plan_error(name, exc, lines, _MODELS) from None
