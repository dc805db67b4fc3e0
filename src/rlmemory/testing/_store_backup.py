"""The store suite, whole-store operations: backup_tables, snapshot, load_rows, clear_data
and reencrypt."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.errors import EncryptionKeyError
from rlmemory.store import open_store
from rlmemory.store.base import MemoryStore
from rlmemory.store.crypto import Cipher, generate_key, is_encrypted_text
from rlmemory.store.rows import BACKUP_TABLES, Row
from rlmemory.testing._store_base import StoreFactory, SuiteBase
from rlmemory.testing._store_values import AGENT, NAMESPACE, OTHER, observe, populate

#: Columns that say when something was last written: the main round trip leaves them
#: out; test_restore_keeps_the_times_things_were_last_written pins that they are kept.
_WRITE_TIMES = ("last_updated", "last_update", "updated")


def _dump(store: MemoryStore) -> dict[str, list[Row]]:
    with store.snapshot() as read_table:
        return {table: list(read_table(table)) for table in store.backup_tables()}


def _restore(store: MemoryStore, rows: dict[str, list[Row]]) -> dict[str, int]:
    with store.transaction():
        store.clear_data()
        return {table: store.load_rows(table, rows[table]) for table in store.backup_tables()}


def _without_write_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_write_times(item)
            for key, item in value.items()
            if key not in _WRITE_TIMES
        }
    if isinstance(value, list):
        return [_without_write_times(item) for item in value]
    return value


def _write_times(store: MemoryStore) -> dict[str, Any]:
    return {
        agent: {
            "agent": store.agent_stats(agent)["last_update"],
            "states": {row["state"]: row["last_updated"] for row in store.q_state_stats(agent)},
        }
        for agent in store.list_agents()
    }


def _fill(store: MemoryStore) -> None:
    """Everything populate() writes, and some more state: learned feedback, a second
    version, an agent with only arrays."""
    existing = populate(store)
    store.mark_feedback_learned([existing.interaction_ids[1]])
    store.save_version(AGENT, b"second", "two")
    store.save_arrays("arrays-only", {"w": np.arange(4, dtype=np.int64)})
    store.save_setting("other-namespace", "x", {"y": [1, 2]})


class BackupTests(SuiteBase):
    """backup_tables, snapshot, load_rows, clear_data."""

    def test_backup_tables_are_the_tables_every_backend_shares(self, store: MemoryStore) -> None:
        assert tuple(store.backup_tables()) == BACKUP_TABLES

    def test_snapshot_then_clear_then_load_rows_gives_everything_back(
        self, store: MemoryStore
    ) -> None:
        _fill(store)
        before = observe(store)
        rows = _dump(store)
        assert rows["agent_rewards"] and rows["agent_versions"] and rows["rlmemory_settings"]
        store.clear_data()
        assert store.list_agents() == []
        assert store.list_settings(NAMESPACE) == {}
        loaded = _restore(store, rows)
        assert loaded == {table: len(table_rows) for table, table_rows in rows.items()}
        assert _without_write_times(observe(store)) == _without_write_times(before)
        assert store.list_settings("other-namespace") == {"x": {"y": [1, 2]}}
        assert _without_write_times(_dump(store)) == _without_write_times(rows)
        newest = max(row["id"] for row in rows["agent_rewards"])
        assert store.save_agent_reward(AGENT, 1.0, {}) > newest
        assert store.save_version(AGENT, b"next") == 3

    def test_restore_keeps_the_times_things_were_last_written(self, store: MemoryStore) -> None:
        """q_state_stats' last_updated, agent_stats' last_update and every row's write
        time are those of the snapshot, not of the restore."""
        _fill(store)
        before = _write_times(store)
        rows = _dump(store)
        time.sleep(0.05)
        _restore(store, rows)
        assert _write_times(store) == before
        assert _dump(store) == rows

    def test_rows_move_to_another_backend_unchanged(
        self, store: MemoryStore, tmp_path: Path
    ) -> None:
        """The rows load into rlmemory's SQLite store, which then shows the same data."""
        _fill(store)
        rows = _dump(store)
        with open_store(tmp_path / "reference.db") as reference:
            _restore(reference, rows)
            seen, expected = observe(reference), observe(store)
            assert seen.pop("feature_vectors") == 0  # the cache is not backed up
            expected.pop("feature_vectors")
            assert _without_write_times(seen) == _without_write_times(expected)
            reference_rows = _dump(reference)
        for table in BACKUP_TABLES:
            for mine, theirs in zip(rows[table], reference_rows[table], strict=True):
                assert sorted(mine) == sorted(theirs), table

    def test_load_rows_of_a_call_are_all_or_none(self, store: MemoryStore) -> None:
        populate(store)
        rows = _dump(store)
        new_id = max(row["id"] for row in rows["agent_rewards"]) + 10
        good = {**rows["agent_rewards"][0], "id": new_id}
        bad = {**good, "id": new_id + 1, "agent_name": ""}
        before = observe(store)
        with pytest.raises(ValueError, match="agent_rewards"):
            store.load_rows("agent_rewards", [good, bad])
        assert observe(store) == before
        assert store.load_rows("agent_rewards", iter([good])) == 1
        assert store.get_agent_reward(new_id)["reward"] == good["reward"]
        assert store.load_rows("agent_rewards", []) == 0

    def test_a_restored_setting_with_a_bad_name_is_refused_and_nothing_is_loaded(
        self, store: MemoryStore
    ) -> None:
        good = {"namespace": "loops", "key": "triage", "value": '{"on":true}', "updated": 1.0}
        bad = {**good, "key": "k" * 201}
        with pytest.raises(ValueError, match="key must be a non-empty string"):
            store.load_rows("rlmemory_settings", [good, bad])
        assert store.list_settings("loops") == {}

    def test_a_failed_restore_inside_a_transaction_keeps_what_was_there(
        self, store: MemoryStore
    ) -> None:
        populate(store)
        rows = _dump(store)
        before = observe(store)
        broken = [{**row, "agent_name": ""} for row in rows["agent_decisions"]]
        with pytest.raises(ValueError, match="agent_decisions"), store.transaction():
            store.clear_data()
            for table in store.backup_tables():
                store.load_rows(table, broken if table == "agent_decisions" else rows[table])
        assert observe(store) == before

    def test_restored_ids_with_gaps_keep_their_ids_and_the_gaps_stay_unknown(
        self, store: MemoryStore
    ) -> None:
        ids = [3, 5, 1_000, 2_000_000]  # a small gap, a larger one, a store whose ids ran high
        store.load_rows("agent_rewards", [_reward_row(row_id) for row_id in ids])
        for row_id in ids:
            assert store.get_agent_reward(row_id)["reward"] == float(row_id)
        for missing in (1, 4, 999, 1_999_999):
            with pytest.raises(LookupError):
                store.get_agent_reward(missing)
        assert store.save_agent_reward(AGENT, 0.5, {}) > ids[-1]
        assert [row["id"] for row in store.get_agent_rewards(AGENT, limit=10)][1:] == ids[::-1]

    def test_clear_data_can_keep_versions_and_settings(self, store: MemoryStore) -> None:
        existing = populate(store)
        versions = store.list_versions(AGENT)
        store.clear_data(keep_versions=True, keep_settings=True)
        assert store.list_versions(AGENT) == versions
        assert store.get_version(AGENT, existing.version)["payload"] == b"\x00payload\xff"
        assert store.list_settings(NAMESPACE) == {"k": {"kept": True}}
        for agent in (AGENT, OTHER):
            assert store.get_q_table(agent) is None
            assert store.get_policy_params(agent) is None
            assert store.get_arrays(agent) == {}
            assert store.get_learner_steps(agent) == []
            assert store.get_agent_rewards(agent) == []
            assert store.get_agent_interactions(agent) == []
            assert store.get_agent_decisions(agent) == []
        store.clear_data()
        assert store.list_versions(AGENT) == []
        assert store.list_settings(NAMESPACE) == {}
        assert store.list_agents() == []

    def test_snapshot_lets_writers_go_on_and_does_not_see_them(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        store, writer = make_store(), make_store()
        populate(store)
        written = threading.Event()
        result: dict[str, int] = {}

        def write() -> None:
            result["id"] = writer.save_agent_reward(AGENT, 9.0, {"during": "snapshot"})
            written.set()

        thread = threading.Thread(target=write)
        with store.snapshot() as read_table:
            before = [row["id"] for row in read_table("agent_rewards")]
            thread.start()
            wrote_during_snapshot = written.wait(3)
            during = [row["id"] for row in read_table("agent_rewards")]
        thread.join(120)
        assert wrote_during_snapshot, "a writer waited for the snapshot to end"
        assert during == before
        assert store.get_agent_rewards(AGENT, limit=1)[0]["id"] == result["id"]

    def test_snapshot_is_the_moment_its_block_was_entered(self, make_store: StoreFactory) -> None:
        self.require("reopens")
        store, writer = make_store(), make_store()
        populate(store)
        with store.snapshot() as read_table:
            late = writer.save_agent_reward(AGENT, 9.0, {"after": "entering the snapshot"})
            ids = [row["id"] for row in read_table("agent_rewards")]
        assert late not in ids
        assert store.get_agent_rewards(AGENT, limit=1)[0]["id"] == late


class EncryptionTests(SuiteBase):
    """reencrypt and encryption_key_id."""

    def test_reencrypt_encrypts_every_text_and_records_the_key(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        populate(store)
        before = observe(store)
        key = generate_key()
        cipher = Cipher(key, location=store.location)
        rows, values = store.reencrypt(cipher)
        assert rows >= 3 and values >= 8  # 3 interactions: 6 texts, 2 feedbacks
        assert store.encryption_key_id == cipher.key_id
        assert observe(store) == before
        stored = _dump(store)["agent_interactions"]
        for row in stored:
            for column in ("request", "response"):
                assert is_encrypted_text(row[column]), (column, row[column])
            assert row["feedback"] is None or is_encrypted_text(row["feedback"])

        newer = generate_key()
        rotated = Cipher(newer, location=store.location, previous_keys=[key])
        assert store.reencrypt(rotated)[0] >= 3
        assert store.encryption_key_id == rotated.key_id
        assert observe(store) == before
        if not (self.reopens and self.opens_with_encryption_key):
            return
        store.close()
        with make_store() as keyless:
            with pytest.raises(EncryptionKeyError):
                keyless.get_agent_interactions(AGENT)
            assert keyless.get_agent_rewards(AGENT, limit=10) == before[AGENT]["rewards"][:10]
        with make_store(encryption_key=newer) as keyed:
            assert keyed.encryption_key_id == rotated.key_id
            assert observe(keyed) == before


def _reward_row(row_id: int) -> Row:
    """A reward row of :data:`AGENT` as ``snapshot()`` gives it, with ``row_id``."""
    return {
        "id": row_id,
        "agent_name": AGENT,
        "reward": float(row_id),
        "reward_components": "{}",
        "decision_id": None,
        "timestamp": float(row_id),
    }
