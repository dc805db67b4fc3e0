"""Undo journal that makes a file-store transaction all-or-nothing, even across a crash.

Before a transaction first touches a file, one line saying how to restore it is
appended to ``journal/journal.jsonl`` and fsynced: the size it had (appended files), or
a hard link to its old version (replaced files), or that it did not exist. Then the
file is changed in place, so reads inside the transaction see its own writes.

* Commit: fsync every touched file and folder, then empty the journal. Emptying the
  journal is the commit point.
* Rollback (an exception in the block, or a journal left behind by a crashed process and
  found by the next one to take the store's lock): undo the lines newest first, fsync,
  empty the journal. Every undo step is idempotent, so a crash during a rollback is
  repaired by rolling back again.

One file may be appended to and replaced (or deleted) in one transaction, in either
order: undoing newest first restores the backup taken at the replace, then truncates
to the size recorded before the first append.

One file may be appended to and replaced (or deleted) in one transaction, in either
order: undoing newest first restores the backup taken at the replace, then truncates
to the size recorded before the first append.

>>> import tempfile, pathlib
>>> from rlmemory.store._fileio import append_bytes
>>> base = pathlib.Path(tempfile.mkdtemp())
>>> history = base / "history.jsonl"
>>> append_bytes(history, b'{"id":1}\\n')
>>> journal = UndoJournal(base)
>>> journal.before_appends([history], written=history)
>>> append_bytes(history, b'{"id":2}\\n', durable=False)
>>> roll_back(base)
True
>>> history.read_bytes()
b'{"id":1}\\n'
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from rlmemory.errors import CorruptStoreError
from rlmemory.store._fileio import (
    append_bytes,
    encode_line,
    fsync_all,
    fsync_dir,
    fsync_file,
    iter_records_forward,
)

JOURNAL_FOLDER = "journal"
JOURNAL_FILE = "journal.jsonl"


class UndoJournal:
    """The undo records of one transaction on the file store rooted at ``base_dir``."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.folder = base_dir / JOURNAL_FOLDER
        self.path = self.folder / JOURNAL_FILE
        self._sizes: dict[Path, int | None] = {}
        self._written: set[Path] = set()
        self._replaced: set[Path] = set()
        self._folders_to_sync: set[Path] = set()
        self._backups = 0

    def covers(self, path: Path) -> bool:
        """Whether the size of ``path`` before the transaction is already journaled."""
        return path in self._sizes

    def before_appends(self, paths: Sequence[Path], written: Path) -> None:
        """Record the current sizes of ``paths`` (one write, one fsync), before the
        transaction first appends to any of them; ``written`` is about to be appended to.

        Journaling files the transaction may append to later costs nothing on rollback
        (truncating a file to its own size) and saves an fsync per file.
        """
        entries = []
        for path in dict.fromkeys(paths):
            if path in self._sizes:
                continue
            try:
                status = path.stat()
                size, mtime = status.st_size, status.st_mtime_ns
            except FileNotFoundError:
                size = mtime = None
            entries.append({"append": self._relative(path), "size": size, "mtime_ns": mtime})
            self._sizes[path] = size
        self._record(entries)
        self._written.add(written)

    def before_replace(self, path: Path) -> None:
        """Keep ``path``'s current version, before the transaction first replaces it."""
        if path in self._replaced:
            return
        backup = None
        if path.exists():
            self._backups += 1
            backup = self.folder / f"{self._backups}.bak"
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()  # left by a transaction that committed, then crashed
        self._record([{"replace": self._relative(path), "backup": backup and backup.name}])
        if backup is not None:
            try:
                os.link(path, backup)
            except OSError:  # filesystems without hard links
                shutil.copy2(path, backup)
                fsync_file(backup)
            fsync_dir(self.folder)
        self._replaced.add(path)
        self._folders_to_sync.add(path.parent)

    def before_mkdir(self, path: Path) -> None:
        """Record that the transaction creates the folder ``path``."""
        self._record([{"mkdir": self._relative(path)}])
        self._folders_to_sync.add(path.parent)

    def commit(self) -> None:
        """Make every change durable, then empty the journal (the commit point)."""
        if not pending(self.base_dir):
            return
        created = {path.parent for path in self._written if self._sizes.get(path) is None}
        fsync_all(sorted(self._written), sorted(self._folders_to_sync | created))
        _empty(self.path)
        remove_backups(self.base_dir)

    def _record(self, entries: list[dict[str, object]]) -> None:
        if not entries:
            return
        if not self.folder.exists():
            self.folder.mkdir()
            fsync_dir(self.base_dir)
        append_bytes(self.path, b"".join(encode_line(entry) for entry in entries))

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.base_dir).as_posix()


def pending(base_dir: Path) -> bool:
    """Whether the store at ``base_dir`` has a transaction that is not committed."""
    try:
        return (base_dir / JOURNAL_FOLDER / JOURNAL_FILE).stat().st_size > 0
    except FileNotFoundError:
        return False


def _empty(journal: Path) -> None:
    with open(journal, "r+b") as handle:
        handle.truncate(0)
        os.fsync(handle.fileno())


def _inside(base_dir: Path, relative: object, journal: Path) -> Path:
    """Resolve a path named in the journal, refusing anything outside ``base_dir``."""
    if not isinstance(relative, str) or not relative:
        raise CorruptStoreError(f"{journal} names an invalid path {relative!r}", str(journal))
    path = base_dir / relative
    if ".." in Path(relative).parts or Path(relative).is_absolute():
        raise CorruptStoreError(f"{journal} names a path outside the store", str(journal))
    return path


def roll_back(base_dir: Path) -> bool:
    """Undo a leftover transaction of the store at ``base_dir``; return whether there was one."""
    folder = base_dir / JOURNAL_FOLDER
    journal = folder / JOURNAL_FILE
    if not pending(base_dir):
        return False
    entries = [entry for _, entry in iter_records_forward(journal)]
    touched_folders: set[Path] = set()
    for entry in reversed(entries):
        if "append" in entry:
            path = _inside(base_dir, entry["append"], journal)
            _undo_append(path, entry.get("size"), entry.get("mtime_ns"))
        elif "replace" in entry:
            path = _inside(base_dir, entry["replace"], journal)
            backup = entry.get("backup")
            _undo_replace(path, folder / str(backup) if backup else None)
        elif "mkdir" in entry:
            path = _inside(base_dir, entry["mkdir"], journal)
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: never delete what we did not create
        else:
            raise CorruptStoreError(f"{journal} holds an unknown entry {entry!r}", str(journal))
        touched_folders.add(path.parent)
    fsync_all([], [touched for touched in touched_folders if touched.exists()])
    _empty(journal)
    remove_backups(base_dir)
    return True


def _undo_append(path: Path, size: object, mtime_ns: object) -> None:
    if size is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    if not isinstance(size, int):
        raise CorruptStoreError(f"journal records an invalid size for {path}", str(path))
    try:
        current = path.stat().st_size
    except FileNotFoundError:
        return
    if current > size:
        with open(path, "r+b") as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())
        if isinstance(mtime_ns, int):  # the file's time is its "last updated"
            os.utime(path, ns=(mtime_ns, mtime_ns))


def _undo_replace(path: Path, backup: Path | None) -> None:
    if backup is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif backup.exists():
        os.replace(backup, path)
    # else: crashed before the backup was made, so ``path`` was never replaced


def remove_backups(base_dir: Path) -> None:
    """Delete backup copies left in the journal folder once no journal needs them."""
    folder = base_dir / JOURNAL_FOLDER
    if pending(base_dir) or not folder.exists():
        return
    for leftover in folder.glob("*.bak"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
