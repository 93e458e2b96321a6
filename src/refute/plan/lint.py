"""Checks that need only the plan: shell syntax in commands that run without a shell.

A test, the control's test or the setup runs without a shell unless it says `shell: true`:
a string is split like a shell splits words (`shlex`) and exec'd, so in
`pip install -e . && echo done` pip gets `&&`, `echo` and `done` as arguments. `lint` finds
such operators before anything runs and lists every command that has them.

What counts as an operator, so that legitimate arguments are not flagged:

* in a string: a word (as `shlex` splits it) that is an operator (`&&`, `||`, `|`, `;`,
  `>`, `<`, `>>`, `2>`, `&`, ...), or begins with one (`>out.log`, `2>&1`, `|grep`),
  or ends with `;`, `&&`, `||`, `|` (`make;`), or the last word ending with `&`; and
  `$(` or a backtick anywhere outside single quotes (a shell substitutes those inside
  double quotes too). Quoted characters are never operators: `grep '&&' a.txt` and
  `python -c 'a && b'` are fine. An operator inside a word (`a|b`, `x>3`) is left alone:
  it is as likely a literal argument.
* in an argv list: an element that is exactly an operator, begins with `$(`, or is wrapped
  in backticks. With `shell: true` a list is joined with shell quoting first, so such an
  element is quoted, not an operator, either: that is reported too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from refute.document import CONTROL_ID
from refute.plan.errors import show_value
from refute.plan.models import Plan

__all__ = ["SHELL_OPERATORS", "Problem", "lint", "shell_operators"]

#: Words a shell reads as control or redirection operators.
SHELL_OPERATORS = frozenset(
    {"&&", "||", "|", ";", "&", ">", "<", ">>", "2>", "2>>", "&>", ">&", "2>&1", "1>&2", ">&2"}
)
# Operators a word may begin with (longest first, so `>>x` reports `>>`, not `>`).
_LEADING = ("2>>", "2>", "&>", ">>", ">&", ">", "<", "&&", "||", "|", ";")
# Operators a word may end with; `&` only on the last word (`server &`, `server&`).
_TRAILING = (";", "&&", "||", "|")
_SUBSTITUTIONS = ("$(", "`")

# How each character of a word was written (mirrors shlex's POSIX rules).
_PLAIN, _SINGLE, _DOUBLE, _ESCAPED = "", "'", '"', "\\"
_WHITESPACE = " \t\r\n"  # shlex's, not str.isspace's


@dataclass(frozen=True)
class Problem:
    """One problem found before anything runs.

    `where` names the command in the plan ("hypotheses[2] (token-race).test", "setup",
    "control.test"); `hypothesis_id` is the hypothesis it belongs to, "control" for the
    control's test, None for the setup (which every worktree runs).
    """

    where: str
    message: str
    hypothesis_id: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def lint(plan: Plan) -> list[Problem]:
    """Every problem the plan alone shows, in plan order: setup, control, hypotheses."""
    problems: list[Problem] = []
    setup = plan.setup_command
    if setup is not None:
        # `setup: {command: ..., shell: true}` runs through sh; a plain command never does.
        _check(problems, "setup", None, "the setup", setup, shell=plan.setup_shell)
    if plan.control is not None:
        test, shell = plan.control.test, plan.control.shell
        _check(problems, "control.test", CONTROL_ID, "the control's test", test, shell=shell)
    for index, spec in enumerate(plan.hypotheses):
        if spec.test is not None:
            where = f"hypotheses[{index}] ({spec.id}).test"
            _check(problems, where, spec.id, "this test", spec.test, shell=spec.shell)
    return problems


def _check(
    problems: list[Problem],
    where: str,
    hypothesis_id: str | None,
    what: str,
    command: Sequence[str] | str,
    *,
    shell: bool,
) -> None:
    if isinstance(command, str):
        if shell:
            return  # `/bin/sh -c <string>`: operators are what the user meant
        found = shell_operators(command)
        advice = "set `shell: true` to run it with /bin/sh -c"
        if not found:
            return
        message = f"{_listed(found)}, but {what} runs without a shell: {_passed(found)}; {advice}"
    else:
        found = _list_operators(command)
        if not found:
            return
        if shell:
            message = (
                f"{_listed(found)}, but with `shell: true` a list is joined with shell quoting,"
                f" so {_quoted(found)}; write {what} as one string"
            )
        else:
            message = (
                f"{_listed(found)}, but {what} runs without a shell: {_passed(found)};"
                " write it as one string and set `shell: true`"
            )
    problems.append(Problem(where, message, hypothesis_id))


def _listed(found: Sequence[str]) -> str:
    shown = ", ".join(show_value(word) for word in found)
    return f"{shown} {'is shell syntax' if len(found) == 1 else 'are shell syntax'}"


def _passed(found: Sequence[str]) -> str:
    return (
        "the program gets it as an argument"
        if len(found) == 1
        else ("the program gets them as arguments")
    )


def _quoted(found: Sequence[str]) -> str:
    return "it is quoted, not an operator" if len(found) == 1 else "they are quoted, not operators"


def _list_operators(argv: Sequence[str]) -> list[str]:
    found = [
        part
        for part in argv
        if part in SHELL_OPERATORS
        or part.startswith("$(")
        or (len(part) >= 2 and part.startswith("`") and part.endswith("`"))
    ]
    return list(dict.fromkeys(found))


def shell_operators(command: str) -> list[str]:
    """The words of a string command that a shell would read as operators, in order.

    Each word is returned as written (after shlex's quote removal), once.
    """
    words = _words(command)
    found: list[str] = []
    for position, word in enumerate(words):
        if _is_operator_word(word, last=position == len(words) - 1):
            found.append("".join(char for char, _ in word))
    return list(dict.fromkeys(found))


def _is_operator_word(word: list[tuple[str, str]], *, last: bool) -> bool:
    text = "".join(char for char, _ in word)
    kinds = [kind for _, kind in word]

    def plain(start: int, end: int) -> bool:
        return all(kind == _PLAIN for kind in kinds[start:end])

    if text in SHELL_OPERATORS and plain(0, len(word)):
        return True
    if any(text.startswith(op) and plain(0, len(op)) for op in _LEADING):
        return True
    trailing = (*_TRAILING, "&") if last else _TRAILING
    if any(text.endswith(op) and plain(len(text) - len(op), len(text)) for op in trailing):
        return True
    for marker in _SUBSTITUTIONS:
        start = text.find(marker)
        while start != -1:
            if all(kind in (_PLAIN, _DOUBLE) for kind in kinds[start : start + len(marker)]):
                return True
            start = text.find(marker, start + 1)
    return False


def _words(command: str) -> list[list[tuple[str, str]]]:
    """The words shlex.split(command) gives, each character tagged with how it was quoted.

    The plan's validation has already refused strings shlex cannot split (an unclosed
    quote); a trailing lone backslash is kept as a plain character here.
    """
    words: list[list[tuple[str, str]]] = []
    word: list[tuple[str, str]] = []
    in_word = False
    state = _PLAIN
    chars = iter(command)
    for char in chars:
        if state == _SINGLE:
            if char == "'":
                state = _PLAIN
            else:
                word.append((char, _SINGLE))
        elif state == _DOUBLE:
            if char == '"':
                state = _PLAIN
            elif char == "\\":
                following = next(chars, "")
                if following in ('"', "\\"):
                    word.append((following, _ESCAPED))
                elif following in ("$", "`"):  # shlex keeps the backslash; sh takes it literally
                    word.extend((("\\", _DOUBLE), (following, _ESCAPED)))
                else:
                    word.append(("\\", _DOUBLE))
                    if following:
                        word.append((following, _DOUBLE))
            else:
                word.append((char, _DOUBLE))
        elif char in _WHITESPACE:
            if in_word:
                words.append(word)
                word, in_word = [], False
        else:
            in_word = True
            if char == "'":
                state = _SINGLE
            elif char == '"':
                state = _DOUBLE
            elif char == "\\":
                following = next(chars, "")
                word.append((following, _ESCAPED) if following else ("\\", _PLAIN))
            else:
                word.append((char, _PLAIN))
    if in_word:
        words.append(word)
    return words
