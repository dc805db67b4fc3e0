"""Behaviour only the file store has: its layout, safe names, torn lines, the undo journal.

The contract every backend shares is pinned by ``test_conformance.py``; these tests look
at the files themselves, damage them the way crashes and hand edits do, and kill
processes in the middle of transactions.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlmemory
from rlmemory.errors import CorruptStoreError, SchemaVersionError, StoreBusyError, StoreError
from rlmemory.store.base import SCHEMA_VERSION
from rlmemory.store.files import FileBackedMemoryDatabase
from rlmemory.store.files import io as file_io
from rlmemory.store.files import tables as file_tables
from rlmemory.store.files.io import SAFE_NAME, safe_dirname
from rlmemory.store.files.journal import pending as journal_pending

HOSTILE_NAMES = [
    "../x",
    "../../outside",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".",
    "x" * 300,
    "é" * 256,  # 512 UTF-8 bytes: the longest name allowed
    "ルーター 🚀",
    "Router",
    "router",
    "ROUTER",
    " ",
    "con",
    "a:b*?<>|",
    ".hidden",
    "~",
]


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "parent" / "memory"


@pytest.fixture
def store(base_dir: Path) -> Any:
    with FileBackedMemoryDatabase(base_dir) as opened:
        yield opened


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def store_contents(base_dir: Path) -> dict[Path, bytes]:
    """Every data file and its bytes (the journal, empty when idle, left out)."""
    journal = base_dir / "journal"
    return {
        path: path.read_bytes() for path in files_under(base_dir) if journal not in path.parents
    }


def agent_folder(base_dir: Path, agent_name: str) -> Path:
    return base_dir / "agents" / safe_dirname(agent_name)


# ------------------------------------------------------------------------ layout
def test_layout_is_readable_json_and_json_lines(store: Any, base_dir: Path) -> None:
    store.save_q_table("router", {"greeting": {"chat": 0.5, "search": 0.1}})
    store.save_policy_params("router", {"weights": [0.25, -1.5]})
    store.save_agent_reward("router", 0.75, {"speed": 1})
    store.save_arrays("router", {"A": np.eye(2)})

    folder = agent_folder(base_dir, "router")
    meta = json.loads((base_dir / "meta.json").read_text())
    assert meta == {"format": "rlmemory-files", "schema_version": SCHEMA_VERSION}
    assert json.loads((folder / "agent.json").read_text()) == {"agent_name": "router"}
    assert json.loads((folder / "q_table.json").read_text()) == {
        "greeting": {"chat": 0.5, "search": 0.1}
    }
    assert json.loads((folder / "policy_params.json").read_text()) == {"weights": [0.25, -1.5]}
    reward_lines = (folder / "rewards.jsonl").read_text().splitlines()
    assert [json.loads(line)["reward"] for line in reward_lines] == [0.75]
    array_change = json.loads((folder / "arrays.updates.jsonl").read_text())
    assert array_change["set"]["A"] == {
        "dtype": "float64",
        "shape": [2, 2],
        "data": [1.0, 0.0, 0.0, 1.0],
    }


def test_each_table_key_is_on_its_own_line_for_people_and_diff(store: Any, base_dir: Path) -> None:
    store.save_q_table("router", {f"state {i}": {"chat": float(i)} for i in range(3)})
    text = (agent_folder(base_dir, "router") / "q_table.json").read_text()
    assert text.splitlines() == [
        "{",
        '"state 0": {"chat": 0.0},',
        '"state 1": {"chat": 1.0},',
        '"state 2": {"chat": 2.0}',
        "}",
    ]


# -------------------------------------------------------------------- safe names
@pytest.mark.parametrize("agent_name", HOSTILE_NAMES, ids=repr)
def test_hostile_agent_name_writes_only_inside_base_dir_and_round_trips(
    tmp_path: Path, base_dir: Path, agent_name: str
) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        store.save_q_values(agent_name, {"s": {"a": 1.0}})
        reward_id = store.save_agent_reward(agent_name, 1.0, {"name": agent_name})
        store.save_agent_interaction(agent_name, "request", "response")
        assert store.get_q_table(agent_name) == {"s": {"a": 1.0}}
        assert store.get_agent_rewards(agent_name)[0]["id"] == reward_id
        assert store.list_agents() == [agent_name]
    outside = files_under(tmp_path) - files_under(base_dir)
    assert outside == set()
    folders = list((base_dir / "agents").iterdir())
    assert len(folders) == 1
    assert SAFE_NAME.match(folders[0].name)
    assert len(folders[0].name) <= 61


def test_names_differing_in_case_or_dropped_characters_never_share_a_folder(
    store: Any, base_dir: Path
) -> None:
    for number, agent_name in enumerate(HOSTILE_NAMES):
        store.save_q_values(agent_name, {"s": {"a": float(number)}})
    assert store.list_agents() == sorted(HOSTILE_NAMES)
    for number, agent_name in enumerate(HOSTILE_NAMES):
        assert store.get_q_table(agent_name) == {"s": {"a": float(number)}}
    folder_names = [folder.name.lower() for folder in (base_dir / "agents").iterdir()]
    assert len(set(folder_names)) == len(HOSTILE_NAMES)  # distinct even case-insensitively


def test_agent_name_with_nul_is_refused_before_anything_is_written(
    store: Any, base_dir: Path
) -> None:
    before = files_under(base_dir)
    with pytest.raises(ValueError, match="agent_name"):
        store.save_agent_reward("a\x00b", 1.0, {})
    with pytest.raises(ValueError, match="agent_name"):
        store.save_q_values("\x00", {"s": {"a": 1.0}})
    assert files_under(base_dir) == before


def test_text_with_nul_is_refused_naming_the_field(store: Any) -> None:
    with pytest.raises(ValueError, match="response"):
        store.save_agent_interaction("router", "request", "bad\x00byte")
    assert store.get_agent_interactions("router") == []


# ------------------------------------------------------------ torn and damaged files
def test_torn_final_line_is_ignored_then_cut_off_by_the_next_append(
    store: Any, base_dir: Path
) -> None:
    first = store.save_agent_reward("router", 1.0, {"n": 1})
    history = agent_folder(base_dir, "router") / "rewards.jsonl"
    with open(history, "ab") as handle:
        handle.write(b'{"id":99,"reward":2.0,"reward_comp')  # a crash mid-append
    assert [row["id"] for row in store.get_agent_rewards("router")] == [first]

    second = store.save_agent_reward("router", 3.0, {"n": 3})
    assert [row["reward"] for row in store.get_agent_rewards("router")] == [3.0, 1.0]
    assert [row["id"] for row in store.get_agent_rewards("router")] == [second, first]
    assert all(json.loads(line) for line in history.read_text().splitlines())


def test_complete_final_line_without_newline_is_kept(store: Any, base_dir: Path) -> None:
    interaction_id = store.save_agent_interaction("router", "hi", "hello")
    history = agent_folder(base_dir, "router") / "interactions.jsonl"
    history.write_bytes(history.read_bytes().rstrip(b"\n"))  # an editor dropped the newline
    assert store.get_agent_interaction(interaction_id)["request"] == "hi"
    store.save_agent_interaction("router", "bye", "goodbye")
    assert [row["request"] for row in store.get_agent_interactions("router")] == ["bye", "hi"]


def test_malformed_middle_line_is_corruption_naming_the_file(store: Any, base_dir: Path) -> None:
    for n in range(3):
        store.save_agent_reward("router", float(n), {})
    store.save_agent_reward("other", 5.0, {})
    history = agent_folder(base_dir, "router") / "rewards.jsonl"
    lines = history.read_bytes().split(b"\n")
    lines[0] = lines[0][:10]
    history.write_bytes(b"\n".join(lines))

    with pytest.raises(CorruptStoreError, match=r"rewards\.jsonl") as caught:
        store.get_agent_rewards("router", limit=10)
    assert caught.value.location == str(history)
    # Newest-first reads stop before the damage; other agents are untouched.
    assert [row["reward"] for row in store.get_agent_rewards("router", limit=2)] == [2.0, 1.0]
    assert store.get_agent_rewards("other")[0]["reward"] == 5.0


@pytest.mark.parametrize("file_name", ["q_table.json", "policy_params.json"])
def test_truncated_table_file_is_corruption_and_other_agents_stay_readable(
    store: Any, base_dir: Path, file_name: str
) -> None:
    for agent_name in ("damaged", "healthy"):
        store.save_q_table(agent_name, {"s": {"a": 1.0}})
        store.save_policy_params(agent_name, {"w": [1.0, 2.0]})
    path = agent_folder(base_dir, "damaged") / file_name
    path.write_bytes(path.read_bytes()[:7])

    reader = store.get_q_table if file_name == "q_table.json" else store.get_policy_params
    with pytest.raises(CorruptStoreError, match=file_name) as caught:
        reader("damaged")
    assert caught.value.location == str(path)
    assert store.get_q_table("healthy") == {"s": {"a": 1.0}}
    assert store.get_policy_params("healthy") == {"w": [1.0, 2.0]}
    assert store.list_agents() == ["damaged", "healthy"]


def test_damaged_id_index_is_corruption_naming_the_index(store: Any, base_dir: Path) -> None:
    decision_id = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    index = base_dir / "index" / "decisions.jsonl"
    index.write_bytes(b"x" * len(index.read_bytes()))
    with pytest.raises(CorruptStoreError, match=r"decisions\.jsonl"):
        store.get_agent_decision(decision_id)


def test_newer_schema_version_is_refused_naming_both_versions(base_dir: Path) -> None:
    FileBackedMemoryDatabase(base_dir).close()
    meta = base_dir / "meta.json"
    meta.write_text(json.dumps({"format": "rlmemory-files", "schema_version": 99}))
    with pytest.raises(SchemaVersionError) as caught:
        FileBackedMemoryDatabase(base_dir)
    message = str(caught.value)
    assert "99" in message and str(SCHEMA_VERSION) in message and str(base_dir) in message
    assert json.loads(meta.read_text())["schema_version"] == 99


def test_corrupt_header_is_corruption_naming_meta_json(base_dir: Path) -> None:
    FileBackedMemoryDatabase(base_dir).close()
    (base_dir / "meta.json").write_text('{"format": "rlmem')
    with pytest.raises(CorruptStoreError, match=r"meta\.json"):
        FileBackedMemoryDatabase(base_dir)


# ---------------------------------------------------------------- hand edits, patches
def test_feedback_edited_by_hand_into_the_jsonl_is_unlearned(store: Any, base_dir: Path) -> None:
    first = store.save_agent_interaction("router", "q1", "a1")
    second = store.save_agent_interaction("router", "q2", "a2", feedback="good")
    store.mark_feedback_learned([second])
    history = agent_folder(base_dir, "router") / "interactions.jsonl"
    edited = []
    for line in history.read_text().splitlines():
        record = json.loads(line)
        if record.get("id") == first:
            record["feedback"] = "wrong agent"
        edited.append(json.dumps(record))
    history.write_text("\n".join(edited) + "\n")

    unlearned = store.get_unlearned_feedback("router")
    assert [(row["id"], row["feedback"]) for row in unlearned] == [(first, "wrong agent")]


def test_feedback_and_reward_updates_are_appended_as_patch_lines(
    store: Any, base_dir: Path
) -> None:
    decision_id = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    store.set_decision_reward(decision_id, {"late": 1.0})
    store.set_decision_reward(decision_id, {"late": 2.0})
    lines = (agent_folder(base_dir, "router") / "decisions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines[1:]] == [
        {"patch": decision_id, "reward": {"late": 1.0}},
        {"patch": decision_id, "reward": {"late": 2.0}},
    ]
    assert store.get_agent_decision(decision_id)["reward"] == {"late": 2.0}
    assert store.get_agent_decisions("router")[0]["reward"] == {"late": 2.0}
    assert next(iter(store.iter_agent_decisions("router")))["reward"] == {"late": 2.0}
    assert store.count_agent_decisions("router") == 1


def test_stats_count_hand_written_lines_and_fold_reward_patches(store: Any, base_dir: Path) -> None:
    first = store.save_agent_reward("router", 1.0, {})
    store.save_agent_reward("router", 2.0, {})
    decision_id = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    store.set_decision_reward(decision_id, 1.0)
    folder = agent_folder(base_dir, "router")
    with open(folder / "decisions.jsonl", "a") as history:  # keys in another order, a blank
        row = {"state": "t", "id": 999, "selected_action": "b", "q_values": {}, "timestamp": 1.0}
        history.write("\n" + json.dumps(row) + "\n")
    stats = store.agent_stats("router")
    assert (stats["decisions"], stats["rewards"], stats["mean_reward"]) == (2, 2, 1.5)
    assert store.count_agent_decisions("router") == 2

    with open(folder / "rewards.jsonl", "a") as history:  # a correction written by hand
        history.write(json.dumps({"patch": first, "reward": 4.0}) + "\n")
    assert store.agent_stats("router")["mean_reward"] == 3.0


def test_counts_follow_appends_rollbacks_and_rewrites_by_anyone(store: Any, base_dir: Path) -> None:
    for n in range(3):
        store.save_agent_decision("router", f"s{n}", "a", {}, None)
    assert store.count_agent_decisions("router") == 3
    with FileBackedMemoryDatabase(base_dir) as other:  # another writer appends
        other.save_agent_decision("router", "s3", "a", {}, None)
    assert store.count_agent_decisions("router") == 4
    with pytest.raises(RuntimeError), store.transaction():
        store.save_agent_decision("router", "s4", "a", {}, None)
        assert store.count_agent_decisions("router") == 5
        raise RuntimeError("rolled back")
    assert store.count_agent_decisions("router") == 4
    history = agent_folder(base_dir, "router") / "decisions.jsonl"
    lines = history.read_text().splitlines(keepends=True)
    history.write_text("".join(lines[:1] + lines[2:]))  # a row deleted by hand
    assert store.count_agent_decisions("router") == 3
    # by hand: one row deleted, another one made longer, so the file grows
    first, _, last = history.read_text().splitlines(keepends=True)
    history.write_text(first.replace('"s0"', json.dumps("s" * 500)) + last)
    assert store.count_agent_decisions("router") == 2
    assert store.agent_stats("router")["decisions"] == 2


# -------------------------------------------------------------- incremental tables
def test_updates_log_is_folded_into_q_table_json_once_large(
    store: Any, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_tables, "COMPACT_MIN_BYTES", 2_000)
    expected = {}
    for i in range(200):
        store.save_q_values("router", {f"s{i % 50}": {"a": float(i)}})
        expected[f"s{i % 50}"] = {"a": float(i)}
    folder = agent_folder(base_dir, "router")
    assert (folder / "q_table.json").exists()
    log = folder / "q_table.updates.jsonl"
    assert not log.exists() or log.stat().st_size < 2_000 + 100
    assert store.get_q_table("router") == expected


def test_folding_again_after_a_crash_between_table_write_and_log_removal_changes_nothing(
    store: Any, base_dir: Path
) -> None:
    store.save_q_table("router", {"s1": {"a": 1.0, "b": 2.0}, "s2": {"a": 0.0}})
    store.save_q_values("router", {"s1": {"a": 5.0}, "s3": {"c": 3.0}})
    expected = store.get_q_table("router")
    folder = agent_folder(base_dir, "router")
    # what a crash after writing the folded table but before deleting the log leaves
    (folder / "q_table.json").write_text(json.dumps(expected))
    assert store.get_q_table("router") == expected


def test_whole_table_save_discards_earlier_incremental_updates(store: Any) -> None:
    store.save_q_values("router", {"old": {"a": 1.0}})
    store.save_q_table("router", {"new": {"b": 2.0}})
    store.save_q_values("router", {"newer": {"c": 3.0}})
    assert store.get_q_table("router") == {"new": {"b": 2.0}, "newer": {"c": 3.0}}


def test_incremental_update_cost_does_not_read_the_table(store: Any, base_dir: Path) -> None:
    store.save_q_table("router", {"s": {"a": 1.0}})
    table = agent_folder(base_dir, "router") / "q_table.json"
    table.write_text("{ damaged")
    store.save_q_values("router", {"t": {"b": 2.0}})  # appends without reading the table
    with pytest.raises(CorruptStoreError, match=r"q_table\.json"):
        store.get_q_table("router")


# ----------------------------------------------------------------------- ids
def test_ids_increase_across_agents_and_lead_back_to_their_agent(store: Any) -> None:
    ids = [
        store.save_agent_decision(agent_name, "s", "a", {"a": 1.0}, None)
        for agent_name in ("b", "a", "b", "../c")
    ]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [store.get_agent_decision(i)["agent_name"] for i in ids] == ["b", "a", "b", "../c"]


def test_newest_rows_are_found_across_read_blocks_with_large_texts(store: Any) -> None:
    texts = [f"{n}:" + "\\'\"é\n" * 25_000 for n in range(6)]  # 100 kB+ each
    ids = [store.save_agent_interaction("router", text, text[::-1]) for text in texts]
    rows = store.get_agent_interactions("router", limit=3)
    assert [row["id"] for row in rows] == ids[:-4:-1]
    assert [row["request"] for row in rows] == texts[:-4:-1]
    assert store.get_agent_interaction(ids[0])["response"] == texts[0][::-1]
    found = store.find_agent_interaction("router", texts[1], texts[1][::-1])
    assert found is not None and found["id"] == ids[1]


# ------------------------------------------------------------------- transactions
def test_failed_transaction_restores_every_file_byte_for_byte(store: Any, base_dir: Path) -> None:
    store.save_policy_params("router", {"w": [1.0]})
    store.save_agent_reward("router", 1.0, {})
    store.save_q_values("router", {"s": {"a": 1.0}})
    before = store_contents(base_dir)

    with pytest.raises(RuntimeError, match="sub-agent failed"), store.transaction():
        store.save_policy_params("router", {"w": [2.0]})
        store.save_agent_reward("router", 2.0, {})
        store.save_q_values("router", {"s": {"a": 2.0}})
        store.save_q_table("newcomer", {"s": {"a": 3.0}})
        store.save_agent_interaction("newcomer", "q", "a")
        raise RuntimeError("sub-agent failed")

    assert store_contents(base_dir) == before
    assert not agent_folder(base_dir, "newcomer").exists()
    assert store.list_agents() == ["router"]


def test_reads_inside_a_transaction_see_its_own_writes(store: Any) -> None:
    with store.transaction():
        decision_id = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
        store.set_decision_reward(decision_id, 0.5)
        assert store.get_agent_decision(decision_id)["reward"] == 0.5
        store.save_q_values("router", {"s": {"a": 0.5}})
        assert store.get_q_table("router") == {"s": {"a": 0.5}}
    assert store.get_agent_decision(decision_id)["reward"] == 0.5


def test_nested_block_joins_the_outer_one_and_rolls_back_with_it(store: Any) -> None:
    with pytest.raises(KeyError), store.transaction():
        with store.transaction():
            store.save_agent_reward("router", 1.0, {})
        assert len(store.get_agent_rewards("router")) == 1
        raise KeyError("outer fails after the inner block ended")
    assert store.get_agent_rewards("router") == []


def test_ids_of_a_rolled_back_transaction_leave_no_gap_in_the_index(store: Any) -> None:
    kept = store.save_agent_reward("router", 1.0, {})
    with pytest.raises(ValueError), store.transaction():
        store.save_agent_reward("router", 2.0, {})
        raise ValueError("abort")
    assert store.save_agent_reward("router", 3.0, {}) == kept + 1


_MID_TRANSACTION_CHILD = textwrap.dedent(
    """
    import sys
    from rlmemory.store.files import FileBackedMemoryDatabase

    store = FileBackedMemoryDatabase(sys.argv[1])
    with store.transaction():
        store.save_policy_params("router", {"w": [2.0]})
        store.save_agent_reward("router", 2.0, {})
        store.save_q_table("router", {"replaced": {"a": 2.0}})
        store.save_agent_interaction("newcomer", "q", "a")
        print("inside", flush=True)
        sys.stdin.readline()  # killed here
    """
)


def child_env() -> dict[str, str]:
    source = str(Path(rlmemory.__file__).parents[1])
    return {**os.environ, "PYTHONPATH": source + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_process_killed_inside_a_transaction_leaves_none_of_its_writes(base_dir: Path) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        store.save_policy_params("router", {"w": [1.0]})
        store.save_agent_reward("router", 1.0, {})
        store.save_q_values("router", {"kept": {"a": 1.0}})
    child = subprocess.Popen(
        [sys.executable, "-c", _MID_TRANSACTION_CHILD, str(base_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    try:
        assert child.stdout.readline() == b"inside\n"
        assert journal_pending(base_dir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stdin.close()

    with FileBackedMemoryDatabase(base_dir) as store:
        assert store.get_policy_params("router") == {"w": [1.0]}
        assert [row["reward"] for row in store.get_agent_rewards("router")] == [1.0]
        assert store.get_q_table("router") == {"kept": {"a": 1.0}}
        assert store.list_agents() == ["router"]
        assert not journal_pending(base_dir)
        assert list((base_dir / "journal").glob("*.bak")) == []


_TRANSACTION_LOOP_CHILD = textwrap.dedent(
    """
    import sys
    from rlmemory.store.files import FileBackedMemoryDatabase

    store = FileBackedMemoryDatabase(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        with store.transaction():
            decision_id = store.save_agent_decision("router", f"s{i}", "a", {"a": 1.0}, None)
            store.save_agent_reward("router", float(i), {"i": i}, decision_id=decision_id)
            store.save_q_values("router", {f"s{i}": {"a": float(i)}})
            store.save_policy_params("router", {"last": i})
        print(i, flush=True)
        i += 1
    """
)


@pytest.mark.slow
def test_transactions_killed_at_random_moments_are_whole_or_absent(base_dir: Path) -> None:
    FileBackedMemoryDatabase(base_dir).close()
    rng = random.Random(20261125)
    acknowledged: list[int] = []
    interrupted = 0
    start = 0
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", _TRANSACTION_LOOP_CHILD, str(base_dir), str(start)],
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        wanted = rng.randint(1, 6)
        for _ in range(wanted):
            line = child.stdout.readline()
            assert line, "the transaction writer died by itself"
            acknowledged.append(int(line))
        # kill during the next transaction, at a random point inside it
        threading.Event().wait(rng.uniform(0.0, 0.02))
        child.send_signal(signal.SIGKILL)
        child.wait()
        acknowledged.extend(int(line) for line in child.stdout.read().split())
        child.stdout.close()
        start = 1_000 * (len(acknowledged) + 1) + start
        interrupted += journal_pending(base_dir)

        with FileBackedMemoryDatabase(base_dir) as store:
            decisions = list(store.iter_agent_decisions("router"))
            rewards = store.get_agent_rewards("router", limit=100_000)
            table = store.get_q_table("router") or {}
            last = (store.get_policy_params("router") or {}).get("last")
        committed = sorted(int(row["state"][1:]) for row in decisions)
        assert set(acknowledged) <= set(committed)
        assert sorted(row["reward_components"]["i"] for row in rewards) == committed
        assert sorted(int(state[1:]) for state in table) == committed
        assert {row["decision_id"] for row in rewards} == {row["id"] for row in decisions}
        assert last == max(committed)
    assert interrupted > 0, "no kill landed inside a transaction"


# ------------------------------------------------------------ threads, locks, close
def test_threads_appending_through_one_store_get_distinct_ids(store: Any) -> None:
    ids: list[int] = []

    def append_rewards(worker: int) -> None:
        for i in range(25):
            ids.append(store.save_agent_reward(f"agent {worker % 2}", float(i), {"w": worker}))

    threads = [threading.Thread(target=append_rewards, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 101))
    assert store.agent_stats("agent 0")["rewards"] + store.agent_stats("agent 1")["rewards"] == 100


def test_lock_held_by_another_process_too_long_is_store_busy(base_dir: Path) -> None:
    with FileBackedMemoryDatabase(base_dir, lock_timeout=0.1) as store:
        other_process_lock = filelock.FileLock(str(base_dir / ".lock"), thread_local=False)
        with other_process_lock, pytest.raises(StoreBusyError, match=re.escape(str(base_dir))):
            store.save_agent_reward("router", 1.0, {})
        store.save_agent_reward("router", 1.0, {})
        assert len(store.get_agent_rewards("router")) == 1


def test_close_is_idempotent_and_later_use_is_a_store_error(base_dir: Path) -> None:
    store = FileBackedMemoryDatabase(base_dir)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_q_table("router")


def test_temporary_files_of_a_killed_writer_are_removed_on_open(base_dir: Path) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        store.save_policy_params("router", {"w": [1.0]})
    folder = agent_folder(base_dir, "router")
    leftovers = [folder / ".policy_params.json.4242.1.tmp", base_dir / ".meta.json.4242.1.tmp"]
    for leftover in leftovers:
        leftover.write_text('{"w": [9')
    with FileBackedMemoryDatabase(base_dir) as store:
        assert store.get_policy_params("router") == {"w": [1.0]}
    assert not any(leftover.exists() for leftover in leftovers)


def test_a_file_where_the_folder_should_be_is_a_store_error(tmp_path: Path) -> None:
    occupied = tmp_path / "memory"
    occupied.write_text("not a folder")
    with pytest.raises(StoreError, match="not a folder"):
        FileBackedMemoryDatabase(occupied)
    assert occupied.read_text() == "not a folder"


# ------------------------------------------------------------ reading JSON Lines
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.text(max_size=40), max_size=12),
    torn_tail=st.sampled_from([b"", b'{"id":', b'{"text":"x"}']),
    block_size=st.integers(min_value=1, max_value=64),
)
def test_reading_backwards_in_blocks_gives_the_forward_records_reversed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    texts: list[str],
    torn_tail: bytes,
    block_size: int,
) -> None:
    monkeypatch.setattr(file_io, "_BLOCK_SIZE", block_size)
    path = tmp_path / f"history-{block_size}.jsonl"
    path.write_bytes(b"".join(file_io.encode_line({"text": text}) for text in texts) + torn_tail)
    forward = list(file_io.iter_records_forward(path))
    backward = list(file_io.iter_records_backward(path))
    assert backward == forward[::-1]
    expected = [{"text": text} for text in texts]
    if torn_tail == b'{"text":"x"}':  # a complete object without its newline is kept
        expected.append({"text": "x"})
    assert [record for _, record in forward] == expected
    assert [offset for offset, _ in forward] == sorted({offset for offset, _ in forward})


# ------------------------------------------------------------------- snapshots
def dump(read_table: Any, store: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: list(read_table(table)) for table in store.backup_tables()}


def fill_for_backup(store: Any) -> None:
    store.save_q_values("router", {"s1": {"a": 1.0}})
    store.save_q_values("router", {"s2": {"b": 2.0}})
    store.save_policy_params("router", {"w": [1.0]})
    store.save_arrays("router", {"A": np.eye(2)})
    store.append_learner_steps("router", [("a", np.array([1.0, 2.0]))])
    decision_id = store.save_agent_decision("router", "s1", "a", {"a": 1.0}, None)
    store.save_agent_reward("router", 0.5, {"x": 1}, decision_id=decision_id)
    store.save_agent_reward("router", 0.7, {})
    store.save_agent_interaction("router", "q", "a", "good")
    store.save_version("router", b"payload", "v1")
    store.save_setting("loops", "triage", {"on": True})


def test_a_snapshot_reads_the_moment_it_began_while_the_store_is_rewritten(
    store: Any, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends, whole-file rewrites, folding, deletes and clearing after the snapshot
    began change nothing it reads: it reads hard links of the files, up to their length
    at that moment."""
    fill_for_backup(store)
    with store.snapshot() as read_table:
        before = dump(read_table, store)
    monkeypatch.setattr(file_tables, "COMPACT_MIN_BYTES", 1)  # every write folds its log
    with store.snapshot() as read_table:
        store.save_q_values("router", {"s3": {"c": 3.0}})  # appends, then folds the log
        store.save_agent_reward("router", 0.9, {})  # appends
        store.set_decision_reward(1, 1.0)  # a patch line
        store.delete_agent_reward(2)  # rewrites rewards.jsonl
        store.prune_history("router", "interactions", keep_newest=0)
        store.save_q_table("router", {"new": {"z": 0.0}})  # replaces q_table.json
        store.save_policy_params("router", {"w": [2.0]})  # replaces policy_params.json
        store.delete_versions("router", [1])
        store.save_setting("loops", "triage", {"on": False})
        store.clear_data()  # deletes every file
        during = dump(read_table, store)
    assert during == before
    assert list((base_dir / "snapshots").iterdir()) == []  # its links are gone with it


def test_a_snapshot_holds_the_lock_only_to_link_the_files(store: Any, base_dir: Path) -> None:
    fill_for_backup(store)
    with store.snapshot() as read_table:
        # another store object (as another process) writes while the snapshot is open
        with FileBackedMemoryDatabase(base_dir, lock_timeout=1) as writer:
            writer.save_agent_reward("router", 2.0, {})
        rewards = [row["reward"] for row in read_table("agent_rewards")]
    assert rewards == [0.5, 0.7]


def test_a_snapshot_inside_a_transaction_reads_copies_its_rollback_cannot_cut(
    store: Any, base_dir: Path
) -> None:
    fill_for_backup(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.save_agent_reward("router", 3.0, {})
        with store.snapshot() as read_table:
            rewards = [row["reward"] for row in read_table("agent_rewards")]
            assert not any(
                path.is_file() and path.stat().st_nlink > 1 for path in base_dir.rglob("*")
            )
        raise RuntimeError("roll back")
    assert rewards == [0.5, 0.7, 3.0]  # the transaction's own write, as reads in it see
    assert [row["reward"] for row in store.get_agent_rewards("router")] == [0.7, 0.5]


def test_the_folder_of_a_snapshot_whose_process_died_is_removed_by_the_next(
    store: Any, base_dir: Path
) -> None:
    fill_for_backup(store)
    snapshots = base_dir / "snapshots"
    snapshots.mkdir()
    (snapshots / "123-dead").mkdir()
    (snapshots / "123-dead" / "x.rewards.jsonl").write_text("{}\n")
    (snapshots / "123-dead.lock").write_text("")  # its lock died with its process
    (snapshots / "124-running").mkdir()
    running = filelock.FileLock(str(snapshots / "124-running.lock"), thread_local=False)
    running.acquire()
    try:
        with store.snapshot() as read_table:
            assert len(list(read_table("agent_rewards"))) == 2
        assert sorted(path.name for path in snapshots.iterdir()) == [
            "124-running",
            "124-running.lock",
        ]
    finally:
        running.release()


def test_reading_a_snapshot_after_it_ended_is_refused(store: Any) -> None:
    fill_for_backup(store)
    with store.snapshot() as read_table:
        pass
    with pytest.raises(ValueError, match="snapshot has ended"):
        list(read_table("agent_rewards"))


def test_old_import_paths_still_work() -> None:
    import rlmemory.store.files_ops
    from rlmemory.store import files
    from rlmemory.store.files import maintenance

    assert rlmemory.store.files_ops is maintenance
    assert rlmemory.FileBackedMemoryDatabase is files.FileBackedMemoryDatabase
    assert FileBackedMemoryDatabase.__abstractmethods__ == frozenset()


def test_restoring_ids_that_start_high_skips_them_with_a_hole_in_the_id_index(
    store: Any, base_dir: Path
) -> None:
    """File store only: the id index is one fixed-width line per id; skipped ids are a
    hole (no disk blocks), not a million filler lines."""
    row = {
        "id": 1_000_000,
        "agent_name": "router",
        "reward": 1.0,
        "reward_components": "{}",
        "decision_id": None,
        "timestamp": 1.0,
    }
    store.load_rows("agent_rewards", [row])
    index = base_dir / "index" / "rewards.jsonl"
    assert index.stat().st_size == 1_000_000 * 128
    assert index.stat().st_blocks * 512 < 1_000_000  # the 128 MB of skipped ids take no disk
    assert store.get_agent_reward(1_000_000)["reward"] == 1.0
    with FileBackedMemoryDatabase(base_dir) as reopened:
        assert reopened.save_agent_reward("router", 2.0, {}) == 1_000_001


def test_a_rolled_back_restore_cuts_the_hole_it_made_in_the_id_index(
    store: Any, base_dir: Path
) -> None:
    first = store.save_agent_reward("router", 1.0, {})
    index = base_dir / "index" / "rewards.jsonl"
    size = index.stat().st_size
    row = {
        "id": 5_000,
        "agent_name": "router",
        "reward": 1.0,
        "reward_components": "{}",
        "decision_id": None,
        "timestamp": 1.0,
    }
    with pytest.raises(RuntimeError), store.transaction():
        store.load_rows("agent_rewards", [row])
        assert index.stat().st_size == 5_000 * 128
        raise RuntimeError("abandon the restore")
    assert index.stat().st_size == size
    assert store.save_agent_reward("router", 2.0, {}) == first + 1
