"""Versions of an agent in the file store: numbered snapshots of its learned state.

Two JSON Lines files per agent: ``versions.jsonl`` (number, note, time, size: small
lines, read to list the versions and to stamp decisions with the newest) and
``versions.data.jsonl`` (the payloads, base64, sealed when the store encrypts
payloads). Lines are kept in increasing version order; deleting versions rewrites both
files without them. :mod:`rlmemory.ops.versions` builds the payloads.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files.check import check_record
from rlmemory.store.files.io import encode_line, iter_records_backward, iter_records_forward
from rlmemory.store.files.layout import VERSIONS_DATA_FILE, VERSIONS_FILE
from rlmemory.store.files.settings import FileSettings
from rlmemory.store.rows import Row

#: The keys of a ``versions.jsonl`` line (and of a row of ``list_versions``).
VERSION_INFO = ("version", "note", "created", "size")


def checked_records(path: Path, end: int | None = None) -> Iterator[dict[str, Any]]:
    """The lines of a versions file, oldest first, each checked for wrong types."""
    for offset, record in iter_records_forward(path, end):
        check_record(path, offset, record)
        yield record


def latest_version_in(folder: Path) -> int | None:
    """The newest version number of the agent folder ``folder`` (None when it has none)."""
    path = folder / VERSIONS_FILE
    for offset, record in iter_records_backward(path):  # the last line is the newest
        check_record(path, offset, record)
        number = record.get("version")
        return number if isinstance(number, int) else None
    return None


def version_lines(number: int, note: str, created: float, payload: bytes) -> tuple[bytes, bytes]:
    """The ``versions.jsonl`` and ``versions.data.jsonl`` lines of one version."""
    info = {"version": number, "note": note, "created": created, "size": len(payload)}
    data = {"version": number, "payload": base64.b64encode(payload).decode("ascii")}
    return encode_line(info), encode_line(data)


class FileVersions(FileSettings):
    """The versions hooks of :class:`~rlmemory.store.base.MemoryStore` (module docstring)."""

    def _save_version(self, agent_name: str, payload: bytes, note: str) -> int:
        sealed = self._seal_payload(payload)
        with self.transaction():
            folder = self._ensure_agent(agent_name)
            number = (latest_version_in(folder) or 0) + 1
            info, data = version_lines(number, note, time.time(), sealed)
            self._append(folder / VERSIONS_DATA_FILE, data)
            self._append(folder / VERSIONS_FILE, info)
        return number

    def _list_versions(self, agent_name: str) -> list[Row]:
        with self._locked():
            path = self._agent_folder(agent_name) / VERSIONS_FILE
            rows = [
                {key: record.get(key) for key in VERSION_INFO} for record in checked_records(path)
            ]
        return sorted(rows, key=lambda row: row["version"])

    def _get_version(self, agent_name: str, version: int) -> Row:
        with self._locked():
            folder = self._agent_folder(agent_name)
            info = next(
                (row for row in self._list_versions(agent_name) if row["version"] == version),
                None,
            )
            data = None
            if info is not None:
                for record in checked_records(folder / VERSIONS_DATA_FILE):
                    if record.get("version") == version:
                        data = record.get("payload")
        if info is None:
            raise LookupError(f"agent {agent_name!r} has no version {version}")
        if not isinstance(data, str):
            path = folder / VERSIONS_DATA_FILE
            raise CorruptStoreError(f"{path} lacks the payload of version {version}", str(path))
        return {**info, "payload": self._open_payload(base64.b64decode(data))}

    def _delete_versions(self, agent_name: str, versions: list[int]) -> int:
        doomed = set(versions)
        with self.transaction():
            folder = self._agent_folder(agent_name)
            gone = doomed & {row["version"] for row in self._list_versions(agent_name)}
            if gone:
                for name in (VERSIONS_FILE, VERSIONS_DATA_FILE):
                    self._rewrite_lines(
                        folder / name, lambda record: record.get("version") not in gone
                    )
        return len(gone)
