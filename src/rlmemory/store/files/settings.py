"""The settings part of the file store: every namespaced JSON document in ``settings.json``.

:class:`FileSettings` is mixed into :class:`rlmemory.store.files.FileBackedMemoryDatabase`.
Settings are few and small (a service's loops, its API key hashes), so they live in one
document ``{namespace: {key: value}}`` at the top of the store folder, read under the
folder lock and replaced atomically (journaled inside a transaction) on every change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError
from rlmemory.store._settings import check_setting_name, decode_setting, encode_setting
from rlmemory.store.base import Row
from rlmemory.store.files.io import encode_document, read_document

SETTINGS_FILE = "settings.json"


class FileSettings:
    """Settings methods of FileBackedMemoryDatabase (see the MemoryStore contract)."""

    _base: Path
    _locked: Callable[[], contextlib.AbstractContextManager[None]]
    _replace: Callable[[Path, bytes], None]
    _delete_file: Callable[[Path], None]
    location: str
    transaction: Callable[[], contextlib.AbstractContextManager[None]]

    def _settings_document(self) -> dict[str, Any]:
        path = self._base / SETTINGS_FILE
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

    @contextlib.contextmanager
    def _settings_for_change(self) -> Iterator[dict[str, Any]]:
        with self.transaction():
            document = self._settings_document()
            yield document
            self._replace(self._base / SETTINGS_FILE, encode_document(document))

    def save_setting(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        namespace = check_setting_name(namespace, "namespace")
        key = check_setting_name(key, "key")
        stored = decode_setting(encode_setting(value))
        with self._settings_for_change() as document:
            document.setdefault(namespace, {})[key] = stored

    def get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        namespace = check_setting_name(namespace, "namespace")
        key = check_setting_name(key, "key")
        with self._locked():
            value = self._settings_document().get(namespace, {}).get(key)
        return None if value is None else dict(value)

    def list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        namespace = check_setting_name(namespace, "namespace")
        with self._locked():
            entries = self._settings_document().get(namespace, {})
        return {key: dict(entries[key]) for key in sorted(entries)}

    def delete_setting(self, namespace: str, key: str) -> bool:
        namespace = check_setting_name(namespace, "namespace")
        key = check_setting_name(key, "key")
        with self._locked():
            if key not in self._settings_document().get(namespace, {}):
                return False
        with self._settings_for_change() as document:
            entries = document.get(namespace, {})
            existed = entries.pop(key, None) is not None
            if not entries:
                document.pop(namespace, None)
        return existed

    # ------------------------------------------------------------ backup rows
    def _settings_rows(self) -> Iterator[Row]:
        """The ``rlmemory_settings`` rows of a backup (the caller holds the lock).

        The document keeps no time per setting: ``updated`` is the file's modification
        time, as the other tables of the file store date their rows.
        """
        path = self._base / SETTINGS_FILE
        document = self._settings_document()
        updated = path.stat().st_mtime if document else 0.0
        for namespace in sorted(document):
            for key in sorted(document[namespace]):
                yield {
                    "namespace": namespace,
                    "key": key,
                    "value": encode_setting(document[namespace][key]),
                    "updated": updated,
                }

    def _load_settings_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add backup rows to the settings (inside a transaction); a key present is an error."""
        count = 0
        with self._settings_for_change() as document:
            for row in rows:
                namespace = check_setting_name(row["namespace"], "namespace")
                key = check_setting_name(row["key"], "key")
                entries = document.setdefault(namespace, {})
                if key in entries:
                    raise ValueError(
                        f"{self.location}: cannot load setting {namespace!r}/{key!r}: "
                        "it is already set"
                    )
                entries[key] = decode_setting(row["value"])
                count += 1
        return count

    def _clear_settings(self) -> None:
        """Delete every setting (inside a transaction, so a rollback brings them back)."""
        self._delete_file(self._base / SETTINGS_FILE)
