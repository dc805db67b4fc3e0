"""The operations part of the SQL store: versions, corrections, pruning, dump and load.

:class:`SqlOperations` is mixed into :class:`rlmemory.store.sql.MemoryDatabase`. None of
it is on a learning step's hot path, so every statement is SQLAlchemy Core compiled
once per dialect (``MemoryDatabase._execute``) and run on the store's held connection,
inside the caller's transaction when there is one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rlmemory.errors import UnknownInteractionError
from rlmemory.store._operations import (
    BACKUP_TABLES,
    SETTINGS_TABLE,
    UnknownRewardError,
    check_prune_arguments,
    nothing_pruned,
)
from rlmemory.store._sealing import SealedValues
from rlmemory.store._validation import (
    check_agent_name,
    check_finite,
    check_id,
    check_mapping,
    check_states,
    check_text,
    check_version_number,
    check_version_numbers,
    checked_backup_rows,
    to_json,
)
from rlmemory.store.base import Row
from rlmemory.store.sql import schema
from rlmemory.store.sql.scrub import rewrite_storage, secure_delete

_HISTORY = {
    "rewards": schema.agent_rewards,
    "interactions": schema.agent_interactions,
    "decisions": schema.agent_decisions,
}
_DUMP_BATCH = 5000
#: Rows per multi-row INSERT when loading (SQLite allows 32,766 parameters per statement).
_VALUES_PER_STATEMENT = 500


class SqlOperations(SealedValues):
    """Operations methods of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    location: str
    _sqlite_path: str | None
    _dialect_name: str
    _run: Callable[..., Any]
    _execute: Callable[..., Any]

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL or an in-memory database."""
        if self._sqlite_path is None or self._sqlite_path == ":memory:":
            return None
        return Path(self._sqlite_path)

    # ------------------------------------------------------------------ versions
    def save_version(self, agent_name: str, payload: bytes, note: str = "") -> int:
        agent_name = check_agent_name(agent_name)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        note = check_text(note, "note") or ""
        data = self._seal_payload(bytes(payload))
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

    def list_versions(self, agent_name: str) -> list[Row]:
        agent_name = check_agent_name(agent_name)
        versions = schema.agent_versions.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
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
                agent=agent_name,
            ).fetchall(),
            write=False,
        )
        return [
            {"version": version, "note": note, "created": created, "size": size}
            for version, note, created, size in rows
        ]

    def get_version(self, agent_name: str, version: int) -> Row:
        agent_name = check_agent_name(agent_name)
        version = check_version_number(version)
        versions = schema.agent_versions.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "get_version",
                lambda: sa.select(
                    versions.version, versions.note, versions.created, versions.payload
                ).where(
                    versions.agent_name == sa.bindparam("agent"),
                    versions.version == sa.bindparam("version"),
                ),
                agent=agent_name,
                version=version,
            ).fetchall(),
            write=False,
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

    def delete_versions(self, agent_name: str, versions: Sequence[int]) -> int:
        agent_name = check_agent_name(agent_name)
        numbers = check_version_numbers(versions)
        return self._delete_each(schema.agent_versions, "version", agent_name, numbers)

    def latest_version(self, agent_name: str) -> int | None:
        agent_name = check_agent_name(agent_name)
        versions = schema.agent_versions.c
        ((newest,),) = self._run(
            lambda cursor: self._execute(
                cursor,
                "latest_version",
                lambda: sa.select(sa.func.max(versions.version)).where(
                    versions.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall(),
            atomic=False,
        )
        return None if newest is None else int(newest)

    # ------------------------------------------------------------ learned state
    def delete_policy_params(self, agent_name: str) -> bool:
        agent_name = check_agent_name(agent_name)
        table = schema.policy_params
        return bool(
            self._run(
                lambda cursor: (
                    self._execute(
                        cursor,
                        "delete_policy",
                        lambda: sa.delete(table).where(table.c.agent_name == sa.bindparam("agent")),
                        agent=agent_name,
                    ).rowcount
                )
            )
        )

    def delete_q_states(self, agent_name: str, states: Sequence[str]) -> int:
        agent_name = check_agent_name(agent_name)
        names = check_states(states)
        return self._delete_each(schema.q_values, "state", agent_name, names)

    def _delete_each(
        self, table: sa.Table, column: str, agent_name: str, keys: Sequence[Any]
    ) -> int:
        """Delete the agent's rows of ``table`` whose ``column`` is one of ``keys``; count them."""

        def work(cursor: Any) -> int:
            return sum(
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
                for key in keys
            )

        return self._run(work)

    def q_state_stats(self, agent_name: str) -> list[Row]:
        agent_name = check_agent_name(agent_name)
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
    def get_agent_reward(self, reward_id: int) -> Row:
        reward_id = check_id(reward_id, "reward_id")
        rewards = schema.agent_rewards.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
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
            ).fetchall(),
            atomic=False,
        )
        if not rows:
            raise UnknownRewardError(reward_id)
        return self._reward_row(*rows[0])  # type: ignore[attr-defined]

    def update_agent_reward(
        self,
        reward_id: int,
        reward: float,
        reward_components: Mapping[str, Any] | None = None,
    ) -> None:
        reward_id = check_id(reward_id, "reward_id")
        reward = check_finite(reward, "reward")
        values: dict[str, Any] = {"reward": reward}
        if reward_components is not None:
            check_mapping(reward_components, "reward_components")
            values["reward_components"] = to_json(reward_components, "reward_components")
        self._update_by_id(schema.agent_rewards, reward_id, values, UnknownRewardError)

    def delete_agent_reward(self, reward_id: int) -> None:
        reward_id = check_id(reward_id, "reward_id")
        self._delete_by_id(schema.agent_rewards, reward_id, UnknownRewardError)

    def update_agent_interaction(
        self, interaction_id: int, *, request: str | None = None, response: str | None = None
    ) -> None:
        interaction_id = check_id(interaction_id, "interaction_id")
        values: dict[str, Any] = {}
        if request is not None:
            values["request"] = self._seal_text(self._checked_text(request, "request"))
        if response is not None:
            values["response"] = self._seal_text(self._checked_text(response, "response"))
        if not values:
            raise ValueError("give request and/or response to update")
        self._update_by_id(
            schema.agent_interactions, interaction_id, values, UnknownInteractionError
        )

    def delete_agent_interaction(self, interaction_id: int) -> None:
        interaction_id = check_id(interaction_id, "interaction_id")
        self._delete_by_id(schema.agent_interactions, interaction_id, UnknownInteractionError)

    def _update_by_id(
        self,
        table: sa.Table,
        row_id: int,
        values: Mapping[str, Any],
        error: type[LookupError],
    ) -> None:
        """Set ``values`` (column: new value) on the row ``row_id``; ``error(row_id)`` if none."""
        name = f"update_{table.name}_" + "_".join(sorted(values))

        def work(cursor: Any) -> None:
            updated = self._execute(
                cursor,
                name,
                lambda: (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values({key: sa.bindparam(f"new_{key}") for key in values})
                ),
                row_id=row_id,
                **{f"new_{key}": value for key, value in values.items()},
            ).rowcount
            if updated != 1:
                raise error(row_id)

        self._run(work)

    def _delete_by_id(self, table: sa.Table, row_id: int, error: type[LookupError]) -> None:
        def work(cursor: Any) -> None:
            deleted = self._execute(
                cursor,
                f"delete_{table.name}_by_id",
                lambda: sa.delete(table).where(table.c.id == sa.bindparam("row_id")),
                row_id=row_id,
            ).rowcount
            if deleted != 1:
                raise error(row_id)

        self._run(work)

    # --------------------------------------------------------------- pruning
    def prune_history(
        self,
        agent_name: str,
        table: str,
        *,
        older_than: float | None = None,
        keep_newest: int | None = None,
        dry_run: bool = False,
    ) -> Row:
        agent_name = check_agent_name(agent_name)
        older_than = check_prune_arguments(table, older_than, keep_newest)
        history = _HISTORY[table]
        columns = history.c
        if older_than is None and keep_newest is None:
            return nothing_pruned()

        def work(cursor: Any) -> Row:
            # Rows below the id of the keep_newest-th newest row go (all when keep is 0).
            id_floor: int | None = None
            if keep_newest is not None:
                if keep_newest == 0:
                    id_floor = math.inf  # type: ignore[assignment]
                else:
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
                    id_floor = int(found[0][0]) if found else None
            conditions = []
            params: dict[str, Any] = {"agent": agent_name}
            if older_than is not None:
                conditions.append("stamp")
                params["cutoff"] = older_than
            if id_floor is not None:
                if id_floor == math.inf:
                    conditions.append("all")
                else:
                    conditions.append("floor")
                    params["floor"] = id_floor
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
        with self._lock:  # type: ignore[attr-defined]
            cursor = self._live_cursor()  # type: ignore[attr-defined]
            if self._depth:  # type: ignore[attr-defined]
                yield lambda name: self._dump_table(cursor, name)
                return
            begin = (
                "BEGIN"
                if self._dialect_name == "sqlite"
                else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            )
            self._with_retry(lambda: cursor.execute(begin))  # type: ignore[attr-defined]
            self._depth = 1  # type: ignore[attr-defined]
            self._transaction_lost = None  # type: ignore[attr-defined]
            try:
                if self._dialect_name == "sqlite":
                    # A deferred transaction takes its snapshot at the first read.
                    cursor.execute("SELECT count(*) FROM rlmemory_meta").fetchall()
                else:
                    # A read-only snapshot blocks no writer: it may idle while the caller
                    # writes the archive, longer than busy_timeout allows a writer to idle.
                    cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                yield lambda name: self._dump_table(cursor, name)
            finally:
                self._depth = 0  # type: ignore[attr-defined]
                self._transaction_lost = None  # type: ignore[attr-defined]
                self._rollback()  # type: ignore[attr-defined]

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

    def load_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows exactly as given (ids, ciphertext, timestamps); return how many."""
        target = self._backup_table(table)
        columns = [column.name for column in target.columns]
        known = set(columns)

        def work(cursor: Any) -> int:
            count = 0
            batch: list[dict[str, Any]] = []
            for row in checked_backup_rows(table, rows):
                unknown = set(row) - known
                if unknown:
                    raise ValueError(f"{table} has no columns {sorted(unknown)}")
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
            self._registered_q_agents.clear()  # type: ignore[attr-defined]

        self._run(work)

    # ------------------------------------------------------------ encryption hooks
    def _checked_text(self, value: object, field: str) -> str:
        text = check_text(value, field)
        assert text is not None
        return text

    def _find_encrypted_interaction(
        self, agent_name: str, request: str, response: str
    ) -> Row | None:
        """Newest-first scan: encrypted texts cannot be compared in SQL (random nonces)."""
        table = schema.agent_interactions.c
        before = None
        while True:
            rows = self._interactions(  # type: ignore[attr-defined]
                "find_encrypted_interaction",
                lambda: (
                    sa.select(*self._interaction_columns())  # type: ignore[attr-defined]
                    .where(
                        table.agent_name == sa.bindparam("agent"),
                        table.id < sa.bindparam("before"),
                    )
                    .order_by(table.id.desc())
                    .limit(500)
                ),
                agent=agent_name,
                before=before if before is not None else 2**62,
            )
            for row in rows:
                if row["request"] == request and row["response"] == response:
                    return row
            if len(rows) < 500:
                return None
            before = rows[-1]["id"]

    def reencrypt(self, cipher: Any) -> tuple[int, int]:
        table = schema.agent_interactions
        columns = ("request", "response", "feedback", "learned_feedback")
        changed_rows = 0
        written = 0

        def reseal(value: str | None) -> str | None:
            if value is None:
                return None
            return cipher.encrypt_text(cipher.decrypt_text(value))

        def work(cursor: Any) -> tuple[int, int]:
            nonlocal changed_rows, written
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
            if self._encrypt_payloads:
                versions = schema.agent_versions
                stored = self._execute(
                    cursor,
                    "reencrypt_versions_read",
                    lambda: sa.select(
                        versions.c.agent_name, versions.c.version, versions.c.payload
                    ),
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
                    changed_rows += 1
                    written += 1
            meta = schema.rlmemory_meta
            self._execute(
                cursor,
                "forget_key_id",
                lambda: sa.delete(meta).where(meta.c.key == "encryption_key_id"),
            )
            self._execute(
                cursor,
                "record_key_id",
                lambda: sa.insert(meta).values(
                    key="encryption_key_id", value=sa.bindparam("value")
                ),
                value=cipher.key_id,
            )
            return changed_rows, written

        rewritten = ["agent_interactions"]
        if self._encrypt_payloads:
            rewritten.append("agent_versions")
        with self._lock:  # type: ignore[attr-defined]
            if self._depth:  # type: ignore[attr-defined]
                raise ValueError(
                    "reencrypt rewrites the storage after it commits; call it outside a transaction"
                )
            cursor = self._live_cursor()  # type: ignore[attr-defined]
            with secure_delete(cursor, self._dialect_name):
                result = self._run(work)
                self._adopt_cipher(cipher)
                # The old plaintext or old-key ciphertext is still on disk: rewrite it away.
                self._with_retry(  # type: ignore[attr-defined]
                    lambda: rewrite_storage(
                        self._live_cursor(),  # type: ignore[attr-defined]
                        self._dialect_name,
                        rewritten,
                        location=self.location,
                        timeout=self._busy_timeout,  # type: ignore[attr-defined]
                    )
                )
        return result


__all__ = ["SqlOperations", "UnknownRewardError"]
