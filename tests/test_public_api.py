"""`refute.__all__` and the names the package really exports stay in step."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import refute
import refute.app

SEED_NAMES = {
    "Hypothesis",
    "TestResult",
    "HypothesisStatus",
    "TestExecutionResult",
    "FalsificationConfig",
    "AsyncTestExecutor",
    "TestExecutor",
}


PRODUCT_NAMES = {
    "run_plan",
    "resume",
    "show",
    "history",
    "check",
    "clean",
    "demo",
    "load_plan",
    "RefuteError",
    "PlanError",
}


def public_attributes() -> set[str]:
    """Every public name the package offers (`dir()`, which lists the lazily imported ones
    too, and every attribute already set), submodules excepted."""
    names = set(dir(refute)) | set(vars(refute))
    return {
        name
        for name in names
        if not name.startswith("_")
        and not isinstance(getattr(refute, name, None), types.ModuleType)
    }


def test_all_has_no_duplicates() -> None:
    assert len(refute.__all__) == len(set(refute.__all__))
    assert all(isinstance(name, str) for name in refute.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in refute.__all__ if not hasattr(refute, name)]
    assert missing == []


def test_every_public_attribute_is_in_all() -> None:
    unlisted = public_attributes() - set(refute.__all__)
    assert unlisted == set()


def test_all_matches_the_public_exports_exactly() -> None:
    listed = {name for name in refute.__all__ if not name.startswith("_")}
    assert listed == public_attributes()
    # Nothing in __all__ is a module: submodules are reached by their dotted names.
    assert not [n for n in refute.__all__ if isinstance(getattr(refute, n), types.ModuleType)]


def test_all_includes_the_seed_names() -> None:
    assert set(refute.__all__) >= SEED_NAMES


def test_all_includes_the_product_use_cases_and_errors() -> None:
    assert set(refute.__all__) >= PRODUCT_NAMES
    assert refute.run_plan is refute.app.run_plan
    assert issubclass(refute.PlanError, refute.RefuteError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = refute.no_such_name  # type: ignore[attr-defined]


def test_importing_refute_loads_nothing_heavy() -> None:
    """`import refute` (and so `refute --version`) must not pull in the whole house."""
    code = (
        "import sys, refute; "
        "heavy = [m for m in ('pydantic', 'rich', 'sqlite3', 'yaml', 'click', 'refute.app')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from refute import *", namespace)  # noqa: S102 - the behaviour under test
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(refute.__all__)
    for name in SEED_NAMES:
        assert namespace[name] is getattr(refute, name)


def test_seed_names_are_the_model_and_executor_classes() -> None:
    from refute import compat, model  # noqa: PLC0415 - checking the re-exports

    assert refute.Hypothesis is model.Hypothesis
    assert refute.TestResult is model.TestResult
    assert refute.HypothesisStatus is model.HypothesisStatus
    assert refute.TestExecutionResult is model.TestExecutionResult
    assert refute.FalsificationConfig is model.FalsificationConfig
    assert refute.AsyncTestExecutor is compat.AsyncTestExecutor
    assert refute.TestExecutor is compat.TestExecutor


def test_version_is_a_string() -> None:
    assert isinstance(refute.__version__, str)
    assert refute.__version__


def test_every_public_module_declares_all() -> None:
    """Every module whose name has no leading underscore says what it exports."""
    import ast  # noqa: PLC0415 - only this test reads the source
    from pathlib import Path  # noqa: PLC0415

    src = Path(refute.__file__).parent
    missing = []
    for path in sorted(src.rglob("*.py")):
        if (path.name.startswith("_") and path.name != "__init__.py") or path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }
        if "__all__" not in names:
            missing.append(str(path.relative_to(src)))
    assert missing == []
