"""What a row of a backup must look like before any store loads it.

Backups move rows between backends (:meth:`MemoryStore.snapshot` out,
:meth:`MemoryStore.load_rows` in). A row from a damaged or hand-edited backup — a
missing name, a NaN reward, a text where a number belongs, an id given twice — would
otherwise fail deep inside a driver (``sqlite3.IntegrityError``), or worse, load into a
backend that does not check it. :class:`BackupRowCheck` holds the rules of one table,
taken from the SQL schema (the one definition of the columns; the file store produces
the same rows), and names the first problem of each row.

>>> check = BackupRowCheck("agent_rewards")
>>> row = {"id": 1, "agent_name": "router", "reward": 0.5, "reward_components": "{}",
...        "timestamp": 1.0, "decision_id": None}
>>> check.problem(row) is None
True
>>> check.problem({**row, "id": 2, "reward": float("nan")})
'id 2: reward is not a finite number (nan)'
>>> check.problem(row)
'id 1: id 1 appears twice'
>>> check.problem({**row, "id": 3, "reward_components": "{oops"})
"id 3: reward_components is not JSON text ('{oops')"
>>> settings = BackupRowCheck("rlmemory_settings")
>>> settings.problem({"namespace": "loops", "key": "triage", "value": "[1]", "updated": 1.0})
"namespace 'loops', key 'triage': a stored setting is not a JSON object"
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from rlmemory.store._operations import BACKUP_TABLES, SETTINGS_TABLE
from rlmemory.store._settings import check_setting_name, decode_setting
from rlmemory.store._validation import check_agent_name
from rlmemory.store.sql import schema

#: Text columns that hold JSON, which the stores decode on read.
_JSON_TEXT = {
    "agent_rewards": ("reward_components",),
    "agent_decisions": ("q_values", "reward", "features"),
    "policy_params": ("policy_params",),
    "rlmemory_settings": ("value",),
}


def _not_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_refuse)
    except ValueError:
        return True
    return False


def _refuse(name: str) -> None:
    raise ValueError(name)


def _kind(column: sa.Column[Any]) -> str:
    column_type = column.type
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.Float):
        return "number"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes"
    return "text"


def _wrong_value(value: Any, kind: str) -> str | None:
    """Why ``value`` cannot go into a column of ``kind``, or None when it can."""
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"is not an integer ({value!r:.40})"
        if not -(2**63) <= value < 2**63:
            return f"is out of the 64-bit range ({value})"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"is not a number ({value!r:.40})"
        if not math.isfinite(value):
            return f"is not a finite number ({value})"
        return None
    if kind == "bytes":
        return None if isinstance(value, bytes) else f"is not binary data ({value!r:.40})"
    if not isinstance(value, str):
        return f"is not text ({value!r:.40})"
    if "\x00" in value:
        return "contains a NUL character"
    return None


def _setting_problem(row: Mapping[str, Any]) -> str | None:
    """Why a settings row (whose columns are already text) cannot be a setting, or None."""
    try:
        check_setting_name(row["namespace"], "namespace")
        check_setting_name(row["key"], "key")
        decode_setting(row["value"])
    except (TypeError, ValueError) as error:
        return str(error)
    return None


class BackupRowCheck:
    """The rules of one backup table: known columns, types, NOT NULL, unique keys."""

    def __init__(self, table: str) -> None:
        if table not in BACKUP_TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {', '.join(BACKUP_TABLES)}")
        definition = schema.metadata.tables[table]
        self.table = table
        self._columns = {column.name: (_kind(column), column.nullable) for column in definition.c}
        primary = tuple(column.name for column in definition.primary_key.columns)
        self._keys = [primary] + [(column.name,) for column in definition.c if column.unique]
        self._seen: list[set[tuple[Any, ...]]] = [set() for _ in self._keys]

    def problem(self, row: object) -> str | None:
        """The first problem of ``row`` (naming its id or key), or None; remembers its keys."""
        if not isinstance(row, Mapping):
            return f"a row is a JSON {type(row).__name__}, not an object"
        label = self._label(row)
        unknown = sorted(set(row) - set(self._columns))
        if unknown:
            return f"{label}: unknown columns {unknown}"
        for name, (kind, nullable) in self._columns.items():
            value = row.get(name)
            if value is None:
                if not nullable:
                    return f"{label}: {name} is missing or null"
                continue
            wrong = _wrong_value(value, kind)
            if wrong:
                return f"{label}: {name} {wrong}"
        if "agent_name" in self._columns and row.get("agent_name") is not None:
            try:
                check_agent_name(row["agent_name"])
            except (TypeError, ValueError) as error:
                return f"{label}: {error}"
        for name in _JSON_TEXT.get(self.table, ()):
            value = row.get(name)
            if value is not None and _not_json(value):
                return f"{label}: {name} is not JSON text ({value!r:.40})"
        if self.table == SETTINGS_TABLE:
            problem = _setting_problem(row)
            if problem:
                return f"{label}: {problem}"
        for columns, seen in zip(self._keys, self._seen, strict=True):
            key = tuple(row[name] for name in columns)
            if key in seen:
                shown = ", ".join(f"{name} {row[name]!r}" for name in columns)
                return f"{label}: {shown} appears twice"
            seen.add(key)
        return None

    def _label(self, row: Mapping[str, Any]) -> str:
        if "id" in self._columns:
            return f"id {row.get('id')!r}"
        primary = self._keys[0]
        return ", ".join(f"{name} {row.get(name)!r:.40}" for name in primary)


__all__ = ["BackupRowCheck"]
