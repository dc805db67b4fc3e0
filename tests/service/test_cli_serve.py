"""``rlmemory serve`` refusing to listen unprotected, and ``rlmemory keys api``.

SQLite only: these pin the command line (messages, exit codes); key storage itself is
settings, tested on every backend in tests/store/test_settings.py.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.service.keys import check_api_key
from rlmemory.store import open_store

runner = CliRunner()


def test_serve_refuses_a_public_address_without_api_keys(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    result = runner.invoke(app, ["serve", "--db", db, "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "rlmemory keys api new" in result.output


def test_keys_api_new_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    result = runner.invoke(app, ["keys", "api", "new", "--scope", "admin", "--db", db])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    assert key.startswith("rlm_")
    with open_store(db) as store:
        assert check_api_key(store, key) == "admin"
        stored = store.list_settings("api_keys")
    assert key not in str(stored) and key.split("_")[2] not in str(stored)
    listed = runner.invoke(app, ["keys", "api", "list", "--db", db])
    key_id = key.split("_")[1]
    assert key_id in listed.output and "admin" in listed.output
    assert runner.invoke(app, ["keys", "api", "revoke", key_id, "--db", db]).exit_code == 0
    with open_store(db) as store:
        assert check_api_key(store, key) is None
    again = runner.invoke(app, ["keys", "api", "revoke", key_id, "--db", db])
    assert again.exit_code == 1 and "no API key" in again.output


def test_keys_api_new_refuses_an_unknown_scope(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    result = runner.invoke(app, ["keys", "api", "new", "--scope", "root", "--db", db])
    assert result.exit_code == 1 and "scope" in result.output
