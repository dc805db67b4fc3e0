"""Learners and features never import each other: they meet in :mod:`rlmemory.types`.

Read from the source (every ``import``, including those inside functions), so that a
lazy import cannot hide a dependency the layering forbids.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rlmemory

PACKAGE = Path(rlmemory.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement in ``path``."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def forbidden_imports(package: str, forbidden: str) -> dict[str, list[str]]:
    found = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path) if m.split(".")[:2] == forbidden.split("."))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("learners", "rlmemory.features"), ("features", "rlmemory.learners")],
)
def test_learners_and_features_do_not_import_each_other(package: str, forbidden: str) -> None:
    assert forbidden_imports(package, forbidden) == {}


def test_the_shared_value_types_import_nothing_from_rlmemory() -> None:
    assert {m for m in imported_modules(PACKAGE / "types.py") if m.startswith("rlmemory")} == set()
