"""Row counts and reward sums of the file store's histories, rescanning only appended bytes.

``agent_stats`` and ``count_agent_decisions`` (which the coordinator calls for every
decision) need how many rows a history holds. Counting is done with byte searches over
blocks of lines, and the result is remembered per file with the offset it reached, so
the next call scans only what was appended since. A file that was truncated, replaced
or rewritten before that offset (a rollback, a restore, a hand edit near the end) is
scanned again from the start.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rewards.jsonl"
>>> _ = path.write_bytes(b'{"id":1,"reward":0.5,"x":1}\\n{"id":2,"reward":1.5,"x":2}\\n')
>>> totals = HistoryTotals()
>>> totals.get(path, rewards=True)
(2, 2.0)
>>> with open(path, "ab") as history:
...     _ = history.write(b'{"id":3,"reward":1.0,"x":3}\\n')
>>> totals.get(path, rewards=True)
(3, 3.0)
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rlmemory.store.files.check import check_record
from rlmemory.store.files.io import (
    NonFiniteNumber,
    line_number,
    loads_strict,
    non_finite_error,
)

_SCAN_BLOCK = 1 << 22
_TAIL_CHECK = 64
_ROW_START = b'{"id":'
_REWARD_VALUE = re.compile(rb'^\{"id":\d+,"reward":(-?\d[\d.eE+-]*),', re.MULTILINE)


class PatchedRewards(Exception):
    """Reward rows have patch lines, so their sum needs every row folded with its patches."""


@dataclass(frozen=True)
class _Scanned:
    inode: int
    end: int  # just past the last complete line counted
    tail: bytes  # the bytes just before ``end``: a changed file no longer has them there
    count: int
    total: float


class HistoryTotals:
    """Remembers, per history file, how far it was counted; see the module docstring."""

    def __init__(self) -> None:
        self._scanned: dict[tuple[Path, bool], _Scanned] = {}

    def clear(self) -> None:
        """Forget everything (after a rollback truncated files)."""
        self._scanned.clear()

    def get(self, path: Path, *, rewards: bool = False) -> tuple[int, float]:
        """How many rows (not patches) ``path`` holds, and the sum of their ``reward``.

        Lines are not validated here: reading them reports damage. Raises
        :class:`PatchedRewards` if ``rewards`` and a patch line is found.
        """
        key = (path, rewards)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            self._scanned.pop(key, None)
            return 0, 0.0
        with handle:
            status = os.fstat(handle.fileno())
            known = self._scanned.get(key)
            start, count, total = 0, 0, 0.0
            if (
                known is not None
                and known.inode == status.st_ino
                and known.end <= status.st_size
                and _bytes_before(handle, known.end) == known.tail
            ):
                start, count, total = known.end, known.count, known.total
            handle.seek(start)
            count, total, end, torn = _scan(handle, path, start, rewards, count, total)
            tail = _bytes_before(handle, end)
        self._scanned[key] = _Scanned(status.st_ino, end, tail, count, total)
        # a final line without newline counts if complete, but is never remembered
        return _line_totals([torn], path, end, rewards, count, total)


def _bytes_before(handle: BinaryIO, end: int) -> bytes:
    start = max(0, end - _TAIL_CHECK)
    handle.seek(start)
    return handle.read(end - start)


def _scan(
    handle: BinaryIO, path: Path, start: int, rewards: bool, count: int, total: float
) -> tuple[int, float, int, bytes]:
    """Count the complete lines from ``start``; return the totals, the offset reached and
    the bytes after the last newline."""
    end, pending = start, b""
    while block := handle.read(_SCAN_BLOCK):
        block = pending + block
        cut = block.rfind(b"\n") + 1
        block, pending = block[:cut], block[cut:]
        block_start, end = end, end + len(block)
        rows = block.count(b"\n" + _ROW_START) + block.startswith(_ROW_START)
        values = _REWARD_VALUE.findall(block) if rewards else []
        fast_total = sum(map(float, values), total)
        if (
            rows == block.count(b"\n")
            and len(values) == (rows if rewards else 0)
            and math.isfinite(fast_total)
        ):
            count, total = count + rows, fast_total
        else:  # lines the store did not write itself: parse them one by one
            lines = block.split(b"\n")
            count, total = _line_totals(lines, path, block_start, rewards, count, total)
    return count, total, end, pending


def _line_totals(
    lines: list[bytes], path: Path, offset: int, rewards: bool, count: int, total: float
) -> tuple[int, float]:
    """Count and sum ``lines`` (starting at byte ``offset`` of ``path``) one by one.

    Malformed lines are skipped (reading them reports the damage); a line that parses
    but holds a wrong type (a reward that is text, ``NaN``) is reported here.
    """
    for line in lines:
        line_start, offset = offset, offset + len(line) + 1
        try:
            record = loads_strict(line) if line.strip() else None
        except NonFiniteNumber as error:
            raise non_finite_error(path, line_number(path, line_start), error) from None
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        check_record(path, line_start, record)
        if "patch" in record:
            if rewards:
                raise PatchedRewards
            continue
        count += 1
        if rewards:
            total += record.get("reward", 0.0)
    return count, total
