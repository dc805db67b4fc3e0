"""Settings (namespaced JSON documents) on every backend: the contract in store/base.py.

Runs once per backend (sqlite, postgresql, files) through the ``store``/``make_store``
fixtures; the migration test is SQL-only because only SQL stores have a schema to migrate
(the file store creates ``settings.json`` when first written).
"""

from __future__ import annotations

import math
import multiprocessing
from typing import Any

import pytest
import sqlalchemy as sa

from rlmemory.store import open_store
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore


def test_a_setting_never_saved_is_none_and_lists_empty(store: MemoryStore) -> None:
    assert store.get_setting("loops", "default") is None
    assert store.list_settings("loops") == {}
    assert store.delete_setting("loops", "default") is False


def test_settings_round_trip_with_their_json_types(store: MemoryStore) -> None:
    value = {"learner": "linucb", "options": {"alpha": 0.5}, "wait": 600, "on": True, "x": None}
    store.save_setting("loops", "default", value)
    assert store.get_setting("loops", "default") == value


def test_saving_again_replaces_the_whole_document(store: MemoryStore) -> None:
    store.save_setting("loops", "a", {"old": 1, "kept": 2})
    store.save_setting("loops", "a", {"new": 3})
    assert store.get_setting("loops", "a") == {"new": 3}


def test_namespaces_keep_their_keys_apart_and_list_sorted(store: MemoryStore) -> None:
    store.save_setting("loops", "b", {"n": 2})
    store.save_setting("loops", "a", {"n": 1})
    store.save_setting("api_keys", "a", {"scope": "admin"})
    assert store.list_settings("loops") == {"a": {"n": 1}, "b": {"n": 2}}
    assert list(store.list_settings("loops")) == ["a", "b"]
    assert store.list_settings("api_keys") == {"a": {"scope": "admin"}}


def test_delete_removes_only_that_setting(store: MemoryStore) -> None:
    store.save_setting("loops", "a", {"n": 1})
    store.save_setting("loops", "b", {"n": 2})
    assert store.delete_setting("loops", "a") is True
    assert store.delete_setting("loops", "a") is False
    assert store.list_settings("loops") == {"b": {"n": 2}}


def test_tricky_keys_round_trip_exactly(store: MemoryStore) -> None:
    keys = ['it\'s "q"', "'; DROP TABLE x;--", "日本語 🤖", "a/b\\c", "../up"]
    for number, key in enumerate(keys):
        store.save_setting("ns", key, {"n": number})
    assert store.list_settings("ns") == {key: {"n": n} for n, key in enumerate(keys)}


@pytest.mark.parametrize(
    ("namespace", "key", "value", "error", "named"),
    [
        ("", "k", {}, ValueError, "namespace"),
        ("ns", "", {}, ValueError, "key"),
        ("ns", "k" * 201, {}, ValueError, "key"),
        (1, "k", {}, TypeError, "namespace"),
        ("ns", "k", [1], TypeError, "value"),
        ("ns", "k", {"x": {1, 2}}, TypeError, "value"),
        ("ns", "k", {"x": math.nan}, ValueError, "value"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_nothing_changes(
    store: MemoryStore, namespace: Any, key: Any, value: Any, error: type, named: str
) -> None:
    store.save_setting("ns", "k", {"kept": True})
    with pytest.raises(error, match=named):
        store.save_setting(namespace, key, value)
    assert store.get_setting("ns", "k") == {"kept": True}


def test_a_setting_saved_in_a_failed_transaction_is_not_stored(store: MemoryStore) -> None:
    store.save_setting("ns", "k", {"n": 1})
    with pytest.raises(RuntimeError), store.transaction():
        store.save_setting("ns", "k", {"n": 2})
        store.save_setting("ns", "other", {"n": 3})
        raise RuntimeError("abort")
    assert store.list_settings("ns") == {"k": {"n": 1}}


def test_settings_are_seen_by_another_store_object(make_store: Any) -> None:
    make_store().save_setting("loops", "default", {"learner": "thompson"})
    assert make_store().get_setting("loops", "default") == {"learner": "thompson"}


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


def test_a_restored_setting_with_a_bad_name_is_refused_and_nothing_is_loaded(
    store: MemoryStore,
) -> None:
    good = {"namespace": "loops", "key": "triage", "value": '{"on":true}', "updated": 1.0}
    bad = {**good, "key": "k" * 201}
    with pytest.raises(ValueError, match="key must be a non-empty string"):
        store.load_rows("rlmemory_settings", [good, bad])
    assert store.list_settings("loops") == {}
