"""No credential of a store URL is ever shown or stored in clear.

A password can sit in the URL's userinfo (``user:pw@host``) or in its query
(``?password=pw``, ``sslpassword=``, ``passfile=``). Every surface that shows a location
is checked: ``db.location``, ``str``/``repr`` of the store, error messages (library and
CLI), CLI output, and the ``source`` recorded in a backup's manifest. PostgreSQL is where
URLs carry passwords, so the store-level tests run on the real server.
"""

from __future__ import annotations

import json
import tarfile

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.errors import EncryptionKeyError, StoreError
from rlmemory.ops.backup import backup
from rlmemory.ops.crypto import generate_key
from rlmemory.store import open_store
from rlmemory.store.locations import mask_credentials

SECRET = "Sekr3t-pw"


@pytest.mark.parametrize(
    ("shown", "masked"),
    [
        ("postgresql://me:Sekr3t-pw@db:5432/rl", "postgresql://me:***@db:5432/rl"),
        ("postgresql://me:Sekr3t@pw@db/rl", "postgresql://me:***@db/rl"),
        ("postgresql://me:a:b@db/rl?sslmode=require", "postgresql://me:***@db/rl?sslmode=require"),
        ("postgresql://db/rl?password=Sekr3t-pw", "postgresql://db/rl?password=***"),
        (
            "postgresql://db/rl?user=me&PASSWORD=Sekr3t-pw&sslpassword=x&passfile=/p&port=1",
            "postgresql://db/rl?user=me&PASSWORD=***&sslpassword=***&passfile=***&port=1",
        ),
        (
            "cannot use postgresql://u:Sekr3t-pw@h/db: refused",
            "cannot use postgresql://u:***@h/db: refused",
        ),
        ("dsn: host=h password=Sekr3t-pw dbname=x", "dsn: host=h password=*** dbname=x"),
        ("postgresql://me@db:5432/rl", "postgresql://me@db:5432/rl"),
        ("/var/lib/memory.db", "/var/lib/memory.db"),
    ],
)
def test_mask_credentials_hides_every_password_form(shown, masked):
    assert mask_credentials(shown) == masked
    assert SECRET not in mask_credentials(shown)


def _query_password_url(store_url: str, **credentials: str) -> str:
    """The same database, its password moved into the query string (plus extra params)."""
    url = sa.make_url(store_url)
    moved = sa.URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query={"password": url.password or "", **credentials},
    )
    return moved.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_a_query_password_is_masked_in_location_repr_errors_and_manifest(
    postgres_store_url, tmp_path
):
    url = _query_password_url(postgres_store_url)
    database = sa.make_url(postgres_store_url).database
    user, port = sa.make_url(postgres_store_url).username, sa.make_url(postgres_store_url).port
    expected = f"postgresql+psycopg://{user}@127.0.0.1:{port}/{database}?password=***"
    key = generate_key()
    with open_store(url, encryption_key=key) as store:
        assert store.location == expected
        assert repr(store) == f"MemoryDatabase({expected!r})"
        store.save_agent_reward("router", 1.0, {})
        backup(store, tmp_path / "b.tar")
    with tarfile.open(tmp_path / "b.tar") as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
    assert manifest["source"] == expected
    with pytest.raises(EncryptionKeyError) as wrong_key:
        open_store(url, encryption_key=generate_key())
    assert expected in str(wrong_key.value) and wrong_key.value.location == expected


def test_an_unreachable_server_error_never_shows_the_password():
    for url in (
        f"postgresql+psycopg://me:{SECRET}@127.0.0.1:9/db?connect_timeout=2",
        f"postgresql+psycopg://me@127.0.0.1:9/db?password={SECRET}&sslpassword={SECRET}",
    ):
        with pytest.raises(StoreError) as caught:
            open_store(url)
        assert SECRET not in str(caught.value) and SECRET not in str(caught.value.location)
        assert "***" in str(caught.value)


def test_an_invalid_url_error_never_shows_the_password():
    with pytest.raises(ValueError) as caught:
        open_store(f"postgresql+psycopg://me:{SECRET}@127.0.0.1:notaport/db")
    assert SECRET not in str(caught.value)


def test_a_sqlite_url_with_a_query_password_is_masked(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/m.db?password={SECRET}") as store:
        assert SECRET not in store.location and SECRET not in repr(store)
        assert store.location.endswith("m.db?password=***")


def test_cli_errors_never_show_the_password():
    url = f"postgresql+psycopg://me:{SECRET}@127.0.0.1:9/db?password={SECRET}"
    result = CliRunner().invoke(app, ["versions", "router", "--db", url])
    assert result.exit_code == 1
    assert SECRET not in result.output and SECRET not in result.stderr
    assert "me:***@127.0.0.1:9/db?password=***" in result.stderr


@pytest.mark.postgres
def test_cli_restore_output_shows_the_masked_location(postgres_store_url, tmp_path):
    with open_store(str(tmp_path / "source.db")) as source:
        source.save_agent_reward("router", 1.0, {})
        backup(source, tmp_path / "b.tar")
    url = _query_password_url(postgres_store_url, sslpassword=SECRET)
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "b.tar"), "--db", url])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "password=***" in result.output and "sslpassword=***" in result.output
