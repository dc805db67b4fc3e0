"""The settings part of the SQL store: namespaced JSON documents in ``rlmemory_settings``.

:class:`SqlSettings` is a part of :class:`rlmemory.store.sql.MemoryDatabase` standing on
the connection alone. Settings are few and small (a service's loops, its API key
hashes), so every statement is SQLAlchemy Core compiled once per dialect and run on the
store's held connection, inside the caller's transaction when there is one. The names
and the JSON text arrive checked (:meth:`rlmemory.store.base.MemoryStore.save_setting`).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from rlmemory.errors import CorruptStoreError
from rlmemory.store._settings import decode_setting
from rlmemory.store.sql import schema
from rlmemory.store.sql.connection import SqlConnection, matching

_SETTINGS = schema.rlmemory_settings


class SqlSettings(SqlConnection):
    """The settings hooks of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    def _save_setting(self, namespace: str, key: str, value_json: str) -> None:
        def work(cursor: Any) -> None:
            # Delete then insert in one transaction: the same statements on both dialects.
            self._execute(
                cursor,
                "delete_setting",
                lambda: sa.delete(_SETTINGS).where(matching(_SETTINGS, "namespace", "key")),
                namespace=namespace,
                key=key,
            )
            self._execute(
                cursor,
                "insert_setting",
                lambda: sa.insert(_SETTINGS),
                namespace=namespace,
                key=key,
                value=value_json,
                updated=time.time(),
            )

        self._run(work)

    def _get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        rows = self._read(
            "get_setting",
            lambda: sa.select(_SETTINGS.c.value).where(matching(_SETTINGS, "namespace", "key")),
            atomic=True,
            namespace=namespace,
            key=key,
        )
        return self._setting_value(namespace, key, rows[0][0]) if rows else None

    def _list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        rows = self._read(
            "list_settings",
            lambda: (
                sa.select(_SETTINGS.c.key, _SETTINGS.c.value)
                .where(matching(_SETTINGS, "namespace"))
                .order_by(_SETTINGS.c.key)
            ),
            atomic=True,
            namespace=namespace,
        )
        found = {key: self._setting_value(namespace, key, text) for key, text in rows}
        return dict(sorted(found.items()))

    def _delete_setting(self, namespace: str, key: str) -> bool:
        deleted = self._write(
            "delete_setting",
            lambda: sa.delete(_SETTINGS).where(matching(_SETTINGS, "namespace", "key")),
            namespace=namespace,
            key=key,
        )
        return deleted > 0

    def _setting_value(self, namespace: str, key: str, text: Any) -> dict[str, Any]:
        try:
            return decode_setting(text)
        except (TypeError, ValueError) as error:
            raise CorruptStoreError(
                f"{self.location}: setting {namespace!r}/{key!r} is corrupt: {error}",
                self.location,
            ) from None


__all__ = ["SqlSettings"]
