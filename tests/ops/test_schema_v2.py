"""Schema version 2 (versions, decision versions, history counters): upgrading old stores."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from rlmemory.ops.versions import checkpoint, list_versions
from rlmemory.store import open_store
from rlmemory.store.base import SCHEMA_VERSION

SCHEMA_V1_DB = Path(__file__).with_name("data") / "store_schema_v1.db"


def test_a_version_1_sqlite_database_is_upgraded_with_its_data_intact(tmp_path):
    path = tmp_path / "old.db"
    shutil.copyfile(SCHEMA_V1_DB, path)
    with open_store(str(path)) as store:
        assert store.schema_version == SCHEMA_VERSION
        stats = store.agent_stats("router")
        assert (stats["decisions"], stats["interactions"], stats["rewards"]) == (5, 5, 5)
        assert stats["mean_reward"] == pytest.approx(0.7)
        assert store.count_agent_decisions("router") == 5
        assert store.list_agents() == ["bandit", "pg", "router"]
        assert store.get_q_table("router") == {"code": {"coder": 0.9}, "chat": {"search": 0.2}}
        assert store.get_agent_decisions("router", limit=1)[0]["version"] is None
        assert checkpoint(store, "router", "first after upgrade") == 1
        new_decision = store.save_agent_decision("router", "code", "coder", {}, None)
        assert store.get_agent_decision(new_decision)["version"] == 1
        store.save_agent_reward("router", 1.0, {})
        assert store.agent_stats("router")["rewards"] == 6
    connection = sqlite3.connect(path)
    try:
        (version,) = connection.execute(
            "SELECT value FROM rlmemory_meta WHERE key = 'schema_version'"
        ).fetchone()
        assert version == str(SCHEMA_VERSION)
    finally:
        connection.close()


def _downgrade_to_v1(connection, dialect):
    """Turn a fresh version-2 database into the version-1 layout (what rlmemory 1 wrote)."""
    if dialect == "sqlite":
        triggers = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall()
        ]
        for name in triggers:
            connection.execute(f"DROP TRIGGER {name}")
    else:
        functions = connection.execute(
            "SELECT proname FROM pg_proc WHERE proname LIKE 'rlm%'"
        ).fetchall()
        for (name,) in functions:
            connection.execute(f"DROP FUNCTION {name}() CASCADE")
    connection.execute("DROP TABLE agent_versions")
    connection.execute("DROP TABLE agent_summary")
    connection.execute("ALTER TABLE agent_decisions DROP COLUMN version")
    connection.execute("UPDATE rlmemory_meta SET value = '1' WHERE key = 'schema_version'")


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_history_counters_are_backfilled_from_rows_written_before_the_upgrade(
    dialect, tmp_path, request
):
    if dialect == "sqlite":
        location = str(tmp_path / "m.db")
    else:
        location = request.getfixturevalue("postgres_store_url")
    with open_store(location) as store:
        for index in range(3):
            store.save_agent_reward("router", float(index), {})
            store.save_agent_decision("router", "s", "a", {}, None)
    if dialect == "sqlite":
        connection = sqlite3.connect(location)
        _downgrade_to_v1(connection, "sqlite")
        connection.commit()
        connection.close()
    else:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(location).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
            _downgrade_to_v1(connection, "postgresql")
    with open_store(location) as store:
        assert store.schema_version == SCHEMA_VERSION
        stats = store.agent_stats("router")
        assert (stats["rewards"], stats["decisions"], stats["mean_reward"]) == (3, 3, 1.0)
        assert checkpoint(store, "router") == 1
        assert [info.version for info in list_versions(store, "router")] == [1]


def test_a_version_1_file_store_header_is_upgraded(tmp_path):
    folder = tmp_path / "memory"
    with open_store("files://" + str(folder)) as store:
        store.save_agent_reward("router", 1.0, {})
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["schema_version"] = 1
    meta_path.write_text(json.dumps(meta))
    with open_store("files://" + str(folder)) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert checkpoint(store, "router") == 1
    assert json.loads(meta_path.read_text())["schema_version"] == SCHEMA_VERSION
