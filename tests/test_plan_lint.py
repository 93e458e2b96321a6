"""`refute.plan.lint`: shell syntax in commands that run without a shell, found from the plan
alone and listed all at once; quoted operators are arguments, not syntax."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refute.plan import Plan, parse_plan
from refute.plan.lint import SHELL_OPERATORS, Problem, _words, lint, shell_operators

WHERE = "hypotheses[0] (token-race).test"


def plan_of(
    test: object = None,
    *,
    with_shell: bool = False,
    setup: object = None,
    control: dict[str, object] | None = None,
    more: list[dict[str, object]] | None = None,
) -> Plan:
    hypothesis: dict[str, object] = {"id": "token-race", "description": "d", "shell": with_shell}
    if test is not None:
        hypothesis["test"] = test
    data: dict[str, object] = {"version": 1, "bug": "b", "hypotheses": [hypothesis, *(more or [])]}
    if setup is not None:
        data["setup"] = setup
    if control is not None:
        data["control"] = control
    return parse_plan(json.dumps(data))


# -- strings -----------------------------------------------------------------------------------

FLAGGED_STRINGS = [
    ("pip install -e . && echo done", ["&&"]),
    ("pytest || true", ["||"]),
    ("pytest | tee log", ["|"]),
    ("make ; pytest", [";"]),
    ("make; pytest", ["make;"]),
    ("pytest > out.log", [">"]),
    ("pytest >out.log", [">out.log"]),
    ("python check.py < input.txt", ["<"]),
    ("pytest >> out.log", [">>"]),
    ("pytest 2> err.log", ["2>"]),
    ("pytest 2>/dev/null", ["2>/dev/null"]),
    ("pytest 2>&1", ["2>&1"]),
    ("pytest &> all.log", ["&>"]),
    ("echo $(date)", ["$(date)"]),
    ("echo --when=$(date)", ["--when=$(date)"]),
    ('echo "$(date)"', ["$(date)"]),  # sh substitutes inside double quotes too
    ("echo `date`", ["`date`"]),
    ("./server &", ["&"]),
    ("./server&", ["./server&"]),
    ("pytest |grep x", ["|grep"]),
]


@pytest.mark.parametrize(("command", "operators"), FLAGGED_STRINGS)
def test_every_operator_in_a_string_without_shell(command: str, operators: list[str]):
    [problem] = lint(plan_of(command))
    assert problem.where == WHERE
    assert problem.hypothesis_id == "token-race"
    for word in operators:
        assert repr(word) in problem.message
    assert "runs without a shell" in problem.message
    assert "set `shell: true`" in problem.message
    assert shell_operators(command) == operators


@pytest.mark.parametrize(("command", "operators"), FLAGGED_STRINGS)
def test_the_same_strings_with_shell_true_are_fine(command: str, operators: list[str]):
    assert operators
    assert lint(plan_of(command, with_shell=True)) == []


@pytest.mark.parametrize(
    "command",
    [
        "python -c 'a && b'",
        'python -c "a && b; c | d > e"',
        "grep '&&' notes.txt",
        'grep "|" notes.txt',
        "cut -d '|' -f1 data.txt",
        "python check.py 'x>3' '<' '2>'",
        "echo '$(date)' '`date`'",
        r"echo \$(date)",
        r'echo "\$(date)"',
        r"grep \&\& notes.txt",
        r"printf '%s\n' a\;",
        "python check.py a|b x>3",  # inside a word: as likely a literal argument
        "curl https://example.invalid/?a=1&b=2",
        "pytest -x tests/test_session.py::test_refresh_race",
        "pytest -k 'not slow and (a or b)'",
    ],
)
def test_quoted_operators_and_operators_inside_words_are_not_flagged(command: str):
    assert shell_operators(command) == []
    assert lint(plan_of(command)) == []


def test_several_operators_in_one_command_are_one_problem_listing_each_once():
    [problem] = lint(plan_of("make && pytest | tee log && echo $(date) > out"))
    assert problem.message.startswith("'&&', '|', '$(date)', '>' are shell syntax, but")
    assert "the program gets them as arguments" in problem.message


def test_the_message_of_one_operator():
    [problem] = lint(plan_of("pip install -e . && echo done"))
    assert problem.message == (
        "'&&' is shell syntax, but this test runs without a shell: the program gets it as an"
        " argument; set `shell: true` to run it with /bin/sh -c"
    )
    assert str(problem) == f"{WHERE}: {problem.message}"


# -- argv lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("operator", sorted(SHELL_OPERATORS))
def test_every_operator_as_a_list_element(operator: str):
    [problem] = lint(plan_of(["pytest", operator, "x"]))
    assert problem.where == WHERE
    assert repr(operator) in problem.message
    assert "write it as one string and set `shell: true`" in problem.message


@pytest.mark.parametrize("operator", sorted(SHELL_OPERATORS))
def test_a_list_with_shell_true_quotes_its_operators(operator: str):
    """`shell: true` joins a list with shell quoting: the operator is quoted, still broken."""
    [problem] = lint(plan_of(["pytest", operator, "x"], with_shell=True))
    assert "joined with shell quoting" in problem.message
    assert "write this test as one string" in problem.message


@pytest.mark.parametrize("element", ["$(date)", "$(git rev-parse HEAD)", "`date`"])
def test_substitutions_as_list_elements(element: str):
    [problem] = lint(plan_of(["echo", element]))
    assert repr(element) in problem.message


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-c", "a && b"],
        ["grep", "a|b", "notes.txt"],
        ["echo", "x$(y)"],  # only an element that starts with $( is a substitution
        ["echo", "&&x"],
        ["printf", "%s;", "a"],
        ["pytest", "-x", "tests/test_session.py::test_refresh_race"],
    ],
)
def test_list_elements_that_are_not_exactly_operators_are_fine(argv: list[str]):
    assert lint(plan_of(argv)) == []
    assert lint(plan_of(argv, with_shell=True)) == []


# -- the control, the setup, and everything at once ---------------------------------------------


def test_the_control():
    plan = plan_of("pytest", control={"test": "pytest -x && echo reproduced"})
    [problem] = lint(plan)
    assert problem.where == "control.test"
    assert problem.hypothesis_id == "control"
    assert "the control's test runs without a shell" in problem.message
    assert lint(plan_of("pytest", control={"test": "pytest && echo", "shell": True})) == []
    [listed] = lint(plan_of("pytest", control={"test": ["pytest", "|", "tee"], "shell": True}))
    assert listed.where == "control.test"
    assert "write the control's test as one string" in listed.message


@pytest.mark.parametrize(
    "setup",
    [
        "pip install -e . && echo done",
        ["pip", "install", "-e", ".", "&&", "echo", "done"],
        {"command": "pip install -e . && echo done"},
        {"command": "pip install -e . && echo done", "shell": False},
    ],
)
def test_the_setup(setup: object):
    [problem] = lint(plan_of("pytest", setup=setup))
    assert problem.where == "setup"
    assert problem.hypothesis_id is None
    assert "'&&'" in problem.message
    assert "the setup" in problem.message


def test_the_setup_with_shell_true_is_fine():
    assert (
        lint(plan_of("pytest", setup={"command": "pip install -e . && echo", "shell": True})) == []
    )
    assert lint(plan_of("pytest", setup="pip install -q -e .")) == []


def test_the_setup_as_a_list_with_shell_true_is_quoted():
    [problem] = lint(plan_of("pytest", setup={"command": ["make", "&&", "x"], "shell": True}))
    assert "write the setup as one string" in problem.message


def test_every_problem_is_listed_at_once_in_plan_order():
    plan = plan_of(
        "pytest | tee log",
        setup="pip install -e . && echo done",
        control={"test": "pytest; true"},
        more=[
            {"id": "fine", "description": "d", "test": "pytest -x"},
            {"id": "no-test", "description": "d"},
            {"id": "shelled", "description": "d", "test": "a && b", "shell": True},
            {"id": "listed", "description": "d", "test": ["pytest", ">", "out"]},
        ],
    )
    problems = lint(plan)
    assert [(p.where, p.hypothesis_id) for p in problems] == [
        ("setup", None),
        ("control.test", "control"),
        (WHERE, "token-race"),
        ("hypotheses[4] (listed).test", "listed"),
    ]
    assert all(isinstance(p, Problem) for p in problems)


def test_a_clean_plan_has_no_problems():
    plan = plan_of(
        "pytest -x tests/test_session.py",
        setup=["pip", "install", "-q", "-e", "."],
        control={"test": ["pytest", "-x"]},
    )
    assert lint(plan) == []


def test_problems_are_frozen():
    problem = Problem("setup", "m")
    with pytest.raises(AttributeError):
        problem.message = "other"  # type: ignore[misc]


# -- the tokenizer agrees with shlex --------------------------------------------------------------


@given(st.text(alphabet=" \t\\'\"ab&|;<>$()`2\n", max_size=24))
def test_words_are_what_shlex_splits(command: str):
    try:
        expected = shlex.split(command)
    except ValueError:
        return  # the plan refuses a string shlex cannot split
    assert ["".join(char for char, _ in word) for word in _words(command)] == expected


@given(st.lists(st.text(alphabet="ab &|;<>$()`'\"2\\", max_size=6), min_size=1, max_size=5))
def test_a_shell_quoted_command_has_no_operators(words: list[str]):
    assert shell_operators(shlex.join(words)) == []
