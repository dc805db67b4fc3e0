"""Pytest set-up for the whole checkout: ``tests/`` and the doctests of ``src/``."""

from __future__ import annotations

from pathlib import Path

#: An old-path alias module is tiny and ends by naming the module it moved to.
_ALIAS_MARK = "sys.modules[__name__] = "


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Leave out the old-path alias modules (``rlmemory.store.sql_schema``, ...).

    Each replaces itself in ``sys.modules`` with the module it moved to, which is
    collected (with its doctests) under its own path; collecting the alias too would
    make pytest find a module whose ``__file__`` is another file.
    """
    if collection_path.suffix != ".py" or not collection_path.is_file():
        return None
    if collection_path.stat().st_size > 2000:
        return None
    if _ALIAS_MARK in collection_path.read_text(encoding="utf-8"):
        return True
    return None
