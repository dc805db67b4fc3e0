"""Keyed tables of the file store: a base document plus an append-only log of changes.

The Q-table (``q_table.json`` + ``q_table.updates.jsonl``, two levels: state -> action ->
value) and the numeric arrays (``arrays.json`` + ``arrays.updates.jsonl``, one level)
are kept this way, so that an update costs its own size, not the table's. Readers fold
the log into the table (:func:`fold`); once the log is larger than the table (and than
:data:`COMPACT_MIN_BYTES`) the next write folds it into the base document and deletes
it (:meth:`FileTables._compact`), keeping the newest modification time of the two, which
is when the table was last updated.

The file store keeps no time per entry: a Q-table state changed by a log line carries
that line's ``at`` (when it has one), a state folded into the base document the base
document's time (:func:`state_times`).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "log.jsonl").write_text('{"set":{"s":{"a":0.5}},"at":100.0}\\n')
>>> fold(folder / "table.json", folder / "log.jsonl", 2)
{'s': {'a': 0.5}}
>>> state_times(folder / "log.jsonl", base_time=50.0)
{'s': 100.0}
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files.check import check_q_table_document
from rlmemory.store.files.encode import apply_change
from rlmemory.store.files.folded import FoldedTables
from rlmemory.store.files.io import (
    atomic_write,
    encode_document,
    encode_line,
    fsync_dir,
    iter_records_forward,
    read_document,
)
from rlmemory.store.files.layout import Q_TABLE_FILE, Q_UPDATES_FILE
from rlmemory.store.files.records import FileRecords

#: An updates log is folded into its table once it is larger than the table and this.
COMPACT_MIN_BYTES = 256 * 1024


def fold(base: Path, updates: Path, depth: int, end: int | None = None) -> dict[str, Any] | None:
    """The table in ``base`` with every change of its ``updates`` log applied (the log's
    lines before byte ``end``, when given); None when neither file exists."""
    document = read_document(base)
    found = document is not None
    table: dict[str, Any] = document or {}
    if depth == 2:
        check_q_table_document(table, base)
    for offset, change in iter_records_forward(updates, end):
        found = True
        apply_change(table, change, depth, updates, offset)
    return table if found else None


def state_times(updates: Path, *, base_time: float, end: int | None = None) -> dict[str, float]:
    """When each state set by the Q-table's ``updates`` log was last set: the ``at`` of
    the newest line setting it, or ``base_time`` for a line without one. States the log
    does not set carry the base document's time, which is not in the result."""
    touched: dict[str, float] = {}
    for _, change in iter_records_forward(updates, end):
        stamp = change.get("at")
        changed = change.get("set", {})
        for state in changed if isinstance(changed, dict) else ():
            touched[state] = float(stamp) if isinstance(stamp, int | float) else base_time
    return touched


def modified(path: Path) -> float | None:
    """The modification time of ``path``, or None when it does not exist."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def newest_time(*paths: Path) -> float | None:
    """The newest modification time of the ``paths`` that exist (None if none does)."""
    return newest_of(map(modified, paths))


def newest_of(stamps: Iterable[object]) -> float | None:
    """The newest of the times in ``stamps`` that are finite numbers (None if none is).

    >>> newest_of([None, 5, 7.5, "8", float("nan")])
    7.5
    """
    times = [
        float(stamp)
        for stamp in stamps
        if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp)
    ]
    return max(times) if times else None


def set_modified(path: Path, stamp: float) -> None:
    """Give ``path`` the modification time ``stamp``, to the nanosecond (so that its
    ``st_mtime`` reads back as ``stamp``). A time the filesystem cannot hold leaves the
    file's time as it is."""
    whole = math.floor(stamp)
    nanoseconds = whole * 1_000_000_000 + round((stamp - whole) * 1e9)
    with contextlib.suppress(OSError, OverflowError, ValueError):
        os.utime(path, ns=(nanoseconds, nanoseconds))


class FileTables(FileRecords):
    """Folding, logging and compacting keyed tables (see the module docstring)."""

    def _forget_cached(self) -> None:
        super()._forget_cached()
        self._folded = FoldedTables()
        # base document -> (its updates log, depth, forced): folded after the commit
        self._pending_compactions: dict[Path, tuple[Path, int, bool]] = {}

    def _after_commit(self) -> None:
        super()._after_commit()
        pending, self._pending_compactions = self._pending_compactions, {}
        for base, (updates, depth, force) in pending.items():
            self._compact(base, updates, depth, force=force)

    def _current_table(self, base: Path, updates: Path, depth: int) -> dict[str, Any]:
        """The folded table, from memory plus the log lines appended since (do not mutate)."""
        return self._folded.current(base, updates, depth)

    def _log_change(
        self,
        folder: Path,
        base_name: str,
        updates_name: str,
        depth: int,
        change: bytes,
        *,
        compact: bool = False,
        modified_at: float | None = None,
    ) -> None:
        """Append ``change`` to an updates log, which then has the modification time
        ``modified_at`` when given; fold the log into its table if it grew large (or if
        ``compact``). Inside a transaction the folding waits for the commit."""
        self._append(folder / updates_name, change)
        if modified_at is not None:
            set_modified(folder / updates_name, modified_at)
        base = folder / base_name
        if self._journal is not None:
            forced = base in self._pending_compactions and self._pending_compactions[base][2]
            self._pending_compactions[base] = (folder / updates_name, depth, compact or forced)
        else:
            self._compact(base, folder / updates_name, depth, force=compact)

    def _log_q_change(self, folder: Path, change: dict[str, Any], *, compact: bool = False) -> None:
        """Log a change of the agent's Q-table (the caller holds the folder lock), dated.

        Its line's ``at`` is the time now, and becomes the log's modification time: so
        the log's time is that of its newest change, to the nanosecond (a file's own time
        lags the clock by up to a timer tick), and never older than a state it dates.
        """
        stamp = time.time()
        line = encode_line({**change, "at": stamp})
        self._log_change(
            folder, Q_TABLE_FILE, Q_UPDATES_FILE, 2, line, compact=compact, modified_at=stamp
        )

    def _compact(self, base: Path, updates: Path, depth: int, *, force: bool) -> None:
        try:
            log_status = updates.stat()
        except FileNotFoundError:
            return
        base_size = base.stat().st_size if base.exists() else 0
        if not force and log_status.st_size < max(COMPACT_MIN_BYTES, base_size):
            return
        try:
            table = fold(base, updates, depth)
        except CorruptStoreError:
            return  # the change is stored in the log; reading the table reports the damage
        if table is None:
            return
        updated = newest_time(base, updates)
        # Folding again after a crash between these steps gives the same table. Folding
        # only saves reading time: if it fails (disk full), the log still holds the change.
        with contextlib.suppress(OSError):
            atomic_write(base, encode_document(table))
            if updated is not None:
                set_modified(base, updated)
            updates.unlink()
            fsync_dir(updates.parent)
