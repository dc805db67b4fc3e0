"""The store contract on rlmemory's three backends, and what only some of them promise.

:class:`rlmemory.testing.storage.StoreConformance` is the contract, shipped in the package
so that another backend runs it too; here it runs on a SQLite file, a PostgreSQL database
of its own per test (from ``tests/conftest.py``: skipped without a server, failing under
``CI=true``) and a folder of JSON files. A known backend bug would be declared with
``known_failure`` (a strict xfail); none is left. Below the classes: the SQL stores'
plain-SQL view.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rlmemory.store import open_store
from rlmemory.store.base import MemoryStore
from rlmemory.testing.storage import StoreConformance

AGENT = "router"


class TestSQLite(StoreConformance):
    """A SQLite file, ``memory.db`` in the test's temporary folder."""

    @pytest.fixture
    def store_location(self, tmp_path: Path) -> Path:
        return tmp_path / "memory.db"

    def open_store(self, location: Any, **options: Any) -> MemoryStore:
        return open_store(location, **options)


@pytest.mark.postgres
class TestPostgreSQL(StoreConformance):
    """A database of its own per test on the server of ``RLMEMORY_TEST_POSTGRES_URL``."""

    @pytest.fixture
    def store_location(self, postgres_store_url: str) -> str:
        return postgres_store_url

    @pytest.fixture
    def location_without_store(self, postgres_database_url: str) -> str:
        return postgres_database_url

    def open_store(self, location: Any, **options: Any) -> MemoryStore:
        return open_store(location, **options)


class TestFiles(StoreConformance):
    """A folder of JSON files, ``memory/`` in the test's temporary folder."""

    @pytest.fixture
    def store_location(self, tmp_path: Path) -> Path:
        return tmp_path / "memory"

    def open_store(self, location: Any, **options: Any) -> MemoryStore:
        return open_store(f"files://{location}", **options)


# ------------------------------------------------------------- the SQL stores' plain view
def _plain_sql(make_sql: Any, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement with the plain driver, as a user reading the seed's tables would."""
    if make_sql.backend == "sqlite":
        with contextlib.closing(sqlite3.connect(make_sql.sqlite_path)) as connection:
            rows = connection.execute(query, params).fetchall()
            connection.commit()
            return rows
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(make_sql.location).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        cursor = conn.execute(query.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def test_plain_sql_reads_the_merged_q_table_json(make_sql_store: Any) -> None:
    store = make_sql_store()
    store.save_q_table(AGENT, {"s1": {"a": 1.0}})
    store.save_q_values(AGENT, {"s1": {"b": 2.0}, "s2": {"a": 3.0}})
    rows = _plain_sql(make_sql_store, "SELECT q_table FROM q_tables WHERE agent_name = ?", (AGENT,))
    assert len(rows) == 1
    stored = rows[0][0]
    assert (json.loads(stored) if isinstance(stored, str) else stored) == {
        "s1": {"a": 1.0, "b": 2.0},
        "s2": {"a": 3.0},
    }


def test_feedback_written_by_plain_sql_is_unlearned(make_sql_store: Any) -> None:
    store = make_sql_store()
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp")
    _plain_sql(
        make_sql_store,
        "UPDATE agent_interactions SET feedback = ? WHERE id = ?",
        ("written by hand", interaction_id),
    )
    rows = store.get_unlearned_feedback(AGENT)
    assert [(row["id"], row["feedback"]) for row in rows] == [(interaction_id, "written by hand")]
