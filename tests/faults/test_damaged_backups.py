"""Damaged, hand-edited and missing backups: ``verify`` says what is wrong, ``restore``
refuses them and never touches the target, even with ``replace=True``.

Each crafted archive starts from a real backup of a real store; where rows are edited the
member checksums are recomputed, so only the row checks can catch them. Targets are
every backend (the ``store`` fixture), each holding 100 rewards that must survive.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.errors import CorruptStoreError, FileAccessError
from rlmemory.ops.backup import backup, restore, verify
from rlmemory.store import open_store

TARGET_REWARDS = 100


def _fill(store) -> None:
    decision = store.save_agent_decision("router", "code", "coder", {"coder": 0.9}, 0.5)
    store.save_agent_reward("router", 0.5, {"task": 1.0}, decision)
    store.save_agent_reward("router", 0.25, {"task": 0.5})
    store.save_agent_interaction("router", "fix it", "fixed", "great", decision)
    store.save_q_values("router", {"code": {"coder": 0.9}})
    store.save_setting("loops", "triage", {"learner": "linucb", "dimension": 8})


@pytest.fixture
def good_archive(tmp_path) -> Path:
    with open_store(str(tmp_path / "source.db")) as source:
        _fill(source)
        backup(source, tmp_path / "good.tar")
    return tmp_path / "good.tar"


@pytest.fixture
def target(store):
    with store.transaction():
        for number in range(TARGET_REWARDS):
            store.save_agent_reward("kept", float(number), {})
    return store


def _read(archive_path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with tarfile.open(archive_path) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
        members = {
            member.name: archive.extractfile(member).read()
            for member in archive.getmembers()
            if member.name != "manifest.json"
        }
    return manifest, members


def _write(path: Path, manifest: Any, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _rows(data: bytes) -> list[dict[str, Any]]:
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read().decode()
    return [json.loads(line) for line in text.splitlines()]


def _with_rows(source: Path, path: Path, table: str, edit: Callable[[list], list]) -> Path:
    """A copy of ``source`` whose ``table`` rows are edited, checksums kept consistent."""
    manifest, members = _read(source)
    member = f"tables/{table}.jsonl.zst"
    rows = edit(_rows(members[member]))
    text = "".join(json.dumps(row) + "\n" for row in rows)  # NaN is written as NaN
    members[member] = zstandard.ZstdCompressor().compress(text.encode())
    manifest["tables"][table].update(
        rows=len(rows), sha256=hashlib.sha256(members[member]).hexdigest()
    )
    return _write(path, manifest, members)


def _manifest_edited(source: Path, path: Path, edit: Callable[[dict], None]) -> Path:
    manifest, members = _read(source)
    edit(manifest)
    return _write(path, manifest, members)


def _drop_member(source: Path, path: Path) -> Path:
    manifest, members = _read(source)
    del members["tables/agent_rewards.jsonl.zst"]
    return _write(path, manifest, members)


def _set(row: dict, **changes: Any) -> dict:
    return {**row, **changes}


DAMAGES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "no tables": (
        lambda s, p: _manifest_edited(s, p, lambda m: m.update(tables={})),
        "lists no entry for tables q_agents",
    ),
    "some tables missing": (
        lambda s, p: _manifest_edited(s, p, lambda m: m["tables"].pop("agent_rewards")),
        "lists no entry for tables agent_rewards",
    ),
    "tables not an object": (
        lambda s, p: _manifest_edited(s, p, lambda m: m.update(tables=["agent_rewards"])),
        "'tables' is list",
    ),
    "an entry not an object": (
        lambda s, p: _manifest_edited(s, p, lambda m: m["tables"].update(agent_rewards=7)),
        "agent_rewards: manifest entry is int, not an object",
    ),
    "an entry without its checksum": (
        lambda s, p: _manifest_edited(s, p, lambda m: m["tables"]["agent_rewards"].pop("sha256")),
        "agent_rewards: manifest entry lacks a valid sha256",
    ),
    "a member missing": (_drop_member, "member tables/agent_rewards.jsonl.zst is missing"),
    "a wrong checksum": (
        lambda s, p: _manifest_edited(
            s, p, lambda m: m["tables"]["agent_rewards"].update(sha256="0" * 64)
        ),
        "agent_rewards: SHA-256 mismatch",
    ),
    "a NaN reward": (
        lambda s, p: _with_rows(
            s, p, "agent_rewards", lambda rows: [_set(rows[0], reward=math.nan), *rows[1:]]
        ),
        "NaN is not a number JSON allows",
    ),
    "a null agent name": (
        lambda s, p: _with_rows(
            s, p, "agent_rewards", lambda rows: [_set(rows[0], agent_name=None), *rows[1:]]
        ),
        "agent_name is missing or null",
    ),
    "a duplicate id": (
        lambda s, p: _with_rows(s, p, "agent_rewards", lambda rows: [rows[0], *rows]),
        "id 1 appears twice",
    ),
    "a text where a number belongs": (
        lambda s, p: _with_rows(
            s, p, "agent_rewards", lambda rows: [_set(rows[0], timestamp="noon"), *rows[1:]]
        ),
        "timestamp is not a number",
    ),
    "an empty agent name": (
        lambda s, p: _with_rows(
            s, p, "agent_rewards", lambda rows: [_set(rows[0], agent_name=""), *rows[1:]]
        ),
        "agent_name must be a non-empty string",
    ),
    "components that are not JSON": (
        lambda s, p: _with_rows(
            s, p, "agent_rewards", lambda rows: [_set(rows[0], reward_components="{"), *rows[1:]]
        ),
        "reward_components is not JSON text",
    ),
    "the settings table missing": (
        lambda s, p: _manifest_edited(s, p, lambda m: m["tables"].pop("rlmemory_settings")),
        "lists no entry for tables rlmemory_settings",
    ),
    "a setting that is not a JSON object": (
        lambda s, p: _with_rows(
            s, p, "rlmemory_settings", lambda rows: [_set(rows[0], value="[1, 2]")]
        ),
        "namespace 'loops', key 'triage': a stored setting is not a JSON object",
    ),
    "a setting without a namespace": (
        lambda s, p: _with_rows(
            s, p, "rlmemory_settings", lambda rows: [_set(rows[0], namespace=""), *rows]
        ),
        "namespace must be a non-empty string",
    ),
    "a row that is not an object": (
        lambda s, p: _with_rows(s, p, "agent_rewards", lambda rows: [[1, 2], *rows]),
        "not an object",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_archive_fails_verify_and_restore_changes_nothing(
    damage, good_archive, target, tmp_path
):
    make, problem = DAMAGES[damage]
    damaged = make(good_archive, tmp_path / "damaged.tar")

    report = verify(damaged)
    assert not report.ok
    assert any(problem in line for line in report.problems), report.problems
    with pytest.raises(CorruptStoreError, match="failed verification, nothing was changed"):
        restore(damaged, target, replace=True)
    assert len(target.get_agent_rewards("kept", limit=1000)) == TARGET_REWARDS
    assert target.list_agents() == ["kept"]


@pytest.mark.parametrize("damage", ["no tables", "an entry not an object", "a duplicate id"])
def test_the_cli_reports_a_damaged_backup_on_one_line_and_exits_1(damage, good_archive, tmp_path):
    damaged = DAMAGES[damage][0](good_archive, tmp_path / "damaged.tar")
    db = str(tmp_path / "target.db")
    with open_store(db) as store:
        store.save_agent_reward("kept", 1.0, {})
    for arguments in (["verify", str(damaged)], ["restore", str(damaged), "--replace", "--db", db]):
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        assert DAMAGES[damage][1].split(":")[0] in result.stderr
        assert result.stderr.count("error:") == 1
    with open_store(db) as store:
        assert len(store.get_agent_rewards("kept")) == 1


def test_the_untouched_archive_passes_and_restores(good_archive, target):
    assert verify(good_archive).ok
    restore(good_archive, target, replace=True)
    assert len(target.get_agent_rewards("router")) == 2


def test_a_hand_edited_sqlite_copy_fails_verify_and_restore(tmp_path, target):
    with open_store(str(tmp_path / "live.db")) as live:
        _fill(live)
        backup(live, tmp_path / "copy.db")
    assert verify(tmp_path / "copy.db").ok
    connection = sqlite3.connect(tmp_path / "copy.db")
    connection.execute("UPDATE agent_rewards SET reward = 99.0 WHERE id = 1")
    connection.commit()
    connection.close()

    report = verify(tmp_path / "copy.db")
    assert not report.ok
    assert report.problems == ["rows do not match the recorded checksum (edited or damaged)"]
    with pytest.raises(CorruptStoreError, match="recorded checksum"):
        restore(tmp_path / "copy.db", target, replace=True)
    assert len(target.get_agent_rewards("kept", limit=1000)) == TARGET_REWARDS


def test_a_sqlite_database_that_is_no_backup_copy_fails_verify(tmp_path):
    with open_store(str(tmp_path / "live.db")) as live:
        _fill(live)
    report = verify(tmp_path / "live.db")
    assert not report.ok and "no checksum" in report.problems[0]


def test_a_missing_backup_file_is_a_file_access_error_and_one_cli_line(tmp_path):
    missing = tmp_path / "nowhere.tar"
    with pytest.raises(FileAccessError, match=r"nowhere\.tar does not exist"):
        verify(missing)
    with open_store(str(tmp_path / "t.db")) as store, pytest.raises(FileAccessError):
        restore(missing, store)
    for arguments in (
        ["verify", str(missing)],
        ["restore", str(missing), "--db", str(tmp_path / "cli.db")],
    ):
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [f"error: backup {missing} does not exist"]
    assert not (tmp_path / "cli.db").exists()  # no empty store created for nothing


def test_a_backup_into_a_folder_that_cannot_be_written_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    db = str(tmp_path / "live.db")
    with open_store(db) as store:
        _fill(store)
        for name in ("backup.tar", "backup.db"):
            with pytest.raises(FileAccessError, match="cannot write backup"):
                backup(store, blocker / name)
    result = CliRunner().invoke(app, ["backup", str(blocker / "b.tar"), "--db", db])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot write backup" in result.stderr


def test_export_to_a_folder_is_one_clear_error(tmp_path):
    db = str(tmp_path / "live.db")
    with open_store(db) as store:
        _fill(store)
    result = CliRunner().invoke(app, ["export", "router", "--out", str(tmp_path), "--db", db])
    assert result.exit_code == 1
    assert "it is a folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ('{"agents":{"a":5}}', "policy agents.a must be an object of retention rules, not int"),
        ('{"agents":[1]}', "policy agents must be an object of agent names"),
        ('{"default":{"rewards":3}}', "policy rewards must be an object of rules"),
    ],
)
def test_prune_with_a_malformed_policy_names_the_part_on_one_line(policy, message, tmp_path):
    db = str(tmp_path / "live.db")
    with open_store(db) as store:
        _fill(store)
    for given in (policy, _policy_file(tmp_path, policy)):
        result = CliRunner().invoke(app, ["prune", "--dry-run", "--policy", given, "--db", db])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {message}")


def _policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.json"
    path.write_text(text)
    return str(path)


def test_a_restore_that_fails_while_loading_leaves_the_target_as_it_was(target, tmp_path):
    """The backup verifies, but its values are encrypted with a key the target lacks:
    the error comes after the target was cleared and rows loaded, and all of it rolls
    back, replace=True included."""
    from rlmemory.errors import EncryptionKeyError
    from rlmemory.ops.crypto import generate_key

    with open_store(str(tmp_path / "secret.db"), encryption_key=generate_key()) as source:
        _fill(source)
        backup(source, tmp_path / "secret.tar")
    assert verify(tmp_path / "secret.tar").ok
    with pytest.raises(EncryptionKeyError, match=r"open .* with that key"):
        restore(tmp_path / "secret.tar", target, replace=True)
    assert len(target.get_agent_rewards("kept", limit=1000)) == TARGET_REWARDS
    assert target.list_agents() == ["kept"]
    assert target.get_agent_interactions("router") == []


def test_an_archive_of_an_older_schema_needs_only_the_tables_it_had(good_archive, target, tmp_path):
    """Schema 2 archives have no learner_steps (added in 3) nor settings (added in 4):
    complete, not damaged; with replace=True the target keeps its own settings."""
    manifest, members = _read(good_archive)
    manifest["schema_version"] = 2
    for table in ("learner_steps", "rlmemory_settings"):
        del manifest["tables"][table]
        del members[f"tables/{table}.jsonl.zst"]
    older = _write(tmp_path / "schema2.tar", manifest, members)
    assert verify(older).ok, verify(older).problems
    target.save_setting("loops", "kept", {"learner": "mine"})
    restore(older, target, replace=True)
    assert len(target.get_agent_rewards("router")) == 2
    assert target.list_settings("loops") == {"kept": {"learner": "mine"}}


def test_an_archive_of_schema_3_restores_into_an_empty_store_without_settings(
    good_archive, store, tmp_path
):
    """Schema 3 had learner_steps but no settings table: it restores, settings empty."""
    manifest, members = _read(good_archive)
    manifest["schema_version"] = 3
    del manifest["tables"]["rlmemory_settings"]
    del members["tables/rlmemory_settings.jsonl.zst"]
    older = _write(tmp_path / "schema3.tar", manifest, members)
    assert verify(older).ok, verify(older).problems
    report = restore(older, store)
    assert "rlmemory_settings" not in report.counts
    assert store.list_agents() == ["router"] and store.list_settings("loops") == {}


def test_a_format_1_archive_of_the_current_schema_restores_without_settings(
    good_archive, target, tmp_path
):
    """Archive format 1 predates settings in backups (schema 4 and 5 included): complete,
    and with replace=True the target keeps its own settings."""
    manifest, members = _read(good_archive)
    assert manifest["format_version"] == 2
    manifest["format_version"] = 1
    del manifest["tables"]["rlmemory_settings"]
    del members["tables/rlmemory_settings.jsonl.zst"]
    older = _write(tmp_path / "format1.tar", manifest, members)
    assert verify(older).ok, verify(older).problems
    target.save_setting("loops", "kept", {"learner": "mine"})
    restore(older, target, replace=True)
    assert len(target.get_agent_rewards("router")) == 2
    assert target.list_settings("loops") == {"kept": {"learner": "mine"}}


def test_a_current_archive_replaces_the_targets_settings(good_archive, target):
    target.save_setting("loops", "gone", {"learner": "mine"})
    restore(good_archive, target, replace=True)
    assert target.list_settings("loops") == {"triage": {"learner": "linucb", "dimension": 8}}
