"""Folded tables kept in memory and brought up to date by reading only the log's new lines.

A keyed table of the file store is a base document plus an append-only updates log
(see ``docs/store-files.md``). Folding both costs as much as the table is large; a
learner that re-reads one state per update cannot pay that each time. A
:class:`FoldedTables` remembers, per base document, the folded table and how far into
the log it has read. On the next read (under the folder lock) it checks that the base
document and the log are the same files it read (inode, size, modification time) and
applies only the lines appended since; anything else — a compaction, a reset, another
process's rolled-back transaction — means folding again from scratch.

Callers must clear it when they roll a transaction back, since a rollback truncates a
log that may then grow back past the remembered offset with other lines.

>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> base, log = folder / "q_table.json", folder / "q_updates.jsonl"
>>> _ = log.write_bytes(b'{"set": {"s": {"a": 0.5}}}\\n')
>>> tables = FoldedTables()
>>> tables.current(base, log, 2)
{'s': {'a': 0.5}}
>>> with open(log, "ab") as handle:
...     _ = handle.write(b'{"set": {"s": {"b": 1.0}}}\\n')
>>> tables.current(base, log, 2)
{'s': {'a': 0.5, 'b': 1.0}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmemory.store.files.check import check_q_table_document
from rlmemory.store.files.encode import apply_change
from rlmemory.store.files.io import decode_line, read_document

FileIdentity = tuple[int, int, int, int]  # device, inode, size, mtime in ns


@dataclass
class _Folded:
    base: FileIdentity | None
    log: tuple[int, int] | None  # device and inode of the log read so far
    log_offset: int  # end of the last complete line applied
    table: dict[str, Any]


def _identity(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


class FoldedTables:
    """Folded keyed tables, one per base document, kept current incrementally."""

    def __init__(self) -> None:
        self._folded: dict[Path, _Folded] = {}

    def clear(self) -> None:
        """Forget everything (after a rollback rewrote logs)."""
        self._folded.clear()

    def current(self, base: Path, updates: Path, depth: int) -> dict[str, Any]:
        """The table of ``base`` with every change of ``updates`` applied (do not mutate).

        Call with the folder lock held.
        """
        base_stat = _identity(base)
        base_id = (
            None
            if base_stat is None
            else (base_stat.st_dev, base_stat.st_ino, base_stat.st_size, base_stat.st_mtime_ns)
        )
        log_stat = _identity(updates)
        log_id = None if log_stat is None else (log_stat.st_dev, log_stat.st_ino)
        entry = self._folded.get(base)
        if (
            entry is None
            or entry.base != base_id
            or (entry.log is not None and entry.log != log_id)
            or (log_stat is not None and log_stat.st_size < entry.log_offset)
        ):
            table = read_document(base) or {}
            if depth == 2:
                check_q_table_document(table, base)
            entry = _Folded(base_id, None, 0, table)
            self._folded[base] = entry
        if log_stat is not None and log_stat.st_size > entry.log_offset:
            try:
                entry.log_offset = self._apply_new_lines(entry, updates, depth)
            except BaseException:
                del self._folded[base]  # partly applied: fold again next time
                raise
            entry.log = log_id
        return entry.table

    @staticmethod
    def _apply_new_lines(entry: _Folded, updates: Path, depth: int) -> int:
        """Apply the complete lines after ``entry.log_offset``; return the new offset.

        A final line without newline (an append in progress or torn by a crash) is left
        for later: it is either completed or cut off before the next append.
        """
        with open(updates, "rb") as handle:
            handle.seek(entry.log_offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        offset = entry.log_offset
        for line in data[:complete].split(b"\n")[:-1]:
            change = decode_line(line, updates, offset, False)
            if change is not None:
                apply_change(entry.table, change, depth, updates, offset)
            offset += len(line) + 1
        return offset
