"""After ``keys rotate`` no old plaintext or old-key ciphertext is left in the live storage.

Each test writes 300 interactions whose texts hold a unique secret, rotates (plain ->
encrypted, or key A -> key B) and then reads the raw bytes the backend keeps on disk:
the SQLite file and its WAL, every file of the files store, and for PostgreSQL every
relation file of the test's database (heap, TOAST, indexes) after a ``CHECKPOINT``. None
of the 300 secrets may be found. What cannot be scrubbed (PostgreSQL WAL segments and
archives, replicas, earlier backups, blocks the file system freed) is listed in
docs/reliability.md.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rlmemory.ops.crypto import generate_key
from rlmemory.ops.rotation import rotate_key
from rlmemory.store import open_store

SECRETS = 300


def _secret(number: int) -> str:
    return f"secret-{number:04d}-do-not-keep"


def _write_secrets(store) -> None:
    with store.transaction():
        for number in range(SECRETS):
            # Long enough that the rewritten row does not fit in the old cell's place.
            text = f"please route {_secret(number)} " + "x" * 40
            interaction = store.save_agent_interaction("router", text, f"ok {number}", None)
            if number % 3 == 0:
                store.set_interaction_feedback(interaction, f"thanks {_secret(number)}")


def _stored_tokens(store) -> list[bytes]:
    """A distinctive piece of every encrypted text as stored (the ciphertext itself)."""
    with store.snapshot() as read_table:
        rows = list(read_table("agent_interactions"))
    tokens = []
    for row in rows:
        for column in ("request", "feedback"):
            value = row.get(column)
            if isinstance(value, str) and value.startswith("rlm:enc:v1:"):
                tokens.append(value[20:60].encode("ascii"))
    return tokens


@pytest.fixture
def upstream_sqlite_defaults() -> Iterator[None]:
    """Every new SQLite connection of this process starts with ``secure_delete`` off.

    The Python build used here compiles SQLite with SECURE_DELETE on, but upstream's
    default (and many distributions') is off: deleted cells then stay in the page's free
    space. The store must scrub on either build.
    """
    from sqlalchemy.pool import Pool

    def _secure_delete_off(dbapi_connection, _record) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA secure_delete = OFF")

    sa.event.listen(Pool, "connect", _secure_delete_off)
    yield
    sa.event.remove(Pool, "connect", _secure_delete_off)


def _postgres_database_files(url: str) -> Iterator[Path]:
    """Every file of the database named by ``url`` in the server's data directory.

    Needs the test to run as root on the server's machine (CI and this container do):
    the data directory is read as the ``postgres`` superuser reports it.
    """

    def superuser(sql: str) -> str:
        command = ["runuser", "-u", "postgres", "--", "psql", "-h", "127.0.0.1"]
        command += ["-p", str(sa.make_url(url).port or 5432), "-Atc", sql]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    if os.geteuid() != 0:
        pytest.fail("reading PostgreSQL's relation files needs root (as in CI)")
    database = sa.make_url(url).database
    superuser("CHECKPOINT")
    data_directory = Path(superuser("SHOW data_directory"))
    oid = superuser(f"SELECT oid FROM pg_database WHERE datname = '{database}'")
    yield from (path for path in (data_directory / "base" / oid).iterdir() if path.is_file())


def _raw_bytes(backend: str, location: str) -> bytes:
    if backend == "sqlite":
        path = Path(location)
        parts = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(part.read_bytes() for part in parts if part.exists())
    if backend == "files":
        root = Path(location.removeprefix("files://"))
        return b"".join(path.read_bytes() for path in root.rglob("*") if path.is_file())
    return b"".join(path.read_bytes() for path in _postgres_database_files(location))


def _found(raw: bytes, needles: list[bytes]) -> int:
    return sum(needle in raw for needle in needles)


@pytest.mark.usefixtures("upstream_sqlite_defaults")
def test_encrypting_a_plain_store_leaves_no_plaintext_on_disk(make_store, backend):
    writer = make_store()
    _write_secrets(writer)
    needles = [_secret(number).encode() for number in range(SECRETS)]
    assert _found(_raw_bytes(backend, make_store.location), needles) == SECRETS
    worker = make_store()  # another connection stays open, as a running service would
    worker.list_agents()

    report = rotate_key(make_store.location, new_key=generate_key())

    assert report.values >= SECRETS and report.old_key_id is None
    assert _found(_raw_bytes(backend, make_store.location), needles) == 0


@pytest.mark.usefixtures("upstream_sqlite_defaults")
def test_rotating_away_from_a_key_leaves_no_old_ciphertext_on_disk(make_store, backend):
    old_key, new_key = generate_key(), generate_key()
    writer = make_store(encryption_key=old_key)
    _write_secrets(writer)
    old_tokens = _stored_tokens(writer)
    assert len(old_tokens) == SECRETS + SECRETS // 3
    assert _found(_raw_bytes(backend, make_store.location), old_tokens) == len(old_tokens)
    writer.close()

    rotate_key(make_store.location, new_key=new_key, old_key=old_key)

    assert _found(_raw_bytes(backend, make_store.location), old_tokens) == 0
    with open_store(make_store.location, encryption_key=new_key) as reopened:
        texts = [row["request"] for row in reopened.get_agent_interactions("router", limit=5)]
    assert all("secret-" in text for text in texts)


def test_reencrypt_inside_a_transaction_is_refused_and_changes_nothing(sql_store):
    """SQL stores only: the rewrite (VACUUM) cannot run inside a transaction."""
    from rlmemory.ops.crypto import Cipher

    sql_store.save_agent_interaction("router", "plain request", "ok", None)
    with pytest.raises(ValueError, match="outside a transaction"), sql_store.transaction():
        sql_store.reencrypt(Cipher(generate_key()))
    assert sql_store.encryption_key_id is None
    assert sql_store.get_agent_interactions("router")[0]["request"] == "plain request"


@pytest.mark.postgres
def test_a_transaction_holding_an_old_snapshot_cannot_keep_plaintext_alive(postgres_store_url):
    """PostgreSQL only: VACUUM FULL copies row versions an older snapshot might still
    read. While another session holds such a snapshot the rotation repeats the rewrite;
    once the session ends, no plaintext is left."""
    import threading

    import psycopg

    with open_store(postgres_store_url) as writer:
        _write_secrets(writer)
    holder = psycopg.connect(
        sa.make_url(postgres_store_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT count(*) FROM rlmemory_meta").fetchone()  # snapshot taken
    release = threading.Timer(1.5, holder.commit)  # the session ends while rotating
    release.start()
    try:
        rotate_key(postgres_store_url, new_key=generate_key())
    finally:
        release.join()
        holder.close()
    needles = [_secret(number).encode() for number in range(SECRETS)]
    assert _found(_raw_bytes("postgresql", postgres_store_url), needles) == 0
