"""Keeps the file store inside its folder: no symbolic links, no special files, checked paths.

A store folder may come from someone else (copied, unpacked, shared), so its contents are
untrusted. The store builds every path itself from fixed names and safe agent folder
names, and this module makes sure those paths cannot lead elsewhere:

* :class:`TreeGuard` checks a folder of the store and its entries: the folder is a real
  folder (not a symbolic link) and no entry is a symbolic link or a special file (FIFO,
  device, socket), which could redirect a read or a write outside the store or block it.
  A folder is scanned again only when its identity or modification time changed, so a
  check costs one ``lstat`` when nothing was added or renamed in it.
* :func:`journal_path` resolves a path named in the undo journal, which a crafted folder
  controls entirely: it must have one of the shapes the store writes, contain no ``..``,
  no NUL and no symbolic link, and resolve inside the store.

Anything else is a :class:`~rlmemory.errors.CorruptStoreError` naming the offending path;
nothing is followed, read or written before the check.

>>> import os, tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "agents").mkdir()
>>> os.symlink("/etc", root / "agents" / "link")
>>> try:
...     TreeGuard(root).folder(root / "agents")
... except CorruptStoreError as error:
...     print(error.location == str(root / "agents" / "link"), "symbolic link" in str(error))
True True
>>> try:
...     journal_path(root, "agents/x/../../home/important.txt", root / "journal.jsonl")
... except CorruptStoreError as error:
...     print("not a file of the store" in str(error))
True
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from rlmemory.errors import CorruptStoreError
from rlmemory.store._fileio import SAFE_NAME

#: Longest file name the store writes inside a folder (``.name.<pid>.<thread>.tmp`` aside).
_MAX_NAME = 100
_FILE_NAME = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{_MAX_NAME - 1}}}$")
#: The id indexes and the counter of learner step ids.
_INDEX_FILE = re.compile(r"^((rewards|interactions|decisions)\.jsonl|learner_steps\.json)$")
_TOP_LEVEL_FILES = frozenset({"meta.json"})


def _link_error(path: Path | str) -> CorruptStoreError:
    return CorruptStoreError(
        f"{path} is a symbolic link; the file store never follows links "
        "(a crafted or damaged folder?)",
        str(path),
    )


def _special_error(path: Path | str) -> CorruptStoreError:
    return CorruptStoreError(
        f"{path} is not a regular file or folder; the file store refuses it", str(path)
    )


def check_entry(entry: os.DirEntry[str]) -> None:
    """Refuse a folder entry that is a symbolic link or a special file."""
    if entry.is_symlink():
        raise _link_error(entry.path)
    if not entry.is_file(follow_symlinks=False) and not entry.is_dir(follow_symlinks=False):
        raise _special_error(entry.path)


def check_not_link(path: Path, *, folder: bool = False) -> bool:
    """Refuse ``path`` if it is a symbolic link or of the wrong kind; return whether it exists."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        raise _link_error(path)
    if folder and not stat.S_ISDIR(mode):
        raise CorruptStoreError(f"{path} should be a folder but is not", str(path))
    if not folder and not stat.S_ISREG(mode):
        raise _special_error(path)
    return True


class TreeGuard:
    """Checks folders of the store rooted at ``root``; remembers what it has checked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checked: dict[Path, tuple[int, int, int, int]] = {}

    def clear(self) -> None:
        """Forget what was checked: the next check of each folder scans it again."""
        self._checked.clear()

    def folder(self, path: Path) -> bool:
        """Check the folder ``path`` and every entry in it; return whether it exists.

        Raises :class:`~rlmemory.errors.CorruptStoreError` naming ``path`` or the entry
        if either is a symbolic link, or an entry is a special file.
        """
        try:
            # the store's own folder may be a link the user chose; nothing below it may
            status = os.stat(path) if path == self.root else os.lstat(path)
        except FileNotFoundError:
            self._checked.pop(path, None)
            return False
        if stat.S_ISLNK(status.st_mode):
            raise _link_error(path)
        if not stat.S_ISDIR(status.st_mode):
            raise CorruptStoreError(f"{path} should be a folder but is not", str(path))
        # Adding, removing or renaming an entry changes the folder's modification time.
        identity = (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_ctime_ns)
        if self._checked.get(path) == identity:
            return True
        with os.scandir(path) as entries:
            for entry in entries:
                check_entry(entry)
        self._checked[path] = identity
        return True


def journal_path(root: Path, relative: object, journal: Path) -> Path:
    """The path a journal line names, refused unless it is a file or folder the store writes.

    Accepted shapes: ``meta.json``, ``index/<kind>.jsonl``, ``index/learner_steps.json``,
    ``agents/<safe name>`` and
    ``agents/<safe name>/<file name>``; no component may be a symbolic link and the
    resolved path must lie inside ``root``.
    """
    if not isinstance(relative, str) or not _has_store_shape(relative):
        raise CorruptStoreError(
            f"{journal} names the path {relative!r}, which is not a file of the store",
            str(journal),
        )
    path = root
    for part in relative.split("/"):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break  # nothing below a missing component exists to be followed
        if stat.S_ISLNK(mode):
            raise _link_error(path)
    resolved = os.path.realpath(root / relative)
    if os.path.commonpath([os.path.realpath(root), resolved]) != os.path.realpath(root):
        raise CorruptStoreError(
            f"{journal} names {relative!r}, which resolves outside the store", str(journal)
        )
    return root / relative


def _has_store_shape(relative: str) -> bool:
    parts = relative.split("/")
    if "\x00" in relative or len(relative) > 300:
        return False
    if len(parts) == 1:
        return parts[0] in _TOP_LEVEL_FILES
    if parts[0] == "index":
        return len(parts) == 2 and bool(_INDEX_FILE.match(parts[1]))
    if parts[0] != "agents" or not SAFE_NAME.match(parts[1]):
        return False
    return len(parts) == 2 or (len(parts) == 3 and bool(_FILE_NAME.match(parts[2])))
