"""What the SQL store writes for a value, and what it returns for a stored row.

:class:`SqlCodec` stands on the connection (:mod:`rlmemory.store.sql.connection`) and
below every part of :class:`rlmemory.store.sql.MemoryDatabase` that reads or writes
rows. It holds the encryption key (checked against the one the store recorded when it
opens), seals and opens texts and payloads (:class:`rlmemory.store._sealing.SealedValues`),
and turns stored rows back into what the contract returns: JSON decoded, texts
decrypted, arrays rebuilt. A stored value that cannot be read is a
:class:`rlmemory.errors.CorruptStoreError` naming the agent and the row, so one agent's
damaged data never makes another's unreadable.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from rlmemory.errors import CorruptStoreError, EncryptionKeyError
from rlmemory.store._sealing import SealedValues
from rlmemory.store.crypto import Cipher, resolve_key
from rlmemory.store.rows import DECISION_COLUMNS, Row
from rlmemory.store.sql import schema
from rlmemory.store.sql.connection import SqlConnection

#: The dtypes arrays are stored with, and their little-endian byte layout.
STORED_ARRAY_DTYPES = {"float64": "<f8", "int64": "<i8"}

#: Columns of ``agent_interactions`` read for an interaction row, in this order.
INTERACTION_COLUMNS = (
    "id",
    "agent_name",
    "request",
    "response",
    "feedback",
    "decision_id",
    "learned_feedback",
    "timestamp",
)


def interaction_columns() -> list[sa.Column[Any]]:
    """The columns of :data:`INTERACTION_COLUMNS`, to select."""
    table = schema.agent_interactions.c
    return [table[name] for name in INTERACTION_COLUMNS]


def decision_columns() -> list[sa.Column[Any]]:
    """The columns of :data:`DECISION_COLUMNS`, to select."""
    table = schema.agent_decisions.c
    return [table[name] for name in DECISION_COLUMNS]


class SqlCodec(SqlConnection, SealedValues):
    """The connection, with the store's key, and the decoding of stored rows.

    ``encryption_key`` (raw bytes, urlsafe base64 text, or a ``Path`` to a key file;
    else ``$RLMEMORY_KEY``, ``key_file``, ``$RLMEMORY_KEY_FILE``) turns on encryption of
    request, response and feedback texts, and with ``encrypt_payloads`` of version
    payloads too. The store records its key's id; opening it with another key is an
    :class:`rlmemory.errors.EncryptionKeyError`. The other options are the connection's.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        busy_timeout: float,
        sqlite_cache_mb: int,
        sqlite_wal_autocheckpoint: int,
        encryption_key: Any,
        key_file: str | os.PathLike[str] | None,
        encrypt_payloads: bool,
        create: bool,
    ) -> None:
        raw_key = resolve_key(encryption_key, key_file=key_file)
        super().__init__(
            db_path,
            busy_timeout=busy_timeout,
            sqlite_cache_mb=sqlite_cache_mb,
            sqlite_wal_autocheckpoint=sqlite_wal_autocheckpoint,
            create=create,
        )
        try:
            self._cipher = None if raw_key is None else Cipher(raw_key, location=self.location)
            self._encrypt_payloads = bool(encrypt_payloads)
            self._store_key_id = self._check_key(self._cipher)
        except BaseException:
            self.close()
            raise

    def _check_key(self, cipher: Cipher | None) -> str | None:
        """The key id the store records; record ``cipher``'s when it records none.

        A key other than the store's is :class:`EncryptionKeyError`.
        """
        meta = schema.rlmemory_meta.c

        def work(cursor: Any) -> str | None:
            rows = self._execute(
                cursor,
                "key_id",
                lambda: sa.select(meta.value).where(meta.key == "encryption_key_id"),
            ).fetchall()
            recorded: str | None = rows[0][0] if rows else None
            if cipher is not None and recorded is None:
                self._execute(
                    cursor,
                    "record_key_id",
                    lambda: sa.insert(schema.rlmemory_meta).values(
                        key="encryption_key_id", value=sa.bindparam("value")
                    ),
                    value=cipher.key_id,
                )
                return cipher.key_id
            return recorded

        recorded = self._run(work, write=cipher is not None)
        if cipher is not None and recorded != cipher.key_id:
            raise EncryptionKeyError(
                f"{self.location} was written with key {recorded}, not with the key "
                f"given ({cipher.key_id}); give the store's key",
                self.location,
            )
        return recorded

    # ------------------------------------------------------------ stored values
    def _corrupt(self, agent_name: str, where: str, problem: str) -> CorruptStoreError:
        return CorruptStoreError(
            f"{self.location}: stored data of agent {agent_name!r} is corrupt ({where}): {problem}",
            self.location,
        )

    def _load_json(self, text: Any, agent_name: str, where: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as error:
            raise self._corrupt(agent_name, where, f"invalid JSON: {error}") from None

    def _q_value(self, value: Any, agent_name: str, state: str, action: str) -> float:
        """A stored Q-value that is not a float (SQLite keeps what it was given)."""
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise self._corrupt(
            agent_name, f"q_values state={state!r} action={action!r}", f"value {value!r}"
        )

    def _decode_array(
        self, agent_name: str, key: str, dtype_name: str, shape_text: str, data: Any
    ) -> np.ndarray:
        where = f"learner_arrays key={key!r}"
        shape = self._load_json(shape_text, agent_name, where)
        stored_dtype = STORED_ARRAY_DTYPES.get(dtype_name)
        if stored_dtype is None or not isinstance(shape, list):
            raise self._corrupt(agent_name, where, f"dtype {dtype_name!r}, shape {shape_text!r}")
        data = bytes(data)
        if len(data) != 8 * math.prod(shape):
            raise self._corrupt(agent_name, where, f"{len(data)} bytes for shape {shape}")
        return np.frombuffer(data, dtype=stored_dtype).reshape(shape).astype(dtype_name)

    # -------------------------------------------------------------- stored rows
    def _reward_row(
        self,
        row_id: int,
        agent_name: str,
        reward: float,
        components: str,
        decision_id: int | None,
        timestamp: float,
    ) -> Row:
        return {
            "id": row_id,
            "agent_name": agent_name,
            "reward": reward,
            "reward_components": self._load_json(
                components, agent_name, f"agent_rewards id={row_id}"
            ),
            "decision_id": decision_id,
            "timestamp": timestamp,
        }

    def _interaction_row(self, row: Sequence[Any]) -> Row:
        """An interaction as returned, from the values of :data:`INTERACTION_COLUMNS`."""
        record = dict(zip(INTERACTION_COLUMNS, row, strict=True))
        learned = record.pop("learned_feedback")
        record["feedback_learned"] = (
            record["feedback"] is not None and learned == record["feedback"]
        )
        for column in ("request", "response", "feedback"):
            record[column] = self._open_text(record[column])
        return record

    def _decision_row(self, row: Sequence[Any]) -> Row:
        """A decision as returned, from the values of :data:`DECISION_COLUMNS`."""
        record = dict(zip(DECISION_COLUMNS, row, strict=True))
        agent_name, row_id = record["agent_name"], record["id"]
        for column in ("q_values", "reward", "features"):
            if column != "features" or record[column] is not None:
                record[column] = self._load_json(
                    record[column], agent_name, f"agent_decisions id={row_id} {column}"
                )
        return record


__all__ = [
    "DECISION_COLUMNS",
    "INTERACTION_COLUMNS",
    "STORED_ARRAY_DTYPES",
    "SqlCodec",
    "decision_columns",
    "interaction_columns",
]
