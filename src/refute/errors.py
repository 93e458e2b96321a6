"""Every exception refute raises on purpose, in one place.

Each docstring says who raises it. Front ends (the CLI) turn them into one-line messages;
the library never prints and never exits.
"""

from __future__ import annotations


class RefuteError(Exception):
    """Base class of every error refute raises on purpose."""


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

    Raised by `refute.git.run_git` (and so by everything in the worktree layer) with the
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

    Raised by `refute.worktrees.resolve_base` and `Repository.open`; the CLI maps it to
    exit code 2 (bad input).
    """


class WorktreeError(RefuteError):
    """A worktree could not be created, verified, patched or cleaned.

    Raised by the worktree manager and pool; `hypothesis_id` names the hypothesis when the
    failure concerns one.
    """

    def __init__(self, message: str, hypothesis_id: str | None = None) -> None:
        super().__init__(message)
        self.hypothesis_id = hypothesis_id


class InvalidIdError(ConfigError):
    """A hypothesis id breaks the safe-slug rule ([a-z0-9][a-z0-9._-]{0,63}, no '..',
    no trailing '.lock'). Raised by `refute.paths.check_id`."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__("id", f"{value!r} {reason}")
        self.value = value
