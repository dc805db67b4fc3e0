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


def test_checkpoint_versions_diff_and_rollback(db):
    result = invoke("checkpoint", "router", "--note", "baseline", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Saved version 1 of router" in result.output
    with open_store(db) as store:
        store.save_q_values("router", {"code": {"coder": 0.25}, "chat": {"search": 1.0}})
    listed = invoke("versions", "router", "--db", db)
    assert listed.exit_code == 0 and "baseline" in listed.output
    changed = invoke("diff", "router", "1", "--db", db)
    assert changed.exit_code == 0, changed.output
    assert "2 Q-values in 2 states" in changed.output
    assert "chat" in changed.output and "search" in changed.output
    rolled = invoke("rollback", "router", "1", "--db", db)
    assert rolled.exit_code == 0, rolled.output
    assert "previous state is version 2" in rolled.output
    with open_store(db) as store:
        assert store.get_q_table("router") == {}
    same = invoke("diff", "router", "1", "3", "--db", db)
    assert "no differences" in same.output


def test_rollback_to_an_unknown_version_exits_1_and_changes_nothing(db):
    with open_store(db) as store:
        before = store.get_q_table("router")
    result = runner.invoke(app, ["rollback", "router", "9", "--db", db])
    assert result.exit_code == 1
    assert "no version 9" in result.output
    with open_store(db) as store:
        assert store.get_q_table("router") == before


def test_diff_rejects_a_version_that_is_not_a_number(db):
    result = runner.invoke(app, ["diff", "router", "first", "--db", db])
    assert result.exit_code == 1
    assert "positive number or 'current'" in result.output


def test_prune_dry_run_shows_counts_and_removes_nothing(db):
    result = invoke("prune", "--dry-run", "--max-rows", "1", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Would remove" in result.output
    with open_store(db) as store:
        assert store.agent_stats("router")["rewards"] == 2
    real = invoke("prune", "router", "--max-rows", "1", "--db", db)
    assert real.exit_code == 0 and "Removed" in real.output
    with open_store(db) as store:
        assert store.agent_stats("router")["rewards"] == 1
        assert store.list_versions("router")[0]["note"] == "auto: before prune"


def test_prune_with_a_policy_file_per_agent(db, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"agents": {"router": {"rewards": {"max_rows": 0}}}}))
    result = invoke("prune", "--policy", str(policy), "--db", db)
    assert result.exit_code == 0, result.output
    with open_store(db) as store:
        assert store.agent_stats("router")["rewards"] == 0
        assert store.agent_stats("router")["decisions"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"max_dayz": 1}')
    failed = runner.invoke(app, ["prune", "--policy", str(bad), "--db", db])
    assert failed.exit_code == 1 and "unknown retention keys" in failed.output


def test_backup_verify_restore_across_backends(db, tmp_path):
    archive = tmp_path / "nightly.tar"
    made = invoke("backup", str(archive), "--db", db)
    assert made.exit_code == 0, made.output
    assert "archive backup" in made.output
    checked = invoke("verify", str(archive))
    assert checked.exit_code == 0 and "OK" in checked.output
    files_store = "files://" + str(tmp_path / "restored")
    restored = invoke("restore", str(archive), "--db", files_store)
    assert restored.exit_code == 0, restored.output
    with open_store(files_store) as store:
        assert store.get_agent_interactions("router")[0]["request"] == "fix my bug"
    again = runner.invoke(app, ["restore", str(archive), "--db", files_store])
    assert again.exit_code == 1 and "--replace" in again.output
    copy = tmp_path / "copy.db"
    assert invoke("backup", str(copy), "--db", db).exit_code == 0
    assert "sqlite backup" in invoke("verify", str(copy)).output


def test_keys_rotate_re_encrypts_the_store(tmp_path):
    old_key = tmp_path / "old.key"
    new_key = tmp_path / "new.key"
    invoke("keys", "new", str(old_key))
    invoke("keys", "new", str(new_key))
    location = str(tmp_path / "secret.db")
    with open_store(location, encryption_key=old_key) as store:
        store.save_agent_interaction("router", "my secret request", "reply")
    result = invoke(
        "keys",
        "rotate",
        "--old-key-file",
        str(old_key),
        "--new-key-file",
        str(new_key),
        "--db",
        location,
    )
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 values in 1 rows" in result.output
    with open_store(location, encryption_key=new_key) as store:
        assert store.get_agent_interactions("router")[0]["request"] == "my secret request"
    stale = runner.invoke(
        app,
        ["export", "router", "--table", "interactions", "--db", location],
        env={"RLMEMORY_KEY_FILE": str(old_key)},
    )
    assert stale.exit_code == 1 and "written with key" in stale.output


def test_correct_and_delete_history_rows(db):
    with open_store(db) as store:
        first, second = (row["id"] for row in reversed(store.get_agent_rewards("router")))
        interaction = store.get_agent_interactions("router")[0]["id"]
    corrected = invoke("correct-reward", str(first), "0.5", "--db", db)
    assert corrected.exit_code == 0, corrected.output
    assert "0.75 -> 0.5" in corrected.output
    assert invoke("delete-reward", str(second), "--db", db).exit_code == 0
    assert invoke("delete-interaction", str(interaction), "--db", db).exit_code == 0
    with open_store(db) as store:
        assert [row["reward"] for row in store.get_agent_rewards("router")] == [0.5]
        assert store.get_agent_interactions("router") == []
    missing = runner.invoke(app, ["delete-reward", "999", "--db", db])
    assert missing.exit_code == 1 and "no reward with id 999" in missing.output
