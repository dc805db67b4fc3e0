"""Where each record of the file store lives: agent folders, row ids, history rows.

:class:`FileRecords` adds to the folder (:class:`~rlmemory.store.files.folder.FileFolder`):

* **agent folders** — ``agents/<safe name>/`` with ``agent.json`` holding the exact name;
* **ids** — the id index ``index/<table>.jsonl`` (one fixed-width line per id naming the
  agent folder of its row), checked against the histories before it hands out ids, and
  the store-wide counter of learner-step ids;
* **history rows** — appended with a new id, corrected by patch lines, found by id,
  rewritten without some rows, counted (:mod:`rlmemory.store.files.totals`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError, UnknownDecisionError
from rlmemory.store.files.encode import text_fragment
from rlmemory.store.files.folder import FileFolder
from rlmemory.store.files.io import (
    SAFE_NAME,
    encode_document,
    encode_line,
    open_nofollow,
    read_document,
    repair_fixed_width,
    safe_dirname,
)
from rlmemory.store.files.layout import (
    AGENT_FILE,
    AGENTS_FOLDER,
    HISTORY_FILE,
    INDEX_FOLDER,
    INDEX_LINE_WIDTH,
    STEPS_COUNTER_FILE,
    index_path,
)
from rlmemory.store.files.rows import all_rows, newest_rows
from rlmemory.store.files.totals import HistoryTotals
from rlmemory.store.rows import Row


def index_line(row_id: int, folder_name: str) -> bytes:
    """The id-index line of ``row_id``, whose row is in the agent folder ``folder_name``.

    >>> len(index_line(7, "router-4f1c"))
    128
    """
    line = json.dumps({"id": row_id, "agent": folder_name}, separators=(",", ":"))
    return line.ljust(INDEX_LINE_WIDTH - 1).encode() + b"\n"


class FileRecords(FileFolder):
    """Agent folders, ids and history rows of the store (see the module docstring)."""

    def _forget_cached(self) -> None:
        super()._forget_cached()
        # agent folder name -> exact agent name
        self._names: dict[str, str] = {}
        # per id index: (device, inode) and the size it had after our last allocation
        self._index_floor: dict[str, tuple[tuple[int, int] | None, int]] = {}
        # per history: how far its rows were counted
        self._totals = HistoryTotals()

    # ------------------------------------------------------------ agent folders
    def _agent_folder(self, agent_name: str) -> Path:
        """The agent's folder, checked for links and special files (it may not exist)."""
        folder = self._base / AGENTS_FOLDER / safe_dirname(agent_name)
        self._guard.folder(folder)
        return folder

    def _ensure_agent(self, agent_name: str) -> Path:
        """The agent's folder, created with its ``agent.json`` if it is new."""
        self._writable()
        folder = self._agent_folder(agent_name)
        marker = folder / AGENT_FILE
        if marker.exists():
            if self._name_of(folder) != agent_name:
                raise CorruptStoreError(f"{marker} names another agent", str(marker))
            return folder
        if not folder.exists():
            self._make_folder(folder)
        self._replace(marker, encode_document({"agent_name": agent_name}))
        self._names[folder.name] = agent_name
        return folder

    def _name_of(self, folder: Path) -> str:
        """The exact agent name of an agent folder (from its ``agent.json``)."""
        name = self._names.get(folder.name)
        if name is None:
            document = read_document(folder / AGENT_FILE)
            found = document.get("agent_name") if document else None
            if not isinstance(found, str):
                path = folder / AGENT_FILE
                raise CorruptStoreError(f"{path} does not record an agent name", str(path))
            self._names[folder.name] = name = found
        return name

    def _agent_folders(self) -> list[Path]:
        """Every agent folder (with an ``agent.json``), sorted, each checked by the guard."""
        return [folder for folder in self._scan_agent_folders() if (folder / AGENT_FILE).exists()]

    # ------------------------------------------------------------------------ ids
    def _allocate_id(self, table: str, folder: Path) -> int:
        """Append ``folder`` to the table's id index; the line number is the new id."""
        new_id = self._next_id(table)
        self._append(index_path(self._base, table), index_line(new_id, folder.name))
        return new_id

    def _next_id(self, table: str) -> int:
        """The id after the index's last line, once checked against the histories.

        An index emptied, deleted or cut short by hand would hand out ids that rows
        already have. So the first time a store object allocates an id of ``table``,
        and again whenever the index shrank or was replaced since, the highest id in the
        agents' histories (the last row of each: ids grow in file order) is compared with
        the index; a shorter index is a :class:`CorruptStoreError` naming both files.
        """
        index = index_path(self._base, table)
        size = repair_fixed_width(index, INDEX_LINE_WIDTH)
        try:
            status = index.stat()
            identity: tuple[int, int] | None = (status.st_dev, status.st_ino)
        except FileNotFoundError:
            identity = None
        known = self._index_floor.get(table)
        if known is None or known[0] != identity or size < known[1]:
            self._check_index_covers_histories(table, index, size // INDEX_LINE_WIDTH)
        self._index_floor[table] = (identity, size + INDEX_LINE_WIDTH)
        return size // INDEX_LINE_WIDTH + 1

    def _check_index_covers_histories(self, table: str, index: Path, listed: int) -> None:
        for folder in self._agent_folders():
            history = folder / HISTORY_FILE[table]
            try:
                newest = newest_rows(history, 1)
            except CorruptStoreError:
                continue  # reported when that agent's history is read; others write on
            if newest and newest[0]["id"] > listed:
                raise CorruptStoreError(
                    f"{index} lists {listed} ids but {history} holds id {newest[0]['id']}: "
                    "the id index was emptied or cut short (by hand?) and new rows would "
                    "reuse ids. Put the index back (from a copy or a backup); the store "
                    "writes no new rows until then",
                    str(index),
                )

    def _folder_of(self, table: str, row_id: int) -> Path | None:
        """The agent folder of row ``row_id`` of ``table``, from the id index."""
        if row_id < 1:
            return None
        index = index_path(self._base, table)
        try:
            with open(index, "rb", opener=open_nofollow) as handle:
                offset = (row_id - 1) * INDEX_LINE_WIDTH
                if offset >= os.fstat(handle.fileno()).st_size:
                    return None  # beyond the index (seek would overflow for ids near 2**63)
                handle.seek(offset)
                line = handle.read(INDEX_LINE_WIDTH)
        except FileNotFoundError:
            return None
        if len(line) < INDEX_LINE_WIDTH or not line.strip(b"\0"):
            return None  # beyond the index, or in a hole: an id a restore skipped
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if (
            not isinstance(entry, dict)
            or entry.get("id") != row_id
            or not isinstance(entry.get("agent"), str)
            or not SAFE_NAME.match(entry["agent"])
        ):
            raise CorruptStoreError(f"{index} has a damaged line for id {row_id}", str(index))
        folder: Path = self._base / AGENTS_FOLDER / entry["agent"]
        self._guard.folder(folder)
        return folder

    def _allocate_step_ids(self, count: int) -> int:
        """Reserve ``count`` store-wide learner-step ids; return the first. A crash after
        this leaves a gap in the ids, never a reused one."""
        return self._reserve_step_ids_through(self._last_step_id() + count) - count + 1

    def _last_step_id(self) -> int:
        path = self._base / INDEX_FOLDER / STEPS_COUNTER_FILE
        document = read_document(path) or {}
        last = document.get("last_id", 0)
        if isinstance(last, bool) or not isinstance(last, int) or last < 0:
            raise CorruptStoreError(f"{path} records no valid last step id", str(path))
        return last

    def _reserve_step_ids_through(self, last_id: int) -> int:
        """Make sure no learner-step id up to ``last_id`` is handed out again."""
        if last_id > self._last_step_id():
            path = self._base / INDEX_FOLDER / STEPS_COUNTER_FILE
            self._replace(path, encode_document({"last_id": last_id}))
        return last_id

    # ------------------------------------------------------------- history rows
    def _append_row(self, table: str, agent_name: str, body: bytes) -> int:
        """Append a row (``body``: a JSON object without id) to the agent's ``table``
        history under a new id; return the id."""
        with self._locked():
            folder = self._ensure_agent(agent_name)
            row_id = self._allocate_id(table, folder)
            self._append(folder / HISTORY_FILE[table], b'{"id":%d,' % row_id + body[1:] + b"\n")
            return row_id

    def _append_patch(self, path: Path, row_id: int, changes: bytes) -> None:
        """Change fields of row ``row_id`` (``changes``: a JSON object) by a patch line."""
        self._append(path, b'{"patch":%d,' % row_id + changes[1:] + b"\n")

    def _find_row(self, table: str, row_id: int) -> tuple[Path, Row | None]:
        """Locate row ``row_id`` through the id index; read it with its patches applied."""
        folder = self._folder_of(table, row_id)
        if folder is None:
            return self._base, None
        path = folder / HISTORY_FILE[table]
        rows = newest_rows(path, 1, lambda row: row.get("id") == row_id, stop_below=row_id)
        return path, (rows[0] if rows else None)

    def _sealed_text(self, text: str | None) -> bytes:
        """A (checked) request, response or feedback text as a JSON fragment, encrypted
        when the store encrypts (:class:`~rlmemory.store._sealing.SealedValues`)."""
        return text_fragment(None if text is None else self._seal_text(text))

    def _check_decision_exists(self, decision_id: int | None) -> None:
        """Refuse a reward or interaction naming a decision the store does not have."""
        if decision_id is not None and self._find_row("decisions", decision_id)[1] is None:
            raise UnknownDecisionError(decision_id)

    def _rewrite_history(self, path: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite a history file with the rows ``keep`` accepts (patches folded in);
        return how many rows went."""
        rows = all_rows(path)
        kept = [row for row in rows if keep(row)]
        if len(kept) != len(rows):
            self._replace(path, b"".join(encode_line(row) for row in kept))
        return len(rows) - len(kept)
