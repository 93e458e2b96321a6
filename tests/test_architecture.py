"""The house's one rule, checked on the source: imports point down only.

cli, compat → app → {plan, workspace, engine, analysis, store, reports} → {document, model,
errors, paths, owners}. Packages of the middle layer never import each other (the engine
never imports git code; reports never read the store); the bottom layer imports only
itself. Every import counts, also those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "refute"

FRONT = {"cli", "compat", "mcp"}
APP = {"app"}
MIDDLE = {"plan", "workspace", "engine", "analysis", "store", "reports"}
BOTTOM = {"document", "model", "errors", "paths", "owners", "lazy"}
RANK = {**dict.fromkeys(FRONT, 3), **dict.fromkeys(APP, 2), **dict.fromkeys(MIDDLE, 1)}
RANK.update(dict.fromkeys(BOTTOM, 0))


def part_of(module: str) -> str | None:
    """`refute.engine.local` -> "engine"; `refute` itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "refute" else None


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        found.append((name, path))
    return found


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            if target == "refute":  # `from refute import x`: x may be a package
                found.extend((node.lineno, f"refute.{alias.name}") for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == "refute"]


def test_every_module_belongs_to_a_known_layer():
    unknown = {part_of(name) for name, _ in modules()} - set(RANK) - {None}
    assert unknown == set(), f"add these packages to a layer: {unknown}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=str)
def test_imports_point_down(module: str, path: Path):
    own = part_of(module)
    if own is None:  # refute/__init__.py only re-exports the curated API
        return
    wrong = []
    for line, target in imports_of(path, module):
        other = part_of(target)
        if other is None or other == own:
            continue
        if other not in RANK:  # a name of refute's root package, e.g. __version__
            continue
        down = RANK[other] < RANK[own] or (RANK[own] == 0 and RANK[other] == 0)
        if not down:
            wrong.append(f"{path.name}:{line} imports {target}")
    assert wrong == []


def test_the_check_itself_catches_an_upward_import(tmp_path: Path):
    """The rule above would catch the engine importing git code (it can fail)."""
    fake = tmp_path / "local.py"
    fake.write_text("from refute.workspace.git import run_git\n", encoding="utf-8")
    [(line, target)] = imports_of(fake, "refute.engine.local")
    assert (line, target) == (1, "refute.workspace.git")
    assert RANK[part_of(target) or ""] == RANK["engine"]  # a sibling: not allowed
