"""A consistent view of the file store, taken under a short lock and read without it.

:meth:`~rlmemory.store.files.FileBackedMemoryDatabase.snapshot` must not keep writers
waiting while a backup reads (and compresses, and sends) the whole store. So it holds
the folder lock only to *freeze* the files a backup reads (:func:`freeze`): each is
hard-linked into a private folder ``snapshots/<id>/``, and for each the length of its
complete lines and its modification time are noted. Then the lock is released and the
rows are read from the links, up to the noted lengths.

That view stays exactly the store at the moment of the lock, however long the reading
takes and whatever writers do meanwhile, because the store never changes bytes of a file
in place below the end of its complete lines: it appends after them; it replaces a file
whole by renaming a new file over it (the link keeps the old one) and deletes by
unlinking (the link keeps it too); a rollback truncates only what its own transaction
appended, and a torn line a crash left is beyond the noted length.

Where links cannot be made the files are copied, still under the lock: on filesystems
without hard links, on a read-only store (into a temporary folder elsewhere), and for a
snapshot taken inside a transaction (whose appends a rollback may cut off again).

A snapshot's folder goes when the snapshot ends. Each running snapshot holds the lock of
``snapshots/<id>.lock``; the folder of one whose process was killed (its lock free) is
removed by the next snapshot of the store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from rlmemory.store.files.guard import check_entry
from rlmemory.store.files.io import complete_end
from rlmemory.store.files.layout import APPENDED_BACKUP_FILES, BACKED_UP_FILES

_LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class FrozenFile:
    """One frozen file: read ``path`` (up to byte ``end``, when not None)."""

    path: Path
    end: int | None
    modified: float


@dataclass(frozen=True)
class FrozenAgent:
    """The frozen files of one agent: ``<stem>.<file name>`` for those that existed."""

    name: str
    stem: Path
    files: dict[str, FrozenFile] = field(default_factory=dict)

    def path(self, file_name: str) -> Path:
        """The frozen ``file_name`` (a path that does not exist when the file did not)."""
        return self.stem.with_name(f"{self.stem.name}.{file_name}")

    def end(self, file_name: str) -> int | None:
        """How far to read the frozen ``file_name`` (None: all of it)."""
        frozen = self.files.get(file_name)
        return None if frozen is None else frozen.end

    def modified(self, *file_names: str) -> float | None:
        """The newest modification time of those ``file_names`` that existed."""
        times = [self.files[name].modified for name in file_names if name in self.files]
        return max(times) if times else None


@dataclass(frozen=True)
class FrozenStore:
    """Every frozen agent (sorted by folder, as the store lists them) and the settings,
    in the snapshot's own ``folder``."""

    folder: Path
    agents: list[FrozenAgent]
    settings: FrozenFile | None

    def check_open(self) -> None:
        """Refuse to read a snapshot that has ended (its folder is gone)."""
        if not self.folder.is_dir():
            raise ValueError("the snapshot has ended: read its tables inside its with block")


def _freeze_file(source: Path, target: Path, *, appended: bool, link: bool) -> FrozenFile | None:
    """Link (or copy) ``source`` to ``target``; None when ``source`` does not exist."""
    try:
        status = os.stat(source, follow_symlinks=False)
    except FileNotFoundError:
        return None
    end = complete_end(source) if appended else None
    copied = False
    if link:
        try:
            # the link of a link is the link itself, never its target (where supported)
            os.link(source, target, follow_symlinks=os.link not in os.supports_follow_symlinks)
        except OSError:  # no hard links here (or across devices): copy
            copied = True
    if not link or copied:
        shutil.copyfile(source, target, follow_symlinks=False)
    return FrozenFile(target, end, status.st_mtime)


def freeze(
    agents: Sequence[tuple[str, Path]], settings: Path, into: Path, *, link: bool
) -> FrozenStore:
    """Freeze the files a backup reads: ``agents`` as (name, folder), and ``settings``.

    Call it with the folder lock held; ``into`` is an empty folder of the snapshot's own
    (on the store's filesystem when ``link``; files are copied when it is false).
    """
    frozen_agents = []
    for name, folder in agents:
        agent = FrozenAgent(name, into / folder.name)
        for file_name in BACKED_UP_FILES:
            frozen = _freeze_file(
                folder / file_name,
                agent.path(file_name),
                appended=file_name in APPENDED_BACKUP_FILES,
                link=link,
            )
            if frozen is not None:
                agent.files[file_name] = frozen
        frozen_agents.append(agent)
    frozen_settings = _freeze_file(settings, into / settings.name, appended=False, link=link)
    return FrozenStore(into, frozen_agents, frozen_settings)


def remove_stale_snapshots(folder: Path) -> None:
    """Remove the snapshot folders in ``folder`` whose snapshot is no longer running.

    Call it with the store's folder lock held (snapshots are created under it too), so
    that no snapshot is between creating its lock and taking it.
    """
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        check_entry(entry)
    names = {entry.name for entry in entries}
    for name in sorted(names):
        if name.endswith(_LOCK_SUFFIX):
            lock = filelock.FileLock(str(folder / name), timeout=0, thread_local=False)
            try:
                lock.acquire()
            except filelock.Timeout:
                continue  # a running snapshot
            try:
                shutil.rmtree(folder / name.removesuffix(_LOCK_SUFFIX), ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
            finally:
                lock.release()
        elif name + _LOCK_SUFFIX not in names:
            shutil.rmtree(folder / name, ignore_errors=True)


@contextlib.contextmanager
def snapshot_folder(folder: Path | None) -> Iterator[Path]:
    """A new empty folder for one snapshot's files, removed at the end.

    In ``folder`` (created if missing), held by its lock file while in use, or, when
    ``folder`` is None (a read-only store), a temporary folder elsewhere.
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="rlmemory-snapshot-") as temporary:
            yield Path(temporary)
        return
    folder.mkdir(exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=folder))
    lock = filelock.FileLock(str(own) + _LOCK_SUFFIX, timeout=0, thread_local=False)
    lock.acquire()
    try:
        yield own
    finally:
        shutil.rmtree(own, ignore_errors=True)
        lock.release()
        with contextlib.suppress(OSError):  # already gone, or still open elsewhere (Windows)
            os.unlink(str(own) + _LOCK_SUFFIX)
