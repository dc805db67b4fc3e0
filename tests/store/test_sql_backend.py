"""Behaviour only the SQL store has: plain-SQL reads, the q_tables view, migrations,
corrupt files, locking, URLs. The contract shared with other backends is in
``test_conformance.py``."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from rlmemory.errors import CorruptStoreError, SchemaVersionError, StoreBusyError, StoreError
from rlmemory.store.base import SCHEMA_VERSION
from rlmemory.store.sql import MemoryDatabase
from rlmemory.store.sql_schema import MIGRATIONS

AGENT = "router"

# The seed document's five CREATE TABLE statements, verbatim: a version-0 database.
SEED_DDL = [
    """CREATE TABLE IF NOT EXISTS q_tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    q_table TEXT NOT NULL,
    last_updated REAL NOT NULL,
    UNIQUE(agent_name)
)""",
    """CREATE TABLE IF NOT EXISTS policy_params (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    policy_params TEXT NOT NULL,
    last_updated REAL NOT NULL,
    UNIQUE(agent_name)
)""",
    """CREATE TABLE IF NOT EXISTS agent_rewards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    reward REAL NOT NULL,
    reward_components TEXT NOT NULL,
    timestamp REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS agent_interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    feedback TEXT,
    timestamp REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS agent_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    state TEXT NOT NULL,
    selected_action TEXT NOT NULL,
    q_values TEXT NOT NULL,
    reward TEXT NOT NULL,
    timestamp REAL NOT NULL
)""",
]


@pytest.fixture
def plain_sql(make_sql_store: Any) -> Iterator[sa.Engine]:
    """A separate SQLAlchemy engine on the test store: what a user's SQL client sees."""
    if make_sql_store.sqlite_path is not None:
        engine = sa.create_engine(f"sqlite:///{make_sql_store.sqlite_path}")
    else:
        engine = sa.create_engine(make_sql_store.location)
    yield engine
    engine.dispose()


def query(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.begin() as connection:
        result = connection.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else []


def make_seed_database(path: Path) -> None:
    """A database as the seed's code left it, written with plain sqlite3."""
    connection = sqlite3.connect(path)
    for ddl in SEED_DDL:
        connection.execute(ddl)
    connection.execute(
        "INSERT INTO q_tables (agent_name, q_table, last_updated) VALUES (?, ?, ?)",
        (
            "router",
            json.dumps({"greet": {"chat": 0.5, "search": -1}, "code": {"coder": 2.25}}),
            10.0,
        ),
    )
    connection.execute(
        "INSERT INTO q_tables (agent_name, q_table, last_updated) VALUES (?, ?, ?)",
        ("empty", "{}", 11.0),
    )
    connection.execute(
        "INSERT INTO policy_params (agent_name, policy_params, last_updated) VALUES (?, ?, ?)",
        ("pg", json.dumps({"theta": [[0.1, 0.2]]}), 12.0),
    )
    for i in range(3):
        connection.execute(
            "INSERT INTO agent_rewards (agent_name, reward, reward_components, timestamp) "
            "VALUES (?, ?, ?, ?)",
            ("router", float(i), json.dumps({"speed": i}), 20.0 + i),
        )
    connection.execute(
        "INSERT INTO agent_interactions (agent_name, request, response, feedback, timestamp) "
        "VALUES (?, ?, ?, ?, ?)",
        ("router", 'it\'s "quoted"\n', "réponse", "great", 30.0),
    )
    connection.execute(
        "INSERT INTO agent_decisions (agent_name, state, selected_action, q_values, reward, "
        "timestamp) VALUES (?, ?, ?, ?, ?, ?)",
        ("router", "greet", "chat", json.dumps({"chat": 0.5}), json.dumps({"total": 1}), 40.0),
    )
    connection.commit()
    connection.close()


# ------------------------------------------------------------------- q_tables view
def test_q_tables_view_returns_the_merged_table_to_plain_sql(
    make_sql_store: Any, plain_sql: sa.Engine
) -> None:
    first, second = make_sql_store(), make_sql_store()
    first.save_q_table(AGENT, {"greet": {"chat": 0.1 + 0.2, "search": -0.0}})
    second.save_q_values(AGENT, {"code": {"coder": 5e-324, "chat": 1e300}})
    first.save_q_values(AGENT, {"greet": {"chat": 1 / 3}})
    rows = query(plain_sql, "SELECT q_table FROM q_tables WHERE agent_name = :a", a=AGENT)
    assert len(rows) == 1
    expected = {"greet": {"chat": 1 / 3, "search": -0.0}, "code": {"coder": 5e-324, "chat": 1e300}}
    assert json.loads(rows[0][0]) == expected
    assert second.get_q_table(AGENT) == expected


def test_q_tables_view_has_the_seed_columns_and_shows_empty_tables(
    sql_store: Any, plain_sql: sa.Engine
) -> None:
    sql_store.save_q_table("empty", {})
    sql_store.save_q_values("full", {"s": {"a": 1.0}})
    rows = query(
        plain_sql, "SELECT id, agent_name, q_table, last_updated FROM q_tables ORDER BY agent_name"
    )
    assert [(name, json.loads(table)) for _, name, table, _ in rows] == [
        ("empty", {}),
        ("full", {"s": {"a": 1.0}}),
    ]
    assert all(isinstance(stamp, float) and stamp > 1e9 for *_, stamp in rows)
    assert sql_store.get_q_table("never") is None


def test_save_q_table_replaces_the_rows_of_that_agent_only(
    sql_store: Any, plain_sql: sa.Engine
) -> None:
    sql_store.save_q_table("a", {"s1": {"x": 1.0}, "s2": {"y": 2.0}})
    sql_store.save_q_table("b", {"s1": {"x": 9.0}})
    sql_store.save_q_table("a", {"s3": {"z": 3.0}})
    rows = query(plain_sql, "SELECT agent_name, state, action, value FROM q_values ORDER BY 1, 2")
    assert [tuple(row) for row in rows] == [("a", "s3", "z", 3.0), ("b", "s1", "x", 9.0)]


# ------------------------------------------------------------ plain-SQL feedback
def test_feedback_written_by_plain_sql_is_found_and_a_correction_is_learned_again(
    sql_store: Any, plain_sql: sa.Engine
) -> None:
    interaction_id = sql_store.save_agent_interaction(AGENT, "question", "answer")
    assert sql_store.get_unlearned_feedback(AGENT) == []
    query(
        plain_sql,
        "UPDATE agent_interactions SET feedback = 'helpful' WHERE id = :i",
        i=interaction_id,
    )
    [unlearned] = sql_store.get_unlearned_feedback(AGENT)
    assert (unlearned["id"], unlearned["feedback"]) == (interaction_id, "helpful")
    sql_store.mark_feedback_learned([interaction_id])
    assert sql_store.get_unlearned_feedback(AGENT) == []
    query(
        plain_sql,
        "UPDATE agent_interactions SET feedback = 'wrong' WHERE id = :i",
        i=interaction_id,
    )
    [corrected] = sql_store.get_unlearned_feedback(AGENT)
    assert corrected["feedback"] == "wrong"
    assert corrected["feedback_learned"] is False


def test_arrays_are_stored_as_little_endian_bytes_readable_by_sql(
    sql_store: Any, plain_sql: sa.Engine
) -> None:
    weights = np.array([[1.5, -2.0], [0.25, 1e-300]])
    sql_store.save_arrays(AGENT, {"A": weights})
    [(dtype, shape, data)] = query(
        plain_sql, "SELECT dtype, shape, data FROM learner_arrays WHERE agent_name = :a", a=AGENT
    )
    assert (dtype, json.loads(shape)) == ("float64", [2, 2])
    assert bytes(data) == weights.astype("<f8").tobytes()


# -------------------------------------------------------------------- migrations
def test_seed_database_is_migrated_to_the_current_schema_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "seed.db"
    make_seed_database(path)
    with MemoryDatabase(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert db.get_q_table("router") == {
            "greet": {"chat": 0.5, "search": -1.0},
            "code": {"coder": 2.25},
        }
        assert db.get_q_table("empty") == {}
        assert db.get_policy_params("pg") == {"theta": [[0.1, 0.2]]}
        rewards = db.get_agent_rewards("router")
        assert [(r["reward"], r["reward_components"], r["timestamp"]) for r in rewards] == [
            (2.0, {"speed": 2}, 22.0),
            (1.0, {"speed": 1}, 21.0),
            (0.0, {"speed": 0}, 20.0),
        ]
        assert all(r["decision_id"] is None for r in rewards)
        [interaction] = db.get_agent_interactions("router")
        assert (interaction["request"], interaction["response"]) == ('it\'s "quoted"\n', "réponse")
        assert interaction["feedback"] == "great" and interaction["feedback_learned"] is False
        [decision] = db.get_agent_decisions("router")
        assert decision["reward"] == {"total": 1} and decision["propensity"] is None
        db.save_q_values("router", {"greet": {"chat": 0.75}})
    plain = sqlite3.connect(path)
    assert plain.execute(
        "SELECT value FROM rlmemory_meta WHERE key = 'schema_version'"
    ).fetchone() == (str(SCHEMA_VERSION),)
    (table_json, stamp) = plain.execute(
        "SELECT q_table, last_updated FROM q_tables WHERE agent_name = 'empty'"
    ).fetchone()
    assert (json.loads(table_json), stamp) == ({}, 11.0)
    (router_json,) = plain.execute(
        "SELECT q_table FROM q_tables WHERE agent_name = 'router'"
    ).fetchone()
    assert json.loads(router_json)["greet"] == {"chat": 0.75, "search": -1.0}
    assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    plain.close()
    with MemoryDatabase(path) as reopened:  # a second open finds nothing left to migrate
        assert reopened.get_q_table("router")["code"] == {"coder": 2.25}
        assert len(reopened.get_agent_rewards("router")) == 3


def test_seed_q_table_with_unreadable_json_is_kept_and_others_migrate(tmp_path: Path) -> None:
    path = tmp_path / "seed.db"
    make_seed_database(path)
    plain = sqlite3.connect(path)
    plain.execute(
        "INSERT INTO q_tables (agent_name, q_table, last_updated) "
        "VALUES ('broken', '{\"s\": ', 1.0)"
    )
    plain.commit()
    plain.close()
    with MemoryDatabase(path) as db:
        with pytest.raises(CorruptStoreError, match="broken") as caught:
            db.get_q_table("broken")
        assert str(path) in str(caught.value)
        assert db.get_q_table("router")["code"] == {"coder": 2.25}
        assert "broken" in db.list_agents()
    kept = (
        sqlite3.connect(path)
        .execute("SELECT q_table FROM q_tables_unmigrated WHERE agent_name = 'broken'")
        .fetchone()
    )
    assert kept == ('{"s": ',)


def test_table_missing_from_a_current_version_store_is_created_at_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db:
        db.save_agent_reward(AGENT, 1.0, {})
    plain = sqlite3.connect(path)
    plain.execute("DROP TABLE learner_arrays")
    plain.commit()
    plain.close()
    with MemoryDatabase(path) as db:
        db.save_arrays(AGENT, {"b": np.ones(2)})
        assert db.get_arrays(AGENT)["b"].tolist() == [1.0, 1.0]
        assert db.get_agent_rewards(AGENT)[0]["reward"] == 1.0


def test_migrations_form_one_chain_from_the_seed_to_the_current_version() -> None:
    assert [(step.from_version, step.to_version) for step in MIGRATIONS] == [
        (version, version + 1) for version in range(SCHEMA_VERSION)
    ]


def test_store_written_by_a_newer_rlmemory_is_refused_naming_both_versions(
    make_sql_store: Any, plain_sql: sa.Engine
) -> None:
    make_sql_store().save_agent_reward(AGENT, 1.0, {})
    newer = SCHEMA_VERSION + 1
    query(
        plain_sql, "UPDATE rlmemory_meta SET value = :v WHERE key = 'schema_version'", v=str(newer)
    )
    with pytest.raises(SchemaVersionError) as caught:
        make_sql_store()
    assert (caught.value.found, caught.value.supported) == (newer, SCHEMA_VERSION)
    message = str(caught.value)
    assert str(newer) in message and str(SCHEMA_VERSION) in message
    assert "***" in message or make_sql_store.location in message
    assert query(plain_sql, "SELECT COUNT(*) FROM agent_rewards") == [(1,)]


# ---------------------------------------------------------------- corrupt storage
def test_garbage_file_is_a_corrupt_store_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    with pytest.raises(CorruptStoreError) as caught:
        MemoryDatabase(path)
    assert str(path) in str(caught.value)
    assert caught.value.location == str(path)
    assert path.read_bytes() == garbage


def test_damaged_pages_raise_corrupt_store_error_at_the_first_read(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db:
        for i in range(2000):
            db.save_agent_reward(AGENT, float(i), {"note": "x" * 200})
    plain = sqlite3.connect(path)
    plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plain.close()
    content = bytearray(path.read_bytes())
    page_size = int.from_bytes(content[16:18], "big")
    for offset in range(page_size * 12, len(content) - page_size, page_size):
        content[offset : offset + 64] = b"\xa5" * 64  # smash every page header past the schema
    path.write_bytes(bytes(content))
    # At open, or at the first read that reaches a damaged page.
    with pytest.raises(CorruptStoreError) as caught, MemoryDatabase(path) as db:
        db.get_agent_rewards(AGENT, limit=2000)
    assert str(path) in str(caught.value)


def test_hand_corrupted_json_names_the_agent_and_other_agents_stay_readable(
    sql_store: Any, plain_sql: sa.Engine
) -> None:
    sql_store.save_policy_params("bad", {"w": 1})
    sql_store.save_policy_params("good", {"w": 2})
    sql_store.save_agent_reward("bad", 1.0, {"x": 1})
    sql_store.save_agent_reward("good", 2.0, {"x": 2})
    query(plain_sql, "UPDATE policy_params SET policy_params = '{\"w\": ' WHERE agent_name = 'bad'")
    query(plain_sql, "UPDATE agent_rewards SET reward_components = 'nope' WHERE agent_name = 'bad'")
    with pytest.raises(CorruptStoreError, match="'bad'") as caught:
        sql_store.get_policy_params("bad")
    assert caught.value.location == sql_store.location
    with pytest.raises(CorruptStoreError, match="'bad'"):
        sql_store.get_agent_rewards("bad")
    assert sql_store.get_policy_params("good") == {"w": 2}
    assert sql_store.get_agent_rewards("good")[0]["reward_components"] == {"x": 2}


def test_non_numeric_q_value_written_by_hand_is_corrupt_for_that_agent_only(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db:
        db.save_q_values("bad", {"s": {"a": 1.0}})
        db.save_q_values("good", {"s": {"a": 2.0}})
    plain = sqlite3.connect(path)
    plain.execute("UPDATE q_values SET value = 'high' WHERE agent_name = 'bad'")
    plain.commit()
    plain.close()
    with MemoryDatabase(path) as db:
        with pytest.raises(CorruptStoreError, match=r"'bad'.*'s'"):
            db.get_q_table("bad")
        assert db.get_q_table("good") == {"s": {"a": 2.0}}


# ------------------------------------------------------------- texts and values
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda db: db.save_agent_interaction(AGENT, "a\x00b", "r"), "request"),
        (lambda db: db.save_agent_interaction(AGENT, "q", "r", feedback="\x00"), "feedback"),
        (lambda db: db.save_q_values(AGENT, {"s\x00": {"a": 1.0}}), "state"),
        (lambda db: db.save_agent_decision(AGENT, "s", "a\x00", {}, None), "selected_action"),
        (lambda db: db.save_agent_reward("a\x00", 1.0, {}), "agent_name"),
    ],
)
def test_nul_in_text_is_a_value_error_naming_the_field_and_writes_nothing(
    sql_store: Any, call: Any, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        call(sql_store)
    assert sql_store.list_agents() == []


def test_json_payloads_may_hold_nul_characters(sql_store: Any) -> None:
    sql_store.save_agent_reward(AGENT, 1.0, {"note": "a\x00b"})
    assert sql_store.get_agent_rewards(AGENT)[0]["reward_components"] == {"note": "a\x00b"}


# ------------------------------------------------------------------ transactions
def test_failed_nested_block_undoes_only_its_own_writes(sql_store: Any) -> None:
    with sql_store.transaction():
        sql_store.save_agent_reward(AGENT, 1.0, {})
        with pytest.raises(RuntimeError), sql_store.transaction():
            sql_store.save_agent_reward(AGENT, 2.0, {})
            sql_store.save_q_values(AGENT, {"s": {"a": 1.0}})
            raise RuntimeError("inner step failed")
        sql_store.save_agent_reward(AGENT, 3.0, {})
    assert [r["reward"] for r in sql_store.get_agent_rewards(AGENT)] == [3.0, 1.0]
    assert sql_store.get_q_table(AGENT) is None


def test_unknown_id_in_mark_feedback_learned_inside_a_transaction_changes_nothing(
    sql_store: Any,
) -> None:
    interaction_id = sql_store.save_agent_interaction(AGENT, "q", "r", feedback="good")
    with sql_store.transaction():
        with pytest.raises(LookupError):
            sql_store.mark_feedback_learned([interaction_id, interaction_id + 1000])
        sql_store.save_agent_reward(AGENT, 1.0, {})
    assert [row["id"] for row in sql_store.get_unlearned_feedback(AGENT)] == [interaction_id]
    assert len(sql_store.get_agent_rewards(AGENT)) == 1


def test_writes_from_several_threads_on_one_store_all_land(sql_store: Any) -> None:
    def write(worker: int) -> None:
        for i in range(100):
            sql_store.save_q_values(AGENT, {f"t{worker}-{i}": {"a": float(i)}})
            sql_store.save_agent_reward(AGENT, float(i), {"worker": worker})

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sql_store.get_q_table(AGENT)) == 400
    assert sql_store.agent_stats(AGENT)["rewards"] == 400


# ------------------------------------------------------------- SQLite specifics
def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    MemoryDatabase(path).close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_url_and_plain_path_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(f"sqlite:///{path}") as by_url:
        by_url.save_agent_reward(AGENT, 4.0, {})
    with MemoryDatabase(str(path)) as by_path:
        assert by_path.get_agent_rewards(AGENT)[0]["reward"] == 4.0
        assert by_path.location == str(path)


def test_lock_held_past_busy_timeout_is_store_busy_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    db = MemoryDatabase(path, busy_timeout=0.3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusyError, match="busy_timeout") as caught:
            db.save_q_values(AGENT, {"s": {"a": 1.0}})
        assert caught.value.location == str(path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.get_q_table(AGENT) is None
    db.save_q_values(AGENT, {"s": {"a": 1.0}})
    assert db.get_q_table(AGENT) == {"s": {"a": 1.0}}
    db.close()


def test_writer_waits_for_a_lock_released_before_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    db = MemoryDatabase(path, busy_timeout=30)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO agent_rewards (agent_name, reward, reward_components, timestamp) "
        "VALUES ('other', 1, '{}', 0)"
    )
    release = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    release.start()
    db.save_agent_reward(AGENT, 2.0, {})
    release.join()
    other.close()
    assert db.list_agents() == ["other", AGENT]
    db.close()


def test_history_reads_use_the_agent_and_id_index(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    MemoryDatabase(path).close()
    plain = sqlite3.connect(path)
    for table in ("agent_rewards", "agent_interactions", "agent_decisions"):
        plan = " ".join(
            row[-1]
            for row in plain.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE agent_name = ? "
                "ORDER BY id DESC LIMIT 10",
                ("a",),
            )
        )
        assert f"USING INDEX ix_{table}_agent_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_forked_child_writes_through_its_own_connection(make_sql_store: Any) -> None:
    # On PostgreSQL a child that used (and closed) its parent's connection would end the
    # parent's session: the parent's next call would fail.
    db = make_sql_store()
    db.save_q_values(AGENT, {"parent": {"a": 1.0}})
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child process
        status = 1
        try:
            db.save_q_values(AGENT, {"child": {"a": 2.0}})
            db.close()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    db.save_q_values(AGENT, {"parent": {"b": 3.0}})
    assert db.get_q_table(AGENT) == {"parent": {"a": 1.0, "b": 3.0}, "child": {"a": 2.0}}


def test_closed_store_refuses_calls_and_close_is_idempotent(tmp_path: Path) -> None:
    db = MemoryDatabase(tmp_path / "memory.db")
    db.close()
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.get_q_table(AGENT)


# ---------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "location",
    ["mysql://u:p@h/db", "postgresql+psycopg2://u:p@h/db", "sqlite+pysqlcipher:///x.db", ""],
)
def test_unsupported_locations_are_value_errors(location: str) -> None:
    with pytest.raises(ValueError):
        MemoryDatabase(location)


@pytest.mark.postgres
def test_postgresql_url_without_driver_uses_psycopg_and_masks_the_password(
    postgres_database_url: str,
) -> None:
    url = sa.make_url(postgres_database_url)
    plain_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with MemoryDatabase(plain_url) as db:
        db.save_q_values(AGENT, {"s": {"a": 1.0}})
        assert db.location.startswith("postgresql+psycopg://")
        assert url.password not in db.location.split("@")[0].split(":")[-1]
        assert "***" in db.location
    with MemoryDatabase(postgres_database_url) as again:
        assert again.get_q_table(AGENT) == {"s": {"a": 1.0}}


def end_other_sessions(engine: sa.Engine) -> int:
    """Terminate every other session on the test database (the store's connection)."""
    rows = query(
        engine,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return len(rows)


@pytest.mark.postgres
def test_store_reconnects_after_postgresql_drops_its_connection(
    postgres_database_url: str,
) -> None:
    engine = sa.create_engine(postgres_database_url, poolclass=sa.pool.NullPool)
    with MemoryDatabase(postgres_database_url) as db:
        db.save_agent_reward(AGENT, 1.0, {})
        assert end_other_sessions(engine) == 1
        assert db.get_agent_rewards(AGENT)[0]["reward"] == 1.0  # a read: reopened, repeated
        assert end_other_sessions(engine) == 1
        db.save_agent_reward(AGENT, 2.0, {})  # a write: dead connection found at BEGIN
        assert end_other_sessions(engine) == 1
        with db.transaction():
            db.save_q_values(AGENT, {"s": {"a": 1.0}})
        assert [r["reward"] for r in db.get_agent_rewards(AGENT)] == [2.0, 1.0]
        assert db.get_q_table(AGENT) == {"s": {"a": 1.0}}
    engine.dispose()


@pytest.mark.postgres
def test_unreachable_postgresql_server_is_a_store_error_naming_the_masked_url() -> None:
    with pytest.raises(StoreError) as caught:
        MemoryDatabase("postgresql://someone:secret@127.0.0.1:1/nothing?connect_timeout=2")
    assert "secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_wal_autocheckpoint_is_configured_on_the_held_connection(tmp_path: Path) -> None:
    with MemoryDatabase(tmp_path / "m.db", sqlite_wal_autocheckpoint=1234) as db:
        db.save_q_values("router", {"s": {"a": 1.0}})
        assert db._dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1234
    with MemoryDatabase(tmp_path / "m.db") as db:
        assert db._dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4000


@pytest.mark.parametrize("pages", [0, -5])
def test_wal_autocheckpoint_must_be_positive(tmp_path: Path, pages: int) -> None:
    with pytest.raises(ValueError, match="sqlite_wal_autocheckpoint"):
        MemoryDatabase(tmp_path / "m.db", sqlite_wal_autocheckpoint=pages)


def test_backup_columns_are_the_sql_schemas_columns() -> None:
    from rlmemory.store.rows import BACKUP_COLUMNS, BACKUP_TABLES
    from rlmemory.store.sql import schema

    assert tuple(BACKUP_COLUMNS) == BACKUP_TABLES
    for table in BACKUP_TABLES:
        assert BACKUP_COLUMNS[table] == tuple(
            column.name for column in schema.metadata.tables[table].columns
        ), table
