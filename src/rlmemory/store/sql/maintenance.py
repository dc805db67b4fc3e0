"""The maintenance part of the SQL store: versions, corrections, pruning, backup, keys.

:class:`SqlMaintenance` is a part of :class:`rlmemory.store.sql.MemoryDatabase` standing
on :class:`rlmemory.store.sql.codec.SqlCodec`. None of it is on a learning step's hot
path, so every statement is SQLAlchemy Core compiled once per dialect
(:meth:`~rlmemory.store.sql.connection.SqlConnection._execute`) and run on the store's
held connection, inside the caller's transaction when there is one. The hooks receive
checked arguments (:class:`rlmemory.store.base.MemoryStore`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from rlmemory.errors import UnknownInteractionError, UnknownRewardError
from rlmemory.store._operations import nothing_pruned
from rlmemory.store._validation import check_agent_name
from rlmemory.store.crypto import Cipher
from rlmemory.store.rows import BACKUP_TABLES, SETTINGS_TABLE, Row
from rlmemory.store.sql import schema
from rlmemory.store.sql.codec import SqlCodec
from rlmemory.store.sql.scrub import rewrite_storage, secure_delete

_HISTORY = {
    "rewards": schema.agent_rewards,
    "interactions": schema.agent_interactions,
    "decisions": schema.agent_decisions,
}
_DUMP_BATCH = 5000
#: Rows per multi-row INSERT when loading (SQLite allows 32,766 parameters per statement).
_VALUES_PER_STATEMENT = 500


class SqlMaintenance(SqlCodec):
    """Maintenance hooks of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    # ------------------------------------------------------------------ versions
    def _save_version(self, agent_name: str, payload: bytes, note: str) -> int:
        data = self._seal_payload(payload)
        versions = schema.agent_versions

        def work(cursor: Any) -> int:
            if self._dialect_name == "postgresql":
                # Serialise numbering per agent between processes (READ COMMITTED).
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (agent_name,))
            (newest,) = self._execute(
                cursor,
                "newest_version",
                lambda: sa.select(sa.func.coalesce(sa.func.max(versions.c.version), 0)).where(
                    versions.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchone()
            number = int(newest) + 1
            self._execute(
                cursor,
                "insert_version",
                lambda: sa.insert(versions).values(
                    agent_name=sa.bindparam("agent"),
                    version=sa.bindparam("version"),
                    note=sa.bindparam("note"),
                    created=sa.bindparam("created"),
                    payload=sa.bindparam("payload"),
                ),
                agent=agent_name,
                version=number,
                note=note,
                created=time.time(),
                payload=data,
            )
            return number

        return self._run(work)

    def _list_versions(self, agent_name: str) -> list[Row]:
        versions = schema.agent_versions.c
        rows = self._read(
            "list_versions",
            lambda: (
                sa.select(
                    versions.version,
                    versions.note,
                    versions.created,
                    sa.func.length(versions.payload),
                )
                .where(versions.agent_name == sa.bindparam("agent"))
                .order_by(versions.version)
            ),
            atomic=True,
            agent=agent_name,
        )
        return [
            {"version": version, "note": note, "created": created, "size": size}
            for version, note, created, size in rows
        ]

    def _get_version(self, agent_name: str, version: int) -> Row:
        versions = schema.agent_versions.c
        rows = self._read(
            "get_version",
            lambda: sa.select(
                versions.version, versions.note, versions.created, versions.payload
            ).where(
                versions.agent_name == sa.bindparam("agent"),
                versions.version == sa.bindparam("version"),
            ),
            atomic=True,
            agent=agent_name,
            version=version,
        )
        if not rows:
            raise LookupError(f"agent {agent_name!r} has no version {version}")
        number, note, created, payload = rows[0]
        stored = bytes(payload)
        return {
            "version": number,
            "note": note,
            "created": created,
            "size": len(stored),
            "payload": self._open_payload(stored),
        }

    def _delete_versions(self, agent_name: str, versions: list[int]) -> int:
        return self._delete_each(schema.agent_versions, "version", agent_name, versions)

    # ------------------------------------------------------------ learned state
    def _delete_policy_params(self, agent_name: str) -> bool:
        table = schema.policy_params
        deleted = self._write(
            "delete_policy",
            lambda: sa.delete(table).where(table.c.agent_name == sa.bindparam("agent")),
            agent=agent_name,
        )
        return deleted > 0

    def _delete_q_states(self, agent_name: str, states: list[str]) -> int:
        return self._delete_each(schema.q_values, "state", agent_name, states)

    def _delete_each(
        self, table: sa.Table, column: str, agent_name: str, keys: Sequence[Any]
    ) -> int:
        """Delete the agent's rows of ``table`` whose ``column`` is one of ``keys``; count them."""

        def work(cursor: Any) -> int:
            return sum(
                int(
                    self._execute(
                        cursor,
                        f"delete_{table.name}_by_{column}",
                        lambda: sa.delete(table).where(
                            table.c.agent_name == sa.bindparam("agent"),
                            table.c[column] == sa.bindparam("key"),
                        ),
                        agent=agent_name,
                        key=key,
                    ).rowcount
                )
                for key in keys
            )

        return self._run(work)

    def _q_state_stats(self, agent_name: str) -> list[Row]:
        values = schema.q_values.c
        decisions = schema.agent_decisions.c

        def work(cursor: Any) -> list[Row]:
            states = self._execute(
                cursor,
                "q_state_updates",
                lambda: (
                    sa.select(values.state, sa.func.count(), sa.func.max(values.last_updated))
                    .where(values.agent_name == sa.bindparam("agent"))
                    .group_by(values.state)
                ),
                agent=agent_name,
            ).fetchall()
            visits = dict(
                self._execute(
                    cursor,
                    "q_state_visits",
                    lambda: (
                        sa.select(decisions.state, sa.func.count())
                        .where(decisions.agent_name == sa.bindparam("agent"))
                        .group_by(decisions.state)
                    ),
                    agent=agent_name,
                ).fetchall()
            )
            return [
                {
                    "state": state,
                    "actions": int(actions),
                    "last_updated": float(stamp),
                    "visits": int(visits.get(state, 0)),
                }
                for state, actions, stamp in states
            ]

        return self._run(work, write=False)

    # ---------------------------------------------------------- corrections
    def _get_agent_reward(self, reward_id: int) -> Row:
        rewards = schema.agent_rewards.c
        rows = self._read(
            "reward_by_id",
            lambda: sa.select(
                rewards.id,
                rewards.agent_name,
                rewards.reward,
                rewards.reward_components,
                rewards.decision_id,
                rewards.timestamp,
            ).where(rewards.id == sa.bindparam("row_id")),
            row_id=reward_id,
        )
        if not rows:
            raise UnknownRewardError(reward_id)
        return self._reward_row(*rows[0])

    def _update_agent_reward(
        self, reward_id: int, reward: float, components_json: str | None
    ) -> None:
        values: dict[str, Any] = {"reward": reward}
        if components_json is not None:
            values["reward_components"] = components_json
        self._update_by_id(schema.agent_rewards, reward_id, values, UnknownRewardError)

    def _delete_agent_reward(self, reward_id: int) -> None:
        self._delete_by_id(schema.agent_rewards, reward_id, UnknownRewardError)

    def _update_agent_interaction(
        self, interaction_id: int, request: str | None, response: str | None
    ) -> None:
        values: dict[str, Any] = {}
        if request is not None:
            values["request"] = self._seal_text(request)
        if response is not None:
            values["response"] = self._seal_text(response)
        self._update_by_id(
            schema.agent_interactions, interaction_id, values, UnknownInteractionError
        )

    def _delete_agent_interaction(self, interaction_id: int) -> None:
        self._delete_by_id(schema.agent_interactions, interaction_id, UnknownInteractionError)

    def _update_by_id(
        self,
        table: sa.Table,
        row_id: int,
        values: Mapping[str, Any],
        error: type[LookupError],
    ) -> None:
        """Set ``values`` (column: new value) on the row ``row_id``; ``error(row_id)`` if none."""
        updated = self._write(
            f"update_{table.name}_" + "_".join(sorted(values)),
            lambda: (
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({key: sa.bindparam(f"new_{key}") for key in values})
            ),
            row_id=row_id,
            **{f"new_{key}": value for key, value in values.items()},
        )
        if updated != 1:
            raise error(row_id)

    def _delete_by_id(self, table: sa.Table, row_id: int, error: type[LookupError]) -> None:
        deleted = self._write(
            f"delete_{table.name}_by_id",
            lambda: sa.delete(table).where(table.c.id == sa.bindparam("row_id")),
            row_id=row_id,
        )
        if deleted != 1:
            raise error(row_id)

    # --------------------------------------------------------------- pruning
    def _prune_history(
        self,
        agent_name: str,
        table: str,
        older_than: float | None,
        keep_newest: int | None,
        dry_run: bool,
    ) -> Row:
        history = _HISTORY[table]
        columns = history.c
        if older_than is None and keep_newest is None:
            return nothing_pruned()

        def work(cursor: Any) -> Row:
            conditions = []
            params: dict[str, Any] = {"agent": agent_name}
            if older_than is not None:
                conditions.append("stamp")
                params["cutoff"] = older_than
            if keep_newest == 0:
                conditions.append("all")
            elif keep_newest is not None:
                # Rows below the id of the keep_newest-th newest row go.
                found = self._execute(
                    cursor,
                    f"keep_floor_{table}",
                    lambda: (
                        sa.select(columns.id)
                        .where(columns.agent_name == sa.bindparam("agent"))
                        .order_by(columns.id.desc())
                        .limit(1)
                        .offset(sa.bindparam("skip"))
                    ),
                    agent=agent_name,
                    skip=keep_newest - 1,
                ).fetchall()
                if found:
                    conditions.append("floor")
                    params["floor"] = int(found[0][0])
            if not conditions:
                return nothing_pruned()
            key = "_".join(conditions)

            def where() -> Any:
                parts = []
                if "stamp" in conditions:
                    parts.append(columns.timestamp < sa.bindparam("cutoff"))
                if "floor" in conditions:
                    parts.append(columns.id < sa.bindparam("floor"))
                if "all" in conditions:
                    parts.append(sa.true())
                return sa.and_(columns.agent_name == sa.bindparam("agent"), sa.or_(*parts))

            rows, first, last, oldest, newest = self._execute(
                cursor,
                f"prune_summary_{table}_{key}",
                lambda: sa.select(
                    sa.func.count(),
                    sa.func.min(columns.id),
                    sa.func.max(columns.id),
                    sa.func.min(columns.timestamp),
                    sa.func.max(columns.timestamp),
                ).where(where()),
                **params,
            ).fetchone()
            if not dry_run and rows:
                self._execute(
                    cursor,
                    f"prune_{table}_{key}",
                    lambda: sa.delete(history).where(where()),
                    **params,
                )
            return {
                "rows": int(rows),
                "first_id": first,
                "last_id": last,
                "oldest": oldest,
                "newest": newest,
            }

        return self._run(work, write=not dry_run)

    # ------------------------------------------------------------ dump and load
    def backup_tables(self) -> tuple[str, ...]:
        return BACKUP_TABLES

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Callable[[str], Iterator[Row]]]:
        """One consistent read snapshot of every table; yields ``read_table(name)``.

        Rows are as stored (encrypted values stay encrypted). Other threads using this
        store object wait until the block ends; other processes keep writing.
        """
        with self._read_snapshot() as cursor:
            yield lambda name: self._dump_table(cursor, name)

    def _backup_table(self, name: str) -> sa.Table:
        if name not in BACKUP_TABLES:
            raise ValueError(f"unknown table {name!r}; tables are {', '.join(BACKUP_TABLES)}")
        return schema.metadata.tables[name]

    def _dump_table(self, cursor: Any, name: str) -> Iterator[Row]:
        table = self._backup_table(name)
        names = [column.name for column in table.columns]
        order = list(table.primary_key.columns) or list(table.columns)
        self._execute(cursor, f"dump_{name}", lambda: sa.select(table).order_by(*order))
        while chunk := cursor.fetchmany(_DUMP_BATCH):
            for values in chunk:
                yield {
                    column: bytes(value) if isinstance(value, memoryview) else value
                    for column, value in zip(names, values, strict=True)
                }

    def _load_rows(self, table: str, rows: Iterator[Mapping[str, Any]]) -> int:
        """Insert rows exactly as given (ids, ciphertext, timestamps); return how many."""
        target = self._backup_table(table)
        columns = [column.name for column in target.columns]
        known = set(columns)

        def work(cursor: Any) -> int:
            count = 0
            batch: list[dict[str, Any]] = []
            for row in rows:  # checked against BACKUP_COLUMNS by MemoryStore.load_rows
                batch.append({column: row.get(column) for column in columns})
                if len(batch) >= _DUMP_BATCH:
                    count += self._insert_batch(cursor, target, columns, batch)
                    batch = []
            if batch:
                count += self._insert_batch(cursor, target, columns, batch)
            if self._dialect_name == "postgresql" and "id" in known:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
            return count

        return self._run(work)

    def _insert_batch(
        self, cursor: Any, table: sa.Table, columns: list[str], batch: list[dict[str, Any]]
    ) -> int:
        # Multi-row VALUES: one statement (and one firing of statement-level triggers)
        # per chunk instead of one per row.
        marker = "?" if self._dialect_name == "sqlite" else "%s"
        row_marks = "(" + ", ".join([marker] * len(columns)) + ")"
        names = ", ".join(f'"{column}"' for column in columns)
        for start in range(0, len(batch), _VALUES_PER_STATEMENT):
            chunk = batch[start : start + _VALUES_PER_STATEMENT]
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) VALUES " + ", ".join([row_marks] * len(chunk)),
                [row[column] for row in chunk for column in columns],
            )
        return len(batch)

    def clear_data(self, *, keep_versions: bool = False, keep_settings: bool = False) -> None:
        """Delete every row of every table (but the versions and settings when asked)."""
        kept = {"agent_versions"} if keep_versions else set()
        if keep_settings:
            kept.add(SETTINGS_TABLE)
        names = [name for name in BACKUP_TABLES if name not in kept]

        def work(cursor: Any) -> None:
            for name in names:
                cursor.execute(f"DELETE FROM {name}")
            self._known_rows.clear()

        self._run(work)

    # -------------------------------------------------------------- key rotation
    def reencrypt(self, cipher: Any) -> tuple[int, int]:
        """Re-encrypt every encrypted value with ``cipher``, then rewrite the storage so
        no old plaintext or old-key ciphertext stays on disk (:mod:`.scrub`)."""
        rewritten = ["agent_interactions"]
        if self._encrypt_payloads:
            rewritten.append("agent_versions")
        purpose = "reencrypt rewrites the storage after it commits"
        with (
            self._outside_transaction(purpose) as cursor,
            secure_delete(cursor, self._dialect_name),
        ):
            result = self._run(lambda cursor: self._reseal_all(cursor, cipher))
            self._adopt_cipher(cipher)
            # The old plaintext or old-key ciphertext is still on disk: rewrite it away.
            self._with_retry(
                lambda: rewrite_storage(
                    self._live_cursor(),
                    self._dialect_name,
                    rewritten,
                    location=self.location,
                    timeout=self._busy_timeout,
                )
            )
        return result

    def _reseal_all(self, cursor: Any, cipher: Cipher) -> tuple[int, int]:
        """Re-encrypt the texts (and sealed payloads) with ``cipher`` and record its key id;
        return (rows changed, values written)."""
        changed_rows, written = self._reseal_interactions(cursor, cipher)
        if self._encrypt_payloads:
            payloads = self._reseal_versions(cursor, cipher)
            changed_rows, written = changed_rows + payloads, written + payloads
        meta = schema.rlmemory_meta
        self._execute(
            cursor,
            "forget_key_id",
            lambda: sa.delete(meta).where(meta.c.key == "encryption_key_id"),
        )
        self._execute(
            cursor,
            "record_key_id",
            lambda: sa.insert(meta).values(key="encryption_key_id", value=sa.bindparam("value")),
            value=cipher.key_id,
        )
        return changed_rows, written

    def _reseal_interactions(self, cursor: Any, cipher: Cipher) -> tuple[int, int]:
        """Re-encrypt the texts of every interaction; return (rows, values written)."""
        table = schema.agent_interactions
        columns = ("request", "response", "feedback", "learned_feedback")

        def reseal(value: str | None) -> str | None:
            if value is None:
                return None
            return cipher.encrypt_text(cipher.decrypt_text(value))

        changed_rows = written = 0
        rows = self._execute(
            cursor,
            "reencrypt_read",
            lambda: sa.select(table.c.id, *(table.c[name] for name in columns)).order_by(
                table.c.id
            ),
        ).fetchall()
        for row_id, request, response, feedback, learned in rows:
            new_feedback = reseal(feedback)
            # learned_feedback == feedback marks feedback learned: keep them identical.
            new_learned = (
                new_feedback if learned is not None and learned == feedback else reseal(learned)
            )
            values = [reseal(request), reseal(response), new_feedback, new_learned]
            self._execute(
                cursor,
                "reencrypt_write",
                lambda: (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values({name: sa.bindparam(f"new_{name}") for name in columns})
                ),
                row_id=row_id,
                **{f"new_{name}": value for name, value in zip(columns, values, strict=True)},
            )
            changed_rows += 1
            written += sum(value is not None for value in values)
        return changed_rows, written

    def _reseal_versions(self, cursor: Any, cipher: Cipher) -> int:
        """Re-encrypt every version payload with ``cipher``; return how many."""
        versions = schema.agent_versions
        stored = self._execute(
            cursor,
            "reencrypt_versions_read",
            lambda: sa.select(versions.c.agent_name, versions.c.version, versions.c.payload),
        ).fetchall()
        for agent_name, number, payload in stored:
            sealed = cipher.encrypt_bytes(cipher.decrypt_bytes(bytes(payload)))
            self._execute(
                cursor,
                "reencrypt_versions_write",
                lambda: (
                    sa.update(versions)
                    .where(
                        versions.c.agent_name == sa.bindparam("agent"),
                        versions.c.version == sa.bindparam("number"),
                    )
                    .values(payload=sa.bindparam("payload"))
                ),
                agent=agent_name,
                number=number,
                payload=sealed,
            )
        return len(stored)

    # ------------------------------------------------------------------ extras
    def latest_version(self, agent_name: str) -> int | None:
        """The agent's newest version number, or None when it has none."""
        agent_name = check_agent_name(agent_name)
        versions = schema.agent_versions.c
        ((newest,),) = self._read(
            "latest_version",
            lambda: sa.select(sa.func.max(versions.version)).where(
                versions.agent_name == sa.bindparam("agent")
            ),
            agent=agent_name,
        )
        return None if newest is None else int(newest)


#: The name of :class:`SqlMaintenance` when it was a mixin of ``rlmemory.store.sql_ops``.
SqlOperations = SqlMaintenance

__all__ = ["SqlMaintenance", "SqlOperations", "UnknownRewardError"]
