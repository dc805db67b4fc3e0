"""Backup and restore of the file store: snapshot, load rows, clear.

:meth:`FileBackup.snapshot` freezes the store under a short lock
(:mod:`rlmemory.store.files.snapshot`) and reads the rows from the frozen files
(:mod:`rlmemory.store.files.dump`), so writers keep going while a backup reads.
:meth:`FileBackup._load_rows` writes rows in the SQL store's layout back as files, with
their ids and times: a history row keeps its timestamp, a Q-table state its
``last_updated`` (as the ``at`` of its change line), and the files of the learned tables
get the newest ``last_updated`` of their rows as modification time, which is what
:meth:`agent_stats` and :meth:`q_state_stats` report, as the SQL store does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.store._validation import check_array
from rlmemory.store.files.dump import HISTORY_OF, dump_table
from rlmemory.store.files.encode import array_document, step_line
from rlmemory.store.files.io import encode_document, encode_line, iter_records_forward
from rlmemory.store.files.layout import (
    AGENT_FILE,
    ARRAYS_FILE,
    ARRAYS_UPDATES_FILE,
    HISTORY_FILE,
    INDEX_LINE_WIDTH,
    POLICY_FILE,
    Q_TABLE_FILE,
    Q_UPDATES_FILE,
    SETTINGS_FILE,
    SNAPSHOTS_FOLDER,
    STEPS_FILE,
    VERSIONS_DATA_FILE,
    VERSIONS_FILE,
    index_path,
)
from rlmemory.store.files.records import index_line
from rlmemory.store.files.snapshot import freeze, remove_stale_snapshots, snapshot_folder
from rlmemory.store.files.tables import modified, newest_of, set_modified
from rlmemory.store.files.versions import FileVersions, version_lines
from rlmemory.store.rows import BACKUP_TABLES, HISTORY_TABLES, SETTINGS_TABLE, Row

#: A gap of at least this many ids in restored rows is a hole in the id index rather than
#: filler lines (8 KiB of lines; a hole's blocks are not written at all).
_HOLE_FROM_IDS = 64

#: Columns of the SQL layout that hold JSON text, which the file store keeps decoded.
_JSON_COLUMNS = {
    "agent_rewards": ("reward_components",),
    "agent_decisions": ("q_values", "reward", "features"),
}


def file_row(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A SQL-layout history row as the file store writes it (JSON columns decoded)."""
    record = {key: value for key, value in row.items() if key != "agent_name"}
    for column in _JSON_COLUMNS.get(table, ()):
        value = record.get(column)
        record[column] = None if value is None else json.loads(value)
    if table == "agent_interactions":
        record.setdefault("learned_feedback", None)
    return {"id": record.pop("id"), **record}


def array_of(row: Mapping[str, Any]) -> np.ndarray:
    """The array of a ``learner_arrays`` backup row, checked like :meth:`save_arrays`'s."""
    dtype = np.dtype(row["dtype"])
    raw = np.frombuffer(bytes(row["data"]), dtype=dtype.newbyteorder("<")).astype(dtype)
    return check_array(row["key"], raw.reshape(json.loads(row["shape"])))[1]


class FileBackup(FileVersions):
    """The backup hooks of :class:`~rlmemory.store.base.MemoryStore` (module docstring)."""

    def backup_tables(self) -> tuple[str, ...]:
        return BACKUP_TABLES

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Callable[[str], Iterator[Row]]]:
        """Freeze the store under its lock (a moment), then read it without the lock."""
        with contextlib.ExitStack() as stack:
            with self._locked():
                place = None if self.read_only else self._base / SNAPSHOTS_FOLDER
                if place is not None and place.exists():
                    self._guard.folder(place)
                    remove_stale_snapshots(place)
                into = stack.enter_context(snapshot_folder(place))
                agents = [(self._name_of(folder), folder) for folder in self._agent_folders()]
                # Inside a transaction a rollback may cut appended files: copy them then.
                link = place is not None and self._journal is None
                frozen = freeze(agents, self._base / SETTINGS_FILE, into, link=link)
            yield lambda name: dump_table(frozen, name)

    def clear_data(self, *, keep_versions: bool = False, keep_settings: bool = False) -> None:
        kept = {VERSIONS_FILE, VERSIONS_DATA_FILE, AGENT_FILE} if keep_versions else {AGENT_FILE}
        with self.transaction():
            for folder in self._agent_folders():
                for path in sorted(folder.iterdir()):
                    if path.is_file() and path.name not in kept:
                        self._delete_file(path)
            for table in HISTORY_TABLES:
                path = index_path(self._base, table)
                if path.exists():
                    self._delete_file(path)
            if not keep_settings:
                self._clear_settings()

    # -------------------------------------------------------------------- loading
    def _load_rows(self, table: str, rows: Iterator[Mapping[str, Any]]) -> int:
        with self.transaction():
            if table in HISTORY_OF:
                return self._load_history(table, rows)
            if table == SETTINGS_TABLE:
                return self._load_settings_rows(rows)
            return self._load_agent_rows(table, rows)

    def _load_history(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        short = HISTORY_OF[table]
        next_id = self._next_id(short)
        index_lines: list[bytes] = []
        by_file: dict[Path, list[bytes]] = {}
        count = 0
        for row in rows:
            row_id = row["id"]
            if not isinstance(row_id, int) or row_id < next_id:
                raise ValueError(
                    f"{self.location}: cannot load {table} id {row_id!r}: ids up to "
                    f"{next_id - 1} are taken"
                )
            folder = self._ensure_agent(row["agent_name"])
            if row_id - next_id >= _HOLE_FROM_IDS:
                # Many ids missing (pruned rows, a store whose ids start high): skip them
                # with a hole in the index, which takes no disk and reads as "no row".
                if index_lines:
                    self._append(index_path(self._base, short), b"".join(index_lines))
                    index_lines = []
                self._append(
                    index_path(self._base, short),
                    index_line(row_id, folder.name),
                    after_hole_to=(row_id - 1) * INDEX_LINE_WIDTH,
                )
                next_id = row_id + 1
            while next_id <= row_id:
                # A few ids missing keep their index lines, pointing at this row's folder,
                # where no row has them: reading them finds nothing.
                index_lines.append(index_line(next_id, folder.name))
                next_id += 1
            by_file.setdefault(folder / HISTORY_FILE[short], []).append(
                encode_line(file_row(table, row))
            )
            count += 1
        if index_lines:
            self._append(index_path(self._base, short), b"".join(index_lines))
        for path, lines in by_file.items():
            self._append(path, b"".join(lines))
        return count

    def _load_agent_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["agent_name"], []).append(row)
        if grouped and table == "q_tables_unmigrated":
            raise ValueError("the file store cannot hold unmigrated seed Q-tables")
        for agent, agent_rows in grouped.items():
            folder = self._ensure_agent(agent)
            if table == "q_agents":
                self._load_q_agent(folder, agent_rows)
            elif table == "q_values":
                self._load_q_values(folder, agent_rows)
            elif table == "policy_params":
                self._load_policy_params(folder, agent_rows[-1])
            elif table == "learner_arrays":
                self._load_arrays(folder, agent_rows)
            elif table == "learner_steps":
                self._load_learner_steps(folder, agent_rows)
            elif table == "agent_versions":
                self._load_versions(agent, folder, agent_rows)
        return sum(len(agent_rows) for agent_rows in grouped.values())

    def _log_dated_changes(
        self, folder: Path, tables: tuple[str, str, int], changes: bytes, stamps: list[Any]
    ) -> None:
        """Log ``changes`` to an updates log, which then carries the newest of its own
        time before and ``stamps`` (the rows' ``last_updated``)."""
        base_name, updates_name, depth = tables
        newest = newest_of([modified(folder / updates_name), *stamps])
        self._log_change(folder, base_name, updates_name, depth, changes, modified_at=newest)

    def _load_q_agent(self, folder: Path, rows: list[Mapping[str, Any]]) -> None:
        """Register the agent's Q-table, empty (its values follow in ``q_values``)."""
        stamps = [row.get("last_updated") for row in rows]
        updated = newest_of(stamps)
        change = encode_line(
            {"reset": True, "set": {}, **({} if updated is None else {"at": updated})}
        )
        self._log_dated_changes(folder, (Q_TABLE_FILE, Q_UPDATES_FILE, 2), change, stamps)

    def _load_q_values(self, folder: Path, rows: list[Mapping[str, Any]]) -> None:
        """Log the values with each state's ``last_updated`` as the ``at`` of its line."""
        table: dict[str, dict[str, float]] = {}
        stamps: dict[str, list[Any]] = {}
        for row in rows:
            table.setdefault(row["state"], {})[row["action"]] = float(row["value"])
            stamps.setdefault(row["state"], []).append(row.get("last_updated"))
        by_time: dict[float | None, dict[str, dict[str, float]]] = {}
        for state, actions in table.items():
            by_time.setdefault(newest_of(stamps[state]), {})[state] = actions
        changes = b"".join(
            encode_line({"set": states} if stamp is None else {"set": states, "at": stamp})
            for stamp, states in sorted(by_time.items(), key=lambda item: item[0] or 0.0)
        )
        every = [stamp for row_stamps in stamps.values() for stamp in row_stamps]
        self._log_dated_changes(folder, (Q_TABLE_FILE, Q_UPDATES_FILE, 2), changes, every)

    def _load_policy_params(self, folder: Path, row: Mapping[str, Any]) -> None:
        params = json.loads(row["policy_params"])
        if not isinstance(params, dict):
            raise ValueError(
                f"cannot restore policy_params row (agent_name={row['agent_name']!r}): "
                "policy_params is not a JSON object"
            )
        self._replace(folder / POLICY_FILE, encode_document(params))
        updated = newest_of([row.get("last_updated")])
        if updated is not None:
            set_modified(folder / POLICY_FILE, updated)

    def _load_arrays(self, folder: Path, rows: list[Mapping[str, Any]]) -> None:
        documents = {row["key"]: array_document(array_of(row)) for row in rows}
        change = encode_line({"set": documents})
        stamps = [row.get("last_updated") for row in rows]
        self._log_dated_changes(folder, (ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1), change, stamps)

    def _load_learner_steps(self, folder: Path, rows: list[Mapping[str, Any]]) -> None:
        """Append steps with their ids kept (bit-exact snapshots record them as watermarks)."""
        path = folder / STEPS_FILE
        existing = [record["id"] for _, record in iter_records_forward(path)]
        lines = []
        for row in sorted(rows, key=lambda item: item["id"]):
            row_id = row["id"]
            if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 1:
                raise ValueError(f"learner_steps id must be a positive integer, got {row_id!r}")
            if existing and row_id <= existing[-1]:
                raise ValueError(
                    f"{self.location}: cannot load learner_steps id {row_id}: ids up to "
                    f"{existing[-1]} are taken"
                )
            existing.append(row_id)
            stamp = float(row["last_updated"])
            lines.append(step_line(row_id, row["key"], bytes(row["data"]), stamp))
        if lines:
            self._reserve_step_ids_through(existing[-1])
            self._append(path, b"".join(lines))

    def _load_versions(self, agent: str, folder: Path, rows: list[Mapping[str, Any]]) -> None:
        present = {row["version"] for row in self._list_versions(agent)}
        data, info = [], []
        for row in sorted(rows, key=lambda item: item["version"]):
            if row["version"] in present:
                raise ValueError(f"agent {agent!r} already has version {row['version']}")
            info_line, data_line = version_lines(
                row["version"], row["note"], row["created"], bytes(row["payload"])
            )
            info.append(info_line)
            data.append(data_line)
        self._append(folder / VERSIONS_DATA_FILE, b"".join(data))
        self._append(folder / VERSIONS_FILE, b"".join(info))
