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

import base64
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import (
    CorruptStoreError,
    EncryptionKeyError,
    NotAStoreError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StoreError,
    TransactionAbortedError,
    UnknownDecisionError,
    UnknownInteractionError,
)
from rlmemory.store._feature_cache import (
    check_featurizer_name,
    check_keep,
    check_text_keys,
    check_vectors,
)
from rlmemory.store._steps import LearnerStep, check_step_id, check_steps, decode_values
from rlmemory.store._validation import (
    check_decision_labels,
    check_features,
    check_id,
    check_ids,
    check_integer,
    check_limit,
    check_mapping,
    check_propensity,
    check_q_table,
    check_reward_row,
    check_state,
    check_text,
    to_json,
)
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore, QTable, Row
from rlmemory.store.files.check import check_q_table_document
from rlmemory.store.files.encode import (
    apply_change,
    check_keys,
    check_name,
    decode_array,
    encode_array,
    encode_change,
    json_fragment,
    json_object,
    now,
    optional_id,
    text_fragment,
    utf8,
)
from rlmemory.store.files.folded import FoldedTables
from rlmemory.store.files.guard import TreeGuard, check_entry, check_not_link
from rlmemory.store.files.io import (
    SAFE_NAME,
    append_bytes,
    atomic_write,
    encode_document,
    encode_line,
    fsync_dir,
    iter_records_backward,
    iter_records_forward,
    open_nofollow,
    read_document,
    repair_torn_tail,
    safe_dirname,
)
from rlmemory.store.files.journal import (
    JOURNAL_FOLDER,
    UndoJournal,
    remove_backups,
    roll_back,
)
from rlmemory.store.files.journal import pending as journal_pending
from rlmemory.store.files.lock import FolderLock
from rlmemory.store.files.maintenance import VERSIONS_FILE, FileOperations
from rlmemory.store.files.rows import (
    all_rows,
    field,
    newest_rows,
    public_decision,
    public_interaction,
    public_reward,
)
from rlmemory.store.files.settings import FileSettings
from rlmemory.store.files.totals import HistoryTotals, PatchedRewards

FORMAT_NAME = "rlmemory-files"
META_FILE = "meta.json"
LOCK_FILE = ".lock"
AGENTS_FOLDER = "agents"
INDEX_FOLDER = "index"
#: ``feature_cache/<featuriser folder>/<sha256 of the text>.json``: one cached vector each.
FEATURE_CACHE_FOLDER = "feature_cache"
AGENT_FILE = "agent.json"
Q_TABLE_FILE = "q_table.json"
Q_UPDATES_FILE = "q_table.updates.jsonl"
POLICY_FILE = "policy_params.json"
ARRAYS_FILE = "arrays.json"
ARRAYS_UPDATES_FILE = "arrays.updates.jsonl"
STEPS_FILE = "steps.jsonl"
#: In the index folder: the last learner-step id handed out (ids are store-wide, like SQL's).
STEPS_COUNTER_FILE = "learner_steps.json"
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


class FileBackedMemoryDatabase(FileSettings, FileOperations, MemoryStore):
    """The rlmemory store in the folder ``base_dir`` (created if missing).

    ``lock_timeout`` is how many seconds an operation waits for another process's lock
    before raising :class:`~rlmemory.errors.StoreBusyError`. ``encryption_key``,
    ``key_file`` and ``encrypt_payloads`` turn on encryption of request, response and
    feedback texts (and version payloads) as in
    :class:`rlmemory.store.sql.MemoryDatabase`.
    """

    def __init__(
        self,
        base_dir: str | Path = "agent_memory",
        *,
        lock_timeout: float = 60.0,
        encryption_key: Any = None,
        key_file: str | os.PathLike[str] | None = None,
        encrypt_payloads: bool = False,
    ) -> None:
        self._base = Path(base_dir).expanduser().absolute()
        self.location = str(self._base)
        from rlmemory.store.crypto import Cipher, resolve_key

        raw_key = resolve_key(encryption_key, key_file=key_file)
        self._cipher = None if raw_key is None else Cipher(raw_key, location=self.location)
        self._encrypt_payloads = bool(encrypt_payloads)
        self._store_key_id: str | None = None
        self._closed = False
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._journal: UndoJournal | None = None
        # The error (I/O, store) that failed a call inside the open transaction, if any.
        self._transaction_lost: BaseException | None = None
        self._pending_compactions: dict[Path, tuple[Path, int, bool]] = {}
        self._names: dict[str, str] = {}
        self._totals = HistoryTotals()
        self._folded = FoldedTables()
        # per id index: (device, inode) and the size it had after our last allocation
        self._index_floor: dict[str, tuple[tuple[int, int] | None, int]] = {}
        self._guard = TreeGuard(self._base)
        if self._base.exists() and not self._base.is_dir():
            raise StoreError(f"{self._base} exists and is not a folder", self.location)
        self._refuse_foreign_folder()
        try:
            self._base.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"{self._base} does not exist and cannot be created: {error.strerror}",
                self.location,
            ) from None
        self._file_lock = FolderLock(self._base / LOCK_FILE, lock_timeout, self.location)
        with self._locked():
            self._schema_version = self._open_meta()
            self._check_key()
            for folder in (AGENTS_FOLDER, INDEX_FOLDER):
                if not (self._base / folder).is_dir() and not self.read_only:
                    (self._base / folder).mkdir()
                    fsync_dir(self._base)
            self._check_agent_folders()

    @property
    def read_only(self) -> bool:
        """Whether the folder can only be read (read-only media or permissions)."""
        return self._file_lock.read_only is not None

    def _refuse_foreign_folder(self) -> None:
        """Open a store, or a missing or empty folder; never turn another folder into a store.

        Runs before anything is created, so a folder that is not a store is left exactly
        as it was (not even a lock file is added).
        """
        try:
            names = set(os.listdir(self._base))
        except FileNotFoundError:
            return
        if META_FILE in names:
            meta_path = self._base / META_FILE
            check_not_link(meta_path)
            meta = read_document(meta_path)
            if isinstance(meta, dict) and meta.get("format") not in (FORMAT_NAME, None):
                raise NotAStoreError(
                    f"{self._base} holds a {META_FILE} of {meta.get('format')!r}, not an "
                    "rlmemory file store; nothing was written to it",
                    self.location,
                )
            return
        # What a store being created leaves before its header exists: the lock file and
        # the header's temporary file.
        others = {name for name in names if name != LOCK_FILE and not name.startswith(".meta.")}
        if others:
            shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
            raise NotAStoreError(
                f"{self._base} is not an rlmemory file store (no {META_FILE}) and is not "
                f"empty ({shown}); give a new or empty folder to create a store. Nothing "
                "was written to it",
                self.location,
            )

    def _check_agent_folders(self) -> None:
        """Check every agent folder for links and special files; delete the temporary files
        of processes killed during an atomic write.

        Atomic writes happen only under the file lock, which the caller holds, so any
        temporary file found now belongs to a process that died.
        """
        leftovers = list(self._base.glob(".*.tmp"))
        agents = self._base / AGENTS_FOLDER
        if self._guard.folder(agents):
            with os.scandir(agents) as entries:
                for entry in entries:
                    check_entry(entry)
                    if entry.is_dir(follow_symlinks=False) and SAFE_NAME.match(entry.name):
                        folder = Path(entry.path)
                        self._guard.folder(folder)
                        leftovers += folder.glob(".*.tmp")
        if self.read_only:
            return
        remove_backups(self._base)
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def _recover(self) -> None:
        """Roll back a transaction a crashed process left behind (needs write access)."""
        if self.read_only:
            if journal_pending(self._base):
                raise ReadOnlyStoreError(
                    f"{self.location} holds an unfinished transaction of a process that "
                    "crashed, and is read-only: open it once with write access to roll the "
                    "transaction back",
                    self.location,
                )
            return
        if roll_back(self._base):
            self._totals.clear()
            self._folded.clear()
            self._index_floor.clear()

    def _writable(self) -> None:
        """Refuse a write, naming the folder, when the store is read-only."""
        if self._file_lock.read_only is not None:
            raise ReadOnlyStoreError(
                f"{self.location} is read-only ({self._file_lock.read_only}): reading works, "
                "writing is refused",
                self.location,
            )

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the thread lock and the folder's file lock; undo a crashed transaction."""
        with self._thread_lock:
            if self._closed:
                raise StoreError(f"{self.location}: the store is closed", self.location)
            if self._depth == 0:
                self._file_lock.acquire()
                try:
                    for folder in (INDEX_FOLDER, JOURNAL_FOLDER, ""):
                        self._guard.folder(self._base / folder)
                    self._recover()
                except BaseException:
                    self._file_lock.release()
                    raise
            if self._journal is not None and self._transaction_lost is not None:
                raise self._lost_transaction_error()
            self._depth += 1
            try:
                yield
            except (OSError, StoreError) as error:
                # A call inside a transaction failed on the files themselves (not on its
                # arguments): its writes may be half done, so the transaction is failed.
                if self._journal is not None and self._depth > 1:
                    self._transaction_lost = self._transaction_lost or error
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._file_lock.release()

    def _lost_transaction_error(self) -> TransactionAbortedError:
        error = self._transaction_lost
        return TransactionAbortedError(
            f"{self.location}: a call inside this transaction failed "
            f"({type(error).__name__}: {error}), so the transaction was rolled back and "
            "nothing in it was stored",
            self.location,
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._locked():
            if self._journal is not None:
                yield  # nested blocks join the outermost one
                return
            journal = self._journal = UndoJournal(self._base)
            self._transaction_lost = None
            try:
                yield
                if self._transaction_lost is not None:
                    raise self._lost_transaction_error()
                journal.commit()
            except BaseException:
                self._journal = None
                self._transaction_lost = None
                self._pending_compactions.clear()
                self._totals.clear()
                self._folded.clear()
                self._index_floor.clear()
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
    @contextlib.contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """Refuse a write to a read-only store; report a failed write (disk full, I/O
        error) as a StoreError naming the file. A failed write is never acknowledged: a
        torn append is cut off by the next one, a transaction rolls back."""
        self._writable()
        try:
            yield
        except OSError as error:
            raise StoreError(
                f"{self.location}: writing {path} failed: {error.strerror or error}",
                self.location,
            ) from error

    def _append(self, path: Path, data: bytes, repair: Callable[[Path], Any]) -> None:
        with self._writing(path):
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
        with self._writing(path):
            if self._journal is not None:
                self._journal.before_replace(path)
            atomic_write(path, data, durable=self._journal is None)

    def _agent_folder(self, agent_name: str) -> Path:
        """The agent's folder, checked for links and special files (it may not exist)."""
        folder = self._base / AGENTS_FOLDER / safe_dirname(agent_name)
        self._guard.folder(folder)
        return folder

    def _ensure_agent(self, agent_name: str) -> Path:
        self._writable()
        folder = self._agent_folder(agent_name)
        marker = folder / AGENT_FILE
        if marker.exists():
            if self._name_of(folder) != agent_name:
                raise CorruptStoreError(f"{marker} names another agent", str(marker))
            return folder
        if not folder.exists():
            with self._writing(folder):
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
        new_id = self._next_id(table)
        line = json.dumps({"id": new_id, "agent": folder.name}, separators=(",", ":"))
        self._append(index, line.ljust(INDEX_LINE_WIDTH - 1).encode() + b"\n", _repair_index)
        return new_id

    def _next_id(self, table: str) -> int:
        """The id after the index's last line, once checked against the histories.

        An index emptied, deleted or cut short by hand would hand out ids that rows
        already have. So the first time a store object allocates an id of ``table``,
        and again whenever the index shrank or was replaced since, the highest id in the
        agents' histories (the last row of each: ids grow in file order) is compared with
        the index; a shorter index is a :class:`CorruptStoreError` naming both files.
        """
        index = self._index_path(table)
        size = _repair_index(index)
        try:
            status = index.stat()
            identity: tuple[int, int] | None = (status.st_dev, status.st_ino)
        except FileNotFoundError:
            identity = None
        known = self._index_floor.get(table)
        if known is None or known[0] != identity or size < known[1]:
            self._check_index_covers_histories(table, index, size // INDEX_LINE_WIDTH)
        self._index_floor[table] = (identity, size + INDEX_LINE_WIDTH)
        return size // INDEX_LINE_WIDTH + 1

    def _check_index_covers_histories(self, table: str, index: Path, listed: int) -> None:
        file_name = {"rewards": REWARDS_FILE, "interactions": INTERACTIONS_FILE}.get(
            table, DECISIONS_FILE
        )
        for folder in self._agent_folders():
            history = folder / file_name
            try:
                newest = newest_rows(history, 1)
            except CorruptStoreError:
                continue  # reported when that agent's history is read; others write on
            if newest and newest[0]["id"] > listed:
                raise CorruptStoreError(
                    f"{index} lists {listed} ids but {history} holds id {newest[0]['id']}: "
                    "the id index was emptied or cut short (by hand?) and new rows would "
                    "reuse ids. Put the index back (from a copy or a backup); the store "
                    "writes no new rows until then",
                    str(index),
                )

    def _folder_of(self, table: str, row_id: int) -> Path | None:
        """The agent folder of row ``row_id`` of ``table``, from the id index."""
        if row_id < 1:
            return None
        index = self._index_path(table)
        try:
            with open(index, "rb", opener=open_nofollow) as handle:
                offset = (row_id - 1) * INDEX_LINE_WIDTH
                if offset >= os.fstat(handle.fileno()).st_size:
                    return None  # beyond the index (seek would overflow for ids near 2**63)
                handle.seek(offset)
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
        folder = self._base / AGENTS_FOLDER / entry["agent"]
        self._guard.folder(folder)
        return folder

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
        if depth == 2:
            check_q_table_document(table, base)
        for offset, change in iter_records_forward(updates):
            found = True
            apply_change(table, change, depth, updates, offset)
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
        # Folding again after a crash between these two steps gives the same table. Folding
        # only saves reading time: if it fails (disk full), the log still holds the change.
        with contextlib.suppress(OSError):
            atomic_write(base, encode_document(table))
            updates.unlink()
            fsync_dir(updates.parent)

    def _compact_pending(self) -> None:
        pending, self._pending_compactions = self._pending_compactions, {}
        for base, (updates, depth, force) in pending.items():
            self._compact(base, updates, depth, force=force)

    # -------------------------------------------------------------- Q-learning
    def save_q_table(self, agent_name: str, q_table: Mapping[str, Mapping[str, float]]) -> None:
        check_name(agent_name)
        change = encode_change({"reset": True, "set": check_q_table(q_table)}, "q_table")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, Q_TABLE_FILE, Q_UPDATES_FILE, 2, change, compact=True)

    def get_q_table(self, agent_name: str) -> QTable | None:
        check_name(agent_name)
        with self._locked():
            folder = self._agent_folder(agent_name)
            return self._fold(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2)

    def save_q_values(self, agent_name: str, changed: Mapping[str, Mapping[str, float]]) -> None:
        check_name(agent_name)
        clean = check_q_table(changed, "changed")
        if not clean:
            return
        change = encode_change({"set": clean, "at": time.time()}, "changed")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, Q_TABLE_FILE, Q_UPDATES_FILE, 2, change)

    def get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        # Under the folder lock, from the Q-table folded in memory plus the log lines
        # appended since (by any process): a stat of two files and a short read.
        check_name(agent_name)
        check_state(state)
        with self._locked():
            folder = self._agent_folder(agent_name)
            table = self._folded.current(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2)
            return dict(table.get(state, {}))

    # ---------------------------------------------------------- policy gradient
    def save_policy_params(self, agent_name: str, policy_params: Mapping[str, Any]) -> None:
        check_name(agent_name)
        check_mapping(policy_params, "policy_params")
        text = to_json(dict(policy_params), "policy_params")
        utf8(text, "policy_params")
        data = encode_document(json.loads(text))
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._replace(folder / POLICY_FILE, data)

    def get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        check_name(agent_name)
        with self._locked():
            return read_document(self._agent_folder(agent_name) / POLICY_FILE)

    # ------------------------------------------------------------ numeric arrays
    def save_arrays(self, agent_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        check_name(agent_name)
        check_mapping(arrays, "arrays", " of name to array")
        encoded = {key: encode_array(key, value) for key, value in arrays.items()}
        if not encoded:
            return
        change = encode_change({"set": encoded}, "arrays")
        with self._locked():
            folder = self._ensure_agent(agent_name)
            self._log_change(folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, change)

    def get_arrays(
        self, agent_name: str, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        check_name(agent_name)
        wanted = check_keys(keys)
        with self._locked():
            folder = self._agent_folder(agent_name)
            stored = self._fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1) or {}
        path = folder / ARRAYS_FILE
        return {
            key: decode_array(key, stored[key], path)
            for key in (stored if wanted is None else wanted)
            if key in stored
        }

    def delete_arrays(self, agent_name: str, keys: Sequence[str] | None = None) -> int:
        check_name(agent_name)
        wanted = check_keys(keys)
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
                    folder, ARRAYS_FILE, ARRAYS_UPDATES_FILE, 1, encode_change(change, "keys")
                )
            return len(doomed)

    # ------------------------------------------------------------- learner steps
    def append_learner_steps(
        self, agent_name: str, steps: Sequence[tuple[str, np.ndarray]]
    ) -> list[int]:
        check_name(agent_name)
        checked = check_steps(steps)
        if not checked:
            return []
        stamp = time.time()
        with self._locked():
            folder = self._ensure_agent(agent_name)
            first = self._allocate_step_ids(len(checked))
            lines = b"".join(
                encode_line(
                    {
                        "id": first + offset,
                        "key": key,
                        "data": base64.b64encode(data).decode("ascii"),
                        "last_updated": stamp,
                    }
                )
                for offset, (key, data) in enumerate(checked)
            )
            self._append(folder / STEPS_FILE, lines, repair_torn_tail)
        return list(range(first, first + len(checked)))

    def _allocate_step_ids(self, count: int) -> int:
        """Reserve ``count`` store-wide step ids; return the first. A crash after this
        leaves a gap in the ids, never a reused one."""
        return self._reserve_step_ids_through(self._last_step_id() + count) - count + 1

    def _last_step_id(self) -> int:
        path = self._base / INDEX_FOLDER / STEPS_COUNTER_FILE
        document = read_document(path) or {}
        last = document.get("last_id", 0)
        if isinstance(last, bool) or not isinstance(last, int) or last < 0:
            raise CorruptStoreError(f"{path} records no valid last step id", str(path))
        return last

    def _reserve_step_ids_through(self, last_id: int) -> int:
        if last_id > self._last_step_id():
            path = self._base / INDEX_FOLDER / STEPS_COUNTER_FILE
            self._replace(path, encode_document({"last_id": last_id}))
        return last_id

    def get_learner_steps(self, agent_name: str, after_id: int = 0) -> list[LearnerStep]:
        check_name(agent_name)
        after_id = check_step_id(after_id, "after_id")
        path = self._agent_folder(agent_name) / STEPS_FILE
        newest_first = []
        with self._locked():
            # Ids grow along the file: read from its end back to the first id <= after_id.
            for _, record in iter_records_backward(path):
                step = _learner_step(record, path)
                if step.id <= after_id:
                    break
                newest_first.append(step)
        return newest_first[::-1]

    def delete_learner_steps(self, agent_name: str, through_id: int | None = None) -> int:
        check_name(agent_name)
        if through_id is not None:
            through_id = check_step_id(through_id, "through_id")
        path = self._agent_folder(agent_name) / STEPS_FILE
        with self.transaction():
            ids = [_learner_step(record, path).id for _, record in iter_records_forward(path)]
            doomed = sum(1 for step_id in ids if through_id is None or step_id <= through_id)
            if doomed == len(ids):
                if ids:
                    self._delete_file(path)
            elif doomed:
                self._rewrite_lines(path, lambda record: record["id"] > through_id)
        return doomed

    # ------------------------------------------------------------- feature cache
    def _feature_folder(self, featurizer: str) -> Path:
        return self._base / FEATURE_CACHE_FOLDER / safe_dirname(featurizer)

    def save_feature_vectors(self, featurizer: str, vectors: Mapping[str, np.ndarray]) -> None:
        featurizer = check_featurizer_name(featurizer)
        checked = check_vectors(vectors)
        if not checked:
            return
        with self._locked():
            folder = self._feature_folder(featurizer)
            for path in (folder.parent, folder):
                if not path.exists():
                    if self._journal is not None:
                        self._journal.before_mkdir(path)
                    path.mkdir()
            now = time.time()
            for key, vector in checked:
                path = folder / f"{key}.json"
                if not path.exists():
                    document = {"created": now, "vector": vector.tolist()}
                    self._replace(path, encode_document(document))

    def get_feature_vectors(self, featurizer: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        featurizer = check_featurizer_name(featurizer)
        wanted = check_text_keys(keys)
        folder = self._feature_folder(featurizer)
        found = {}
        with self._locked():
            for key in wanted:
                document = read_document(folder / f"{key}.json")
                if document is not None:
                    found[key] = self._cached_vector(folder / f"{key}.json", document)
        return found

    @staticmethod
    def _cached_vector(path: Path, document: dict[str, Any]) -> np.ndarray:
        vector = document.get("vector")
        if not isinstance(vector, list) or not vector:
            raise CorruptStoreError(f"{path} holds no vector", str(path))
        try:
            return np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError):
            raise CorruptStoreError(
                f"{path} holds a vector that is not numbers", str(path)
            ) from None

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

    def count_feature_vectors(self, featurizer: str) -> int:
        featurizer = check_featurizer_name(featurizer)
        folder = self._feature_folder(featurizer)
        with self._locked():
            return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0

    def prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        featurizer = check_featurizer_name(featurizer)
        keep = check_keep(keep)
        with self._locked():
            ages = sorted(self._cached_ages(featurizer), reverse=True)
            folder = self._feature_folder(featurizer)
            # A cache: deleting is not undone by a rolled-back transaction (it only costs
            # recomputing the vectors), so the journal does not record it.
            for _, key in ages[keep:]:
                (folder / f"{key}.json").unlink(missing_ok=True)
            return len(ages[keep:])

    # ------------------------------------------------------------------- rewards
    def save_agent_reward(
        self,
        agent_name: str,
        reward: float,
        reward_components: Mapping[str, Any],
        decision_id: int | None = None,
    ) -> int:
        agent_name, reward, components, decision_id = check_reward_row(
            agent_name, reward, reward_components, decision_id
        )
        body = json_object(
            reward=json_fragment(reward, "reward"),
            reward_components=utf8(components, "reward_components"),
            decision_id=optional_id(decision_id, "decision_id"),
            timestamp=now(),
        )
        with self._locked():
            self._check_decision_exists(decision_id)
            return self._append_row("rewards", agent_name, REWARDS_FILE, body)

    def _check_decision_exists(self, decision_id: int | None) -> None:
        """Refuse a reward or interaction naming a decision the store does not have."""
        if decision_id is not None:
            _, row = self._find_row("decisions", DECISIONS_FILE, decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)

    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / REWARDS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [public_reward(row, agent_name, path) for row in rows]

    # -------------------------------------------------------------- interactions
    def save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None = None,
        decision_id: int | None = None,
    ) -> int:
        check_name(agent_name)
        body = json_object(
            request=self._text_fragment_sealed(request, "request"),
            response=self._text_fragment_sealed(response, "response"),
            feedback=self._text_fragment_sealed(feedback, "feedback", optional=True),
            decision_id=optional_id(decision_id, "decision_id"),
            learned_feedback=b"null",
            timestamp=now(),
        )
        with self._locked():
            self._check_decision_exists(decision_id)
            return self._append_row("interactions", agent_name, INTERACTIONS_FILE, body)

    def get_agent_interactions(self, agent_name: str, limit: int = 10) -> list[Row]:
        check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [self._interaction_public(row, agent_name, path) for row in rows]

    def get_agent_interaction(self, interaction_id: int) -> Row:
        check_id(interaction_id, "interaction_id")
        with self._locked():
            path, row = self._find_row("interactions", INTERACTIONS_FILE, interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            return self._interaction_public(row, self._name_of(path.parent), path)

    def find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        check_name(agent_name)
        check_text(request, "request")
        check_text(response, "response")
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = newest_rows(
                path,
                1,
                lambda row: (
                    self._open_text(row.get("request")) == request
                    and self._open_text(row.get("response")) == response
                ),
            )
        return self._interaction_public(rows[0], agent_name, path) if rows else None

    def set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        check_id(interaction_id, "interaction_id")
        changes = json_object(
            feedback=self._text_fragment_sealed(feedback, "feedback"), learned_feedback=b"null"
        )
        with self._locked():
            path, row = self._find_row("interactions", INTERACTIONS_FILE, interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            self._append_patch(path, interaction_id, changes)

    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Row]:
        check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = all_rows(path)
        unlearned = [
            public
            for public in (public_interaction(row, agent_name, path) for row in rows)
            if public["feedback"] is not None and not public["feedback_learned"]
        ]
        return [self._opened_interaction(public) for public in unlearned[:limit]]

    def _interaction_public(self, row: dict[str, Any], agent_name: str, path: Path) -> Row:
        return self._opened_interaction(public_interaction(row, agent_name, path))

    def _opened_interaction(self, public: Row) -> Row:
        for column in ("request", "response", "feedback"):
            public[column] = self._open_text(public[column])
        return public

    def mark_feedback_learned(self, interaction_ids: Sequence[int]) -> None:
        wanted = check_ids(interaction_ids, "interaction_ids")
        with self.transaction():
            found = [self._find_row("interactions", INTERACTIONS_FILE, i) for i in wanted]
            for interaction_id, (_, row) in zip(wanted, found, strict=True):
                if row is None:
                    raise UnknownInteractionError(interaction_id)
            for interaction_id, (path, row) in zip(wanted, found, strict=True):
                learned = text_fragment(row.get("feedback"), "feedback", optional=True)
                self._append_patch(path, interaction_id, json_object(learned_feedback=learned))

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
        check_name(agent_name)
        check_decision_labels(state, selected_action)
        check_mapping(q_values, "q_values")
        body = json_object(
            state=text_fragment(state, "state"),
            selected_action=text_fragment(selected_action, "selected_action"),
            q_values=json_fragment(dict(q_values), "q_values"),
            reward=json_fragment(reward, "reward"),
            propensity=json_fragment(check_propensity(propensity), "propensity"),
            features=json_fragment(check_features(features), "features"),
            timestamp=now(),
        )
        with self._locked():
            version = self._latest_version_in(self._agent_folder(agent_name))
            body = body[:-1] + b',"version":' + json_fragment(version, "version") + b"}"
            return self._append_row("decisions", agent_name, DECISIONS_FILE, body)

    def get_agent_decisions(self, agent_name: str, limit: int = 10) -> list[Row]:
        check_name(agent_name)
        check_limit(limit)
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [public_decision(row, agent_name, path) for row in rows]

    def get_agent_decision(self, decision_id: int) -> Row:
        check_id(decision_id, "decision_id")
        with self._locked():
            path, row = self._find_row("decisions", DECISIONS_FILE, decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)
            return public_decision(row, self._name_of(path.parent), path)

    def iter_agent_decisions(
        self, agent_name: str, after_id: int = 0, batch_size: int = 1000
    ) -> Iterator[Row]:
        """Oldest first: every decision of ``agent_name`` with id > ``after_id``.

        The file store reads the decisions as they are when the call is made (one pass
        over the file, under the lock) and then yields them; ``batch_size`` is checked
        but has no other effect here.
        """
        check_name(agent_name)
        check_integer(after_id, "after_id", minimum=0)
        check_limit(batch_size, "batch_size")
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = all_rows(path, after_id)
        return (public_decision(row, agent_name, path) for row in rows)

    def set_decision_reward(self, decision_id: int, reward: Any) -> None:
        check_id(decision_id, "decision_id")
        changes = json_object(reward=json_fragment(reward, "reward"))
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
        rows = newest_rows(path, 1, lambda row: row.get("id") == row_id, stop_below=row_id)
        return path, (rows[0] if rows else None)

    # ---------------------------------------------------------------- inspection
    def list_agents(self) -> list[str]:
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
        return bool(self._fold(folder / ARRAYS_FILE, folder / ARRAYS_UPDATES_FILE, 1))

    def agent_stats(self, agent_name: str) -> Row:
        check_name(agent_name)
        folder = self._agent_folder(agent_name)
        path = folder / REWARDS_FILE
        with self._locked():
            try:
                rewards, reward_sum = self._totals.get(folder / REWARDS_FILE, rewards=True)
            except PatchedRewards:
                values = [field(row, "reward", path) for row in all_rows(path)]
                rewards, reward_sum = len(values), sum(values)
            decisions = self._totals.get(folder / DECISIONS_FILE)[0]
            interactions = self._totals.get(folder / INTERACTIONS_FILE)[0]
            newest = [(folder / name, newest_rows(folder / name, 1)) for name in HISTORY_FILES]
            # tables have no rows to carry a timestamp: their files' times stand in
            timestamps = [
                (folder / name).stat().st_mtime for name in TABLE_FILES if (folder / name).exists()
            ]
        timestamps += [field(rows[0], "timestamp", where) for where, rows in newest if rows]
        return {
            "decisions": decisions,
            "interactions": interactions,
            "rewards": rewards,
            "mean_reward": reward_sum / rewards if rewards else None,
            "last_update": max(timestamps) if timestamps else None,
        }

    def count_agent_decisions(self, agent_name: str) -> int:
        check_name(agent_name)
        with self._locked():
            return self._totals.get(self._agent_folder(agent_name) / DECISIONS_FILE)[0]

    # ----------------------------------------------------------------- lifecycle
    def _check_key(self) -> None:
        """Refuse a key other than the store's; record the key of a store getting one."""
        meta = read_document(self._base / META_FILE) or {}
        recorded = meta.get("encryption_key_id")
        if self._cipher is not None and recorded is None:
            self._write_meta(encryption_key_id=self._cipher.key_id)
            recorded = self._cipher.key_id
        self._store_key_id = recorded if isinstance(recorded, str) else None
        if self._cipher is not None and recorded != self._cipher.key_id:
            raise EncryptionKeyError(
                f"{self.location} was written with key {recorded}, not with the key given "
                f"({self._cipher.key_id}); give the store's key",
                self.location,
            )

    def _open_meta(self) -> int:
        path = self._base / META_FILE
        meta = read_document(path)
        if meta is None:
            self._refuse_foreign_folder()  # again, under the lock
            if self.read_only:
                raise NotAStoreError(
                    f"{self._base} holds no rlmemory store and is read-only, so none can be "
                    "created in it",
                    self.location,
                )
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
        if self.read_only:
            return found  # read as it is; the next writer upgrades the header
        if found < SCHEMA_VERSION:
            # 1 -> 2 adds versions files, 2 -> 3 learner steps files, 3 -> 4 settings.json,
            # all created when first needed: only the header changes.
            atomic_write(path, encode_document({**meta, "schema_version": SCHEMA_VERSION}))
            found = SCHEMA_VERSION
        return found

    @property
    def schema_version(self) -> int:
        return self._schema_version

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True

    def __repr__(self) -> str:
        return f"FileBackedMemoryDatabase({self.location!r})"


def _repair_any(path: Path) -> None:
    if path.parent.name == INDEX_FOLDER:
        _repair_index(path)
    else:
        repair_torn_tail(path)


def _learner_step(record: dict[str, Any], path: Path) -> LearnerStep:
    """One ``steps.jsonl`` record as a :class:`LearnerStep`; damage is a CorruptStoreError."""
    step_id, key, data = record.get("id"), record.get("key"), record.get("data")
    if isinstance(step_id, bool) or not isinstance(step_id, int) or not isinstance(key, str):
        raise CorruptStoreError(f"{path} holds a damaged learner step", str(path))
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except ValueError:
        raw = None
    if raw is None:
        raise CorruptStoreError(f"{path} holds a damaged learner step {step_id}", str(path))
    return LearnerStep(step_id, key, decode_values(raw, str(path)))


def _repair_index(path: Path) -> int:
    """Cut a torn last line off an id index; return its size."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    whole = size - size % INDEX_LINE_WIDTH
    if whole != size:
        with open(path, "r+b", opener=open_nofollow) as handle:
            handle.truncate(whole)
            handle.flush()
            os.fsync(handle.fileno())
    return whole


# TRANSITION (issue 11): the class still overrides the public methods; it implements the
# hooks of MemoryStore next, and this line goes.
FileBackedMemoryDatabase.__abstractmethods__ = frozenset()
