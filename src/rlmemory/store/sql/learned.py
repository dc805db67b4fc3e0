"""The learned state in the SQL store: Q-values, policy parameters, arrays, learner steps.

:class:`SqlLearnedState` is a part of :class:`rlmemory.store.sql.MemoryDatabase`
standing on :class:`rlmemory.store.sql.codec.SqlCodec`. These are the learners' per-step
writes and reads, so they run the plain driver statements of
:mod:`rlmemory.store.sql.dialect` (``self._sql``) where a step calls them, and compiled
Core statements elsewhere. The hooks receive checked arguments
(:class:`rlmemory.store.base.MemoryStore`).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import numpy as np
import sqlalchemy as sa

from rlmemory.store._steps import LearnerStep, decode_values
from rlmemory.store.rows import QTable
from rlmemory.store.sql import schema
from rlmemory.store.sql.codec import STORED_ARRAY_DTYPES, SqlCodec

#: The key of :attr:`SqlConnection._known_rows` saying an agent's ``q_agents`` row exists.
_Q_AGENTS = "q_agents"


def _q_entries(table: QTable) -> list[tuple[str, str, float]]:
    """The ``(state, action, value)`` entries of a table, sorted.

    A fixed order keeps concurrent multi-row upserts from deadlocking on PostgreSQL.
    """
    return sorted(
        (state, action, value)
        for state, actions in table.items()
        for action, value in actions.items()
    )


class SqlLearnedState(SqlCodec):
    """Learned-state hooks of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    # ------------------------------------------------------------------ Q-learning
    def _save_q_table(self, agent_name: str, q_table: QTable) -> None:
        entries = _q_entries(q_table)
        sql = self._sql

        def work(cursor: Any) -> None:
            now = time.time()
            cursor.execute(sql.touch_q_agent, (agent_name, now))
            cursor.execute(sql.delete_q_values, (agent_name,))
            if entries:
                cursor.executemany(
                    sql.upsert_q_value, [(agent_name, s, a, v, now) for s, a, v in entries]
                )

        self._run(work)
        self._known_rows.add((_Q_AGENTS, agent_name))

    def _save_q_values(self, agent_name: str, changed: QTable) -> None:
        entries = _q_entries(changed)
        sql = self._sql
        register = (_Q_AGENTS, agent_name) not in self._known_rows

        def work(cursor: Any) -> None:
            now = time.time()
            if register:
                cursor.execute(sql.register_q_agent, (agent_name, now))
            if len(entries) == 1:
                state, action, value = entries[0]
                cursor.execute(sql.upsert_q_value, (agent_name, state, action, value, now))
            elif entries:
                cursor.executemany(
                    sql.upsert_q_value, [(agent_name, s, a, v, now) for s, a, v in entries]
                )

        self._run(work)
        self._known_rows.add((_Q_AGENTS, agent_name))

    def _get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        statement = self._sql.select_q_state

        def work(cursor: Any) -> dict[str, float]:
            cursor.execute(statement, (agent_name, state))
            values = {}
            for action, value in cursor.fetchall():
                if value.__class__ is not float:
                    value = self._q_value(value, agent_name, state, action)
                values[action] = value
            return values

        # One statement on the primary key: autocommit outside a transaction.
        return self._run(work, write=False, atomic=False)

    def _lock_learner(self, agent_name: str) -> None:
        statement = self._sql.lock_learner
        if not statement:
            return  # SQLite: BEGIN IMMEDIATE already excludes every other writer
        with self._lock:
            if self._depth:
                self._run(lambda cursor: cursor.execute(statement, (agent_name,)))

    def _get_q_table(self, agent_name: str) -> QTable | None:
        def work(cursor: Any) -> QTable | None:
            registered = self._execute(
                cursor,
                "q_agent",
                lambda: sa.select(schema.q_agents.c.id).where(
                    schema.q_agents.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall()
            table = self._read_q_rows(cursor, agent_name)
            if table or registered:
                return table
            problem = self._execute(
                cursor,
                "q_unmigrated",
                lambda: sa.select(schema.q_tables_unmigrated.c.problem).where(
                    schema.q_tables_unmigrated.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall()
            if problem:
                raise self._corrupt(
                    agent_name, "q_tables_unmigrated, kept from the seed's q_tables", problem[0][0]
                )
            return None

        return self._run(work, write=False)

    def _read_q_rows(self, cursor: Any, agent_name: str) -> QTable:
        if self._dialect_name == "postgresql":
            # A server-side cursor: the rows arrive in chunks instead of all at once.
            with contextlib.closing(self._dbapi.cursor(name="rlmemory_q_rows")) as rows:
                return self._collect_q_rows(rows, agent_name)
        return self._collect_q_rows(cursor, agent_name)

    def _collect_q_rows(self, cursor: Any, agent_name: str) -> QTable:
        values = schema.q_values.c
        self._execute(
            cursor,
            "q_rows",
            lambda: (
                sa.select(values.state, values.action, values.value)
                .where(values.agent_name == sa.bindparam("agent"))
                .order_by(values.state)
            ),
            agent=agent_name,
        )
        table: QTable = {}
        action_names: dict[str, str] = {}  # one str object per action name, not per row
        current_state = None
        actions: dict[str, float] = {}
        while chunk := cursor.fetchmany(50_000):
            for state, action, value in chunk:
                if state != current_state:
                    current_state = state
                    actions = table.setdefault(state, {})
                if value.__class__ is not float:
                    value = self._q_value(value, agent_name, state, action)
                actions[action_names.setdefault(action, action)] = value
        return table

    # ------------------------------------------------------------- policy gradient
    def _save_policy_params(self, agent_name: str, policy_json: str) -> None:
        self._run(
            lambda cursor: cursor.execute(
                self._sql.upsert_policy_params, (agent_name, policy_json, time.time())
            )
        )

    def _get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        policy = schema.policy_params.c
        rows = self._read(
            "policy",
            lambda: sa.select(policy.policy_params).where(
                policy.agent_name == sa.bindparam("agent")
            ),
            agent=agent_name,
        )
        if not rows:
            return None
        params: dict[str, Any] = self._load_json(
            rows[0][0], agent_name, "policy_params.policy_params"
        )
        return params

    # --------------------------------------------------------------- numeric arrays
    def _save_arrays(self, agent_name: str, arrays: list[tuple[str, np.ndarray]]) -> None:
        records = []
        for key, array in arrays:
            dtype_name = str(array.dtype)
            data = np.ascontiguousarray(array, dtype=STORED_ARRAY_DTYPES[dtype_name]).tobytes()
            records.append((key, dtype_name, json.dumps(list(array.shape)), data))
        sql = self._sql

        def work(cursor: Any) -> None:
            now = time.time()
            rows = [
                (agent_name, key, dtype, shape, data, now) for key, dtype, shape, data in records
            ]
            if len(rows) == 1:
                cursor.execute(sql.upsert_array, rows[0])
            else:
                cursor.executemany(sql.upsert_array, rows)

        self._run(work)

    def _get_arrays(self, agent_name: str, keys: list[str] | None) -> dict[str, np.ndarray]:
        if keys is not None:
            return self._get_named_arrays(agent_name, sorted(keys))
        arrays = schema.learner_arrays.c
        rows = self._read(
            "arrays",
            lambda: (
                sa.select(arrays.key, arrays.dtype, arrays.shape, arrays.data)
                .where(arrays.agent_name == sa.bindparam("agent"))
                .order_by(arrays.key)
            ),
            agent=agent_name,
        )
        return {
            key: self._decode_array(agent_name, key, dtype_name, shape_text, data)
            for key, dtype_name, shape_text, data in rows
        }

    def _get_named_arrays(self, agent_name: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The arrays of these keys, one primary-key lookup each (learners read one or two
        small arrays per update; reading every array of the agent would cost O(d²))."""
        statement = self._sql.select_array

        def work(cursor: Any) -> list[tuple[str, Any]]:
            found: list[tuple[str, Any]] = []
            for key in keys:
                cursor.execute(statement, (agent_name, key))
                found.extend((key, row) for row in cursor.fetchall())
            return found

        rows = self._run(work, write=False, atomic=len(keys) > 1)
        return {
            key: self._decode_array(agent_name, key, dtype_name, shape_text, data)
            for key, (dtype_name, shape_text, data) in rows
        }

    def _delete_arrays(self, agent_name: str, keys: list[str] | None) -> int:
        arrays = schema.learner_arrays.c
        if keys is None:
            return self._write(
                "delete_all_arrays",
                lambda: sa.delete(schema.learner_arrays).where(
                    arrays.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            )
        names = sorted(keys)

        def delete_named(cursor: Any) -> int:
            deleted = 0
            for key in names:
                deleted += self._execute(
                    cursor,
                    "delete_array",
                    lambda: sa.delete(schema.learner_arrays).where(
                        arrays.agent_name == sa.bindparam("agent"),
                        arrays.key == sa.bindparam("key"),
                    ),
                    agent=agent_name,
                    key=key,
                ).rowcount
            return deleted

        return self._run(delete_named)

    # ---------------------------------------------------------------- learner steps
    def _append_learner_steps(self, agent_name: str, steps: list[tuple[str, bytes]]) -> list[int]:
        statement = self._sql.insert_learner_step

        def work(cursor: Any) -> list[int]:
            now = time.time()
            ids = []
            for key, data in steps:
                cursor.execute(statement, (agent_name, key, data, now))
                ((row_id,),) = cursor.fetchall()
                ids.append(int(row_id))
            return ids

        return self._run(work)

    def _get_learner_steps(self, agent_name: str, after_id: int) -> list[Any]:
        statement = self._sql.select_learner_steps

        def work(cursor: Any) -> list[Any]:
            cursor.execute(statement, (agent_name, after_id))
            rows: list[Any] = cursor.fetchall()
            return rows

        rows = self._run(work, write=False, atomic=False)
        where = f"{self.location}: learner_steps of agent {agent_name!r}"
        return [
            LearnerStep(int(row_id), key, decode_values(data, where)) for row_id, key, data in rows
        ]

    def _delete_learner_steps(self, agent_name: str, through_id: int | None) -> int:
        steps = schema.learner_steps.c
        if through_id is None:
            return self._write(
                "delete_all_learner_steps",
                lambda: sa.delete(schema.learner_steps).where(
                    steps.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            )
        return self._write(
            "delete_learner_steps",
            lambda: sa.delete(schema.learner_steps).where(
                steps.agent_name == sa.bindparam("agent"), steps.id <= sa.bindparam("through")
            ),
            agent=agent_name,
            through=through_id,
        )


__all__ = ["SqlLearnedState"]
