"""The histories of the file store: rewards, interactions and decisions of each agent.

One JSON Lines file per history in the agent's folder, one row per line with its id
(from the id index, see :mod:`rlmemory.store.files.records`); feedback, "learned" marks
and delayed rewards are patch lines ``{"patch": id, field: value}`` appended after the
row, so a history is never rewritten by the learning loop. Newest-first reads go
backwards from the end of the file and stop early (:mod:`rlmemory.store.files.rows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlmemory.errors import UnknownDecisionError, UnknownInteractionError
from rlmemory.store.files.encode import json_object, json_value, now, text_fragment
from rlmemory.store.files.layout import DECISIONS_FILE, INTERACTIONS_FILE, REWARDS_FILE
from rlmemory.store.files.maintenance import FileMaintenance
from rlmemory.store.files.rows import (
    all_rows,
    newest_rows,
    public_decision,
    public_interaction,
    public_reward,
)
from rlmemory.store.files.versions import latest_version_in
from rlmemory.store.rows import Row


class FileHistories(FileMaintenance):
    """The history hooks of :class:`~rlmemory.store.base.MemoryStore` (module docstring)."""

    # ------------------------------------------------------------------- rewards
    def _save_agent_reward(
        self, agent_name: str, reward: float, components_json: str, decision_id: int | None
    ) -> int:
        body = json_object(
            reward=json_value(reward),
            reward_components=components_json.encode("utf-8"),
            decision_id=json_value(decision_id),
            timestamp=now(),
        )
        with self._locked():
            self._check_decision_exists(decision_id)
            return self._append_row("rewards", agent_name, body)

    def _get_agent_rewards(self, agent_name: str, limit: int) -> list[Row]:
        path = self._agent_folder(agent_name) / REWARDS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [public_reward(row, agent_name, path) for row in rows]

    # -------------------------------------------------------------- interactions
    def _save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None,
        decision_id: int | None,
    ) -> int:
        body = json_object(
            request=self._sealed_text(request),
            response=self._sealed_text(response),
            feedback=self._sealed_text(feedback),
            decision_id=json_value(decision_id),
            learned_feedback=b"null",
            timestamp=now(),
        )
        with self._locked():
            self._check_decision_exists(decision_id)
            return self._append_row("interactions", agent_name, body)

    def _get_agent_interactions(self, agent_name: str, limit: int) -> list[Row]:
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [self._interaction_public(row, agent_name, path) for row in rows]

    def _get_agent_interaction(self, interaction_id: int) -> Row:
        with self._locked():
            path, row = self._find_row("interactions", interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            return self._interaction_public(row, self._name_of(path.parent), path)

    def _find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = newest_rows(
                path,
                1,
                lambda row: (
                    self._open_text(row.get("request")) == request
                    and self._open_text(row.get("response")) == response
                ),
            )
        return self._interaction_public(rows[0], agent_name, path) if rows else None

    def _set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        changes = json_object(feedback=self._sealed_text(feedback), learned_feedback=b"null")
        with self._locked():
            path, row = self._find_row("interactions", interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            self._append_patch(path, interaction_id, changes)

    def _get_unlearned_feedback(self, agent_name: str, limit: int) -> list[Row]:
        path = self._agent_folder(agent_name) / INTERACTIONS_FILE
        with self._locked():
            rows = all_rows(path)
        unlearned = [
            public
            for public in (public_interaction(row, agent_name, path) for row in rows)
            if public["feedback"] is not None and not public["feedback_learned"]
        ]
        return [self._opened_interaction(public) for public in unlearned[:limit]]

    def _mark_feedback_learned(self, interaction_ids: list[int]) -> None:
        with self.transaction():
            found = [self._find_row("interactions", i) for i in interaction_ids]
            for interaction_id, (_, row) in zip(interaction_ids, found, strict=True):
                if row is None:
                    raise UnknownInteractionError(interaction_id)
            for interaction_id, (path, row) in zip(interaction_ids, found, strict=True):
                assert row is not None
                learned = text_fragment(row.get("feedback"))  # as stored (maybe encrypted)
                self._append_patch(path, interaction_id, json_object(learned_feedback=learned))

    def _interaction_public(self, row: dict[str, Any], agent_name: str, path: Path) -> Row:
        return self._opened_interaction(public_interaction(row, agent_name, path))

    def _opened_interaction(self, public: Row) -> Row:
        for column in ("request", "response", "feedback"):
            public[column] = self._open_text(public[column])
        return public

    # ------------------------------------------------------------------ decisions
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
        body = json_object(
            state=text_fragment(state),
            selected_action=text_fragment(selected_action),
            q_values=q_values_json.encode("utf-8"),
            reward=reward_json.encode("utf-8"),
            propensity=json_value(propensity),
            features=b"null" if features_json is None else features_json.encode("utf-8"),
            timestamp=now(),
        )
        with self._locked():
            version = latest_version_in(self._agent_folder(agent_name))
            body = body[:-1] + b',"version":' + json_value(version) + b"}"
            return self._append_row("decisions", agent_name, body)

    def _get_agent_decisions(self, agent_name: str, limit: int) -> list[Row]:
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = newest_rows(path, limit)
        return [public_decision(row, agent_name, path) for row in rows]

    def _get_agent_decision(self, decision_id: int) -> Row:
        with self._locked():
            path, row = self._find_row("decisions", decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)
            return public_decision(row, self._name_of(path.parent), path)

    def _iter_agent_decisions(
        self, agent_name: str, after_id: int, batch_size: int
    ) -> Iterator[Row]:
        """Oldest first: every decision of ``agent_name`` with id > ``after_id``.

        The file store reads the decisions as they are when the call is made (one pass
        over the file, under the lock) and then yields them; ``batch_size`` has no
        effect here.
        """
        path = self._agent_folder(agent_name) / DECISIONS_FILE
        with self._locked():
            rows = all_rows(path, after_id)
        return (public_decision(row, agent_name, path) for row in rows)

    def _set_decision_reward(self, decision_id: int, reward_json: str) -> None:
        changes = json_object(reward=reward_json.encode("utf-8"))
        with self._locked():
            path, row = self._find_row("decisions", decision_id)
            if row is None:
                raise UnknownDecisionError(decision_id)
            self._append_patch(path, decision_id, changes)
