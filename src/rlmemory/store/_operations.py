"""What both stores' operations share: backup table order and argument checks."""

from __future__ import annotations

from typing import Any

from rlmemory.errors import UnknownRewardError
from rlmemory.store._validation import check_finite, check_integer
from rlmemory.store.rows import BACKUP_TABLES, HISTORY_TABLES, SETTINGS_TABLE, Row


def check_prune_arguments(table: object, older_than: Any, keep_newest: object) -> float | None:
    """Check ``prune_history``'s table and bounds; return ``older_than`` as a float or None.

    >>> check_prune_arguments("rewards", 10, None)
    10.0
    >>> check_prune_arguments("rewards", None, -1)
    Traceback (most recent call last):
    ValueError: keep_newest must be at least 0, got -1
    """
    if not isinstance(table, str):
        raise TypeError(f"table must be a str, not {type(table).__name__}")
    if table not in HISTORY_TABLES:
        raise ValueError(f"table must be one of {', '.join(HISTORY_TABLES)}; got {table!r}")
    bound = None if older_than is None else check_finite(older_than, "older_than")
    if keep_newest is not None:
        check_integer(keep_newest, "keep_newest", minimum=0)
    return bound


def nothing_pruned() -> Row:
    """The ``prune_history`` summary when no row is concerned."""
    return {"rows": 0, "first_id": None, "last_id": None, "oldest": None, "newest": None}


__all__ = [
    "BACKUP_TABLES",
    "SETTINGS_TABLE",
    "UnknownRewardError",
    "check_prune_arguments",
    "nothing_pruned",
]
