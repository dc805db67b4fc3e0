"""Rewrite SQL storage so that values a key rotation replaced leave no copy on disk.

Updating a row does not erase its old bytes. SQLite leaves a deleted cell in the page's
free space (unless built or set with ``secure_delete``) and the old page in the WAL until
a checkpoint; PostgreSQL keeps the old row version as a dead tuple in the heap until
VACUUM reuses the space, which may be never. After re-encrypting, the store therefore
rewrites the affected storage:

* SQLite: the rewrite runs with ``PRAGMA secure_delete = ON`` (freed cells are zeroed
  on builds where it is off by default), then ``VACUUM`` rebuilds the file from the live
  rows and ``PRAGMA wal_checkpoint(TRUNCATE)`` copies the WAL back and empties it.
* PostgreSQL: ``VACUUM FULL`` of each rewritten table writes it, its TOAST table and its
  indexes into new files; the old files are emptied when the command commits. It takes
  an ACCESS EXCLUSIVE lock on the table while it runs (writers and readers wait).

What no store can reach — PostgreSQL's WAL segments and archives, replicas, earlier
backups, blocks the file system already freed — is listed in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rlmemory.errors import StoreBusyError


@contextlib.contextmanager
def secure_delete(cursor: Any, dialect_name: str) -> Iterator[None]:
    """Zero freed SQLite cells while the block runs (no-op on PostgreSQL)."""
    if dialect_name != "sqlite":
        yield
        return
    previous = cursor.execute("PRAGMA secure_delete").fetchone()[0]
    cursor.execute("PRAGMA secure_delete = 1")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA secure_delete = {int(previous)}")


def rewrite_storage(
    cursor: Any, dialect_name: str, tables: Sequence[str], *, location: str, timeout: float
) -> None:
    """Rebuild ``tables`` (PostgreSQL) or the whole file (SQLite) from the live rows only.

    Runs outside any transaction on an autocommit connection. On SQLite a checkpoint
    that other connections keep from finishing is retried for ``timeout`` seconds, then
    :class:`~rlmemory.errors.StoreBusyError` says the old pages are still in the WAL.
    """
    if dialect_name != "sqlite":
        for table in tables:
            cursor.execute(f"VACUUM FULL {table}")
        return
    cursor.execute("VACUUM")
    deadline = time.monotonic() + timeout
    while True:
        busy, _log_frames, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        if time.monotonic() > deadline:
            raise StoreBusyError(
                f"{location}: re-encrypted, but another connection kept the checkpoint from "
                f"finishing for {timeout:g} s, so old pages remain in the WAL; run "
                "`rlmemory keys rotate` again when the store is idle",
                location,
            )
        time.sleep(0.05)
