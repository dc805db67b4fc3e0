"""The histories in the SQL store: rewards, interactions and decisions.

:class:`SqlHistory` is a part of :class:`rlmemory.store.sql.MemoryDatabase` standing on
:class:`rlmemory.store.sql.codec.SqlCodec`. Appends run the plain driver statements of
:mod:`rlmemory.store.sql.dialect` (each is one ``INSERT … RETURNING id``); reads are
Core statements compiled once. Request, response and feedback texts are sealed on the
way in and opened on the way out. The hooks receive checked arguments
(:class:`rlmemory.store.base.MemoryStore`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from rlmemory.errors import UnknownDecisionError, UnknownInteractionError
from rlmemory.store.rows import Row
from rlmemory.store.sql import schema
from rlmemory.store.sql.codec import SqlCodec, decision_columns, interaction_columns
from rlmemory.store.sql.connection import Statement

#: Interactions read per query while looking for encrypted texts.
_SCAN_BATCH = 500


def _returned_id(
    cursor: Any, statement: str, values: tuple[Any, ...], decision_id: int | None = None
) -> int:
    """Run an INSERT ... RETURNING id; no row back means the decision does not exist."""
    cursor.execute(statement, values)
    rows = cursor.fetchall()
    if not rows:
        raise UnknownDecisionError(decision_id)
    ((row_id,),) = rows
    return int(row_id)


class SqlHistory(SqlCodec):
    """History hooks of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    # ---------------------------------------------------------------------- rewards
    def _save_agent_reward(
        self, agent_name: str, reward: float, components_json: str, decision_id: int | None
    ) -> int:
        values = (agent_name, reward, components_json, time.time(), decision_id)
        statement = (
            self._sql.insert_reward if decision_id is None else self._sql.insert_decision_reward
        )
        return self._run(lambda cursor: _returned_id(cursor, statement, values, decision_id))

    def _get_agent_rewards(self, agent_name: str, limit: int) -> list[Row]:
        rewards = schema.agent_rewards.c
        rows = self._read(
            "rewards",
            lambda: (
                sa.select(
                    rewards.id,
                    rewards.reward,
                    rewards.reward_components,
                    rewards.decision_id,
                    rewards.timestamp,
                )
                .where(rewards.agent_name == sa.bindparam("agent"))
                .order_by(rewards.id.desc())
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )
        return [self._reward_row(row_id, agent_name, *rest) for row_id, *rest in rows]

    # ----------------------------------------------------------------- interactions
    def _save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None,
        decision_id: int | None,
    ) -> int:
        sealed_feedback = None if feedback is None else self._seal_text(feedback)
        values = (
            agent_name,
            self._seal_text(request),
            self._seal_text(response),
            sealed_feedback,
            time.time(),
            decision_id,
        )
        statement = (
            self._sql.insert_interaction
            if decision_id is None
            else self._sql.insert_decision_interaction
        )
        return self._run(lambda cursor: _returned_id(cursor, statement, values, decision_id))

    def _interactions(self, name: str, build: Statement, **params: Any) -> list[Row]:
        return [self._interaction_row(row) for row in self._read(name, build, **params)]

    def _get_agent_interactions(self, agent_name: str, limit: int) -> list[Row]:
        table = schema.agent_interactions.c
        return self._interactions(
            "interactions",
            lambda: (
                sa.select(*interaction_columns())
                .where(table.agent_name == sa.bindparam("agent"))
                .order_by(table.id.desc())
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def _get_agent_interaction(self, interaction_id: int) -> Row:
        table = schema.agent_interactions.c
        rows = self._interactions(
            "interaction",
            lambda: sa.select(*interaction_columns()).where(table.id == sa.bindparam("row_id")),
            row_id=interaction_id,
        )
        if not rows:
            raise UnknownInteractionError(interaction_id)
        return rows[0]

    def _find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        if self._cipher is not None or self._store_key_id is not None:
            return self._find_encrypted_interaction(agent_name, request, response)
        table = schema.agent_interactions.c
        rows = self._interactions(
            "find_interaction",
            lambda: (
                sa.select(*interaction_columns())
                .where(
                    table.agent_name == sa.bindparam("agent"),
                    table.request == sa.bindparam("request"),
                    table.response == sa.bindparam("response"),
                )
                .order_by(table.id.desc())
                .limit(1)
            ),
            agent=agent_name,
            request=request,
            response=response,
        )
        return rows[0] if rows else None

    def _find_encrypted_interaction(
        self, agent_name: str, request: str, response: str
    ) -> Row | None:
        """Newest-first scan: encrypted texts cannot be compared in SQL (random nonces)."""
        table = schema.agent_interactions.c
        before = 2**62
        while True:
            rows = self._interactions(
                "find_encrypted_interaction",
                lambda: (
                    sa.select(*interaction_columns())
                    .where(
                        table.agent_name == sa.bindparam("agent"),
                        table.id < sa.bindparam("before"),
                    )
                    .order_by(table.id.desc())
                    .limit(_SCAN_BATCH)
                ),
                agent=agent_name,
                before=before,
            )
            for row in rows:
                if row["request"] == request and row["response"] == response:
                    return row
            if len(rows) < _SCAN_BATCH:
                return None
            before = rows[-1]["id"]

    def _set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        sealed = self._seal_text(feedback)
        table = schema.agent_interactions

        updated = self._write(
            "set_feedback",
            lambda: (
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values(feedback=sa.bindparam("feedback"), learned_feedback=None)
            ),
            row_id=interaction_id,
            feedback=sealed,
        )
        if updated != 1:
            raise UnknownInteractionError(interaction_id)

    def _get_unlearned_feedback(self, agent_name: str, limit: int) -> list[Row]:
        table = schema.agent_interactions.c
        return self._interactions(
            "unlearned",
            lambda: (
                sa.select(*interaction_columns())
                .where(
                    table.agent_name == sa.bindparam("agent"),
                    table.feedback.is_not(None),
                    sa.or_(
                        table.learned_feedback.is_(None), table.learned_feedback != table.feedback
                    ),
                )
                .order_by(table.id)
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def _mark_feedback_learned(self, interaction_ids: list[int]) -> None:
        statement = self._sql.mark_feedback_learned

        def work(cursor: Any) -> None:
            for row_id in interaction_ids:
                cursor.execute(statement, (row_id,))
                if cursor.rowcount != 1:
                    raise UnknownInteractionError(row_id)

        self._run_undoable(work)

    # -------------------------------------------------------------------- decisions
    def _save_agent_decision(
        self,
        agent_name: str,
        state: str,
        selected_action: str,
        q_values_json: str,
        reward_json: str,
        propensity: float | None,
        features_json: str | None,
    ) -> int:
        values = (
            agent_name,
            state,
            selected_action,
            q_values_json,
            reward_json,
            time.time(),
            propensity,
            features_json,
            agent_name,  # the newest version of the agent is looked up by name
        )
        return self._run(lambda cursor: _returned_id(cursor, self._sql.insert_decision, values))

    def _decisions(self, name: str, build: Statement, **params: Any) -> list[Row]:
        return [self._decision_row(row) for row in self._read(name, build, **params)]

    def _get_agent_decisions(self, agent_name: str, limit: int) -> list[Row]:
        table = schema.agent_decisions.c
        return self._decisions(
            "decisions",
            lambda: (
                sa.select(*decision_columns())
                .where(table.agent_name == sa.bindparam("agent"))
                .order_by(table.id.desc())
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def _get_agent_decision(self, decision_id: int) -> Row:
        table = schema.agent_decisions.c
        rows = self._decisions(
            "decision",
            lambda: sa.select(*decision_columns()).where(table.id == sa.bindparam("row_id")),
            row_id=decision_id,
        )
        if not rows:
            raise UnknownDecisionError(decision_id)
        return rows[0]

    def _iter_agent_decisions(
        self, agent_name: str, after_id: int, batch_size: int
    ) -> Iterator[Row]:
        table = schema.agent_decisions.c
        while True:
            batch = self._decisions(
                "decisions_after",
                lambda: (
                    sa.select(*decision_columns())
                    .where(
                        table.agent_name == sa.bindparam("agent"), table.id > sa.bindparam("after")
                    )
                    .order_by(table.id)
                    .limit(sa.bindparam("limit"))
                ),
                agent=agent_name,
                after=after_id,
                limit=batch_size,
            )
            yield from batch
            if len(batch) < batch_size:
                return
            after_id = batch[-1]["id"]

    def _set_decision_reward(self, decision_id: int, reward_json: str) -> None:
        statement = self._sql.update_decision_reward

        def work(cursor: Any) -> None:
            cursor.execute(statement, (reward_json, decision_id))
            if cursor.rowcount != 1:
                raise UnknownDecisionError(decision_id)

        self._run(work)


__all__ = ["SqlHistory"]
