"""The session document as pydantic models: one class per part, the whole `SessionDocument`.

docs/report.md describes every field. The models serve three readers at once:

- the **store** validates every document it is given (a session being created, a finished
  one, each run) and keeps the plain dict it was given;
- the **reports** read a document through them, typed, once;
- the **JSON Schema** (`document_json_schema`, printed by `refute schema --report`) is
  generated from them.

A document is written in steps (created, runs added, analysed), so the models accept a
*partial* document: a field the session has not reached yet may be missing, and then reads
as its default (`None` for the `Later[...]` fields). The schema describes the finished,
analysed document: every field is required there, `Later[...]` fields are not nullable,
and only the fields a class lists in `schema_optional` may be left out. Types are strict
(no "1" for 1, no 0 for false). Unknown keys are kept everywhere but at the top level, so
a consumer of version 1 keeps working when a nested object gains a key.

Field order is the order refute writes the keys in, so a document dumped from the models
(`model_dump(mode="json", by_alias=True, exclude_unset=True)`) reads like the ones before.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict

from refute.document.vocabulary import (
    CONTROL_ID,
    OUTCOME_KEYS,
    SCHEMA,
    Action,
    ControlVerdict,
    CountKey,
    Outcome,
    SchemaVersion,
    Status,
    SupportedIf,
    Verdict,
)
from refute.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_KEEP_PATHS,
    DEFAULT_SETUP_TIMEOUT,
    DEFAULT_TEST_TIMEOUT,
)

__all__ = [
    "ANALYSIS_KEYS",
    "Base",
    "ControlAnalysis",
    "ControlEntry",
    "ControlSpec",
    "HypothesisAnalysis",
    "HypothesisEntry",
    "HypothesisSpec",
    "Metrics",
    "NextStep",
    "OutcomeCounts",
    "ParallelDecisionRecord",
    "Recommendation",
    "RunRecord",
    "SessionDocument",
    "SessionInfo",
    "Settings",
    "Summary",
    "Timing",
    "VerdictCounts",
]

_T = TypeVar("_T")


def _not_null(schema: JsonDict) -> None:
    """Drop the null branch of a `Later[...]` field's schema."""
    options = schema.pop("anyOf", None)
    if not isinstance(options, list):
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1 and isinstance(kept[0], dict):
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


#: A value the document has once the session gets that far: None (or missing) before.
Later = Annotated[_T | None, Field(json_schema_extra=_not_null)]

Count = Annotated[int, Field(ge=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(ge=0)]
Timeout = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
HypothesisId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")]
Interval = Annotated[list[Share], Field(min_length=2, max_length=2)]
Isolation = Literal["worktree", "sandbox"]  # refute.model.ISOLATIONS


def _command(value: object) -> list[str] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return value
    raise ValueError("must be an argv list of strings, a string or null")


#: A test command as the document records it: an argv list, a string, or null.
Command = Annotated[
    list[str] | str | None,
    PlainValidator(_command),
    WithJsonSchema({"type": ["array", "string", "null"], "items": {"type": "string"}}),
]


def _tidy(schema: JsonDict, cls: type[Any]) -> None:
    """Each model's schema: required but for `schema_optional`, without titles or defaults
    on the properties (every field is required, so a default would only mislead)."""
    optional: set[str] = set()
    for klass in cls.__mro__:
        optional |= vars(klass).get("schema_optional", frozenset())
    required = schema.get("required")
    if isinstance(required, list):
        kept = [name for name in required if name not in optional]
        if kept:
            schema["required"] = kept
        else:
            del schema["required"]
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict):
                prop.pop("title", None)
                prop.pop("default", None)


class _Part(BaseModel):
    """Every part of the document: strict types, unknown keys kept."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_tidy,
    )

    #: Fields the schema does not require (recorded by refute, but not part of the contract
    #: every version-1 document meets).
    schema_optional: ClassVar[frozenset[str]] = frozenset()


# -- runs -----------------------------------------------------------------------------------


class SetupRecord(_Part):
    """How the setup of a run's worktree went: `cached` when a warm slot skipped it."""

    schema_optional = frozenset({"ok", "cached", "seconds", "logs"})

    ok: bool = True
    cached: bool = False
    seconds: Seconds = 0.0
    logs: list[str] = Field(default_factory=list)


class Metrics(_Part):
    """A run's `metrics`: each key present when it applies, unknown keys allowed."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    confidence: Later[Share] = None
    attempt: Later[AtLeastOne] = None
    slot: Count | None = None
    not_run: bool = False
    stdout_bytes: Later[Count] = None
    stderr_bytes: Later[Count] = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    cleanup_seconds: Later[Seconds] = None
    leftover_processes_killed: Later[Count] = None
    output_abandoned: bool = False
    notes: list[str] = Field(default_factory=list)
    setup: SetupRecord | None = None  # how the run's worktree was set up (plans with a setup)


class RunRecord(_Part):
    """One run of one test: `TestExecutionResult.to_dict()`, plus the command it ran."""

    schema_optional = frozenset({"command"})

    hypothesis_id: str
    result: Outcome
    duration: Seconds = 0.0
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    worktree_path: str = ""
    error_message: str = ""
    metrics: Metrics = Field(default_factory=Metrics)
    stdout_log: str = ""
    stderr_log: str = ""
    started_at: Seconds = 0.0
    command: Command = None  # the argv (or shell line) this run ran

    @property
    def count_key(self) -> CountKey:
        """The run's `counts` key: its result, or "not_run" if it was cancelled."""
        return "not_run" if self.metrics.not_run else self.result


class OutcomeCounts(_Part):
    """Runs per outcome; a run cancelled before it finished counts as `not_run`."""

    pass_: Count = Field(default=0, alias="pass")
    fail: Count = 0
    timeout: Count = 0
    error: Count = 0
    skip: Count = 0
    not_run: Count = 0

    def as_dict(self) -> dict[CountKey, int]:
        """The six counts by key, in `OUTCOME_KEYS` order."""
        dumped = self.model_dump(by_alias=True)
        return {key: int(dumped[key]) for key in OUTCOME_KEYS}

    @classmethod
    def of(cls, runs: list[RunRecord]) -> OutcomeCounts:
        """The counts of `runs`."""
        counts = dict.fromkeys(OUTCOME_KEYS, 0)
        for run in runs:
            counts[run.count_key] += 1
        return cls.model_validate(counts)


# -- the session ----------------------------------------------------------------------------


class Base(_Part):
    """The commit the session tested."""

    schema_optional = frozenset({"snapshot_ref"})

    ref: str = ""
    sha: Sha | None = None
    snapshot_of: str | None = None
    include_uncommitted: bool = False
    #: The ref that keeps the snapshot alive while the session can still be resumed (a
    #: resume runs on it); deleted from the repository once the session completes.
    snapshot_ref: str | None = None


class Settings(_Part):
    """The settings the session ran with (`auto` resolved)."""

    schema_optional = frozenset(
        {
            "dropped",
            "ignored_dependencies",
            "setup",
            "setup_timeout",
            "keep_paths",
            "exit_codes",
            "rerun",
        }
    )

    concurrency: AtLeastOne = DEFAULT_CONCURRENCY
    timeout: Timeout = DEFAULT_TEST_TIMEOUT
    repeat: AtLeastOne = 1
    parallel: bool = True
    max_hypotheses: AtLeastOne | None = None
    dropped: list[str] = Field(default_factory=list)
    ignored_dependencies: list[list[str]] = Field(default_factory=list)
    setup: list[str] | None = None
    setup_timeout: Timeout = DEFAULT_SETUP_TIMEOUT
    keep_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_KEEP_PATHS))
    exit_codes: dict[str, Outcome] = Field(default_factory=dict)
    rerun: str | None = None  # the command that runs the session again, when not `refute run PLAN`


class ParallelDecisionRecord(_Part):
    """The cost model's decision to run side by side, and the numbers it was made from."""

    schema_optional = frozenset({"hypotheses", "parallel_time"})

    parallel: bool
    hypotheses: Later[Count] = None
    sequential_time: Seconds
    longest_test: Seconds
    overhead: Seconds
    cost_source: str
    reason: str
    parallel_time: Later[Seconds] = None


class SessionInfo(_Part):
    """The session itself: where, what, how it ran and how it ended."""

    id: Annotated[str, Field(min_length=1)]
    repo: str = ""
    plan_path: Later[str] = None
    bug: str = ""
    status: Status = "running"
    started_at: Later[str] = None
    finished_at: str | None = None
    base: Base = Field(default_factory=Base)
    settings: Settings = Field(default_factory=Settings)
    parallel_decision: ParallelDecisionRecord | None = None
    exit_code: int | None = None
    error: str | None = None


# -- the control and the hypotheses ---------------------------------------------------------


class ControlSpec(_Part):
    """What the control runs: the reproduction test on the unmodified base."""

    schema_optional = frozenset(
        {"shell", "env", "repeat", "timeout", "runner", "failure_pattern", "isolation"}
    )

    test: Command = None
    shell: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    repeat: Later[AtLeastOne] = None
    timeout: Later[Timeout] = None
    runner: str = "auto"
    failure_pattern: str | None = None
    isolation: Isolation = "worktree"


class ControlAnalysis(_Part):
    """What the control's runs showed (`refute.analysis.control_verdict`)."""

    # The rate fields came after version 1's first documents: not required of them.
    schema_optional = frozenset({"reason", "reproduction_rate", "wilson_95"})

    verdict: ControlVerdict = "pending"
    counts: Later[OutcomeCounts] = None
    reproduction_rate: Share | None = None
    wilson_95: Interval | None = None
    reason: str = ""


class ControlEntry(ControlAnalysis, ControlSpec):
    """The control: its spec, its verdict and its runs."""

    runs: list[RunRecord] = Field(default_factory=list)


class HypothesisSpec(_Part):
    """What a hypothesis is and how it is tested, from the plan."""

    schema_optional = frozenset(
        {
            "test_strategy",
            "expected_behavior",
            "env",
            "runner",
            "failure_pattern",
            "patch_text",
            "commit",
            "revert",
            "base",
            "isolation",
        }
    )

    rank: Later[AtLeastOne] = None
    score: float = 0.0
    supported_if: SupportedIf = "fails"
    probability: Share = 0.5
    impact: Share = 0.5
    test_complexity: Share = 0.5
    estimated_test_time: Seconds = 0.0
    depends_on: list[str] = Field(default_factory=list)
    test_strategy: str = ""
    expected_behavior: str = ""
    id: HypothesisId
    description: str = ""
    test: Command = None
    shell: bool = False
    patch: str | None = None
    patch_text: str | None = None
    commit: str | None = None  # apply this commit's change (as the plan named it)
    revert: str | None = None  # apply the reverse of this commit's change
    base: str | None = None  # tested at this commit-ish instead of the session's base
    env: dict[str, str] = Field(default_factory=dict)
    repeat: Later[AtLeastOne] = None
    timeout: Later[Timeout] = None
    runner: str = "auto"
    failure_pattern: str | None = None
    isolation: Isolation = "worktree"  # "sandbox": run read-only but for its worktree


class HypothesisAnalysis(_Part):
    """What a hypothesis' runs showed (`refute.analysis.hypothesis_verdict`) and the
    caveats of its verdict (`refute.analysis.caveats`)."""

    # The caveats came after version 1's first documents: not required of them.
    schema_optional = frozenset({"unreliable_reasons", "names_checkout", "failed_differently"})

    verdict: Verdict = "pending"
    confidence: Later[Share] = None
    counts: Later[OutcomeCounts] = None
    runs_total: Count = 0
    runs_valid: Count = 0
    reproduction_rate: Share | None = None
    wilson_95: Interval | None = None
    reason: str = ""
    unreliable: bool = False
    unreliable_reasons: list[str] = Field(default_factory=list)
    names_checkout: bool = False
    failed_differently: bool = False


#: The keys of a hypothesis entry that analysis writes (the rest, but `runs`, is its spec).
ANALYSIS_KEYS: frozenset[str] = frozenset(HypothesisAnalysis.model_fields)


class HypothesisEntry(HypothesisAnalysis, HypothesisSpec):
    """One hypothesis: its spec, its verdict and its runs."""

    runs: list[RunRecord] = Field(default_factory=list)


# -- the summary ----------------------------------------------------------------------------


class VerdictCounts(_Part):
    """How many hypotheses got each verdict."""

    falsified: Count = 0
    supported: Count = 0
    inconclusive: Count = 0
    flaky: Count = 0
    pending: Count = 0


def _next_step(value: object) -> object:
    """A next step as version 1 wrote it (a sentence) reads as one with only its text."""
    return {"text": value} if isinstance(value, str) else value


class NextStep(_Part):
    """One next step: what to do (`action`), to which hypothesis, the command that does it
    (a shell command line to copy, or null), and the same in prose (`text`)."""

    schema_optional = frozenset({"action", "hypothesis", "command"})

    action: str | None = None
    hypothesis: str | None = None
    command: str | None = None
    text: str = ""


class Recommendation(_Part):
    """What to do next (`refute.analysis`' advice)."""

    action: Later[Action] = None
    message: str = ""
    next_steps: list[Annotated[NextStep, BeforeValidator(_next_step)]] = Field(default_factory=list)


class Timing(_Part):
    """Wall time, the sum of run time, and their ratio."""

    schema_optional = frozenset({"setup_seconds", "setups_cached"})

    wall_seconds: Later[Seconds] = None
    sum_run_seconds: Later[Seconds] = None
    speedup: Seconds | None = None
    setup_seconds: Seconds | None = None  # the setups that ran (cached ones took none)
    setups_cached: Count | None = None


class Summary(_Part):
    """Verdict counts, survivors, recommendation and timing (`analyze_session`)."""

    counts: VerdictCounts = Field(default_factory=VerdictCounts)
    survivors: list[str] = Field(default_factory=list)
    recommendation: Recommendation | None = None
    timing: Timing = Field(default_factory=Timing)


# -- the document ---------------------------------------------------------------------------


class SessionDocument(_Part):
    """What refute stores for one session and every report renders."""

    model_config = ConfigDict(extra="forbid", title=f"refute session document ({SCHEMA})")

    # Written since Step 4; documents before it do not have it.
    schema_optional = frozenset({"refute_version"})

    version: SchemaVersion = Field(default=SCHEMA, alias="schema")
    refute_version: str | None = None  # the refute that wrote the document
    session: SessionInfo
    control: ControlEntry | None = None
    hypotheses: list[HypothesisEntry] = Field(default_factory=list)
    summary: Later[Summary] = None

    @model_validator(mode="after")
    def check_ids(self) -> Self:
        """Hypothesis ids are unique and none is the control's."""
        seen: set[str] = set()
        for hypothesis in self.hypotheses:
            if hypothesis.id == CONTROL_ID or hypothesis.id in seen:
                raise ValueError(f"hypothesis id {hypothesis.id!r} is reserved or repeated")
            seen.add(hypothesis.id)
        return self
