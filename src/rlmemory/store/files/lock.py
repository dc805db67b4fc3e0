"""The file store's folder lock: exclusive through ``filelock``, shared on read-only media.

Every operation of the file store, reads included, holds the lock of ``base_dir/.lock``.
On a writable folder that is :class:`filelock.FileLock` (``flock`` on POSIX). On
read-only media (a read-only mount, a CD, a folder the user may only read) the lock file
cannot be opened for writing; then the store is read-only: it takes a shared ``flock``
on the lock file opened for reading, which still keeps out a writer working through
another, writable path to the same folder, and without any lock if the lock file is
missing and cannot be created (nobody can write through this path either). Writes are
then refused by the store with :class:`~rlmemory.errors.ReadOnlyStoreError`.

>>> import tempfile, pathlib
>>> lock = FolderLock(pathlib.Path(tempfile.mkdtemp()) / ".lock", 1.0, "demo")
>>> lock.acquire(); lock.read_only; lock.release()
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import filelock

from rlmemory.errors import StoreBusyError, StoreError
from rlmemory.store.files.guard import check_not_link

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: read-only folders are read without a lock
    fcntl = None  # type: ignore[assignment]

_READ_ONLY_ERRORS = (errno.EROFS, errno.EACCES, errno.EPERM)
_POLL_SECONDS = 0.05


class FolderLock:
    """The lock of one store folder; ``read_only`` says why writes are impossible, if so."""

    def __init__(self, path: Path, timeout: float, location: str) -> None:
        self.path = path
        self.timeout = timeout
        self.location = location
        self.read_only: str | None = None
        self._exclusive = filelock.FileLock(str(path), timeout=timeout, thread_local=False)
        self._shared: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; StoreBusyError after that."""
        check_not_link(self.path)  # a crafted folder's .lock may point anywhere
        if self.read_only is None:
            try:
                self._exclusive.acquire()
                return
            except filelock.Timeout:
                raise self._busy() from None
            except OSError as error:
                if error.errno not in _READ_ONLY_ERRORS:
                    raise StoreError(
                        f"{self.location}: cannot take the lock {self.path}: {error.strerror}",
                        self.location,
                    ) from None
                self.read_only = error.strerror or "read-only"
        self._acquire_shared()

    def _acquire_shared(self) -> None:
        try:
            descriptor = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return
        if fcntl is None:  # pragma: no cover - Windows
            os.close(descriptor)
            return
        deadline = None if self.timeout < 0 else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(descriptor)
                    raise self._busy() from None
                time.sleep(_POLL_SECONDS)
        self._shared = descriptor

    def release(self) -> None:
        """Give the lock back."""
        if self._shared is not None:
            descriptor, self._shared = self._shared, None
            os.close(descriptor)  # closing drops the flock
        elif self.read_only is None:
            self._exclusive.release()

    def _busy(self) -> StoreBusyError:
        return StoreBusyError(
            f"{self.location} stayed locked by another process for longer than {self.timeout} s",
            self.location,
        )
