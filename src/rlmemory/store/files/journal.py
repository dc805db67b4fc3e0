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

>>> import tempfile, pathlib
>>> from rlmemory.store.files.io import append_bytes
>>> base = pathlib.Path(tempfile.mkdtemp())
>>> (base / "index").mkdir()
>>> history = base / "index" / "rewards.jsonl"
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
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files.guard import check_not_link, journal_path
from rlmemory.store.files.io import (
    append_bytes,
    encode_line,
    fsync_all,
    fsync_dir,
    fsync_file,
    iter_records_forward,
    open_nofollow,
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
        entries: list[dict[str, object]] = []
        for path in dict.fromkeys(paths):
            if path in self._sizes:
                continue
            size: int | None
            mtime: int | None
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
                # a link's backup is the link itself, never its target (where supported)
                os.link(path, backup, follow_symlinks=os.link not in os.supports_follow_symlinks)
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
    folder = base_dir / JOURNAL_FOLDER
    journal = folder / JOURNAL_FILE
    if not check_not_link(folder, folder=True) or not check_not_link(journal):
        return False
    return journal.stat().st_size > 0


def _empty(journal: Path) -> None:
    with open(journal, "r+b", opener=open_nofollow) as handle:
        handle.truncate(0)
        os.fsync(handle.fileno())


_BACKUP_NAME = re.compile(r"[1-9][0-9]{0,9}\.bak")


def _undo_step(base_dir: Path, entry: dict[str, Any], journal: Path) -> tuple[str, Path, Any]:
    """Check one journal line completely; return what to undo, where, and with what.

    The journal of a copied or crafted folder is untrusted: every path must be a file of
    the store (see :func:`~rlmemory.store.files.guard.journal_path`), a backup a plain
    ``<n>.bak`` of the journal folder, sizes and times integers.
    """
    if "append" in entry:
        size, mtime_ns = entry.get("size"), entry.get("mtime_ns")
        for value, name in ((size, "size"), (mtime_ns, "mtime_ns")):
            if value is not None and (type(value) is not int or value < 0):
                raise CorruptStoreError(
                    f"{journal} records an invalid {name} {value!r}", str(journal)
                )
        return "append", journal_path(base_dir, entry["append"], journal), (size, mtime_ns)
    if "replace" in entry:
        path = journal_path(base_dir, entry["replace"], journal)
        backup_name = entry.get("backup")
        if backup_name is None:
            return "replace", path, None
        if not isinstance(backup_name, str) or not _BACKUP_NAME.fullmatch(backup_name):
            raise CorruptStoreError(
                f"{journal} names the backup {backup_name!r}, which is not a backup of the "
                "journal folder",
                str(journal),
            )
        backup = journal.parent / backup_name
        check_not_link(backup)
        return "replace", path, backup
    if "mkdir" in entry:
        path = journal_path(base_dir, entry["mkdir"], journal)
        if base_dir not in (path.parent, path.parent.parent):  # folders are 1 or 2 deep
            raise CorruptStoreError(
                f"{journal} names {entry['mkdir']!r} as a created folder", str(journal)
            )
        return "mkdir", path, None
    raise CorruptStoreError(f"{journal} holds an unknown entry {entry!r}", str(journal))


def roll_back(base_dir: Path) -> bool:
    """Undo a leftover transaction of the store at ``base_dir``; return whether there was one.

    Every line is checked before anything is undone: a journal naming a path outside the
    store, a symbolic link, or a backup that is not one is a
    :class:`~rlmemory.errors.CorruptStoreError` and nothing is touched.
    """
    folder = base_dir / JOURNAL_FOLDER
    journal = folder / JOURNAL_FILE
    if not pending(base_dir):
        return False
    steps = [_undo_step(base_dir, entry, journal) for _, entry in iter_records_forward(journal)]
    touched_folders: set[Path] = set()
    for action, path, detail in reversed(steps):
        if action == "append":
            _undo_append(path, *detail)
        elif action == "replace":
            _undo_replace(path, detail)
        else:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: never delete what we did not create
        touched_folders.add(path.parent)
    fsync_all([], [touched for touched in touched_folders if touched.exists()])
    _empty(journal)
    remove_backups(base_dir)
    return True


def _undo_append(path: Path, size: int | None, mtime_ns: int | None) -> None:
    if size is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    try:
        current = path.stat().st_size
    except FileNotFoundError:
        return
    if current > size:
        with open(path, "r+b", opener=open_nofollow) as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())
        if mtime_ns is not None:  # the file's time is its "last updated"
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
