"""The operations commands of the ``rlmemory`` CLI, run through Typer's CliRunner."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.ops.crypto import read_key_file
from rlmemory.store import open_store

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def db(tmp_path):
    location = str(tmp_path / "memory.db")
    with open_store(location) as store:
        decision = store.save_agent_decision("router", "code", "coder", {"coder": 1.0}, 0.75)
        store.save_agent_reward("router", 0.75, {"task_completion": 1.0}, decision_id=decision)
        store.save_agent_reward("router", 0.25, {"task_completion": 0.0})
        store.save_agent_interaction("router", "fix my bug", "done", "thanks", decision)
    return location


def test_export_writes_the_file_and_says_how_many_rows(db, tmp_path):
    out = tmp_path / "rewards.jsonl"
    result = invoke(
        "export", "router", "--table", "rewards", "--format", "jsonl", "--out", str(out), "--db", db
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 2 rewards of router" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["reward"] for row in rows] == [0.75, 0.25]


def test_export_reads_the_store_from_rlmemory_db_env(db, tmp_path):
    out = tmp_path / "decisions.csv"
    result = invoke(
        "export", "router", "--table", "decisions", "--out", str(out), env={"RLMEMORY_DB": db}
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") == 2


def test_export_of_unknown_table_exits_1_with_one_line(db, tmp_path):
    result = runner.invoke(app, ["export", "router", "--table", "q", "--db", db])
    assert result.exit_code == 1
    assert "table must be one of rewards, interactions, decisions" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_keys_new_creates_a_0600_key_file_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "store.key"
    result = invoke("keys", "new", str(path))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_key_file(path)) == 32
    again = runner.invoke(app, ["keys", "new", str(path)])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_verify_of_a_file_that_is_no_backup_exits_1(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup at all" * 10)
    result = runner.invoke(app, ["verify", str(junk)])
    assert result.exit_code == 1
    assert "neither a SQLite database nor an rlmemory archive" in result.output
