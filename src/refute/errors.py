"""Every exception refute raises on purpose, in one place.

Each docstring says who raises it. Front ends (the CLI) turn them into one-line messages;
the library never prints and never exits.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "CheckoutError",
    "ConfigError",
    "ErrorKind",
    "GitError",
    "Interrupted",
    "InvalidIdError",
    "NotOwnedError",
    "PlanCheckError",
    "PlanError",
    "RefuteError",
    "RepositoryError",
    "SessionRunningError",
    "StoreError",
    "UnknownSessionError",
    "WorktreeError",
    "one_line",
]

#: What kind of failure an error is; front ends map kinds (never classes) to exit codes.
ErrorKind = Literal["usage", "infrastructure", "interrupted"]


class RefuteError(Exception):
    """Base class of every error refute raises on purpose.

    `kind` says whose problem it is: "usage" (bad input: the plan, an argument, a ref),
    "infrastructure" (git, the filesystem, the store failed) or "interrupted".
    """

    kind: ClassVar[ErrorKind] = "usage"


class ConfigError(RefuteError, ValueError):
    """An invalid setting or model value.

    Raised by `FalsificationConfig`, `Hypothesis` and `CostModel` when constructed with a
    value outside its allowed range (a timeout <= 0, a concurrency < 1, an empty test, ...),
    and by the executor for malformed input such as duplicate hypothesis ids.
    `field` names the offending setting.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class GitError(RefuteError):
    """A git command failed.

    Raised by `refute.workspace.git.run_git` (and so by everything in the worktree layer) with the
    command that ran, its exit code and its stderr.
    """

    def __init__(self, command: list[str], exit_code: int, stderr: str, message: str = "") -> None:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {exit_code}"
        super().__init__(message or f"git {' '.join(command)}: {detail}")
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr


class RepositoryError(RefuteError):
    """The repository or base commit cannot be used (not a repository, empty, bad ref).

    Raised by `refute.workspace.worktrees.resolve_base` and `Repository.open`; the CLI maps it to
    exit code 2 (bad input).
    """


class CheckoutError(RefuteError):
    """A job's checkout could not be prepared (worktree, patch or setup).

    Raised by a `refute.engine.protocol.Checkouts` provider (the workspace's `Checkouts`);
    the engine turns it into that job's ERROR result, so it reaches a front end only when
    raised outside a batch.
    """

    kind: ClassVar[ErrorKind] = "infrastructure"


class WorktreeError(CheckoutError):
    """A worktree could not be created, verified, patched or cleaned.

    Raised by the worktree manager and pool; `hypothesis_id` names the hypothesis when the
    failure concerns one.
    """

    def __init__(self, message: str, hypothesis_id: str | None = None) -> None:
        super().__init__(message)
        self.hypothesis_id = hypothesis_id


class NotOwnedError(RefuteError):
    """A directory refute creates is not refute's (a symlink or a file in its place).

    Raised by `refute.paths.make_owned_dir`; refute never writes through such a path
    (`refute clean` moves the pool's aside).
    """

    kind: ClassVar[ErrorKind] = "infrastructure"


class InvalidIdError(ConfigError):
    """A hypothesis id breaks the safe-slug rule ([a-z0-9][a-z0-9._-]{0,63}, no '..',
    no trailing '.lock'). Raised by `refute.model.check_id`."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__("id", f"{value!r} {reason}")
        self.value = value


class StoreError(RefuteError):
    """The session store cannot do what was asked.

    Raised by `refute.store.Store`: the database cannot be opened or is not a refute
    database, its schema is newer than this version of refute knows, a session id (or
    prefix) is unknown or ambiguous, a document is malformed, or SQLite itself failed.
    """

    kind: ClassVar[ErrorKind] = "infrastructure"


class UnknownSessionError(StoreError):
    """A session id (or prefix) names no stored session, or several.

    Raised by `refute.store.Store.resolve_session_id`; it is bad input (kind "usage"),
    unlike other store errors (infrastructure).
    """

    kind: ClassVar[ErrorKind] = "usage"


class SessionRunningError(StoreError):
    """A session cannot be resumed: the refute process that runs it is still alive.

    Raised by `refute.store.Store.claim_session` (so by `refute.app.resume`); bad input
    (kind "usage"): wait for that process, or stop it first.
    """

    kind: ClassVar[ErrorKind] = "usage"


def one_line(text: str) -> str:
    """`text` with every character that could break a line (or is invisible) escaped."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class PlanError(ConfigError):
    """A plan file cannot be used: unreadable, too large, not UTF-8, malformed or unsafe
    YAML/JSON, or a value the plan format does not allow.

    Raised by `refute.plan.load_plan` and `refute.plan.parse_plan` (never any other
    exception for bad input). `path` is the file name as given, `line` the 1-based line of
    the offending node when the parser knows it, `field` the path of the offending value
    (`hypotheses[2].timeout`; empty for problems with the file as a whole). `str()` is the
    one-line form `plan.yaml:12: hypotheses[2].timeout: must be a number > 0`.
    """

    def __init__(self, path: str, field: str, message: str, line: int | None = None) -> None:
        super().__init__(one_line(field), one_line(message))
        self.path = path
        self.line = line
        where = one_line(path) + (f":{line}" if line is not None else "")
        self.args = (
            f"{where}: {self.field}: {self.message}" if field else f"{where}: {self.message}",
        )

    def __reduce__(self) -> tuple[type[PlanError], tuple[str, str, str, int | None]]:
        return (type(self), (self.path, self.field, self.message, self.line))


class PlanCheckError(RefuteError):
    """A plan that parses but cannot work: a patch that does not apply, a command that cannot
    be found, shell syntax without a shell, ... `problems` holds one line for each.

    Raised by `refute.app.run_plan` (and reported, not raised, by `refute.app.check`) before
    anything is created; front ends show every line.
    """

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0] if problems else 'the plan has problems'}{more}")
        self.problems = problems


class Interrupted(RefuteError):  # noqa: N818 - reads as what happened
    """The run was stopped by SIGINT or SIGTERM; cleanup has finished. `signum` says which.

    Raised by `refute.cli.signals.run_interruptible` once a cancelled session has cleaned up.
    """

    kind: ClassVar[ErrorKind] = "interrupted"

    def __init__(self, signum: int) -> None:
        import signal  # noqa: PLC0415 - only this error needs it

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
