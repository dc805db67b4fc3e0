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
  an ACCESS EXCLUSIVE lock on the table while it runs (writers and readers wait). Old
  row versions that a transaction still running might see are copied too, so it is
  repeated until none is kept (``busy_timeout``, then ``StoreBusyError``).

What no store can reach — PostgreSQL's WAL segments and archives, replicas, earlier
backups, blocks the file system already freed — is listed in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import re
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
    deadline = time.monotonic() + timeout
    if dialect_name != "sqlite":
        while _vacuum_full(cursor, tables):
            if time.monotonic() > deadline:
                raise StoreBusyError(
                    f"{location}: re-encrypted, but another transaction kept the old row "
                    f"versions alive for {timeout:g} s (an open transaction, a running "
                    "pg_dump, a replication slot); end it and run `rlmemory keys rotate` again",
                    location,
                )
            time.sleep(0.2)
        return
    cursor.execute("VACUUM")
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


_KEPT = re.compile(r"(\d+) dead row versions cannot be removed yet")


def _vacuum_full(cursor: Any, tables: Sequence[str]) -> int:
    """``VACUUM FULL`` each table; return how many dead row versions it had to keep.

    VACUUM FULL copies row versions that a transaction still running anywhere might
    see (its snapshot predates the rotation), and the old values would survive in the
    new files. VERBOSE reports how many; the message is read in English (``lc_messages``
    is set to C where the role may; otherwise the count is read if the server speaks
    English, and taken as 0 if not).
    """
    details: list[str] = []
    connection = cursor.connection

    def keep(diagnostic: Any) -> None:
        details.append(f"{diagnostic.message_primary} {diagnostic.message_detail or ''}")

    with contextlib.suppress(Exception):
        cursor.execute("SET lc_messages TO 'C'")
    connection.add_notice_handler(keep)
    try:
        for table in tables:
            cursor.execute(f"VACUUM (FULL, VERBOSE) {table}")
    finally:
        connection.remove_notice_handler(keep)
    return sum(int(found) for detail in details for found in _KEPT.findall(detail))
