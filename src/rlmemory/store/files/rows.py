r"""Reading the file store's histories: newest first from the end, patches folded in.

A history file holds rows (``{"id": …}``) and patch lines (``{"patch": id, field: …}``)
that change fields of an earlier row; the newest value of a field wins. Rows are
returned in the shape of the :class:`~rlmemory.store.base.MemoryStore` contract.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "decisions.jsonl"
>>> lines = ['{"id":1,"reward":null}', '{"id":2,"reward":null}', '{"patch":1,"reward":0.5}']
>>> _ = path.write_text("\n".join(lines) + "\n")
>>> [(row["id"], row["reward"]) for row in newest_rows(path, 10)]
[(2, None), (1, 0.5)]
>>> [(row["id"], row["reward"]) for row in all_rows(path)]
[(1, 0.5), (2, None)]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files.check import record_check
from rlmemory.store.files.io import iter_records_backward, iter_records_forward
from rlmemory.store.rows import Row


def merge_patch(patches: dict[int, dict[str, Any]], record: dict[str, Any]) -> None:
    """Remember a patch seen reading backwards: newer patches (seen first) win."""
    pending = patches.setdefault(record["patch"], {})
    for key, value in record.items():
        if key != "patch":
            pending.setdefault(key, value)


def newest_rows(
    path: Path,
    limit: int,
    wanted: Callable[[dict[str, Any]], bool] | None = None,
    *,
    stop_below: int | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows, newest first, with their later patches applied.

    Reads from the end of the file and stops as soon as enough rows are found (or, with
    ``stop_below``, at the first row whose id is smaller).
    """
    patches: dict[int, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    check = record_check(path)
    for offset, record in iter_records_backward(path):
        check(offset, record)
        if "patch" in record:
            merge_patch(patches, record)
            continue
        row_id = record.get("id")
        if not isinstance(row_id, int):
            raise CorruptStoreError(
                f"{path} has a row without id at byte offset {offset}", str(path)
            )
        if stop_below is not None and row_id < stop_below:
            break
        record.update(patches.pop(row_id, {}))
        if wanted is None or wanted(record):
            rows.append(record)
            if len(rows) >= limit:
                break
    return rows


def all_rows(path: Path, after_id: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    """Every row with id > ``after_id``, oldest first, with its patches applied (of the
    lines before byte ``end``, when given)."""
    rows: dict[int, dict[str, Any]] = {}
    check = record_check(path)
    for offset, record in iter_records_forward(path, end):
        check(offset, record)
        if "patch" in record:
            row = rows.get(record["patch"])
            if row is not None:
                row.update((key, value) for key, value in record.items() if key != "patch")
            continue
        row_id = record.get("id")
        if not isinstance(row_id, int):
            raise CorruptStoreError(
                f"{path} has a row without id at byte offset {offset}", str(path)
            )
        if row_id > after_id:
            rows[row_id] = record
    return list(rows.values())


def field(row: dict[str, Any], key: str, path: Path) -> Any:
    try:
        return row[key]
    except KeyError:
        raise CorruptStoreError(
            f"{path} has a row without {key!r} (id {row.get('id')!r})", str(path)
        ) from None


def public_reward(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    return {
        "id": field(row, "id", path),
        "agent_name": agent_name,
        "reward": field(row, "reward", path),
        "reward_components": field(row, "reward_components", path),
        "decision_id": row.get("decision_id"),
        "timestamp": field(row, "timestamp", path),
    }


def public_interaction(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    feedback = row.get("feedback")
    return {
        "id": field(row, "id", path),
        "agent_name": agent_name,
        "request": field(row, "request", path),
        "response": field(row, "response", path),
        "feedback": feedback,
        "decision_id": row.get("decision_id"),
        "feedback_learned": feedback is not None and row.get("learned_feedback") == feedback,
        "timestamp": field(row, "timestamp", path),
    }


def public_decision(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    return {
        "id": field(row, "id", path),
        "agent_name": agent_name,
        "state": field(row, "state", path),
        "selected_action": field(row, "selected_action", path),
        "q_values": field(row, "q_values", path),
        "reward": row.get("reward"),
        "propensity": row.get("propensity"),
        "features": row.get("features"),
        "timestamp": field(row, "timestamp", path),
        "version": row.get("version"),
    }
