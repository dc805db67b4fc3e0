"""The house reads top-down: no module imports from a layer above its own.

Learners and features never import each other: they meet in :mod:`rlmemory.types`.

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


#: The house, bottom up: a module may import from its own layer and the layers below,
#: never from a layer above (learners and features, in one layer, are kept apart above).
LAYERS: list[set[str]] = [
    {"errors", "types"},
    {"store"},
    {"learners", "features", "rewards", "subagents"},
    {"ops", "offpolicy"},
    {"coordinator", "learned"},
    {"demo", "service", "integrations", "testing"},
    {"cli", "__main__"},
]


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _layer_of(top: str) -> int:
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"rlmemory.{top} is in no layer of tests/test_layers.py: place it")


def test_every_module_imports_only_from_its_layer_or_below() -> None:
    upward = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        top = _top(path)
        if top == "__init__":
            continue
        own = _layer_of(top)
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "rlmemory" or len(parts) < 2 or parts[1] == top:
                continue
            if _layer_of(parts[1]) > own:
                upward.setdefault(str(path.relative_to(PACKAGE)), []).append(module)
    assert upward == {}


def test_the_contract_and_its_checks_never_import_a_backend() -> None:
    store = PACKAGE / "store"
    backends = ("rlmemory.store.sql", "rlmemory.store.files")
    offenders = {}
    for path in sorted(store.glob("*.py")):
        if path.name == "__init__.py" or path.stem.startswith(("sql", "files")):
            continue  # open_store picks a backend; old-path aliases name theirs
        bad = [m for m in imported_modules(path) if m.startswith(backends)]
        if bad:
            offenders[path.name] = bad
    assert offenders == {}


def test_the_two_backends_never_import_each_other() -> None:
    store = PACKAGE / "store"
    for mine, theirs in (("sql", "files"), ("files", "sql")):
        paths = list((store / mine).rglob("*.py")) if (store / mine).is_dir() else []
        paths += list(store.glob(f"{mine}*.py"))
        for path in paths:
            assert not [
                m for m in imported_modules(path) if m.startswith(f"rlmemory.store.{theirs}")
            ], path


def test_the_lowest_store_module_imports_nothing_from_the_store() -> None:
    assert {
        m for m in imported_modules(PACKAGE / "store" / "rows.py") if m.startswith("rlmemory")
    } == set()


#: The SQL store's package, bottom up. A module imports only from the groups below its
#: own; the parts in one group (standing on the connection or the codec) never import
#: each other.
SQL_LAYERS: list[set[str]] = [
    {"url", "dialect", "schema", "scrub"},
    {"migrations", "backup_rows"},
    {"connection"},
    {"codec"},
    {"learned", "history", "feature_cache", "settings", "maintenance"},
    {"database"},
    {"__init__"},
]


def sql_modules_imported(path: Path) -> set[str]:
    """The modules of ``rlmemory.store.sql`` that ``path`` imports (``from
    rlmemory.store.sql import schema`` names ``schema``)."""
    package = "rlmemory.store.sql"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found = [node.module]
            if node.module == package:
                found = [f"{package}.{alias.name}" for alias in node.names]
        else:
            continue
        names.update(
            m.removeprefix(package + ".").split(".")[0]
            for m in found
            if m.startswith(package + ".")
        )
        if package in found:
            names.add("__init__")
    return names


def test_the_sql_store_reads_top_down() -> None:
    folder = PACKAGE / "store" / "sql"
    rank = {name: index for index, layer in enumerate(SQL_LAYERS) for name in layer}
    assert {path.stem for path in folder.glob("*.py")} == set(rank), "place every module"
    upward = {
        path.stem: sorted(
            module for module in sql_modules_imported(path) if rank[module] >= rank[path.stem]
        )
        for path in folder.glob("*.py")
    }
    assert {module: bad for module, bad in upward.items() if bad} == {}


def test_no_module_uses_relative_imports_that_the_layer_tests_cannot_see() -> None:
    relative = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


#: The file store's modules, bottom up: each imports only modules listed before it (what
#: files hold and how they are read and written, then the layers of the class).
FILE_STORE_MODULES = [
    "layout",
    "io",
    "guard",
    "check",
    "lock",
    "journal",
    "encode",
    "rows",
    "folded",
    "totals",
    "schema",
    "snapshot",
    "folder",
    "records",
    "tables",
    "settings",
    "versions",
    "dump",
    "backup",
    "maintenance",
    "histories",
    "database",
    "__init__",
]


def test_the_file_store_reads_top_down_module_by_module() -> None:
    package = PACKAGE / "store" / "files"
    assert sorted(path.stem for path in package.glob("*.py")) == sorted(FILE_STORE_MODULES)
    upward = {}
    for index, name in enumerate(FILE_STORE_MODULES):
        below = {f"rlmemory.store.files.{module}" for module in FILE_STORE_MODULES[:index]}
        own = {
            module
            for module in imported_modules(package / f"{name}.py")
            if module == "rlmemory.store.files" or module.startswith("rlmemory.store.files.")
        }
        if own - below:
            upward[name] = sorted(own - below)
    assert upward == {}
