"""Settings beyond the contract suite: several processes writing them, and the migration.

The settings contract itself (round trips, namespaces, bad input, transactions, another
store object) is in :class:`rlmemory.testing.storage.StoreConformance`. The process test
runs once per backend (sqlite, postgresql, files) through the ``make_store`` fixture; the
migration test is SQL-only because only SQL stores have a schema to migrate (the file
store creates ``settings.json`` when first written).
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import sqlalchemy as sa

from rlmemory.store import open_store
from rlmemory.store.base import SCHEMA_VERSION


def _save_many(location: str, worker: int, count: int) -> None:
    with open_store(location) as store:
        for number in range(count):
            store.save_setting("keys", f"w{worker}-{number}", {"worker": worker})


def test_settings_written_by_several_processes_all_survive(make_store: Any) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_save_many, args=(make_store.location, worker, 10))
        for worker in range(3)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    assert len(make_store().list_settings("keys")) == 30


def test_a_version_3_sql_store_is_migrated_to_hold_settings(make_sql_store: Any) -> None:
    with make_sql_store() as first:
        first.save_agent_reward("router", 1.0, {})
    engine = (
        sa.create_engine(f"sqlite:///{make_sql_store.sqlite_path}")
        if make_sql_store.sqlite_path is not None
        else sa.create_engine(make_sql_store.location)
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE rlmemory_settings")
        connection.exec_driver_sql(
            "UPDATE rlmemory_meta SET value = '3' WHERE key = 'schema_version'"
        )
    engine.dispose()
    with make_sql_store() as migrated:
        assert migrated.schema_version == SCHEMA_VERSION
        migrated.save_setting("loops", "default", {"learner": "linucb"})
        assert migrated.get_setting("loops", "default") == {"learner": "linucb"}
        assert migrated.get_agent_rewards("router")[0]["reward"] == 1.0
