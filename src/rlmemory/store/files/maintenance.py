"""The operations part of the file store: versions, corrections, pruning, dump and load.

:class:`FileOperations` is mixed into
:class:`rlmemory.store.files.FileBackedMemoryDatabase`. Versions live per agent in two
JSON Lines files: ``versions.jsonl`` (number, note, time, size: small lines, read to list
and to stamp decisions) and ``versions.data.jsonl`` (the payloads, base64). Deleting or
pruning rows rewrites the history file without them (patches folded in), so space is
given back; every change goes through the store's undo journal like any other write.

:meth:`FileOperations.snapshot` yields rows shaped like the SQL store's tables, so a
backup moves between backends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError, UnknownInteractionError
from rlmemory.store._operations import (
    BACKUP_TABLES,
    SETTINGS_TABLE,
    UnknownRewardError,
    check_prune_arguments,
    nothing_pruned,
)
from rlmemory.store._sealing import SealedValues
from rlmemory.store._validation import (
    check_agent_name,
    check_finite,
    check_id,
    check_mapping,
    check_states,
    check_text,
    check_version_number,
    check_version_numbers,
    checked_backup_rows,
    to_json,
)
from rlmemory.store.base import Row
from rlmemory.store.files.check import check_record
from rlmemory.store.files.encode import (
    encode_change,
    json_fragment,
    json_object,
    text_fragment,
)
from rlmemory.store.files.guard import check_entry
from rlmemory.store.files.io import (
    SAFE_NAME,
    atomic_write,
    encode_document,
    encode_line,
    iter_records_backward,
    iter_records_forward,
    read_document,
    repair_torn_tail,
)
from rlmemory.store.files.rows import all_rows, public_reward

VERSIONS_FILE = "versions.jsonl"
VERSIONS_DATA_FILE = "versions.data.jsonl"

_HISTORY_FOR = {
    "agent_rewards": ("rewards", "rewards.jsonl"),
    "agent_interactions": ("interactions", "interactions.jsonl"),
    "agent_decisions": ("decisions", "decisions.jsonl"),
}
_SHORT = {
    "rewards": "rewards.jsonl",
    "interactions": "interactions.jsonl",
    "decisions": "decisions.jsonl",
}
_JSON_COLUMNS = {
    "agent_rewards": ("reward_components",),
    "agent_decisions": ("q_values", "reward", "features"),
}


def _files() -> Any:
    from rlmemory.store.files import database as files

    return files


class FileOperations(SealedValues):
    """Operations methods of FileBackedMemoryDatabase (see the MemoryStore contract)."""

    location: str
    _base: Path

    # ------------------------------------------------------------------ versions
    def _latest_version_in(self, folder: Path) -> int | None:
        # Version lines are kept in increasing order: the last line is the newest.
        path = folder / VERSIONS_FILE
        for offset, record in iter_records_backward(path):
            check_record(path, offset, record)
            return record.get("version")
        return None

    def save_version(self, agent_name: str, payload: bytes, note: str = "") -> int:
        check_agent_name(agent_name)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        note = check_text(note, "note") or ""
        sealed = self._seal_payload(bytes(payload))
        with self.transaction():  # type: ignore[attr-defined]
            folder = self._ensure_agent(agent_name)  # type: ignore[attr-defined]
            number = (self._latest_version_in(folder) or 0) + 1
            created = time.time()
            self._append(  # type: ignore[attr-defined]
                folder / VERSIONS_DATA_FILE,
                encode_line(
                    {"version": number, "payload": base64.b64encode(sealed).decode("ascii")}
                ),
                repair_torn_tail,
            )
            self._append(  # type: ignore[attr-defined]
                folder / VERSIONS_FILE,
                encode_line(
                    {"version": number, "note": note, "created": created, "size": len(sealed)}
                ),
                repair_torn_tail,
            )
        return number

    def list_versions(self, agent_name: str) -> list[Row]:
        check_agent_name(agent_name)
        with self._locked():  # type: ignore[attr-defined]
            folder = self._agent_folder(agent_name)  # type: ignore[attr-defined]
            path = folder / VERSIONS_FILE
            rows = [
                {key: record.get(key) for key in ("version", "note", "created", "size")}
                for record in _checked_records(path)
            ]
        return sorted(rows, key=lambda row: row["version"])

    def get_version(self, agent_name: str, version: int) -> Row:
        check_agent_name(agent_name)
        version = check_version_number(version)
        with self._locked():  # type: ignore[attr-defined]
            folder = self._agent_folder(agent_name)  # type: ignore[attr-defined]
            info = next(
                (row for row in self.list_versions(agent_name) if row["version"] == version),
                None,
            )
            data = None
            if info is not None:
                for record in _checked_records(folder / VERSIONS_DATA_FILE):
                    if record.get("version") == version:
                        data = record.get("payload")
        if info is None or not isinstance(data, str):
            if info is not None:
                path = folder / VERSIONS_DATA_FILE
                raise CorruptStoreError(f"{path} lacks the payload of version {version}", str(path))
            raise LookupError(f"agent {agent_name!r} has no version {version}")
        stored = base64.b64decode(data)
        return {**info, "payload": self._open_payload(stored)}

    def delete_versions(self, agent_name: str, versions: Sequence[int]) -> int:
        check_agent_name(agent_name)
        doomed = set(check_version_numbers(versions))
        with self.transaction():  # type: ignore[attr-defined]
            folder = self._agent_folder(agent_name)  # type: ignore[attr-defined]
            present = [row["version"] for row in self.list_versions(agent_name)]
            gone = doomed & set(present)
            if gone:
                for name in (VERSIONS_FILE, VERSIONS_DATA_FILE):
                    self._rewrite_lines(
                        folder / name, lambda record: record.get("version") not in gone
                    )
        return len(gone)

    def _rewrite_lines(self, path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
        kept = [record for _, record in iter_records_forward(path) if keep(record)]
        self._replace(path, b"".join(encode_line(record) for record in kept))  # type: ignore[attr-defined]

    # ------------------------------------------------------------ learned state
    def delete_policy_params(self, agent_name: str) -> bool:
        check_agent_name(agent_name)
        with self.transaction():  # type: ignore[attr-defined]
            path = self._agent_folder(agent_name) / _files().POLICY_FILE  # type: ignore[attr-defined]
            if not path.exists():
                return False
            self._delete_file(path)
            return True

    def _delete_file(self, path: Path) -> None:
        """Delete ``path`` so that a rollback restores it (journaled like a replace)."""
        journal = self._journal  # type: ignore[attr-defined]
        assert journal is not None, "deletes run inside a transaction"
        with self._writing(path):  # type: ignore[attr-defined]
            journal.before_replace(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def delete_q_states(self, agent_name: str, states: Sequence[str]) -> int:
        check_agent_name(agent_name)
        names = check_states(states)
        files = _files()
        with self.transaction():  # type: ignore[attr-defined]
            table = self.get_q_table(agent_name) or {}  # type: ignore[attr-defined]
            doomed = [state for state in names if state in table]
            if not doomed:
                return 0
            folder = self._agent_folder(agent_name)  # type: ignore[attr-defined]
            change = encode_change({"delete": doomed}, "states")
            self._log_change(folder, files.Q_TABLE_FILE, files.Q_UPDATES_FILE, 2, change)  # type: ignore[attr-defined]
            return sum(len(table[state]) for state in doomed)

    def q_state_stats(self, agent_name: str) -> list[Row]:
        check_agent_name(agent_name)
        files = _files()
        with self._locked():  # type: ignore[attr-defined]
            folder = self._agent_folder(agent_name)  # type: ignore[attr-defined]
            table = self.get_q_table(agent_name) or {}  # type: ignore[attr-defined]
            base = folder / files.Q_TABLE_FILE
            # The file store keeps no per-entry time: states folded into q_table.json carry
            # that file's time, states changed since carry the time of their change line.
            base_time = base.stat().st_mtime if base.exists() else 0.0
            touched: dict[str, float] = {}
            for _, change in iter_records_forward(folder / files.Q_UPDATES_FILE):
                stamp = change.get("at")
                for state in change.get("set", {}):
                    touched[state] = float(stamp) if isinstance(stamp, int | float) else base_time
            visits: dict[str, int] = {}
            for row in all_rows(folder / files.DECISIONS_FILE):
                visits[row.get("state")] = visits.get(row.get("state"), 0) + 1
        return [
            {
                "state": state,
                "actions": len(actions),
                "last_updated": touched.get(state, base_time),
                "visits": visits.get(state, 0),
            }
            for state, actions in table.items()
        ]

    # ---------------------------------------------------------- corrections
    def get_agent_reward(self, reward_id: int) -> Row:
        reward_id = check_id(reward_id, "reward_id")
        files = _files()
        with self._locked():  # type: ignore[attr-defined]
            path, row = self._find_row("rewards", files.REWARDS_FILE, reward_id)  # type: ignore[attr-defined]
            if row is None:
                raise UnknownRewardError(reward_id)
            return public_reward(row, self._name_of(path.parent), path)  # type: ignore[attr-defined]

    def update_agent_reward(
        self,
        reward_id: int,
        reward: float,
        reward_components: Mapping[str, Any] | None = None,
    ) -> None:
        reward_id = check_id(reward_id, "reward_id")
        files = _files()
        fragments = {"reward": json_fragment(check_finite(reward, "reward"), "reward")}
        if reward_components is not None:
            check_mapping(reward_components, "reward_components")
            fragments["reward_components"] = json_fragment(
                dict(reward_components), "reward_components"
            )
        with self._locked():  # type: ignore[attr-defined]
            path, row = self._find_row("rewards", files.REWARDS_FILE, reward_id)  # type: ignore[attr-defined]
            if row is None:
                raise UnknownRewardError(reward_id)
            self._append_patch(path, reward_id, json_object(**fragments))  # type: ignore[attr-defined]

    def delete_agent_reward(self, reward_id: int) -> None:
        reward_id = check_id(reward_id, "reward_id")
        self._delete_row("rewards", reward_id, UnknownRewardError)

    def update_agent_interaction(
        self, interaction_id: int, *, request: str | None = None, response: str | None = None
    ) -> None:
        interaction_id = check_id(interaction_id, "interaction_id")
        files = _files()
        fragments = {}
        for name, value in (("request", request), ("response", response)):
            if value is not None:
                fragments[name] = self._text_fragment_sealed(value, name)
        if not fragments:
            raise ValueError("give request and/or response to update")
        with self._locked():  # type: ignore[attr-defined]
            path, row = self._find_row("interactions", files.INTERACTIONS_FILE, interaction_id)  # type: ignore[attr-defined]
            if row is None:
                raise UnknownInteractionError(interaction_id)
            self._append_patch(path, interaction_id, json_object(**fragments))  # type: ignore[attr-defined]

    def delete_agent_interaction(self, interaction_id: int) -> None:
        interaction_id = check_id(interaction_id, "interaction_id")
        self._delete_row("interactions", interaction_id, UnknownInteractionError)

    def _delete_row(self, table: str, row_id: int, error: type[LookupError]) -> None:
        with self.transaction():  # type: ignore[attr-defined]
            path, row = self._find_row(table, _SHORT[table], row_id)  # type: ignore[attr-defined]
            if row is None:
                raise error(row_id)
            self._rewrite_history(path, lambda kept: kept["id"] != row_id)

    def _rewrite_history(self, path: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite a history file with the rows ``keep`` accepts (patches folded in);
        return how many rows went."""
        rows = all_rows(path)
        kept = [row for row in rows if keep(row)]
        if len(kept) != len(rows):
            self._replace(path, b"".join(encode_line(row) for row in kept))  # type: ignore[attr-defined]
        return len(rows) - len(kept)

    # --------------------------------------------------------------- pruning
    def prune_history(
        self,
        agent_name: str,
        table: str,
        *,
        older_than: float | None = None,
        keep_newest: int | None = None,
        dry_run: bool = False,
    ) -> Row:
        check_agent_name(agent_name)
        older_than = check_prune_arguments(table, older_than, keep_newest)
        if older_than is None and keep_newest is None:
            return nothing_pruned()
        with self.transaction():  # type: ignore[attr-defined]
            path = self._agent_folder(agent_name) / _SHORT[table]  # type: ignore[attr-defined]
            rows = all_rows(path)
            floor = -math.inf
            if keep_newest is not None:
                ids = sorted(row["id"] for row in rows)
                floor = (
                    math.inf
                    if keep_newest == 0
                    else (ids[-keep_newest] if len(ids) >= keep_newest else -math.inf)
                )

            def doomed(row: dict[str, Any]) -> bool:
                too_old = older_than is not None and row.get("timestamp", 0.0) < older_than
                return too_old or row["id"] < floor

            going = [row for row in rows if doomed(row)]
            if not going:
                return nothing_pruned()
            if not dry_run:
                self._rewrite_history(path, lambda row: not doomed(row))
        return {
            "rows": len(going),
            "first_id": min(row["id"] for row in going),
            "last_id": max(row["id"] for row in going),
            "oldest": min(row["timestamp"] for row in going),
            "newest": max(row["timestamp"] for row in going),
        }

    # ------------------------------------------------------------ dump and load
    def backup_tables(self) -> tuple[str, ...]:
        return BACKUP_TABLES

    def _agent_folders(self) -> list[Path]:
        files = _files()
        root = self._base / files.AGENTS_FOLDER
        if not root.is_dir():  # a read-only folder whose store never had an agent
            return []
        folders = []
        with os.scandir(root) as entries:
            for entry in entries:
                check_entry(entry)
                if entry.is_dir(follow_symlinks=False) and SAFE_NAME.match(entry.name):
                    folder = Path(entry.path)
                    self._guard.folder(folder)  # type: ignore[attr-defined]
                    if (folder / files.AGENT_FILE).exists():
                        folders.append(folder)
        return sorted(folders)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Callable[[str], Iterator[Row]]]:
        """Hold the store's lock (writers in other processes wait) and read every table."""
        with self._locked():  # type: ignore[attr-defined]
            yield self._dump_table

    def _dump_table(self, name: str) -> Iterator[Row]:
        if name not in BACKUP_TABLES:
            raise ValueError(f"unknown table {name!r}; tables are {', '.join(BACKUP_TABLES)}")
        if name in _HISTORY_FOR:
            rows: list[Row] = []
            for folder in self._agent_folders():
                agent = self._name_of(folder)  # type: ignore[attr-defined]
                for row in all_rows(folder / _HISTORY_FOR[name][1]):
                    rows.append(_sql_history_row(name, agent, row))
            rows.sort(key=lambda row: row["id"])
            yield from rows
            return
        if name == "q_tables_unmigrated":
            return
        if name == SETTINGS_TABLE:
            yield from self._settings_rows()  # type: ignore[attr-defined]
            return
        for index, folder in enumerate(self._agent_folders(), start=1):
            agent = self._name_of(folder)  # type: ignore[attr-defined]
            yield from self._dump_agent_table(name, agent, folder, index)

    def _dump_agent_table(self, name: str, agent: str, folder: Path, index: int) -> Iterator[Row]:
        files = _files()
        if name in {"q_agents", "q_values"}:
            table = self.get_q_table(agent)  # type: ignore[attr-defined]
            if table is None:
                return
            stats = {row["state"]: row["last_updated"] for row in self.q_state_stats(agent)}
            base = folder / files.Q_TABLE_FILE
            stamp = base.stat().st_mtime if base.exists() else time.time()
            if name == "q_agents":
                yield {"id": index, "agent_name": agent, "last_updated": stamp}
                return
            for state in sorted(table):
                for action in sorted(table[state]):
                    yield {
                        "agent_name": agent,
                        "state": state,
                        "action": action,
                        "value": table[state][action],
                        "last_updated": stats.get(state, stamp),
                    }
        elif name == "policy_params":
            params = self.get_policy_params(agent)  # type: ignore[attr-defined]
            if params is not None:
                path = folder / files.POLICY_FILE
                yield {
                    "id": index,
                    "agent_name": agent,
                    "policy_params": to_json(params, "policy_params"),
                    "last_updated": path.stat().st_mtime,
                }
        elif name == "learner_arrays":
            arrays = self.get_arrays(agent)  # type: ignore[attr-defined]
            stamp = max(
                (
                    (folder / file_name).stat().st_mtime
                    for file_name in (files.ARRAYS_FILE, files.ARRAYS_UPDATES_FILE)
                    if (folder / file_name).exists()
                ),
                default=0.0,
            )
            for key in sorted(arrays):
                array = arrays[key]
                yield {
                    "agent_name": agent,
                    "key": key,
                    "dtype": array.dtype.name,
                    "shape": json.dumps(list(array.shape)),
                    "data": np.ascontiguousarray(
                        array, dtype=array.dtype.newbyteorder("<")
                    ).tobytes(),
                    "last_updated": stamp,
                }
        elif name == "learner_steps":
            for step in self.get_learner_steps(agent):  # type: ignore[attr-defined]
                yield {
                    "id": step.id,
                    "agent_name": agent,
                    "key": step.key,
                    "data": step.values.astype("<f8").tobytes(),
                    "last_updated": (folder / files.STEPS_FILE).stat().st_mtime,
                }
        elif name == "agent_versions":
            data = {
                record.get("version"): record.get("payload")
                for _, record in iter_records_forward(folder / VERSIONS_DATA_FILE)
            }
            for _, record in iter_records_forward(folder / VERSIONS_FILE):
                number = record.get("version")
                yield {
                    "agent_name": agent,
                    "version": number,
                    "note": record.get("note", ""),
                    "created": record.get("created"),
                    "payload": base64.b64decode(data.get(number) or ""),
                }

    def load_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        if table not in BACKUP_TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {', '.join(BACKUP_TABLES)}")
        rows = checked_backup_rows(table, rows)
        with self.transaction():  # type: ignore[attr-defined]
            if table in _HISTORY_FOR:
                return self._load_history(table, rows)
            if table == SETTINGS_TABLE:
                return self._load_settings_rows(rows)  # type: ignore[attr-defined]
            return self._load_agent_rows(table, rows)

    def _load_history(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        files = _files()
        short, file_name = _HISTORY_FOR[table]
        index_path = self._index_path(short)  # type: ignore[attr-defined]
        next_id = self._next_id(short)  # type: ignore[attr-defined]
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
            folder = self._ensure_agent(row["agent_name"])  # type: ignore[attr-defined]
            while next_id <= row_id:
                # Ids missing from the backup (pruned rows) keep their index lines, pointing
                # at this row's folder, where no row has them: reading them finds nothing.
                line = json.dumps({"id": next_id, "agent": folder.name}, separators=(",", ":"))
                index_lines.append(line.ljust(files.INDEX_LINE_WIDTH - 1).encode() + b"\n")
                next_id += 1
            by_file.setdefault(folder / file_name, []).append(encode_line(_file_row(table, row)))
            count += 1
        if index_lines:
            self._append(index_path, b"".join(index_lines), files._repair_index)  # type: ignore[attr-defined]
        for path, lines in by_file.items():
            self._append(path, b"".join(lines), repair_torn_tail)  # type: ignore[attr-defined]
        return count

    def _load_agent_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        files = _files()
        count = 0
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["agent_name"], []).append(row)
            count += 1
        for agent, agent_rows in grouped.items():
            folder = self._ensure_agent(agent)  # type: ignore[attr-defined]
            if table == "q_agents":
                change = encode_change({"reset": True, "set": {}}, "q_table")
                self._log_change(folder, files.Q_TABLE_FILE, files.Q_UPDATES_FILE, 2, change)  # type: ignore[attr-defined]
            elif table == "q_values":
                q_table: dict[str, dict[str, float]] = {}
                for row in agent_rows:
                    q_table.setdefault(row["state"], {})[row["action"]] = float(row["value"])
                stamp = max(float(row["last_updated"]) for row in agent_rows)
                change = encode_change({"set": q_table, "at": stamp}, "q_values")
                self._log_change(folder, files.Q_TABLE_FILE, files.Q_UPDATES_FILE, 2, change)  # type: ignore[attr-defined]
            elif table == "policy_params":
                self.save_policy_params(agent, json.loads(agent_rows[-1]["policy_params"]))  # type: ignore[attr-defined]
            elif table == "learner_arrays":
                arrays = {
                    row["key"]: np.frombuffer(
                        bytes(row["data"]), dtype=np.dtype(row["dtype"]).newbyteorder("<")
                    )
                    .astype(row["dtype"])
                    .reshape(json.loads(row["shape"]))
                    for row in agent_rows
                }
                self.save_arrays(agent, arrays)  # type: ignore[attr-defined]
            elif table == "learner_steps":
                self._load_learner_steps(folder, agent_rows)
            elif table == "agent_versions":
                present = {row["version"] for row in self.list_versions(agent)}
                data, index = [], []
                for row in sorted(agent_rows, key=lambda item: item["version"]):
                    if row["version"] in present:
                        raise ValueError(f"agent {agent!r} already has version {row['version']}")
                    payload = bytes(row["payload"])
                    data.append(
                        encode_line(
                            {
                                "version": row["version"],
                                "payload": base64.b64encode(payload).decode(),
                            }
                        )
                    )
                    index.append(
                        encode_line(
                            {
                                "version": row["version"],
                                "note": row["note"],
                                "created": row["created"],
                                "size": len(payload),
                            }
                        )
                    )
                self._append(folder / VERSIONS_DATA_FILE, b"".join(data), repair_torn_tail)  # type: ignore[attr-defined]
                self._append(folder / VERSIONS_FILE, b"".join(index), repair_torn_tail)  # type: ignore[attr-defined]
            elif table == "q_tables_unmigrated":
                raise ValueError("the file store cannot hold unmigrated seed Q-tables")
        return count

    def _load_learner_steps(self, folder: Path, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append steps with their ids kept (bit-exact snapshots record them as watermarks)."""
        files = _files()
        path = folder / files.STEPS_FILE
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
            data = bytes(row["data"])
            lines.append(
                encode_line(
                    {
                        "id": row_id,
                        "key": row["key"],
                        "data": base64.b64encode(data).decode("ascii"),
                        "last_updated": float(row["last_updated"]),
                    }
                )
            )
        if lines:
            self._reserve_step_ids_through(existing[-1])  # type: ignore[attr-defined]
            self._append(path, b"".join(lines), repair_torn_tail)  # type: ignore[attr-defined]

    def clear_data(self, *, keep_versions: bool = False, keep_settings: bool = False) -> None:
        files = _files()
        kept = (
            {VERSIONS_FILE, VERSIONS_DATA_FILE, files.AGENT_FILE}
            if keep_versions
            else {files.AGENT_FILE}
        )
        with self.transaction():  # type: ignore[attr-defined]
            for folder in self._agent_folders():
                for path in sorted(folder.iterdir()):
                    if path.is_file() and path.name not in kept:
                        self._delete_file(path)
            for table in files.TABLES:
                path = self._index_path(table)  # type: ignore[attr-defined]
                if path.exists():
                    self._delete_file(path)
            if not keep_settings:
                self._clear_settings()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ encryption
    def _text_fragment_sealed(self, value: Any, field: str, *, optional: bool = False) -> bytes:
        text = check_text(value, field, optional=optional)
        if text is None:
            return b"null"
        return text_fragment(self._seal_text(text), field)

    def reencrypt(self, cipher: Any) -> tuple[int, int]:
        files = _files()
        changed_rows = written = 0

        def reseal(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            return cipher.encrypt_text(cipher.decrypt_text(value))

        with self.transaction():  # type: ignore[attr-defined]
            for folder in self._agent_folders():
                path = folder / files.INTERACTIONS_FILE
                rows = all_rows(path)
                for row in rows:
                    feedback, learned = row.get("feedback"), row.get("learned_feedback")
                    new_feedback = reseal(feedback)
                    row["learned_feedback"] = (
                        new_feedback
                        if learned is not None and learned == feedback
                        else reseal(learned)
                    )
                    row["feedback"] = new_feedback
                    row["request"] = reseal(row.get("request"))
                    row["response"] = reseal(row.get("response"))
                    written += sum(
                        isinstance(row.get(key), str)
                        for key in ("request", "response", "feedback", "learned_feedback")
                    )
                if rows:
                    self._replace(path, b"".join(encode_line(row) for row in rows))  # type: ignore[attr-defined]
                    changed_rows += len(rows)
                if self._encrypt_payloads:
                    data_path = folder / VERSIONS_DATA_FILE
                    records = [record for _, record in iter_records_forward(data_path)]
                    for record in records:
                        sealed = cipher.encrypt_bytes(
                            cipher.decrypt_bytes(base64.b64decode(record["payload"]))
                        )
                        record["payload"] = base64.b64encode(sealed).decode("ascii")
                        written += 1
                    if records:
                        self._replace(data_path, b"".join(encode_line(r) for r in records))  # type: ignore[attr-defined]
                        changed_rows += len(records)
            self._write_meta(encryption_key_id=cipher.key_id)
        self._adopt_cipher(cipher)
        return changed_rows, written

    def _write_meta(self, **changes: Any) -> None:
        files = _files()
        self._writable()  # type: ignore[attr-defined]
        path = self._base / files.META_FILE
        meta = read_document(path) or {}
        meta.update(changes)
        if self._journal is not None:  # type: ignore[attr-defined]
            self._replace(path, encode_document(meta))  # type: ignore[attr-defined]
        else:
            atomic_write(path, encode_document(meta))


def _checked_records(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a versions file, oldest first, each checked for wrong types."""
    for offset, record in iter_records_forward(path):
        check_record(path, offset, record)
        yield record


def _sql_history_row(table: str, agent: str, row: Mapping[str, Any]) -> Row:
    """A file-store history row in the SQL store's column layout."""
    out: Row = {"id": row["id"], "agent_name": agent}
    if table == "agent_rewards":
        out.update(
            reward=row.get("reward"),
            reward_components=to_json(row.get("reward_components"), "reward_components"),
            timestamp=row.get("timestamp"),
            decision_id=row.get("decision_id"),
        )
    elif table == "agent_interactions":
        out.update(
            request=row.get("request"),
            response=row.get("response"),
            feedback=row.get("feedback"),
            timestamp=row.get("timestamp"),
            decision_id=row.get("decision_id"),
            learned_feedback=row.get("learned_feedback"),
        )
    else:
        features = row.get("features")
        out.update(
            state=row.get("state"),
            selected_action=row.get("selected_action"),
            q_values=to_json(row.get("q_values"), "q_values"),
            reward=to_json(row.get("reward"), "reward"),
            timestamp=row.get("timestamp"),
            propensity=row.get("propensity"),
            features=None if features is None else to_json(features, "features"),
            version=row.get("version"),
        )
    return out


def _file_row(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A SQL-layout history row as the file store writes it (JSON columns decoded)."""
    record = {key: value for key, value in row.items() if key != "agent_name"}
    for column in _JSON_COLUMNS.get(table, ()):
        value = record.get(column)
        record[column] = None if value is None else json.loads(value)
    if table == "agent_interactions":
        record.setdefault("learned_feedback", None)
    return {"id": record.pop("id"), **record}
