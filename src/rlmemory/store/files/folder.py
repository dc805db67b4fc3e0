"""The file store's connection layer: the folder opened, locked, written under a journal.

:class:`FileFolder` is the lowest class of
:class:`~rlmemory.store.files.FileBackedMemoryDatabase`. It opens a folder (refusing
one that is not a store, creating or upgrading the header, checking the encryption
key), holds the thread lock and the folder's file lock around every operation, runs
transactions on the undo journal (:mod:`rlmemory.store.files.journal`), and writes files
so that a transaction can undo them: :meth:`FileFolder._append`,
:meth:`FileFolder._replace`, :meth:`FileFolder._delete_file`,
:meth:`FileFolder._make_folder`. It knows where files live
(:mod:`rlmemory.store.files.layout`), not what they mean.

Layers above keep caches of what they read; they make them afresh in
:meth:`FileFolder._forget_cached` (called when the folder is opened and after a rollback,
which may have shrunk files) and finish deferred work in :meth:`FileFolder._after_commit`,
two methods this class calls and leaves empty.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rlmemory.errors import (
    EncryptionKeyError,
    NotAStoreError,
    ReadOnlyStoreError,
    StoreError,
    TransactionAbortedError,
)
from rlmemory.store._sealing import SealedValues
from rlmemory.store.crypto import Cipher, resolve_key
from rlmemory.store.files.guard import TreeGuard, check_entry, check_not_link
from rlmemory.store.files.io import (
    SAFE_NAME,
    append_bytes,
    atomic_write,
    encode_document,
    encode_line,
    fsync_dir,
    grow_with_hole,
    iter_records_forward,
    read_document,
    repair_fixed_width,
    repair_torn_tail,
)
from rlmemory.store.files.journal import JOURNAL_FOLDER, UndoJournal, remove_backups, roll_back
from rlmemory.store.files.journal import pending as journal_pending
from rlmemory.store.files.layout import (
    AGENTS_FOLDER,
    APPEND_FILES,
    FORMAT_NAME,
    INDEX_FOLDER,
    INDEX_LINE_WIDTH,
    LOCK_FILE,
    META_FILE,
    index_path,
)
from rlmemory.store.files.lock import FolderLock
from rlmemory.store.files.schema import (
    SCHEMA_VERSION,
    header_version,
    new_header,
    upgraded_header,
)
from rlmemory.store.rows import HISTORY_TABLES


def repair_before_append(path: Path) -> None:
    """Cut what a crashed append left at the end of ``path`` (an id index: a torn line)."""
    if path.parent.name == INDEX_FOLDER:
        repair_fixed_width(path, INDEX_LINE_WIDTH)
    else:
        repair_torn_tail(path)


class FileFolder(SealedValues):
    """The store's folder ``base_dir`` (created if missing), opened and locked.

    ``lock_timeout`` is how many seconds an operation waits for another process's lock
    before raising :class:`~rlmemory.errors.StoreBusyError`. ``encryption_key``,
    ``key_file`` and ``encrypt_payloads`` turn on encryption (see
    :mod:`rlmemory.store.crypto`). ``create=False`` opens only an existing store: a
    folder without one is :class:`~rlmemory.errors.NotAStoreError` and nothing is created.
    """

    def __init__(
        self,
        base_dir: str | Path = "agent_memory",
        *,
        lock_timeout: float = 60.0,
        encryption_key: Any = None,
        key_file: str | os.PathLike[str] | None = None,
        encrypt_payloads: bool = False,
        create: bool = True,
    ) -> None:
        self._base = Path(base_dir).expanduser().absolute()
        self.location = str(self._base)
        self._forget_cached()
        raw_key = resolve_key(encryption_key, key_file=key_file)
        self._cipher = None if raw_key is None else Cipher(raw_key, location=self.location)
        self._encrypt_payloads = bool(encrypt_payloads)
        self._store_key_id = None
        self._closed = False
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._journal: UndoJournal | None = None
        # The error (I/O, store) that failed a call inside the open transaction, if any.
        self._transaction_lost: BaseException | None = None
        self._guard = TreeGuard(self._base)
        if self._base.exists() and not self._base.is_dir():
            raise StoreError(f"{self._base} exists and is not a folder", self.location)
        self._refuse_foreign_folder()
        if not create and not (self._base / META_FILE).is_file():
            raise NotAStoreError(f"no store at {self._base}", self.location)
        try:
            self._base.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"{self._base} does not exist and cannot be created: {error.strerror}",
                self.location,
            ) from None
        self._file_lock = FolderLock(self._base / LOCK_FILE, lock_timeout, self.location)
        with self._locked():
            self._schema_version = self._open_header()
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

    @property
    def schema_version(self) -> int:
        """The schema version recorded in ``meta.json``."""
        return self._schema_version

    def close(self) -> None:
        """Refuse every later operation. Idempotent; the folder lock is held per call."""
        with self._thread_lock:
            self._closed = True

    # ------------------------------------------------------------------ opening
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

    def _open_header(self) -> int:
        """Read (or create, or upgrade) ``meta.json``; return the schema version."""
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
            atomic_write(path, new_header())
            return SCHEMA_VERSION
        found = header_version(meta, path, self.location)
        if self.read_only:
            return found  # read as it is; the next writer upgrades the header
        upgraded = upgraded_header(meta)
        if upgraded is not None:
            atomic_write(path, upgraded)
            found = SCHEMA_VERSION
        return found

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

    def _write_meta(self, **changes: Any) -> None:
        """Change entries of ``meta.json`` (journaled inside a transaction)."""
        self._writable()
        path = self._base / META_FILE
        meta = read_document(path) or {}
        meta.update(changes)
        if self._journal is not None:
            self._replace(path, encode_document(meta))
        else:
            atomic_write(path, encode_document(meta))

    def _check_agent_folders(self) -> None:
        """Check every agent folder for links and special files; delete the temporary files
        of processes killed during an atomic write.

        Atomic writes happen only under the file lock, which the caller holds, so any
        temporary file found now belongs to a process that died.
        """
        leftovers = list(self._base.glob(".*.tmp"))
        for folder in self._scan_agent_folders():
            leftovers += folder.glob(".*.tmp")
        if self.read_only:
            return
        remove_backups(self._base)
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def _scan_agent_folders(self) -> list[Path]:
        """Every folder of ``agents/`` with a safe name, sorted, each checked by the guard
        (a link or special file in it, or among them, is a CorruptStoreError)."""
        root = self._base / AGENTS_FOLDER
        if not self._guard.folder(root):  # a read-only store that never had an agent
            return []
        folders = []
        with os.scandir(root) as entries:
            for entry in entries:
                check_entry(entry)
                if entry.is_dir(follow_symlinks=False) and SAFE_NAME.match(entry.name):
                    folder = Path(entry.path)
                    self._guard.folder(folder)
                    folders.append(folder)
        return sorted(folders)

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
            self._forget_cached()

    def _forget_cached(self) -> None:
        """Called on opening and after a rollback: layers above start their caches afresh."""

    def _after_commit(self) -> None:
        """Called after a transaction committed: layers above finish deferred work."""

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
                self._forget_cached()
                roll_back(self._base)
                raise
            self._journal = None
            self._after_commit()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group writes: all land when the outermost block exits normally, none if it raises.

        Changes are applied at once (reads in the block see them) after their undo
        information is journaled; the folder stays locked until the block ends.
        """
        return self._transaction()

    # ----------------------------------------------------------- journaled writes
    def _writable(self) -> None:
        """Refuse a write, naming the folder, when the store is read-only."""
        if self._file_lock.read_only is not None:
            raise ReadOnlyStoreError(
                f"{self.location} is read-only ({self._file_lock.read_only}): reading works, "
                "writing is refused",
                self.location,
            )

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

    def _append(self, path: Path, data: bytes, *, after_hole_to: int | None = None) -> None:
        """Append complete lines to ``path`` (after cutting a torn tail a crash left).

        ``after_hole_to`` first grows the file to that many bytes with a hole (NUL bytes
        that take no disk; an id index skipping ids); a rollback cuts it like an append.
        """
        with self._writing(path):
            repair_before_append(path)
            if self._journal is not None:
                targets = [] if self._journal.covers(path) else self._append_targets(path)
                for target in targets[1:]:
                    if not self._journal.covers(target):
                        repair_before_append(target)
                self._journal.before_appends(targets, written=path)
            if after_hole_to is not None:
                grow_with_hole(path, after_hole_to)
            append_bytes(path, data, durable=self._journal is None)

    def _append_targets(self, path: Path) -> list[Path]:
        """``path`` and the files a transaction appending to it will likely append to
        next (its agent's logs and histories, the id indexes), journaled in one go."""
        targets = [path]
        if path.parent.parent == self._base / AGENTS_FOLDER:
            targets += [path.parent / name for name in APPEND_FILES]
        targets += [index_path(self._base, table) for table in HISTORY_TABLES]
        return targets

    def _replace(self, path: Path, data: bytes) -> None:
        """Replace ``path`` whole (atomically; journaled inside a transaction)."""
        with self._writing(path):
            if self._journal is not None:
                self._journal.before_replace(path)
            atomic_write(path, data, durable=self._journal is None)

    def _delete_file(self, path: Path) -> None:
        """Delete ``path`` so that a rollback restores it (journaled like a replace)."""
        journal = self._journal
        assert journal is not None, "deletes run inside a transaction"
        with self._writing(path):
            journal.before_replace(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _make_folder(self, folder: Path) -> None:
        """Create ``folder`` (one level) so that a rollback removes it again."""
        with self._writing(folder):
            if self._journal is not None:
                self._journal.before_mkdir(folder)
            folder.mkdir()
            if self._journal is None:
                fsync_dir(folder.parent)

    def _rewrite_lines(self, path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
        """Replace a JSON Lines file by the records ``keep`` accepts."""
        kept = [record for _, record in iter_records_forward(path) if keep(record)]
        self._replace(path, b"".join(encode_line(record) for record in kept))
