"""A crafted file-store folder never reads, writes, moves, truncates or deletes outside itself.

Issue 8, finding 5: a folder whose leftover journal named a backup ``../../home/...`` and
appended through a symbolic link ``agents/link -> /some/dir`` moved a file into the store
and truncated another outside it, just by being opened. These tests build such folders
(the issue's exact attack, then links at every level of the layout, absolute paths, NUL
bytes, overlong names, special files) next to files that stand for the user's data, open
and use the store, and check that the outside files are byte-for-byte unchanged and that
the error is a ``CorruptStoreError`` naming what was refused.

File store only: the SQL backends keep their data in one database file or server and
build no paths from stored data.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files import FileBackedMemoryDatabase
from rlmemory.store.files.io import safe_dirname
from rlmemory.store.files.journal import pending as journal_pending

AGENT = "router"
IMPORTANT = b"the user's important data\n"
NOTES = b"notes kept outside the store\n"


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A store with one agent's data, and the user's files next to it."""
    home = tmp_path / "home"
    some_dir = tmp_path / "some" / "dir"
    home.mkdir()
    some_dir.mkdir(parents=True)
    (home / "important.txt").write_bytes(IMPORTANT)
    (some_dir / "notes.txt").write_bytes(NOTES)
    store_dir = tmp_path / "share" / "store"
    with FileBackedMemoryDatabase(store_dir) as store:
        decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
        store.save_agent_reward(AGENT, 0.5, {"speed": 1}, decision_id)
        store.save_agent_interaction(AGENT, "q", "r")
        store.save_q_values(AGENT, {"s": {"a": 1.0}})
        store.save_policy_params(AGENT, {"w": [1.0]})
        store.save_version(AGENT, b"payload", "v1")
    return {"store": store_dir, "home": home, "some_dir": some_dir, "root": tmp_path}


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (links not followed): file bytes, link targets."""
    seen: dict[str, bytes | str] = {}
    for directory, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(directory) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                seen[key] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[key] = path.read_bytes()
            else:
                seen[key] = "<folder>"
    return seen


def outside_files(layout: dict[str, Path]) -> dict[str, bytes | str]:
    return {
        **snapshot(layout["home"]),
        **{f"some/{k}": v for k, v in snapshot(layout["some_dir"]).items()},
    }


def agent_dir(store_dir: Path, name: str = AGENT) -> Path:
    return store_dir / "agents" / safe_dirname(name)


def write_journal(store_dir: Path, *entries: dict[str, Any]) -> None:
    journal = store_dir / "journal"
    journal.mkdir(exist_ok=True)
    (journal / "journal.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def use_store(store_dir: Path) -> None:
    """Open the store and read and write through it the way an application does."""
    with FileBackedMemoryDatabase(store_dir, lock_timeout=5) as store:
        store.get_agent_rewards(AGENT)
        store.get_q_table(AGENT)
        store.list_agents()
        decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
        store.save_agent_reward(AGENT, 1.0, {}, decision_id)
        store.save_q_values(AGENT, {"s": {"a": 2.0}})
        store.save_policy_params(AGENT, {"w": [2.0]})


# ------------------------------------------------------------- the issue's attack
def test_the_issues_crafted_journal_moves_and_truncates_nothing_outside(
    layout: dict[str, Path],
) -> None:
    store_dir = layout["store"]
    os.symlink(layout["some_dir"], store_dir / "agents" / "link")
    write_journal(
        store_dir,
        {"replace": "agents/stolen.txt", "backup": "../../home/important.txt"},
        {"append": "agents/link/notes.txt", "size": 0},
    )
    before, inside = outside_files(layout), snapshot(store_dir)

    with pytest.raises(CorruptStoreError) as caught:
        FileBackedMemoryDatabase(store_dir)

    assert outside_files(layout) == before
    assert (layout["home"] / "important.txt").read_bytes() == IMPORTANT
    assert (layout["some_dir"] / "notes.txt").read_bytes() == NOTES
    assert not (store_dir / "agents" / "stolen.txt").exists()
    assert snapshot(store_dir) == inside  # nothing undone, the journal kept for inspection
    assert "journal.jsonl" in str(caught.value) or "link" in str(caught.value)


def test_a_backup_field_climbing_out_of_the_journal_is_refused_with_a_valid_target(
    layout: dict[str, Path],
) -> None:
    store_dir = layout["store"]
    target = f"agents/{safe_dirname(AGENT)}/policy_params.json"
    write_journal(store_dir, {"replace": target, "backup": "../../../home/important.txt"})
    before, inside = outside_files(layout), snapshot(store_dir)

    with pytest.raises(CorruptStoreError, match=r"backup '\.\./\.\./\.\./home/important\.txt'"):
        FileBackedMemoryDatabase(store_dir)

    assert outside_files(layout) == before
    assert snapshot(store_dir) == inside
    assert journal_pending(store_dir)


def test_an_append_through_a_linked_agent_folder_truncates_nothing_outside(
    layout: dict[str, Path],
) -> None:
    store_dir = layout["store"]
    linked = agent_dir(store_dir, "victim")  # a valid folder name, pointing outside
    os.symlink(layout["some_dir"], linked)
    write_journal(store_dir, {"append": f"agents/{linked.name}/notes.txt", "size": 0})
    before = outside_files(layout)

    with pytest.raises(CorruptStoreError) as caught:
        FileBackedMemoryDatabase(store_dir)

    assert caught.value.location == str(linked)
    assert "symbolic link" in str(caught.value)
    assert outside_files(layout) == before


# ------------------------------------------------- journal lines of every bad shape
BAD_JOURNAL_LINES = {
    "absolute append": {"append": "/tmp/outside-the-store.txt", "size": 0},
    "absolute replace target": {"replace": "/etc/hostname", "backup": None},
    "absolute backup": {"replace": "meta.json", "backup": "/tmp/elsewhere.bak"},
    "backup with a folder": {"replace": "meta.json", "backup": "1.bak/../../../x.bak"},
    "backup not a .bak": {"replace": "meta.json", "backup": "journal.jsonl"},
    "dot-dot in an agent path": {"append": "agents/../../home/important.txt", "size": 0},
    "dot-dot as the file": {"append": f"agents/{safe_dirname(AGENT)}/..", "size": 0},
    "NUL byte in a path": {"append": f"agents/{safe_dirname(AGENT)}/rewards.jsonl\x00x", "size": 0},
    "NUL byte in a backup": {"replace": "meta.json", "backup": "1.bak\x00"},
    "overlong name": {"append": f"agents/{safe_dirname(AGENT)}/{'a' * 5000}", "size": 0},
    "overlong folder": {"mkdir": "agents/" + "a" * 300},
    "empty path": {"append": "", "size": 0},
    "path not a string": {"append": ["agents"], "size": 0},
    "the journal itself": {"append": "journal/journal.jsonl", "size": 0},
    "a journal backup": {"replace": "journal/1.bak", "backup": None},
    "a dot-file": {"append": ".lock", "size": 0},
    "too deep": {"append": f"agents/{safe_dirname(AGENT)}/x/rewards.jsonl", "size": 0},
    "a folder three deep": {"mkdir": f"agents/{safe_dirname(AGENT)}/x"},
    "newline after a name": {"append": "meta.json\n", "size": 0},
    "newline after a backup": {"replace": "meta.json", "backup": "1.bak\n"},
    "below a file": {"append": "meta.json/x", "size": 0},
    "backslashes": {"append": "agents\\..\\..\\home\\important.txt", "size": 0},
    "negative size": {"append": "index/rewards.jsonl", "size": -1},
    "size as text": {"append": "index/rewards.jsonl", "size": "0"},
    "size as true": {"append": "index/rewards.jsonl", "size": True},
    "unknown entry": {"unlink": "meta.json"},
}


@pytest.mark.parametrize("entry", BAD_JOURNAL_LINES.values(), ids=list(BAD_JOURNAL_LINES))
def test_a_journal_line_outside_the_stores_shapes_is_refused_before_anything_is_undone(
    layout: dict[str, Path], entry: dict[str, Any]
) -> None:
    store_dir = layout["store"]
    valid = {"append": f"agents/{safe_dirname(AGENT)}/rewards.jsonl", "size": 0}
    write_journal(store_dir, valid, entry)  # the valid line would truncate, if undone
    before, inside = outside_files(layout), snapshot(store_dir)

    with pytest.raises(CorruptStoreError) as caught:
        FileBackedMemoryDatabase(store_dir)

    assert "journal.jsonl" in str(caught.value)
    assert outside_files(layout) == before
    assert snapshot(store_dir) == inside


# ---------------------------------------------------- symbolic links at every level
def _entries_to_link(store_dir: Path) -> dict[str, Path]:
    folder = agent_dir(store_dir)
    return {
        "agents folder": store_dir / "agents",
        "index folder": store_dir / "index",
        "journal folder": store_dir / "journal",
        "meta.json": store_dir / "meta.json",
        "lock file": store_dir / ".lock",
        "agent folder": folder,
        "agent.json": folder / "agent.json",
        "rewards.jsonl": folder / "rewards.jsonl",
        "decisions.jsonl": folder / "decisions.jsonl",
        "interactions.jsonl": folder / "interactions.jsonl",
        "q_table.updates.jsonl": folder / "q_table.updates.jsonl",
        "policy_params.json": folder / "policy_params.json",
        "versions.jsonl": folder / "versions.jsonl",
        "index file": store_dir / "index" / "rewards.jsonl",
        "journal file": store_dir / "journal" / "journal.jsonl",
    }


LINKED = list(_entries_to_link(Path("x")))


def _replace_by_link(path: Path, outside: Path) -> Path:
    """Move ``path`` outside the store and leave a symbolic link to it in its place."""
    copy = outside / ("linked-" + path.name)
    shutil.move(str(path), str(copy))
    os.symlink(copy, path)
    return copy


@pytest.mark.parametrize("which", LINKED)
def test_a_symbolic_link_anywhere_in_the_store_is_refused_when_opened(
    layout: dict[str, Path], which: str
) -> None:
    store_dir = layout["store"]
    link = _entries_to_link(store_dir)[which]
    if which == "journal file":
        (store_dir / "journal").mkdir(exist_ok=True)
        link.touch()
    _replace_by_link(link, layout["some_dir"])
    before = outside_files(layout)

    with pytest.raises(CorruptStoreError) as caught:
        use_store(store_dir)

    assert caught.value.location == str(link)
    assert "symbolic link" in str(caught.value)
    assert outside_files(layout) == before


@pytest.mark.parametrize(
    "which", ["agents folder", "agent folder", "rewards.jsonl", "index file", "journal folder"]
)
def test_a_symbolic_link_made_while_the_store_is_open_is_refused_at_the_next_call(
    layout: dict[str, Path], which: str
) -> None:
    store_dir = layout["store"]
    with FileBackedMemoryDatabase(store_dir) as store:
        store.get_agent_rewards(AGENT)
        link = _entries_to_link(store_dir)[which]
        if which == "journal folder":
            (store_dir / "journal").mkdir(exist_ok=True)
        _replace_by_link(link, layout["some_dir"])
        before = outside_files(layout)
        with pytest.raises(CorruptStoreError, match="symbolic link"):
            store.save_agent_reward(AGENT, 1.0, {})
        with pytest.raises(CorruptStoreError, match="symbolic link"):
            store.get_agent_rewards(AGENT)
    assert outside_files(layout) == before


def test_a_linked_backup_in_the_journal_folder_is_refused(layout: dict[str, Path]) -> None:
    store_dir = layout["store"]
    target = f"agents/{safe_dirname(AGENT)}/policy_params.json"
    write_journal(store_dir, {"replace": target, "backup": "1.bak"})
    os.symlink(layout["home"] / "important.txt", store_dir / "journal" / "1.bak")
    before = outside_files(layout)

    with pytest.raises(CorruptStoreError, match="symbolic link"):
        FileBackedMemoryDatabase(store_dir)

    assert outside_files(layout) == before
    assert (store_dir / "journal" / "1.bak").is_symlink()


def test_leftover_temporary_files_are_not_deleted_through_a_linked_agent_folder(
    layout: dict[str, Path],
) -> None:
    store_dir = layout["store"]
    (layout["some_dir"] / ".precious.tmp").write_bytes(b"keep me")
    os.symlink(layout["some_dir"], agent_dir(store_dir, "other"))
    before = outside_files(layout)

    with pytest.raises(CorruptStoreError, match="symbolic link"):
        FileBackedMemoryDatabase(store_dir)

    assert outside_files(layout) == before


@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_a_history_is_refused_instead_of_blocking(
    layout: dict[str, Path],
) -> None:
    history = agent_dir(layout["store"]) / "rewards.jsonl"
    history.unlink()
    os.mkfifo(history)

    with pytest.raises(CorruptStoreError, match="not a regular file") as caught:
        FileBackedMemoryDatabase(layout["store"])

    assert caught.value.location == str(history)


def test_a_legitimate_journal_of_a_killed_writer_still_rolls_back(layout: dict[str, Path]) -> None:
    store_dir = layout["store"]
    history = agent_dir(store_dir) / "rewards.jsonl"
    size = history.stat().st_size
    write_journal(
        store_dir,
        {"append": f"agents/{safe_dirname(AGENT)}/rewards.jsonl", "size": size, "mtime_ns": None},
    )
    with open(history, "ab") as handle:
        handle.write(b'{"id":99,"reward":1.0,"reward_components":{},"timestamp":1.0}\n')

    with FileBackedMemoryDatabase(store_dir) as store:
        assert [row["reward"] for row in store.get_agent_rewards(AGENT)] == [0.5]
    assert history.stat().st_size == size
    assert not journal_pending(store_dir)


def test_a_store_reached_through_a_link_the_user_chose_opens(layout: dict[str, Path]) -> None:
    """The folder given by the user may itself be a link: only links inside are refused."""
    chosen = layout["root"] / "my-store"
    os.symlink(layout["store"], chosen)
    with FileBackedMemoryDatabase(chosen) as store:
        assert [row["reward"] for row in store.get_agent_rewards(AGENT)] == [0.5]


def _dump_everything(store: Any) -> None:
    with store.snapshot() as read:
        for table in store.backup_tables():
            list(read(table))


HOSTILE_USES: dict[str, Callable[[Any], Any]] = {
    "clear_data": lambda store: store.clear_data(),
    "delete_policy_params": lambda store: store.delete_policy_params(AGENT),
    "prune": lambda store: store.prune_history(AGENT, "rewards", keep_newest=0),
    "snapshot": _dump_everything,
}


@pytest.mark.parametrize("use", HOSTILE_USES.values(), ids=list(HOSTILE_USES))
def test_operations_that_delete_or_rewrite_refuse_a_linked_file(
    layout: dict[str, Path], use: Callable[[Any], Any]
) -> None:
    store_dir = layout["store"]
    with FileBackedMemoryDatabase(store_dir) as store:
        store.get_agent_rewards(AGENT)
        _replace_by_link(agent_dir(store_dir) / "policy_params.json", layout["home"])
        before = outside_files(layout)
        with pytest.raises(CorruptStoreError, match="symbolic link"):
            use(store)
    assert outside_files(layout) == before


def test_a_transaction_that_wrote_every_kind_of_file_rolls_back_through_the_checks(
    layout: dict[str, Path],
) -> None:
    """Every path the store journals (histories, index files, the step counter, versions,
    policy parameters, meta.json, a new agent folder) passes the journal's shape check."""
    store_dir = layout["store"]
    with FileBackedMemoryDatabase(store_dir) as store:
        before = snapshot(store_dir)
        with pytest.raises(RuntimeError), store.transaction():
            decision_id = store.save_agent_decision("newcomer", "s", "a", {"a": 1.0}, None)
            store.save_agent_reward(AGENT, 1.0, {}, decision_id)
            store.save_agent_interaction(AGENT, "q", "r", None, decision_id)
            store.append_learner_steps(AGENT, [("A", np.ones(2))])
            store.save_version(AGENT, b"v2", "second")
            store.save_policy_params(AGENT, {"w": [3.0]})
            store.delete_policy_params(AGENT)
            store.save_q_values(AGENT, {"s": {"a": 5.0}})
            store.clear_data()
            raise RuntimeError("undo all of it")
        after = snapshot(store_dir)
    assert {k: v for k, v in after.items() if not k.startswith("journal")} == {
        k: v for k, v in before.items() if not k.startswith("journal")
    }
