"""FileBackedMemoryDatabase: the rlmemory store as a folder of JSON and JSON Lines files.

Tables (Q-table, policy parameters, arrays) are human-readable JSON, histories (rewards,
interactions, decisions) are JSON Lines. Every write is atomic and durable, several
threads and processes may share one folder, and ``transaction()`` is all-or-nothing
even if the process is killed in the middle. The layout and the reasons behind it are
in ``docs/store-files.md``.

The class is the top of a stack of layers, each a module of this package that only calls
what the layers below it define: :class:`~rlmemory.store.files.folder.FileFolder`
(opening, locks, transactions, journaled writes) <-
:class:`~rlmemory.store.files.records.FileRecords` (agent folders, ids, rows) <-
:class:`~rlmemory.store.files.tables.FileTables` (keyed tables and their logs) <-
:class:`~rlmemory.store.files.settings.FileSettings` <-
:class:`~rlmemory.store.files.versions.FileVersions` <-
:class:`~rlmemory.store.files.backup.FileBackup` (snapshot, load, clear) <-
:class:`~rlmemory.store.files.maintenance.FileMaintenance` (corrections, pruning,
re-encryption) <- :class:`~rlmemory.store.files.histories.FileHistories` (rewards,
interactions, decisions) <- this class (learned state, feature cache, inspection).
Arguments are checked once, by :class:`~rlmemory.store.base.MemoryStore`, before they
reach any of them.

>>> import tempfile
>>> with FileBackedMemoryDatabase(tempfile.mkdtemp()) as store:
...     store.save_q_values("router", {"greeting": {"chat": 0.5}})
...     store.save_q_values("router", {"code": {"coder": 1.0}})
...     decision_id = store.save_agent_decision("router", "code", "coder", {"coder": 1.0}, None)
...     store.set_decision_reward(decision_id, 0.8)
...     store.get_q_table("router"), store.get_agent_decision(decision_id)["reward"]
({'greeting': {'chat': 0.5}, 'code': {'coder': 1.0}}, 0.8)
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store._steps import LearnerStep
from rlmemory.store.base import MemoryStore, QTable
from rlmemory.store.files.encode import array_document, decode_array, decode_step, step_line
from rlmemory.store.files.histories import FileHistories
from rlmemory.store.files.io import (
    encode_document,
    encode_line,
    iter_records_backward,
    iter_records_forward,
    read_document,
    safe_dirname,
)
from rlmemory.store.files.layout import (
    AGENT_FILE,
    ARRAYS_FILE,
    ARRAYS_UPDATES_FILE,
    DECISIONS_FILE,
    FEATURE_CACHE_FOLDER,
    HISTORY_FILES,
    INTERACTIONS_FILE,
    POLICY_FILE,
    Q_TABLE_FILE,
    Q_UPDATES_FILE,
    REWARDS_FILE,
    STEPS_FILE,
    TABLE_FILES,
    VERSIONS_FILE,
)
from rlmemory.store.files.rows import all_rows, field, newest_rows
from rlmemory.store.files.tables import fold, newest_of, newest_time
from rlmemory.store.files.totals import PatchedRewards
from rlmemory.store.rows import Row


class FileBackedMemoryDatabase(FileHistories, MemoryStore):
    """The rlmemory store in the folder ``base_dir`` (created if missing).

    ``lock_timeout`` is how many seconds an operation waits for another process's lock
    before raising :class:`~rlmemory.errors.StoreBusyError`. ``encryption_key``,
    ``key_file`` and ``encrypt_payloads`` turn on encryption of request, response and
    feedback texts (and version payloads) as in
    :class:`rlmemory.store.sql.MemoryDatabase`.
    """

    def __repr__(self) -> str:
        return f"FileBackedMemoryDatabase({self.location!r})"

    # ---------------------------------------------------------------- Q-learning
    def _save_q_table(self, agent_name: str, q_table: QTable) -> None:
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_q_change(folder, {"reset": True, "set": q_table}, compact=True)

    def _get_q_table(self, agent_name: str) -> QTable | None:
        with self._locked():
            folder = self._agent_folder(agent_name)
            return fold(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2)

    def _save_q_values(self, agent_name: str, changed: QTable) -> None:
        if not changed:
            return
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_q_change(folder, {"set": changed})

    def _get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        # Under the folder lock, from the Q-table folded in memory plus the log lines
        # appended since (by any process): a stat of two files and a short read.
        with self._locked():
            folder = self._agent_folder(agent_name)
            table = self._current_table(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2)
            return dict(table.get(state, {}))

    # ------------------------------------------------------------ policy gradient
    def _save_policy_params(self, agent_name: str, policy_json: str) -> None:
        data = encode_document(json.loads(policy_json))
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._replace(folder / POLICY_FILE, data)

    def _get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        with self._locked():
            return read_document(self._agent_folder(agent_name) / POLICY_FILE)

    # ------------------------------------------------------------- numeric arrays
    def _save_arrays(self, agent_name: str, arrays: list[tuple[str, np.ndarray]]) -> None:
        documents = {key: array_document(array) for key, array in arrays}
        change = encode_line({"set": documents})
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, change)

    def _stored_arrays(self, folder: Path) -> dict[str, Any]:
        return fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1) or {}

    def _get_arrays(self, agent_name: str, keys: list[str] | None) -> dict[str, np.ndarray]:
        with self._locked():
            folder = self._agent_folder(agent_name)
            stored = self._stored_arrays(folder)
        path = folder / ARRAYS_FILE
        return {
            key: decode_array(key, stored[key], path)
            for key in (stored if keys is None else keys)
            if key in stored
        }

    def _delete_arrays(self, agent_name: str, keys: list[str] | None) -> int:
        with self._locked():
            folder = self._agent_folder(agent_name)
            stored = self._stored_arrays(folder)
            change: dict[str, Any]
            if keys is None:
                doomed, change = list(stored), {"reset": True}
            else:
                doomed = [key for key in keys if key in stored]
                change = {"delete": doomed}
            if doomed:
                self._log_change(folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, encode_line(change))
            return len(doomed)

    # ------------------------------------------------------------- learner steps
    def _append_learner_steps(self, agent_name: str, steps: list[tuple[str, bytes]]) -> list[int]:
        stamp = time.time()
        with self._locked():
            folder = self._ensure_agent(agent_name)
            first = self._allocate_step_ids(len(steps))
            lines = b"".join(
                step_line(first + offset, key, data, stamp)
                for offset, (key, data) in enumerate(steps)
            )
            self._append(folder / STEPS_FILE, lines)
        return list(range(first, first + len(steps)))

    def _get_learner_steps(self, agent_name: str, after_id: int) -> list[Any]:
        path = self._agent_folder(agent_name) / STEPS_FILE
        newest_first: list[LearnerStep] = []
        with self._locked():
            # Ids grow along the file: read from its end back to the first id <= after_id.
            for _, record in iter_records_backward(path):
                step = decode_step(record, path)
                if step.id <= after_id:
                    break
                newest_first.append(step)
        return newest_first[::-1]

    def _delete_learner_steps(self, agent_name: str, through_id: int | None) -> int:
        path = self._agent_folder(agent_name) / STEPS_FILE
        with self.transaction():
            ids = [decode_step(record, path).id for _, record in iter_records_forward(path)]
            doomed = sum(1 for step_id in ids if through_id is None or step_id <= through_id)
            if doomed == len(ids):
                if ids:
                    self._delete_file(path)
            elif doomed and through_id is not None:
                bound = through_id
                self._rewrite_lines(path, lambda record: record["id"] > bound)
        return doomed

    # ------------------------------------------------------------- feature cache
    def _feature_folder(self, featurizer: str) -> Path:
        return self._base / FEATURE_CACHE_FOLDER / safe_dirname(featurizer)

    def _save_feature_vectors(self, featurizer: str, vectors: list[tuple[str, np.ndarray]]) -> None:
        with self._locked():
            folder = self._feature_folder(featurizer)
            for path in (folder.parent, folder):
                if not path.exists():
                    self._make_folder(path)
            created = time.time()
            for key, vector in vectors:
                path = folder / f"{key}.json"
                if not path.exists():
                    document = {"created": created, "vector": vector.tolist()}
                    self._replace(path, encode_document(document))

    def _get_feature_vectors(self, featurizer: str, keys: list[str]) -> dict[str, np.ndarray]:
        folder = self._feature_folder(featurizer)
        found = {}
        with self._locked():
            for key in keys:
                document = read_document(folder / f"{key}.json")
                if document is not None:
                    found[key] = _cached_vector(folder / f"{key}.json", document)
        return found

    def _cached_ages(self, featurizer: str) -> list[tuple[float, str]]:
        folder = self._feature_folder(featurizer)
        if not folder.is_dir():
            return []
        ages = []
        for path in folder.glob("*.json"):
            document = read_document(path) or {}
            created = document.get("created")
            ages.append((float(created) if isinstance(created, int | float) else 0.0, path.stem))
        return ages

    def _count_feature_vectors(self, featurizer: str) -> int:
        folder = self._feature_folder(featurizer)
        with self._locked():
            return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0

    def _prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        with self._locked():
            ages = sorted(self._cached_ages(featurizer), reverse=True)
            folder = self._feature_folder(featurizer)
            # A cache: deleting is not undone by a rolled-back transaction (it only costs
            # recomputing the vectors), so the journal does not record it.
            for _, key in ages[keep:]:
                (folder / f"{key}.json").unlink(missing_ok=True)
            return len(ages[keep:])

    # ---------------------------------------------------------------- inspection
    def list_agents(self) -> list[str]:
        """Every agent name with anything stored, sorted."""
        names = []
        with self._locked():
            for folder in self._agent_folders():
                if self._has_data(folder):
                    names.append(self._name_of(folder))
        return sorted(names)

    def _has_data(self, folder: Path) -> bool:
        if not (folder / AGENT_FILE).exists():
            return False
        if (folder / Q_TABLE_FILE).exists() or (folder / POLICY_FILE).exists():
            return True
        for name in (Q_UPDATES_FILE, VERSIONS_FILE, STEPS_FILE, *HISTORY_FILES):
            with contextlib.suppress(FileNotFoundError):
                if (folder / name).stat().st_size > 0:
                    return True
        return bool(self._stored_arrays(folder))

    def _agent_stats(self, agent_name: str) -> Row:
        folder = self._agent_folder(agent_name)
        path = folder / REWARDS_FILE
        with self._locked():
            try:
                rewards, reward_sum = self._totals.get(path, rewards=True)
            except PatchedRewards:
                values = [field(row, "reward", path) for row in all_rows(path)]
                rewards, reward_sum = len(values), sum(values)
            decisions = self._totals.get(folder / DECISIONS_FILE)[0]
            interactions = self._totals.get(folder / INTERACTIONS_FILE)[0]
            # The newest row of each history and learner step, and the tables, whose
            # files' times are their "last updated", as the SQL store's columns are.
            newest = [(folder / name, newest_rows(folder / name, 1)) for name in HISTORY_FILES]
            stamps = [field(rows[0], "timestamp", where) for where, rows in newest if rows]
            for _, step in iter_records_backward(folder / STEPS_FILE):
                stamps.append(step.get("last_updated"))
                break
            stamps.append(newest_time(*(folder / name for name in TABLE_FILES)))
        return {
            "decisions": decisions,
            "interactions": interactions,
            "rewards": rewards,
            "mean_reward": reward_sum / rewards if rewards else None,
            "last_update": newest_of(stamps),
        }

    def _count_agent_decisions(self, agent_name: str) -> int:
        with self._locked():
            return self._totals.get(self._agent_folder(agent_name) / DECISIONS_FILE)[0]


def _cached_vector(path: Path, document: dict[str, Any]) -> np.ndarray:
    vector = document.get("vector")
    if not isinstance(vector, list) or not vector:
        raise CorruptStoreError(f"{path} holds no vector", str(path))
    try:
        return np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise CorruptStoreError(f"{path} holds a vector that is not numbers", str(path)) from None
