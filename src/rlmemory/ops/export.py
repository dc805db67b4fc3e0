"""Export an agent's rewards, interactions or decisions as CSV, JSON Lines, Parquet or a DataFrame.

Everything is read through the public store API, so every backend exports alike.
Rows come oldest first with a fixed set of columns per table (an agent with no rows
still gives a file with a header). Nested values (reward components, Q-values,
features) stay nested in JSON Lines and DataFrames; in CSV they are JSON text; in
Parquet features are a list of doubles and the other nested values JSON text. Files
are written to a temporary name and renamed, so a failed export leaves no half file;
an output that is a folder or cannot be written is a
:class:`~rlmemory.errors.FileAccessError` naming it.

pandas and pyarrow are optional (the ``export`` extra) and imported only for Parquet
and :func:`to_dataframe`.

>>> import tempfile, os, json
>>> from rlmemory.ops.export import COLUMNS
>>> COLUMNS["rewards"]
('id', 'agent_name', 'reward', 'reward_components', 'decision_id', 'timestamp')
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from rlmemory.errors import FileAccessError
from rlmemory.ops.progress import ProgressCallback, counted
from rlmemory.store._validation import check_agent_name
from rlmemory.store.base import MemoryStore, Row
from rlmemory.store.rows import HISTORY_COLUMNS

#: The columns of each exportable table, in file order: the store's row shapes
#: (:mod:`rlmemory.store.rows`), so a column added there is exported too.
COLUMNS: dict[str, tuple[str, ...]] = dict(HISTORY_COLUMNS)
TABLES = tuple(COLUMNS)
FORMATS = ("csv", "jsonl", "parquet")


def check_table(table: object) -> str:
    """Return ``table`` if it is one of :data:`TABLES`, else a ``ValueError`` listing them."""
    if table not in COLUMNS:
        raise ValueError(f"table must be one of {', '.join(TABLES)}; got {table!r}")
    return str(table)


def check_format(file_format: object) -> str:
    """Return ``file_format`` if it is one of :data:`FORMATS`, else a ``ValueError``."""
    if file_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {file_format!r}")
    return str(file_format)


def iter_rows(store: MemoryStore, agent_name: str, table: str) -> Iterator[Row]:
    """Every row of ``table`` for ``agent_name``, oldest first, with :data:`COLUMNS` keys."""
    check_agent_name(agent_name)
    columns = COLUMNS[check_table(table)]
    if table == "decisions":
        rows: Iterator[Row] | list[Row] = store.iter_agent_decisions(agent_name)
    else:
        stats = store.agent_stats(agent_name)
        count = int(stats[table])
        if count == 0:
            return
        fetch = store.get_agent_rewards if table == "rewards" else store.get_agent_interactions
        # Histories are newest first; rows appended meanwhile are left out by the limit.
        rows = list(reversed(fetch(agent_name, limit=count)))
    for row in rows:
        yield {column: row.get(column) for column in columns}


def export_agent(
    store: MemoryStore,
    agent_name: str,
    table: str,
    file_format: str,
    out: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> int:
    """Write ``table`` of ``agent_name`` to ``out`` in ``file_format``; return the row count.

    ``progress(rows written, rows)`` is called every few hundred rows.

    >>> import tempfile, os
    >>> from rlmemory.store import open_store
    >>> folder = tempfile.mkdtemp()
    >>> with open_store(os.path.join(folder, "memory.db")) as store:
    ...     _ = store.save_agent_reward("router", 0.75, {"task_completion": 1.0})
    ...     export_agent(store, "router", "rewards", "csv", os.path.join(folder, "r.csv"))
    1
    >>> open(os.path.join(folder, "r.csv")).readline().strip()
    'id,agent_name,reward,reward_components,decision_id,timestamp'
    """
    check_table(table)
    writer = _WRITERS[check_format(file_format)]
    target = Path(out)
    if target.is_dir():
        raise FileAccessError(
            f"cannot export to {target}: it is a folder; give a file name such as "
            f"{target / f'{agent_name}-{table}.{file_format}'}",
            str(target),
        )
    total = store.agent_stats(agent_name).get(table) or 0
    rows = counted(iter_rows(store, agent_name, table), progress, total=int(total))
    return _atomic_write(target, lambda path: writer(path, table, rows))


def to_dataframe(store: MemoryStore, agent_name: str, table: str) -> Any:
    """``table`` of ``agent_name`` as a pandas DataFrame (nested values kept as objects).

    Needs pandas (``pip install 'rlmemory[export]'``).
    """
    pandas = _import("pandas")
    rows = list(iter_rows(store, agent_name, table))
    return pandas.DataFrame(rows, columns=list(COLUMNS[table]))


# ------------------------------------------------------------------- writers
def _atomic_write(target: Path, write: Callable[[Path], int]) -> int:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise FileAccessError(
            f"cannot export to {target}: {error.strerror or error}", str(target)
        ) from None
    os.close(descriptor)
    try:
        count = write(Path(temporary))
        os.replace(temporary, target)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise FileAccessError(
                f"cannot export to {target}: {error.strerror or error}", str(target)
            ) from None
        raise
    return count


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return _json_text(value)
    return value


def _write_csv(path: Path, table: str, rows: Iterator[Row]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS[table])
        for row in rows:
            writer.writerow([_csv_cell(row[column]) for column in COLUMNS[table]])
            count += 1
    return count


def _write_jsonl(path: Path, table: str, rows: Iterator[Row]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        count = _write_json_lines(handle, rows)
    return count


def _write_json_lines(handle: TextIO, rows: Iterator[Row]) -> int:
    count = 0
    for row in rows:
        handle.write(_json_text(row) + "\n")
        count += 1
    return count


def _write_parquet(path: Path, table: str, rows: Iterator[Row]) -> int:
    pyarrow = _import("pyarrow")
    parquet = _import("pyarrow.parquet")
    materialised = list(rows)
    columns = {}
    for column in COLUMNS[table]:
        values = [row[column] for row in materialised]
        columns[column] = _arrow_column(pyarrow, column, values)
    parquet.write_table(pyarrow.table(columns), path)
    return len(materialised)


def _arrow_column(pyarrow: Any, column: str, values: list[Any]) -> Any:
    if column == "features":
        return pyarrow.array(values, type=pyarrow.list_(pyarrow.float64()))
    if column in {"id", "decision_id", "version"}:
        return pyarrow.array(values, type=pyarrow.int64())
    if column in {"timestamp", "propensity"} or (column == "reward" and _all_numbers(values)):
        return pyarrow.array(
            [None if value is None else float(value) for value in values], type=pyarrow.float64()
        )
    if column == "feedback_learned":
        return pyarrow.array(values, type=pyarrow.bool_())
    if column in {"reward_components", "q_values", "reward"}:
        return pyarrow.array(
            [None if value is None else _json_text(value) for value in values],
            type=pyarrow.string(),
        )
    return pyarrow.array(values, type=pyarrow.string())


def _all_numbers(values: list[Any]) -> bool:
    return all(
        value is None
        or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
        for value in values
    )


_WRITERS: dict[str, Callable[[Path, str, Iterator[Row]], int]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "parquet": _write_parquet,
}


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"this export needs {module.split('.')[0]}: pip install 'rlmemory[export]'"
        ) from error
