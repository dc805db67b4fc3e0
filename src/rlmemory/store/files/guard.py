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
  controls entirely: it must be a plain path of at most three components outside the
  journal folder (no ``..``, no absolute path, no NUL, no dot-file), pass through no
  symbolic link, and resolve inside the store.

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

#: One component of a path the store journals: no leading dot (so no ``..``, no lock file,
#: no temporary file), no separator, no NUL, at most 100 characters.
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
#: The deepest path the store writes: ``<folder>/<safe name>/<file>``.
_MAX_DEPTH = 3


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

    A path of at most three plain components (``meta.json``, ``index/rewards.jsonl``,
    ``agents/<safe name>/<file>``: letters, digits, ``_ . -``, not starting with a dot, so
    no ``..``, absolute path or NUL), outside ``journal/``; no component may be a symbolic
    link and the resolved path must lie inside ``root``.
    """
    if not isinstance(relative, str) or not _has_store_shape(relative, journal.parent.name):
        raise CorruptStoreError(
            f"{journal} names the path {relative!r}, which is not a file of the store",
            str(journal),
        )
    path = root
    parts = relative.split("/")
    for depth, part in enumerate(parts, start=1):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break  # nothing below a missing component exists to be followed
        if stat.S_ISLNK(mode):
            raise _link_error(path)
        if depth < len(parts) and not stat.S_ISDIR(mode):
            raise CorruptStoreError(
                f"{journal} names {relative!r}, but {path} is not a folder", str(journal)
            )
    resolved = os.path.realpath(root / relative)
    if os.path.commonpath([os.path.realpath(root), resolved]) != os.path.realpath(root):
        raise CorruptStoreError(
            f"{journal} names {relative!r}, which resolves outside the store", str(journal)
        )
    return root / relative


def _has_store_shape(relative: str, journal_folder: str) -> bool:
    parts = relative.split("/")
    return (
        len(parts) <= _MAX_DEPTH
        and parts[0] != journal_folder  # the journal never undoes itself or its backups
        and all(_COMPONENT.fullmatch(part) for part in parts)
    )
