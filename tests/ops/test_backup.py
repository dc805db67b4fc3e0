"""Backups: consistent under load, verified by checksums, restored to any backend."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from rlmemory.errors import CorruptStoreError
from rlmemory.ops.backup import backup, restore, verify
from rlmemory.ops.versions import checkpoint, list_versions
from rlmemory.service.keys import check_api_key, new_api_key
from rlmemory.service.loops import LoopRegistry
from rlmemory.store import open_store

WORKER = Path(__file__).with_name("ops_worker.py")


def _fill(store):
    decision = store.save_agent_decision(
        "router", "code", "coder", {"coder": 0.9}, 0.75, propensity=0.5, features=[0.5, 1.5]
    )
    store.save_agent_reward("router", 0.75, {"task": 1.0}, decision)
    interaction = store.save_agent_interaction("router", "fix it", "fixed", "great", decision)
    store.mark_feedback_learned([interaction])
    store.save_agent_interaction("router", "ünïcode 🚀", "reply", None)
    store.save_q_values("router", {"code": {"coder": 0.9, "search": 0.1}})
    store.save_q_table("empty-table", {})
    store.save_policy_params("pg", {"weights": [[0.25, -1.0]], "actions": ["a", "b"]})
    store.save_arrays("bandit", {"A:a": np.eye(3), "n:a": np.arange(4, dtype=np.int64)})
    store.append_learner_steps("bandit", [("a", np.array([1.0, 1.0, 0.5, -2.0]))])
    store.append_learner_steps("pg", [("b", np.array([0.25]))])
    store.append_learner_steps("bandit", [("b", np.array([0.0, 2.0, 1e-300, 3.0]))])
    checkpoint(store, "router", "backed up")
    _fill_settings(store)


def _fill_settings(store):
    """A service loop (its settings), an API key hash and a setting saved directly."""
    LoopRegistry(store).get("triage", create=True)
    store.save_setting("notes", "ünï 🚀", {"nested": {"list": [1, 2.5, None, "x"]}, "b": True})
    return new_api_key(store, "admin", note="ops")


def _settings(store):
    """Every setting as (namespace, key, stored JSON text): what must survive unchanged."""
    with store.snapshot() as read_table:
        return [
            (row["namespace"], row["key"], row["value"]) for row in read_table("rlmemory_settings")
        ]


def _dump(store):
    with store.snapshot() as read_table:
        return {table: list(read_table(table)) for table in store.backup_tables()}


def _public_view(store):
    """Everything readable through the store API, for comparison across backends."""
    view = {}
    for agent in store.list_agents():
        view[agent] = {
            "q_table": store.get_q_table(agent),
            "policy": store.get_policy_params(agent),
            "arrays": {k: (v.dtype.name, v.tolist()) for k, v in store.get_arrays(agent).items()},
            "steps": [(s.id, s.key, s.values.tolist()) for s in store.get_learner_steps(agent)],
            "rewards": store.get_agent_rewards(agent, limit=1000),
            "interactions": store.get_agent_interactions(agent, limit=1000),
            "decisions": store.get_agent_decisions(agent, limit=1000),
            "versions": [(v.version, v.note, v.created) for v in list_versions(store, agent)],
        }
    view[("settings",)] = _settings(store)
    return view


def test_archive_round_trip_restores_every_row_with_its_id(make_store, tmp_path):
    source = make_store()
    _fill(source)
    archive = tmp_path / "backup.rlmbackup"
    report = backup(source, archive, kind="archive")
    assert report.kind == "archive" and report.counts["agent_rewards"] == 1
    assert verify(archive).ok
    target = open_store(str(tmp_path / "restored.db"))
    try:
        restore(archive, target)
        assert _public_view(target) == _public_view(source)
        new_id = target.save_agent_reward("router", 0.1, {})
        assert new_id > source.get_agent_rewards("router")[0]["id"]
    finally:
        target.close()


@pytest.mark.postgres
def test_sqlite_to_postgresql_and_back(tmp_path, postgres_store_url):
    sqlite_store = open_store(str(tmp_path / "a.db"))
    _fill(sqlite_store)
    backup(sqlite_store, tmp_path / "a.db.bak.db")  # SQLite online copy
    with open_store(postgres_store_url) as postgres:
        restore(tmp_path / "a.db.bak.db", postgres)
        assert _public_view(postgres) == _public_view(sqlite_store)
        backup(postgres, tmp_path / "pg.tar")
    with open_store(str(tmp_path / "b.db")) as back:
        restore(tmp_path / "pg.tar", back)
        assert _dump(back) == _dump(sqlite_store)
    sqlite_store.close()


BACKEND_CHAINS = {
    "sqlite-postgresql-files-sqlite": ("sqlite", "postgresql", "files", "sqlite"),
    "sqlite-files-postgresql-sqlite": ("sqlite", "files", "postgresql", "sqlite"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("chain", list(BACKEND_CHAINS))
def test_settings_survive_backup_and_restore_between_every_pair_of_backends(
    chain, tmp_path, postgres_store_url
):
    """A loop made through the service, an API key and a setting go through each backend
    in turn (the two chains cover every ordered pair): restored identical, and usable."""
    locations = {
        "sqlite": str(tmp_path / "first.db"),
        "postgresql": postgres_store_url,
        "files": "files://" + str(tmp_path / "files-store"),
    }
    hops = BACKEND_CHAINS[chain]
    with open_store(locations["sqlite"]) as first:
        key = _fill_settings(first)
        expected = _settings(first)
        backup(first, tmp_path / "hop0.db")  # a SQLite copy for the first hop
    assert {namespace for namespace, _, _ in expected} == {"api_keys", "loops", "notes"}
    previous = tmp_path / "hop0.db"
    for hop, backend in enumerate(hops[1:], start=1):
        location = str(tmp_path / "last.db") if hop == len(hops) - 1 else locations[backend]
        with open_store(location) as target:
            report = restore(previous, target)
            assert report.counts["rlmemory_settings"] == len(expected), backend
            assert _settings(target) == expected, backend
            assert check_api_key(target, key) == "admin", backend
            loop = LoopRegistry(target).get("triage")
            assert loop.settings == LoopRegistry(target).settings_of("triage")
            previous = tmp_path / f"hop{hop}.tar"
            backup(target, previous, kind="archive")


def test_restore_refuses_a_target_holding_settings_and_replace_replaces_them(make_store, tmp_path):
    with make_store() as source:
        _fill_settings(source)
        expected = _settings(source)
        backup(source, tmp_path / "backup.tar")
    with open_store("files://" + str(tmp_path / "target")) as target:
        target.save_setting("loops", "other", {"learner": "old"})
        with pytest.raises(ValueError, match=r"1 setting\(s\).*replace"):
            restore(tmp_path / "backup.tar", target)
        assert _settings(target) == [("loops", "other", '{"learner":"old"}')]
        restore(tmp_path / "backup.tar", target, replace=True)
        assert _settings(target) == expected


def test_sqlite_online_copy_is_a_plain_sqlite_database(tmp_path):
    with open_store(str(tmp_path / "live.db")) as live:
        _fill(live)
        report = backup(live, tmp_path / "copy.db")
    assert report.kind == "sqlite"
    result = verify(tmp_path / "copy.db")
    assert result.ok and result.kind == "sqlite"
    with open_store(str(tmp_path / "copy.db")) as copy:
        assert copy.get_q_table("router") == {"code": {"coder": 0.9, "search": 0.1}}


def test_verify_detects_an_altered_member(store, tmp_path):
    _fill(store)
    archive = tmp_path / "backup.tar"
    backup(store, archive)
    altered = tmp_path / "altered.tar"
    with tarfile.open(archive) as original, tarfile.open(altered, "w") as copy:
        for member in original.getmembers():
            data = original.extractfile(member).read()
            if member.name.endswith("agent_rewards.jsonl.zst"):
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            copy.addfile(member, __import__("io").BytesIO(data))
    result = verify(altered)
    assert not result.ok
    assert any("agent_rewards" in problem and "SHA-256" in problem for problem in result.problems)
    target = open_store(str(tmp_path / "target.db"))
    try:
        with pytest.raises(CorruptStoreError, match="failed verification"):
            restore(altered, target)
        assert target.list_agents() == []
    finally:
        target.close()


def test_restore_into_a_non_empty_store_needs_replace_and_keeps_versions(store, tmp_path):
    _fill(store)
    backup(store, tmp_path / "backup.tar")
    store.save_q_values("router", {"code": {"coder": -1.0}})
    store.save_agent_reward("router", 0.0, {"late": True})
    with pytest.raises(ValueError, match="replace"):
        restore(tmp_path / "backup.tar", store)
    report = restore(tmp_path / "backup.tar", store, replace=True)
    assert store.get_q_table("router") == {"code": {"coder": 0.9, "search": 0.1}}
    assert len(store.get_agent_rewards("router", limit=10)) == 1
    saved = report.saved_versions["router"]
    notes = [info.note for info in list_versions(store, "router")]
    assert notes == ["backed up", "auto: before restore from backup.tar"]
    assert saved == 2


def _start_writers(location, env, count=4):
    workers = []
    for worker in range(count):
        process = subprocess.Popen(
            [sys.executable, str(WORKER), location, str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout.readline().strip() == "ready"
        workers.append(process)
    return workers


def _wait_for_units(workers, units):
    for process in workers:
        for _ in range(units):
            assert process.stdout.readline().strip().isdigit()


def _stop(workers):
    for process in workers:
        process.stdin.write("stop\n")
        process.stdin.flush()
    for process in workers:
        process.stdout.read()
        assert process.wait(timeout=60) == 0


@pytest.mark.slow
def test_backup_under_four_writers_restores_a_consistent_snapshot(
    make_store, tmp_path, subprocess_env
):
    source = make_store()
    workers = _start_writers(make_store.location, subprocess_env)
    try:
        _wait_for_units(workers, 20)
        archive = tmp_path / "under-load.tar"
        backup(source, archive)
        _wait_for_units(workers, 20)  # writers kept going during and after the backup
    finally:
        _stop(workers)
    restored = open_store(str(tmp_path / "restored.db"))
    try:
        restore(archive, restored)
        backup_rows = _dump(restored)
        source_rows = _dump(source)
        for table in ("agent_decisions", "agent_rewards", "agent_interactions"):
            source_by_id = {row["id"]: row for row in source_rows[table]}
            assert backup_rows[table], table
            for row in backup_rows[table]:
                assert row == source_by_id[row["id"]], table
            assert len(backup_rows[table]) < len(source_rows[table])
        # One transaction per unit: a unit is in the backup whole or not at all, and each
        # worker's units form a prefix 0..k-1 (a snapshot never skips a committed unit).
        decisions = backup_rows["agent_decisions"]
        decision_ids = {row["id"] for row in decisions}
        for table in ("agent_rewards", "agent_interactions"):
            assert {row["decision_id"] for row in backup_rows[table]} == decision_ids
        per_worker: dict[str, list[int]] = {}
        for row in decisions:
            worker, sequence = row["state"].split("-")
            per_worker.setdefault(worker, []).append(int(sequence))
        assert len(per_worker) == 4
        for sequences in per_worker.values():
            assert sorted(sequences) == list(range(len(sequences)))
        q_values = {row["state"]: row["value"] for row in backup_rows["q_values"]}
        for worker, sequences in per_worker.items():
            assert q_values[worker] == float(max(sequences))
    finally:
        restored.close()


def test_an_encrypted_backup_restores_only_into_a_store_with_its_key(make_store, tmp_path):
    from rlmemory.errors import EncryptionKeyError
    from rlmemory.ops.crypto import generate_key

    key = generate_key()
    with make_store(encryption_key=key) as source:
        source.save_agent_interaction("router", "secret request", "reply")
        backup(source, tmp_path / "encrypted.tar")
    with open_store(str(tmp_path / "keyless.db")) as keyless:
        with pytest.raises(EncryptionKeyError, match="encrypted with key"):
            restore(tmp_path / "encrypted.tar", keyless)
        assert keyless.list_agents() == []
    with open_store(str(tmp_path / "keyed.db"), encryption_key=key) as keyed:
        restore(tmp_path / "encrypted.tar", keyed)
        assert keyed.get_agent_interactions("router")[0]["request"] == "secret request"
