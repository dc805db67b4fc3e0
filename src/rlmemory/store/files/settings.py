"""The settings of the file store: every namespaced JSON document in ``settings.json``.

Settings are few and small (a service's loops, its API key hashes), so they live in one
document ``{namespace: {key: value}}`` at the top of the store folder, read under the
folder lock and replaced atomically (journaled inside a transaction) on every change.
The document keeps no time per setting: its modification time stands for all of them
(the ``updated`` of their backup rows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store._settings import decode_setting, encode_setting
from rlmemory.store.files.io import encode_document, read_document
from rlmemory.store.files.layout import SETTINGS_FILE
from rlmemory.store.files.tables import FileTables, modified, newest_of, set_modified
from rlmemory.store.rows import Row


def read_settings(path: Path) -> dict[str, Any]:
    """The settings document in ``path`` (``{}`` when missing), checked for its shape."""
    document = read_document(path) or {}
    for namespace, entries in document.items():
        if not isinstance(entries, dict) or not all(
            isinstance(value, dict) for value in entries.values()
        ):
            raise CorruptStoreError(
                f"{path}: namespace {namespace!r} does not map keys to JSON objects",
                str(path),
            )
    return document


def settings_rows(document: Mapping[str, Any], updated: float) -> Iterator[Row]:
    """The ``rlmemory_settings`` backup rows of a settings document, sorted."""
    for namespace in sorted(document):
        for key in sorted(document[namespace]):
            yield {
                "namespace": namespace,
                "key": key,
                "value": encode_setting(document[namespace][key]),
                "updated": updated,
            }


class FileSettings(FileTables):
    """The settings hooks of :class:`~rlmemory.store.base.MemoryStore` on ``settings.json``."""

    @contextlib.contextmanager
    def _settings_for_change(self) -> Iterator[dict[str, Any]]:
        with self.transaction():
            document = read_settings(self._base / SETTINGS_FILE)
            yield document
            self._replace(self._base / SETTINGS_FILE, encode_document(document))

    def _save_setting(self, namespace: str, key: str, value_json: str) -> None:
        with self._settings_for_change() as document:
            document.setdefault(namespace, {})[key] = decode_setting(value_json)

    def _get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._locked():
            value = read_settings(self._base / SETTINGS_FILE).get(namespace, {}).get(key)
        return None if value is None else dict(value)

    def _list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        with self._locked():
            entries = read_settings(self._base / SETTINGS_FILE).get(namespace, {})
        return {key: dict(entries[key]) for key in sorted(entries)}

    def _delete_setting(self, namespace: str, key: str) -> bool:
        with self._locked():
            if key not in read_settings(self._base / SETTINGS_FILE).get(namespace, {}):
                return False
        with self._settings_for_change() as document:
            entries = document.get(namespace, {})
            existed = entries.pop(key, None) is not None
            if not entries:
                document.pop(namespace, None)
        return existed

    # ------------------------------------------------------------ backup rows
    def _load_settings_rows(self, rows: Iterator[Mapping[str, Any]]) -> int:
        """Add backup rows to the settings (inside a transaction); a key present is an error.

        The document keeps the newest ``updated`` of the rows (or its own, if newer).
        """
        path = self._base / SETTINGS_FILE
        count = 0
        stamps = [modified(path) if read_settings(path) else None]
        with self._settings_for_change() as document:
            for row in rows:
                namespace, key = row["namespace"], row["key"]
                entries = document.setdefault(namespace, {})
                if key in entries:
                    raise ValueError(
                        f"{self.location}: cannot load setting {namespace!r}/{key!r}: "
                        "it is already set"
                    )
                entries[key] = decode_setting(row["value"])
                stamps.append(row.get("updated"))
                count += 1
        newest = newest_of(stamps)
        if newest is not None and count:
            set_modified(path, newest)
        return count

    def _clear_settings(self) -> None:
        """Delete every setting (inside a transaction, so a rollback brings them back)."""
        self._delete_file(self._base / SETTINGS_FILE)
