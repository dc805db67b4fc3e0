"""Maintenance of the file store: corrections, deletions, pruning, inspection, re-encryption.

:class:`FileMaintenance` is the base class of
:class:`~rlmemory.store.files.FileBackedMemoryDatabase` holding what operators do to a
store rather than what the learning loop does: correct or delete one reward or
interaction, delete policy parameters or Q-table states, prune histories, summarise a
Q-table per state, and re-encrypt everything with a new key. Deleting or pruning rows
rewrites the history file without them (patches folded in), so space is given back;
every change goes through the undo journal like any other write.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from rlmemory.errors import UnknownInteractionError, UnknownRewardError
from rlmemory.store._operations import nothing_pruned
from rlmemory.store.files.backup import FileBackup
from rlmemory.store.files.encode import json_object, json_value
from rlmemory.store.files.io import encode_line, iter_records_forward
from rlmemory.store.files.layout import (
    DECISIONS_FILE,
    HISTORY_FILE,
    INTERACTIONS_FILE,
    POLICY_FILE,
    Q_TABLE_FILE,
    Q_UPDATES_FILE,
    VERSIONS_DATA_FILE,
)
from rlmemory.store.files.rows import all_rows, public_reward
from rlmemory.store.files.tables import fold, modified, state_times
from rlmemory.store.rows import Row

#: The texts of an interaction that are encrypted when the store encrypts.
SEALED_COLUMNS = ("request", "response", "feedback", "learned_feedback")


class FileMaintenance(FileBackup):
    """The maintenance hooks of :class:`~rlmemory.store.base.MemoryStore` (module doc)."""

    # ------------------------------------------------------------ learned state
    def _delete_policy_params(self, agent_name: str) -> bool:
        with self.transaction():
            path = self._agent_folder(agent_name) / POLICY_FILE
            if not path.exists():
                return False
            self._delete_file(path)
            return True

    def _delete_q_states(self, agent_name: str, states: list[str]) -> int:
        with self.transaction():
            folder = self._agent_folder(agent_name)
            table = fold(folder / Q_TABLE_FILE, folder / Q_UPDATES_FILE, 2) or {}
            doomed = [state for state in states if state in table]
            if not doomed:
                return 0
            self._log_q_change(folder, {"delete": doomed})
            return sum(len(table[state]) for state in doomed)

    def _q_state_stats(self, agent_name: str) -> list[Row]:
        with self._locked():
            folder = self._agent_folder(agent_name)
            updates = folder / Q_UPDATES_FILE
            table = fold(folder / Q_TABLE_FILE, updates, 2) or {}
            base_time = modified(folder / Q_TABLE_FILE) or 0.0
            touched = state_times(updates, base_time=base_time)
            visits: dict[Any, int] = {}
            for row in all_rows(folder / DECISIONS_FILE):
                visits[row.get("state")] = visits.get(row.get("state"), 0) + 1
        return [
            {
                "state": state,
                "actions": len(actions),
                "last_updated": touched.get(state, base_time),
                "visits": visits.get(state, 0),
            }
            for state, actions in table.items()
        ]

    # --------------------------------------------------------------- corrections
    def _get_agent_reward(self, reward_id: int) -> Row:
        with self._locked():
            path, row = self._find_row("rewards", reward_id)
            if row is None:
                raise UnknownRewardError(reward_id)
            return public_reward(row, self._name_of(path.parent), path)

    def _update_agent_reward(
        self, reward_id: int, reward: float, components_json: str | None
    ) -> None:
        fragments = {"reward": json_value(reward)}
        if components_json is not None:
            fragments["reward_components"] = components_json.encode("utf-8")
        with self._locked():
            path, row = self._find_row("rewards", reward_id)
            if row is None:
                raise UnknownRewardError(reward_id)
            self._append_patch(path, reward_id, json_object(**fragments))

    def _delete_agent_reward(self, reward_id: int) -> None:
        self._delete_row("rewards", reward_id, UnknownRewardError)

    def _update_agent_interaction(
        self, interaction_id: int, request: str | None, response: str | None
    ) -> None:
        fragments = {
            name: self._sealed_text(value)
            for name, value in (("request", request), ("response", response))
            if value is not None
        }
        with self._locked():
            path, row = self._find_row("interactions", interaction_id)
            if row is None:
                raise UnknownInteractionError(interaction_id)
            self._append_patch(path, interaction_id, json_object(**fragments))

    def _delete_agent_interaction(self, interaction_id: int) -> None:
        self._delete_row("interactions", interaction_id, UnknownInteractionError)

    def _delete_row(self, table: str, row_id: int, error: type[LookupError]) -> None:
        with self.transaction():
            path, row = self._find_row(table, row_id)
            if row is None:
                raise error(row_id)
            self._rewrite_history(path, lambda kept: kept["id"] != row_id)

    # ------------------------------------------------------------------- pruning
    def _prune_history(
        self,
        agent_name: str,
        table: str,
        older_than: float | None,
        keep_newest: int | None,
        dry_run: bool,
    ) -> Row:
        if older_than is None and keep_newest is None:
            return nothing_pruned()
        with self.transaction():
            path = self._agent_folder(agent_name) / HISTORY_FILE[table]
            rows = all_rows(path)
            floor = -math.inf
            if keep_newest is not None:
                ids = sorted(row["id"] for row in rows)
                floor = (
                    math.inf
                    if keep_newest == 0
                    else (ids[-keep_newest] if len(ids) >= keep_newest else -math.inf)
                )

            def doomed(row: dict[str, Any]) -> bool:
                too_old = older_than is not None and row.get("timestamp", 0.0) < older_than
                return bool(too_old or row["id"] < floor)

            going = [row for row in rows if doomed(row)]
            if not going:
                return nothing_pruned()
            if not dry_run:
                self._rewrite_history(path, lambda row: not doomed(row))
        return {
            "rows": len(going),
            "first_id": min(row["id"] for row in going),
            "last_id": max(row["id"] for row in going),
            "oldest": min(row["timestamp"] for row in going),
            "newest": max(row["timestamp"] for row in going),
        }

    # ---------------------------------------------------------------- encryption
    def reencrypt(self, cipher: Any) -> tuple[int, int]:
        """Re-encrypt every interaction text (and version payload, when payloads are
        encrypted) with ``cipher``; rewrite the files whole, so no old ciphertext or
        plaintext stays in them. Returns (rows changed, values written)."""
        changed_rows = written = 0

        def reseal(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            return cipher.encrypt_text(cipher.decrypt_text(value))

        with self.transaction():
            for folder in self._agent_folders():
                path = folder / INTERACTIONS_FILE
                rows = all_rows(path)
                for row in rows:
                    feedback, learned = row.get("feedback"), row.get("learned_feedback")
                    new_feedback = reseal(feedback)
                    row["learned_feedback"] = (
                        new_feedback
                        if learned is not None and learned == feedback
                        else reseal(learned)
                    )
                    row["feedback"] = new_feedback
                    row["request"] = reseal(row.get("request"))
                    row["response"] = reseal(row.get("response"))
                    written += sum(isinstance(row.get(key), str) for key in SEALED_COLUMNS)
                if rows:
                    self._replace(path, b"".join(encode_line(row) for row in rows))
                    changed_rows += len(rows)
                if self._encrypt_payloads:
                    data_path = folder / VERSIONS_DATA_FILE
                    records = [record for _, record in iter_records_forward(data_path)]
                    for record in records:
                        sealed = cipher.encrypt_bytes(
                            cipher.decrypt_bytes(base64.b64decode(record["payload"]))
                        )
                        record["payload"] = base64.b64encode(sealed).decode("ascii")
                        written += 1
                    if records:
                        self._replace(data_path, b"".join(map(encode_line, records)))
                        changed_rows += len(records)
            self._write_meta(encryption_key_id=cipher.key_id)
        self._adopt_cipher(cipher)
        return changed_rows, written
