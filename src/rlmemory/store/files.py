"""FileBackedMemoryDatabase: the rlmemory store as a folder of JSON and JSON Lines files.

Tables (Q-table, policy parameters, arrays) are human-readable JSON, histories (rewards,
interactions, decisions) are JSON Lines. Every write is atomic and durable, several
threads and processes may share one folder, and ``transaction()`` is all-or-nothing
even if the process is killed in the middle. The layout and the reasons behind it are
in ``docs/store-files.md``.

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
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from rlmemory.errors import (
    CorruptStoreError,
    SchemaVersionError,
    StoreBusyError,
    StoreError,
    UnknownDecisionError,
    UnknownInteractionError,
)
from rlmemory.store._fileio import (
    SAFE_NAME,
    append_bytes,
    atomic_write,
    encode_document,
    fsync_dir,
    iter_records_backward,
    iter_records_forward,
    read_document,
    repair_torn_tail,
    safe_dirname,
)
from rlmemory.store._filejournal import UndoJournal, remove_backups, roll_back
from rlmemory.store._filetotals import HistoryTotals, PatchedRewards
from rlmemory.store._validation import (
    check_agent_name,
    check_finite,
    check_id,
    check_limit,
    check_q_table,
    check_text,
    to_json,
)
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore, QTable, Row

FORMAT_NAME = "rlmemory-files"
META_FILE = "meta.json"
LOCK_FILE = ".lock"
AGENTS_FOLDER = "agents"
INDEX_FOLDER = "index"
AGENT_FILE = "agent.json"
Q_TABLE_FILE = "q_table.json"
Q_UPDATES_FILE = "q_table.updates.jsonl"
POLICY_FILE = "policy_params.json"
ARRAYS_FILE = "arrays.json"
ARRAYS_UPDATES_FILE = "arrays.updates.jsonl"
REWARDS_FILE = "rewards.jsonl"
INTERACTIONS_FILE = "interactions.jsonl"
DECISIONS_FILE = "decisions.jsonl"
HISTORY_FILES = (REWARDS_FILE, INTERACTIONS_FILE, DECISIONS_FILE)
APPEND_FILES = (Q_UPDATES_FILE, ARRAYS_UPDATES_FILE, *HISTORY_FILES)
TABLES = ("rewards", "interactions", "decisions")
TABLE_FILES = (Q_TABLE_FILE, Q_UPDATES_FILE, POLICY_FILE, ARRAYS_FILE, ARRAYS_UPDATES_FILE)

#: Each id-index line is padded to this width, so the line of id ``n`` is at ``(n-1)*W``.
INDEX_LINE_WIDTH = 128
#: An updates log is folded into its table once it is larger than the table and this.
COMPACT_MIN_BYTES = 256 * 1024

_ARRAY_DTYPES = ("float64", "int64")
_INT64_MAX = int(np.iinfo(np.int64).max)


class FileBackedMemoryDatabase(MemoryStore):
    """The rlmemory store in the folder ``base_dir`` (created if missing).

    ``lock_timeout`` is how many seconds an operation waits for another process's lock
    before raising :class:`~rlmemory.errors.StoreBusyError`.
    """

    def __init__(
        self, base_dir: str | Path = "agent_memory", *, lock_timeout: float = 60.0
    ) -> None:
        self._base = Path(base_dir).expanduser().absolute()
        self.location = str(self._base)
        self._closed = False
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._journal: UndoJournal | None = None
        self._pending_compactions: dict[Path, tuple[Path, int, bool]] = {}
        self._names: dict[str, str] = {}
        self._totals = HistoryTotals()
        if self._base.exists() and not self._base.is_dir():
            raise StoreError(f"{self._base} exists and is not a folder", self.location)
        self._base.mkdir(parents=True, exist_ok=True)
        self._file_lock = filelock.FileLock(
            str(self._base / LOCK_FILE), timeout=lock_timeout, thread_local=False
        )
        with self._locked():
            self._schema_version = self._open_meta()
            for folder in (AGENTS_FOLDER, INDEX_FOLDER):
                if not (self._base / folder).is_dir():
                    (self._base / folder).mkdir()
                    fsync_dir(self._base)
            remove_backups(self._base)
            self._remove_leftover_temporary_files()

    def _remove_leftover_temporary_files(self) -> None:
        """Delete temporary files of processes killed during an atomic write.

        Atomic writes happen only under the file lock, which the caller holds, so any
        temporary file found now belongs to a process that died.
        """
        for pattern in (".*.tmp", f"{AGENTS_FOLDER}/*/.*.tmp"):
            for leftover in self._base.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the thread lock and the folder's file lock; undo a crashed transaction."""
        with self._thread_lock:
            if self._closed:
                raise StoreError(f"{self.location}: the store is closed", self.location)
            if self._depth == 0:
                try:
                    self._file_lock.acquire()
                except filelock.Timeout:
                    raise StoreBusyError(
                        f"{self.location} stayed locked by another process for longer than "
                        f"{self._file_lock.timeout} s",
                        self.location,
                    ) from None
                try:
                    if roll_back(self._base):
                        self._totals.clear()
                except BaseException:
                    self._file_lock.release()
                    raise
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._file_lock.release()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._locked():
            if self._journal is not None:
                yield  # nested blocks join the outermost one
                return
            journal = self._journal = UndoJournal(self._base)
            try:
                yield
                journal.commit()
            except BaseException:
                self._journal = None
                self._pending_compactions.clear()
                self._totals.clear()
                roll_back(self._base)
                raise
            self._journal = None
            self._compact_pending()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group writes: all land when the outermost block exits normally, none if it raises.

        Changes are applied at once (reads in the block see them) after their undo
        information is journaled; the folder stays locked until the block ends.
        """
        return self._transaction()

    # ----------------------------------------------------------- low-level writes
    def _append(self, path: Path, data: bytes, repair: Callable[[Path], Any]) -> None:
        repair(path)
        if self._journal is not None:
            targets = [] if self._journal.covers(path) else self._append_targets(path)
            for target in targets[1:]:
                if not self._journal.covers(target):
                    _repair_any(target)
            self._journal.before_appends(targets, written=path)
        append_bytes(path, data, durable=self._journal is None)

    def _append_targets(self, path: Path) -> list[Path]:
        """``path`` and the files a transaction appending to it will likely append to
        next (its agent's logs and histories, the id indexes), journaled in one go."""
        targets = [path]
        if path.parent.parent == self._base / AGENTS_FOLDER:
            targets += [path.parent / name for name in APPEND_FILES]
        targets += [self._index_path(table) for table in TABLES]
        return targets

    def _replace(self, path: Path, data: bytes) -> None:
        if self._journal is not None:
            self._journal.before_replace(path)
        atomic_write(path, data, durable=self._journal is None)

    def _agent_folder(self, agent_name: str) -> Path:
        return self._base / AGENTS_FOLDER / safe_dirname(agent_name)

    def _ensure_agent(self, agent_name: str) -> Path:
        folder = self._agent_folder(agent_name)
        marker = folder / AGENT_FILE
        if marker.exists():
            if self._name_of(folder) != agent_name:
                raise CorruptStoreError(f"{marker} names another agent", str(marker))
            return folder
        if not folder.exists():
            if self._journal is not None:
                self._journal.before_mkdir(folder)
            folder.mkdir()
            if self._journal is None:
                fsync_dir(folder.parent)
        self._replace(marker, encode_document({"agent_name": agent_name}))
        self._names[folder.name] = agent_name
        return folder

    def _name_of(self, folder: Path) -> str:
        name = self._names.get(folder.name)
        if name is None:
            document = read_document(folder / AGENT_FILE)
            name = document.get("agent_name") if document else None
            if not isinstance(name, str):
                path = folder / AGENT_FILE
                raise CorruptStoreError(f"{path} does not record an agent name", str(path))
            self._names[folder.name] = name
        return name

    # ------------------------------------------------------------------------ ids
    def _index_path(self, table: str) -> Path:
        return self._base / INDEX_FOLDER / f"{table}.jsonl"

    def _allocate_id(self, table: str, folder: Path) -> int:
        """Append ``folder`` to the table's id index; the line number is the new id."""
        index = self._index_path(table)
        new_id = _repair_index(index) // INDEX_LINE_WIDTH + 1
        line = json.dumps({"id": new_id, "agent": folder.name}, separators=(",", ":"))
        self._append(index, line.ljust(INDEX_LINE_WIDTH - 1).encode() + b"\n", _repair_index)
        return new_id

    def _folder_of(self, table: str, row_id: int) -> Path | None:
        """The agent folder of row ``row_id`` of ``table``, from the id index."""
        if row_id < 1:
            return None
        index = self._index_path(table)
        try:
            with open(index, "rb") as handle:
                handle.seek((row_id - 1) * INDEX_LINE_WIDTH)
                line = handle.read(INDEX_LINE_WIDTH)
        except FileNotFoundError:
            return None
        if len(line) < INDEX_LINE_WIDTH:
            return None
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if (
            not isinstance(entry, dict)
            or entry.get("id") != row_id
            or not isinstance(entry.get("agent"), str)
            or not SAFE_NAME.match(entry["agent"])
        ):
            raise CorruptStoreError(f"{index} has a damaged line for id {row_id}", str(index))
        return self._base / AGENTS_FOLDER / entry["agent"]

    def _append_row(self, table: str, agent_name: str, file_name: str, body: bytes) -> int:
        with self._locked():
            folder = self._ensure_agent(agent_name)
            row_id = self._allocate_id(table, folder)
            line = b'{"id":%d,' % row_id + body[1:] + b"\n"
            self._append(folder / file_name, line, repair_torn_tail)
            return row_id

    def _append_patch(self, path: Path, row_id: int, changes: bytes) -> None:
        self._append(path, b'{"patch":%d,' % row_id + changes[1:] + b"\n", repair_torn_tail)

    # ---------------------------------------------------------- keyed documents
    def _fold(self, base: Path, updates: Path, depth: int) -> dict[str, Any] | None:
        """The table in ``base`` with every change of its ``updates`` log applied."""
        document = read_document(base)
        found = document is not None
        table: dict[str, Any] = document or {}
        for offset, change in iter_records_forward(updates):
            found = True
            _apply_change(table, change, depth, updates, offset)
        return table if found else None

    def _log_change(
        self,
        folder: Path,
        base_name: str,
        updates_name: str,
        depth: int,
        change: bytes,
        *,
        compact: bool = False,
    ) -> None:
        """Append ``change`` to an updates log; fold the log into its table if it grew large
        (or if ``compact``). Inside a transaction the folding waits for the commit."""
        self._append(folder / updates_name, change, repair_torn_tail)
        base = folder / base_name
        if self._journal is not None:
            forced = base in self._pending_compactions and self._pending_compactions[base][2]
            self._pending_compactions[base] = (folder / updates_name, depth, compact or forced)
        else:
            self._compact(base, folder / updates_name, depth, force=compact)

    def _compact(self, base: Path, updates: Path, depth: int, *, force: bool) -> None:
        try:
            log_size = updates.stat().st_size
        except FileNotFoundError:
            return
        base_size = base.stat().st_size if base.exists() else 0
        if not force and log_size < max(COMPACT_MIN_BYTES, base_size):
            return
        try:
            table = self._fold(base, updates, depth)
        except CorruptStoreError:
            return  # the change is stored in the log; reading the table reports the damage
        if table is None:
            return
        # Folding again after a crash between these two steps gives the same table.
        atomic_write(base, encode_document(table))
        updates.unlink()
        fsync_dir(updates.parent)

    def _compact_pending(self) -> None:
        pending, self._pending_compactions = self._pending_compactions, {}
        for base, (updates, depth, force) in pending.items():
            self._compact(base, updates, depth, force=force)

    # -------------------------------------------------------------- Q-learning
    def save_q_table(self, agent_name: str, q_table: Mapping[str, Mapping[str, float]]) -> None:
        _check_name(agent_name)
        change = _encode_change({"reset": True, "set": check_q_table(q_table)}, "q_table")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, Q_TABLE_FILE, Q_UPDATES_FILE, 2, change, compact=True)

    def get_q_table(self, agent_name: str) -> QTable | None:
        _check_name(agent_name)
        with self._locked():
            folder = self._agent_folder(agent_name)
            return self._fold(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2)

    def save_q_values(self, agent_name: str, changed: Mapping[str, Mapping[str, float]]) -> None:
        _check_name(agent_name)
        clean = check_q_table(changed, "changed")
        if not clean:
            return
        change = _encode_change({"set": clean}, "changed")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, Q_TABLE_FILE, Q_UPDATES_FILE, 2, change)

    # ---------------------------------------------------------- policy gradient
    def save_policy_params(self, agent_name: str, policy_params: Mapping[str, Any]) -> None:
        _check_name(agent_name)
        if not isinstance(policy_params, Mapping):
            raise TypeError(f"policy_params must be a mapping, not {type(policy_params).__name__}")
        text = to_json(dict(policy_params), "policy_params")
        _utf8(text, "policy_params")
        data = encode_document(json.loads(text))
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._replace(folder / POLICY_FILE, data)

    def get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        _check_name(agent_name)
        with self._locked():
            return read_document(self._agent_folder(agent_name) / POLICY_FILE)

    # ------------------------------------------------------------ numeric arrays
    def save_arrays(self, agent_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        _check_name(agent_name)
        if not isinstance(arrays, Mapping):
            raise TypeError(
                f"arrays must be a mapping of name to array, not {type(arrays).__name__}"
            )
        encoded = {key: _encode_array(key, value) for key, value in arrays.items()}
        if not encoded:
            return
        change = _encode_change({"set": encoded}, "arrays")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, change)

    def get_arrays(
        self, agent_name: str, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        _check_name(agent_name)
        wanted = _check_keys(keys)
        with self._locked():
            folder = self._agent_folder(agent_name)
            stored = self._fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1) or {}
        path = folder / ARRAYS_FILE
        return {
            key: _decode_array(key, stored[key], path)
            for key in (stored if wanted is None else wanted)
            if key in stored
        }

    def delete_arrays(self, agent_name: str, keys: Sequence[str] | None = None) -> int:
        _check_name(agent_name)
        wanted = _check_keys(keys)
        with self._locked():
            folder = self._agent_folder(agent_name)
            stored = self._fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1) or {}
            if wanted is None:
                doomed, change = list(stored), {"reset": True}
            else:
                doomed = [key for key in wanted if key in stored]
                change = {"delete": doomed}
            if doomed:
                self._log_change(
                    folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, _encode_change(change, "keys")
                )
            return len(doomed)

    # ------------------------------------------------------------------- rewards
    def save_agent_reward(
        self,
        agent_name: str,
        reward: float,
        reward_components: Mapping[str, Any],
        decision_id: int | None = None,
    ) -> int:
        _check_name(agent_name)
        if not isinstance(reward_components, Mapping):
            raise TypeError(
                f"reward_components must be a mapping, not {type(reward_components).__name__}"
            )
        body = _body(
            reward=_json_fragment(check_finite(reward, "reward"), "reward"),
            reward_components=_json_fragment(dict(reward_components), "reward_components"),
            decision_id=_optional_id(decision_id, "decision_id"),
            timestamp=_now(),
        )
        return self._append_row("rewards", agent_name, REWARDS_FILE, body)

    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        _check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / REWARDS_FILE
        with self._locked():
            rows = _newest_rows(path, limit)
        return [_public_reward(row, agent_name, path) for row in rows]

    # -------------------------------------------------------------- interactions
    def save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None = None,
        decision_id: int | None = None,
    ) -> int:
        _check_name(agent_name)
        body = _body(
            request=_text_fragment(request, "request"),
            response=_text_fragment(response, "response"),
            feedback=_text_fragment(feedback, "feedback", optional=True),
            decision_id=_optional_id(decision_id, "decision_id"),
            learned_feedback=b"null",
            timestamp=_now(),
        )
        return self._append_row("interactions", agent_name, INTERACTIONS_FILE, body)

    def get_agent_interactions(self, agent_name: str, limit: int = 10) -> list[Row]:
        _check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = _newest_rows(path, limit)
        return [_public_interaction(row, agent_name, path) for row in rows]

    def get_agent_interaction(self, interaction_id: int) -> Row:
        check_id(interaction_id, "interaction_id")
        with self._locked():
            path, row = self._find_row("interactions", INTERACTIONS_FILE, interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            return _public_interaction(row, self._name_of(path.parent), path)

    def find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        _check_name(agent_name)
        check_text(request, "request")
        check_text(response, "response")
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = _newest_rows(
                path,
                1,
                lambda row: row.get("request") == request and row.get("response") == response,
            )
        return _public_interaction(rows[0], agent_name, path) if rows else None

    def set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        check_id(interaction_id, "interaction_id")
        changes = _body(feedback=_text_fragment(feedback, "feedback"), learned_feedback=b"null")
        with self._locked():
            path, row = self._find_row("interactions", INTERACTIONS_FILE, interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            self._append_patch(path, interaction_id, changes)

    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Row]:
        _check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = _all_rows(path)
        unlearned = [
            public
            for public in (_public_interaction(row, agent_name, path) for row in rows)
            if public["feedback"] is not None and not public["feedback_learned"]
        ]
        return unlearned[:limit]

    def mark_feedback_learned(self, interaction_ids: Sequence[int]) -> None:
        if isinstance(interaction_ids, (str, bytes)) or not isinstance(interaction_ids, Sequence):
            raise TypeError("interaction_ids must be a sequence of int ids")
        wanted = list(dict.fromkeys(check_id(i, "interaction_ids") for i in interaction_ids))
        with self.transaction():
            found = [self._find_row("interactions", INTERACTIONS_FILE, i) for i in wanted]
            for interaction_id, (_, row) in zip(wanted, found, strict=True):
                if row is None:
                    raise UnknownInteractionError(interaction_id)
            for interaction_id, (path, row) in zip(wanted, found, strict=True):
                learned = _text_fragment(row.get("feedback"), "feedback", optional=True)
                self._append_patch(path, interaction_id, _body(learned_feedback=learned))

    # ------------------------------------------------------------------ decisions
    def save_agent_decision(
        self,
        agent_name: str,
        state: str,
        selected_action: str,
        q_values: Mapping[str, Any],
        reward: Any,
        *,
        propensity: float | None = None,
        features: Sequence[float] | None = None,
    ) -> int:
        _check_name(agent_name)
        if not isinstance(q_values, Mapping):
            raise TypeError(f"q_values must be a mapping, not {type(q_values).__name__}")
        body = _body(
            state=_text_fragment(state, "state"),
            selected_action=_text_fragment(selected_action, "selected_action"),
            q_values=_json_fragment(dict(q_values), "q_values"),
            reward=_json_fragment(reward, "reward"),
            propensity=_json_fragment(_check_propensity(propensity), "propensity"),
            features=_json_fragment(_check_features(features), "features"),
            timestamp=_now(),
        )
        return self._append_row("decisions", agent_name, DECISIONS_FILE, body)

    def get_agent_decisions(self, agent_name: str, limit: int = 10) -> list[Row]:
        _check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = _newest_rows(path, limit)
        return [_public_decision(row, agent_name, path) for row in rows]

    def get_agent_decision(self, decision_id: int) -> Row:
        check_id(decision_id, "decision_id")
        with self._locked():
            path, row = self._find_row("decisions", DECISIONS_FILE, decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)
            return _public_decision(row, self._name_of(path.parent), path)

    def iter_agent_decisions(
        self, agent_name: str, after_id: int = 0, batch_size: int = 1000
    ) -> Iterator[Row]:
        """Oldest first: every decision of ``agent_name`` with id > ``after_id``.

        The file store reads the decisions as they are when the call is made (one pass
        over the file, under the lock) and then yields them; ``batch_size`` is checked
        but has no other effect here.
        """
        _check_name(agent_name)
        check_id(after_id, "after_id")
        check_limit(batch_size, "batch_size")
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = _all_rows(path, after_id)
        return (_public_decision(row, agent_name, path) for row in rows)

    def set_decision_reward(self, decision_id: int, reward: Any) -> None:
        check_id(decision_id, "decision_id")
        changes = _body(reward=_json_fragment(reward, "reward"))
        with self._locked():
            path, row = self._find_row("decisions", DECISIONS_FILE, decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)
            self._append_patch(path, decision_id, changes)

    def _find_row(self, table: str, file_name: str, row_id: int) -> tuple[Path, Row | None]:
        """Locate row ``row_id`` through the id index; read it with its patches applied."""
        folder = self._folder_of(table, row_id)
        if folder is None:
            return self._base, None
        path = folder / file_name
        rows = _newest_rows(path, 1, lambda row: row.get("id") == row_id, stop_below=row_id)
        return path, (rows[0] if rows else None)

    # ---------------------------------------------------------------- inspection
    def list_agents(self) -> list[str]:
        names = []
        with self._locked():
            for folder in (self._base / AGENTS_FOLDER).iterdir():
                if SAFE_NAME.match(folder.name) and self._has_data(folder):
                    names.append(self._name_of(folder))
        return sorted(names)

    def _has_data(self, folder: Path) -> bool:
        if not (folder / AGENT_FILE).exists():
            return False
        if (folder / Q_TABLE_FILE).exists() or (folder / POLICY_FILE).exists():
            return True
        for name in (Q_UPDATES_FILE, *HISTORY_FILES):
            with contextlib.suppress(FileNotFoundError):
                if (folder / name).stat().st_size > 0:
                    return True
        return bool(self._fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1))

    def agent_stats(self, agent_name: str) -> Row:
        _check_name(agent_name)
        folder = self._agent_folder(agent_name)
        path = folder / REWARDS_FILE
        with self._locked():
            try:
                rewards, reward_sum = self._totals.get(folder / REWARDS_FILE, rewards=True)
            except PatchedRewards:
                values = [_field(row, "reward", path) for row in _all_rows(path)]
                rewards, reward_sum = len(values), sum(values)
            decisions = self._totals.get(folder / DECISIONS_FILE)[0]
            interactions = self._totals.get(folder / INTERACTIONS_FILE)[0]
            newest = [(folder / name, _newest_rows(folder / name, 1)) for name in HISTORY_FILES]
            # tables have no rows to carry a timestamp: their files' times stand in
            timestamps = [
                (folder / name).stat().st_mtime for name in TABLE_FILES if (folder / name).exists()
            ]
        timestamps += [_field(rows[0], "timestamp", where) for where, rows in newest if rows]
        return {
            "decisions": decisions,
            "interactions": interactions,
            "rewards": rewards,
            "mean_reward": reward_sum / rewards if rewards else None,
            "last_update": max(timestamps) if timestamps else None,
        }

    def count_agent_decisions(self, agent_name: str) -> int:
        _check_name(agent_name)
        with self._locked():
            return self._totals.get(self._agent_folder(agent_name) / DECISIONS_FILE)[0]

    # ----------------------------------------------------------------- lifecycle
    def _open_meta(self) -> int:
        path = self._base / META_FILE
        meta = read_document(path)
        if meta is None:
            atomic_write(
                path,
                encode_document({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION}),
            )
            return SCHEMA_VERSION
        found = meta.get("schema_version")
        if (
            meta.get("format") != FORMAT_NAME
            or isinstance(found, bool)
            or not isinstance(found, int)
        ):
            raise CorruptStoreError(f"{path} is not an rlmemory file-store header", str(path))
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(self.location, found, SCHEMA_VERSION)
        if found < 1:
            raise CorruptStoreError(f"{path} records an invalid schema version {found}", str(path))
        return found

    @property
    def schema_version(self) -> int:
        return self._schema_version

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True

    def __repr__(self) -> str:
        return f"FileBackedMemoryDatabase({self.location!r})"


# --------------------------------------------------------------- encoding rows
def _check_name(agent_name: Any) -> None:
    check_agent_name(agent_name)
    _check_storable_text(agent_name, "agent_name")


def _check_storable_text(value: str, field: str) -> None:
    """Refuse what the SQL backends cannot store either: NUL and lone surrogates."""
    if "\x00" in value:
        raise ValueError(f"{field} contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a lone surrogate, which cannot be stored") from None


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a lone surrogate, which cannot be stored") from None


def _encode_change(change: dict[str, Any], field: str) -> bytes:
    return _utf8(to_json(change, field) + "\n", field)


def _json_fragment(value: Any, field: str) -> bytes:
    return _utf8(to_json(value, field), field)


def _text_fragment(value: Any, field: str, *, optional: bool = False) -> bytes:
    text = check_text(value, field, optional=optional)
    if text is None:
        return b"null"
    _check_storable_text(text, field)
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def _optional_id(value: Any, field: str) -> bytes:
    return b"null" if value is None else b"%d" % check_id(value, field)


def _now() -> bytes:
    return repr(time.time()).encode()


def _body(**fragments: bytes) -> bytes:
    """A JSON object from already-encoded values, in the order given."""
    return (
        b"{"
        + b",".join(b'"%s":%s' % (key.encode(), value) for key, value in fragments.items())
        + b"}"
    )


def _check_propensity(propensity: Any) -> float | None:
    if propensity is None:
        return None
    value = check_finite(propensity, "propensity")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"propensity must be in (0, 1], got {value}")
    return value


def _check_features(features: Any) -> list[float] | None:
    if features is None:
        return None
    if isinstance(features, (str, bytes, Mapping)):
        raise TypeError(f"features must be a sequence of numbers, not {type(features).__name__}")
    try:
        items = list(features)
    except TypeError:
        raise TypeError(
            f"features must be a sequence of numbers, not {type(features).__name__}"
        ) from None
    return [check_finite(value, f"features[{index}]") for index, value in enumerate(items)]


def _check_keys(keys: Sequence[str] | None) -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of str, not a single string")
    wanted = list(dict.fromkeys(keys))
    for key in wanted:
        if not isinstance(key, str):
            raise TypeError(f"array keys must be str, not {type(key).__name__}")
    return wanted


def _encode_array(key: Any, value: Any) -> dict[str, Any]:
    if not isinstance(key, str):
        raise TypeError(f"array keys must be str, not {type(key).__name__}")
    if not key:
        raise ValueError("array keys must be non-empty strings")
    _check_storable_text(key, "array key")
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            raise ValueError(f"arrays[{key!r}] contains NaN or infinity, which cannot be stored")
    elif array.dtype.kind in "iu":
        if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64_MAX:
            raise ValueError(f"arrays[{key!r}] holds values too large for int64")
        array = array.astype(np.int64, copy=False)
    else:
        raise TypeError(f"arrays[{key!r}] must hold float64 or int64 numbers, not {array.dtype}")
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.ravel().tolist()}


def _decode_array(key: str, encoded: Any, path: Path) -> np.ndarray:
    try:
        dtype = encoded["dtype"]
        if dtype not in _ARRAY_DTYPES:
            raise ValueError(dtype)
        return np.array(encoded["data"], dtype=dtype).reshape(encoded["shape"])
    except (KeyError, TypeError, ValueError):
        raise CorruptStoreError(f"{path} holds a damaged array {key!r}", str(path)) from None


def _apply_change(
    table: dict[str, Any], change: dict[str, Any], depth: int, path: Path, offset: int
) -> None:
    """Apply one line of an updates log (reset, delete, set) to ``table`` in place."""
    if change.get("reset"):
        table.clear()
    doomed = change.get("delete", [])
    changes = change.get("set", {})
    if not isinstance(doomed, list) or not isinstance(changes, dict):
        raise CorruptStoreError(f"{path} has a damaged change at byte offset {offset}", str(path))
    for key in doomed:
        table.pop(key, None)
    for key, value in changes.items():
        current = table.get(key)
        if depth == 2 and isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            table[key] = dict(value) if isinstance(value, dict) else value


def _repair_any(path: Path) -> None:
    if path.parent.name == INDEX_FOLDER:
        _repair_index(path)
    else:
        repair_torn_tail(path)


def _repair_index(path: Path) -> int:
    """Cut a torn last line off an id index; return its size."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    whole = size - size % INDEX_LINE_WIDTH
    if whole != size:
        with open(path, "r+b") as handle:
            handle.truncate(whole)
            handle.flush()
            os.fsync(handle.fileno())
    return whole


# ---------------------------------------------------------------- reading rows
def _merge_patch(patches: dict[int, dict[str, Any]], record: dict[str, Any]) -> None:
    """Remember a patch seen reading backwards: newer patches (seen first) win."""
    pending = patches.setdefault(record["patch"], {})
    for key, value in record.items():
        if key != "patch":
            pending.setdefault(key, value)


def _newest_rows(
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
    for offset, record in iter_records_backward(path):
        if "patch" in record:
            _merge_patch(patches, record)
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


def _all_rows(path: Path, after_id: int = 0) -> list[dict[str, Any]]:
    """Every row with id > ``after_id``, oldest first, with its patches applied."""
    rows: dict[int, dict[str, Any]] = {}
    for offset, record in iter_records_forward(path):
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


def _field(row: dict[str, Any], key: str, path: Path) -> Any:
    try:
        return row[key]
    except KeyError:
        raise CorruptStoreError(
            f"{path} has a row without {key!r} (id {row.get('id')!r})", str(path)
        ) from None


def _public_reward(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    return {
        "id": _field(row, "id", path),
        "agent_name": agent_name,
        "reward": _field(row, "reward", path),
        "reward_components": _field(row, "reward_components", path),
        "decision_id": row.get("decision_id"),
        "timestamp": _field(row, "timestamp", path),
    }


def _public_interaction(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    feedback = row.get("feedback")
    return {
        "id": _field(row, "id", path),
        "agent_name": agent_name,
        "request": _field(row, "request", path),
        "response": _field(row, "response", path),
        "feedback": feedback,
        "decision_id": row.get("decision_id"),
        "feedback_learned": feedback is not None and row.get("learned_feedback") == feedback,
        "timestamp": _field(row, "timestamp", path),
    }


def _public_decision(row: dict[str, Any], agent_name: str, path: Path) -> Row:
    return {
        "id": _field(row, "id", path),
        "agent_name": agent_name,
        "state": _field(row, "state", path),
        "selected_action": _field(row, "selected_action", path),
        "q_values": _field(row, "q_values", path),
        "reward": row.get("reward"),
        "propensity": row.get("propensity"),
        "features": row.get("features"),
        "timestamp": _field(row, "timestamp", path),
    }
