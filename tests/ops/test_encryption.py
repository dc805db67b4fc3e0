"""Encryption at rest: secrets never reach the disk in clear, wrong keys fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmemory.errors import EncryptionKeyError
from rlmemory.ops.crypto import generate_key, new_key_file
from rlmemory.ops.rotation import rotate_key
from rlmemory.store import open_store

SECRET = "card-4111-1111-1111-1111-secret"


def _write_secrets(store):
    decision = store.save_agent_decision("router", "payments", "billing", {"billing": 1.0}, 0.5)
    first = store.save_agent_interaction(
        "router", f"please charge {SECRET}", f"charged {SECRET}", None, decision
    )
    store.set_interaction_feedback(first, f"thanks, {SECRET} worked")
    return first


def _all_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


def test_secret_is_absent_from_the_sqlite_file_and_its_wal(tmp_path):
    key = generate_key()
    path = tmp_path / "memory.db"
    store = open_store(str(path), encryption_key=key)
    interaction = _write_secrets(store)
    # While the store is open the write-ahead log holds the newest pages.
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("memory.db"))
    assert Path(str(path) + "-wal").exists()
    assert SECRET.encode() not in raw and b"4111" not in raw
    assert SECRET in store.get_agent_interaction(interaction)["request"]
    store.close()
    assert SECRET.encode() not in _all_bytes(tmp_path)


def test_secret_is_absent_from_the_files_store(tmp_path):
    folder = tmp_path / "memory"
    with open_store("files://" + str(folder), encryption_key=generate_key()) as store:
        interaction = _write_secrets(store)
        assert SECRET in store.get_agent_interaction(interaction)["feedback"]
        assert SECRET.encode() not in _all_bytes(folder)


@pytest.mark.postgres
def test_secret_is_absent_from_postgresql_tables_read_with_plain_sql(postgres_store_url):
    import psycopg
    from sqlalchemy.engine import make_url

    with open_store(postgres_store_url, encryption_key=generate_key()) as store:
        interaction = _write_secrets(store)
        assert SECRET in store.get_agent_interaction(interaction)["response"]
    url = make_url(postgres_store_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        assert "agent_interactions" in tables
        for table in tables:
            for (text,) in connection.execute(f'SELECT t::text FROM "{table}" t'):
                assert SECRET not in text and "4111" not in text, table


def test_reading_without_the_key_or_with_a_wrong_key_is_a_clear_error(make_store):
    key = generate_key()
    with make_store(encryption_key=key) as store:
        interaction = _write_secrets(store)
        store.save_agent_reward("router", 0.5, {})
    with pytest.raises(EncryptionKeyError) as caught:
        make_store(encryption_key=generate_key())
    assert "written with key" in str(caught.value)
    with make_store() as keyless:
        with pytest.raises(EncryptionKeyError, match="no key"):
            keyless.get_agent_interactions("router")
        assert keyless.get_agent_rewards("router")[0]["reward"] == 0.5
    with make_store(encryption_key=key) as right:
        assert SECRET in right.get_agent_interaction(interaction)["request"]


def test_without_a_key_no_text_is_written_in_clear_into_an_encrypted_store(make_store):
    key = generate_key()
    with make_store(encryption_key=key) as store:
        _write_secrets(store)
    with make_store() as keyless:
        with pytest.raises(EncryptionKeyError, match="encrypted"):
            keyless.save_agent_interaction("router", "new request", "reply")
        keyless.save_agent_reward("router", 1.0, {})
    with make_store(encryption_key=key) as right:
        assert len(right.get_agent_interactions("router")) == 1
        assert len(right.get_agent_rewards("router")) == 1


def test_feedback_bookkeeping_and_lookup_work_on_encrypted_texts(make_store):
    with make_store(encryption_key=generate_key()) as store:
        interaction = _write_secrets(store)
        assert [row["id"] for row in store.get_unlearned_feedback("router")] == [interaction]
        store.mark_feedback_learned([interaction])
        assert store.get_unlearned_feedback("router") == []
        found = store.find_agent_interaction(
            "router", f"please charge {SECRET}", f"charged {SECRET}"
        )
        assert found is not None and found["id"] == interaction


def test_key_rotation_re_encrypts_everything(make_store, tmp_path):
    old_key = generate_key()
    with make_store(encryption_key=old_key) as store:
        interaction = _write_secrets(store)
    new_file = new_key_file(tmp_path / "new.key")
    report = rotate_key(make_store.location, old_key=old_key, new_key=new_file)
    assert report.values >= 3
    with make_store(encryption_key=new_file) as rotated:
        assert SECRET in rotated.get_agent_interaction(interaction)["request"]
    with pytest.raises(EncryptionKeyError):
        make_store(encryption_key=old_key)


def test_version_payloads_are_encrypted_when_asked(make_store):
    from rlmemory.ops.crypto import is_encrypted_bytes
    from rlmemory.ops.versions import checkpoint, get_version

    key = generate_key()
    with make_store(encryption_key=key, encrypt_payloads=True) as store:
        store.save_q_values("router", {"secret-state": {"a": 1.0}})
        checkpoint(store, "router")
        with store.snapshot() as read_table:
            (stored,) = list(read_table("agent_versions"))
        assert is_encrypted_bytes(stored["payload"])
        assert get_version(store, "router", 1).state.q_table == {"secret-state": {"a": 1.0}}
    with make_store() as keyless, pytest.raises(EncryptionKeyError, match="no key"):
        get_version(keyless, "router", 1)
