"""The file store does not trust hand edits: wrong values, cut ids, folders that are no store.

Issue 8, finding 13: a NaN reward or a string Q-value edited into a line was returned as
is; emptying ``index/rewards.jsonl`` made the store hand out id 1 again; ``rlmemory stats
--db <any folder>`` turned the folder into a store. Each edit below is what a person (or
a bad script) could do to the files; the store must answer with a ``CorruptStoreError``
naming the file and the line (or a ``NotAStoreError``), and write nothing.

File store only: the SQL backends' column types refuse such values when they are
written, and their ids come from the database, not from a file a person can empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.errors import CorruptStoreError, NotAStoreError
from rlmemory.store import open_store
from rlmemory.store.files import FileBackedMemoryDatabase
from rlmemory.store.files.io import safe_dirname

AGENT = "router"


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def filled(base_dir: Path) -> dict[str, int]:
    """A store with one row of every kind, a Q-table, arrays, policy parameters, a version."""
    with FileBackedMemoryDatabase(base_dir) as store:
        decision_id = store.save_agent_decision(
            AGENT, "code", "coder", {"coder": 1.0}, None, propensity=0.5, features=[1.0, 2.0]
        )
        reward_id = store.save_agent_reward(AGENT, 0.75, {"speed": 1.0}, decision_id)
        interaction_id = store.save_agent_interaction(AGENT, "fix it", "done", None, decision_id)
        store.save_q_table(AGENT, {"code": {"coder": 1.0}})
        store.save_q_values(AGENT, {"chat": {"chatter": 0.5}})
        store.save_arrays(AGENT, {"A": np.eye(2)})
        store.save_policy_params(AGENT, {"w": [1.0]})
        store.save_version(AGENT, b"state", "first")
    return {"decision": decision_id, "reward": reward_id, "interaction": interaction_id}


def agent_file(base_dir: Path, name: str) -> Path:
    return base_dir / "agents" / safe_dirname(AGENT) / name


def edit_line(path: Path, line: int, change: Callable[[str], str]) -> None:
    """Apply ``change`` to the text of line ``line`` (1-based) of ``path``."""
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = change(lines[line - 1])
    path.write_text("".join(lines))


def append_line(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text + "\n")


def files_and_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# ------------------------------------------------------- wrong values in edited lines
# (file, line, text replaced, replacement, read that must refuse it, field named)
EDITS: dict[str, tuple[str, int, str, str, Callable[[Any, dict[str, int]], Any], str]] = {
    "NaN reward": (
        "rewards.jsonl",
        1,
        '"reward":0.75',
        '"reward":NaN',
        lambda store, ids: store.get_agent_rewards(AGENT),
        "NaN",
    ),
    "Infinity reward by stats": (
        "rewards.jsonl",
        1,
        '"reward":0.75',
        '"reward":Infinity',
        lambda store, ids: store.agent_stats(AGENT),
        "Infinity",
    ),
    "1e999 reward (infinite)": (
        "rewards.jsonl",
        1,
        '"reward":0.75',
        '"reward":1e999',
        lambda store, ids: store.get_agent_reward(ids["reward"]),
        "reward",
    ),
    "reward as text, by stats": (
        "rewards.jsonl",
        1,
        '"reward":0.75',
        '"reward":"high"',
        lambda store, ids: store.agent_stats(AGENT),
        "reward",
    ),
    "reward as true": (
        "rewards.jsonl",
        1,
        '"reward":0.75',
        '"reward":true',
        lambda store, ids: store.get_agent_rewards(AGENT),
        "reward",
    ),
    "reward components as a list": (
        "rewards.jsonl",
        1,
        '"reward_components":{"speed":1.0}',
        '"reward_components":[1]',
        lambda store, ids: store.get_agent_rewards(AGENT),
        "reward_components",
    ),
    "row id as a float": (
        "rewards.jsonl",
        1,
        '"id":1,',
        '"id":1.0,',
        lambda store, ids: store.get_agent_rewards(AGENT),
        "id",
    ),
    "decision propensity as text": (
        "decisions.jsonl",
        1,
        '"propensity":0.5',
        '"propensity":"0.5"',
        lambda store, ids: store.get_agent_decision(ids["decision"]),
        "propensity",
    ),
    "decision features with text": (
        "decisions.jsonl",
        1,
        '"features":[1.0,2.0]',
        '"features":[1.0,"x"]',
        lambda store, ids: list(store.iter_agent_decisions(AGENT)),
        "features",
    ),
    "decision q_values as a list": (
        "decisions.jsonl",
        1,
        '"q_values":{"coder":1.0}',
        '"q_values":[1.0]',
        lambda store, ids: store.get_agent_decisions(AGENT),
        "q_values",
    ),
    "interaction request as a number": (
        "interactions.jsonl",
        1,
        '"request":"fix it"',
        '"request":42',
        lambda store, ids: store.get_agent_interaction(ids["interaction"]),
        "request",
    ),
    "Q-value as text in the updates log": (
        "q_table.updates.jsonl",
        2,
        '"chatter":0.5',
        '"chatter":"0.5"',
        lambda store, ids: store.get_q_table(AGENT),
        "chatter",
    ),
    "NaN Q-value in the updates log": (
        "q_table.updates.jsonl",
        2,
        '"chatter":0.5',
        '"chatter":NaN',
        lambda store, ids: store.get_q_values(AGENT, "chat"),
        "NaN",
    ),
    "version number as text": (
        "versions.jsonl",
        1,
        '"version":1',
        '"version":"1"',
        lambda store, ids: store.list_versions(AGENT),
        "version",
    ),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=list(EDITS))
def test_a_wrong_value_edited_into_a_line_is_corruption_naming_file_and_line(
    base_dir: Path, filled: dict[str, int], edit: tuple[Any, ...]
) -> None:
    file_name, line, old, new, read, named = edit
    path = agent_file(base_dir, file_name)
    if file_name == "q_table.updates.jsonl":  # save_q_table folded the first line away
        line = 1
    edit_line(path, line, lambda text: text.replace(old, new, 1))
    assert new in path.read_text()
    before = files_and_bytes(base_dir)

    with FileBackedMemoryDatabase(base_dir) as store, pytest.raises(CorruptStoreError) as caught:
        read(store, filled)

    message = str(caught.value)
    assert str(path) in message and f"line {line}" in message and named in message
    assert caught.value.location == str(path)
    assert files_and_bytes(base_dir) == before


def test_a_nan_in_a_patch_line_is_refused_like_one_in_a_row(
    base_dir: Path, filled: dict[str, int]
) -> None:
    path = agent_file(base_dir, "rewards.jsonl")
    append_line(path, f'{{"patch":{filled["reward"]},"reward":NaN}}')
    with (
        FileBackedMemoryDatabase(base_dir) as store,
        pytest.raises(CorruptStoreError, match=r"rewards\.jsonl line 2 holds NaN"),
    ):
        store.get_agent_rewards(AGENT)


def test_a_string_q_value_in_the_table_file_is_refused_naming_state_and_action(
    base_dir: Path, filled: dict[str, int]
) -> None:
    path = agent_file(base_dir, "q_table.json")
    path.write_text(path.read_text().replace('"coder": 1.0', '"coder": "1.0"'))
    with FileBackedMemoryDatabase(base_dir) as store:
        for read in (lambda: store.get_q_table(AGENT), lambda: store.get_q_values(AGENT, "code")):
            with pytest.raises(CorruptStoreError, match="state 'code', action 'coder'") as caught:
                read()
            assert caught.value.location == str(path)


def test_nan_in_policy_parameters_or_arrays_is_refused(
    base_dir: Path, filled: dict[str, int]
) -> None:
    params = agent_file(base_dir, "policy_params.json")
    params.write_text(params.read_text().replace("1.0", "NaN"))
    arrays = agent_file(base_dir, "arrays.updates.jsonl")
    arrays.write_text(arrays.read_text().replace("1.0", "1e999", 1))
    with FileBackedMemoryDatabase(base_dir) as store:
        with pytest.raises(CorruptStoreError, match=r"policy_params\.json line 2 holds NaN"):
            store.get_policy_params(AGENT)
        with pytest.raises(CorruptStoreError, match=r"array 'A' holds NaN or infinity"):
            store.get_arrays(AGENT)


def test_values_the_store_writes_itself_still_read_back(
    base_dir: Path, filled: dict[str, int]
) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        assert store.get_agent_rewards(AGENT)[0]["reward"] == 0.75
        assert store.agent_stats(AGENT)["mean_reward"] == 0.75
        assert store.get_q_table(AGENT) == {"code": {"coder": 1.0}, "chat": {"chatter": 0.5}}
        assert store.get_agent_decision(filled["decision"])["features"] == [1.0, 2.0]
        assert [row["version"] for row in store.list_versions(AGENT)] == [1]


# ------------------------------------------------------------------ ids never reused
@pytest.mark.parametrize("damage", ["emptied", "cut to one line", "deleted"])
@pytest.mark.parametrize("kind", ["rewards", "decisions", "interactions"])
def test_a_cut_id_index_is_refused_instead_of_reusing_ids(
    base_dir: Path, kind: str, damage: str
) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        for _ in range(3):
            decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
            store.save_agent_reward(AGENT, 0.5, {}, decision_id)
            store.save_agent_interaction(AGENT, "q", "r")
    index = base_dir / "index" / f"{kind}.jsonl"
    if damage == "emptied":
        index.write_bytes(b"")
    elif damage == "cut to one line":
        index.write_bytes(index.read_bytes()[:128])
    else:
        index.unlink()
    before = files_and_bytes(base_dir)

    with FileBackedMemoryDatabase(base_dir) as store:
        write = {
            "rewards": lambda: store.save_agent_reward(AGENT, 1.0, {}),
            "decisions": lambda: store.save_agent_decision(AGENT, "s", "a", {}, None),
            "interactions": lambda: store.save_agent_interaction(AGENT, "q", "r"),
        }[kind]
        with pytest.raises(CorruptStoreError, match="would reuse ids") as caught:
            write()
    assert caught.value.location == str(index)
    assert f"{kind}.jsonl holds id 3" in str(caught.value)
    assert files_and_bytes(base_dir) == before


def test_an_index_emptied_while_a_store_is_open_is_noticed_at_the_next_write(
    base_dir: Path,
) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        first = store.save_agent_reward(AGENT, 0.5, {})
        store.save_agent_reward(AGENT, 0.5, {})
        (base_dir / "index" / "rewards.jsonl").write_bytes(b"")
        with pytest.raises(CorruptStoreError, match="would reuse ids"):
            store.save_agent_reward(AGENT, 1.0, {})
        assert [row["id"] for row in store.get_agent_rewards(AGENT)] == [first + 1, first]


def test_ids_continue_once_the_index_is_put_back(base_dir: Path) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        store.save_agent_reward(AGENT, 0.5, {})
        store.save_agent_reward(AGENT, 0.5, {})
    index = base_dir / "index" / "rewards.jsonl"
    saved = index.read_bytes()
    index.write_bytes(b"")
    with FileBackedMemoryDatabase(base_dir) as store:
        with pytest.raises(CorruptStoreError):
            store.save_agent_reward(AGENT, 1.0, {})
        index.write_bytes(saved)
        assert store.save_agent_reward(AGENT, 1.0, {}) == 3


# ------------------------------------------------------- folders that are not a store
@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 not really a picture")
    (folder / "notes").mkdir()
    return folder


def everything_in(folder: Path) -> list[tuple[str, bytes | None]]:
    return sorted(
        (str(path.relative_to(folder)), path.read_bytes() if path.is_file() else None)
        for path in folder.rglob("*")
    )


@pytest.mark.parametrize("opener", [FileBackedMemoryDatabase, open_store])
def test_a_folder_that_is_not_a_store_is_refused_and_left_untouched(
    foreign: Path, opener: Callable[[Any], Any]
) -> None:
    before = everything_in(foreign)
    with pytest.raises(NotAStoreError, match=r"not an rlmemory file store.*holiday\.jpg") as caught:
        opener(foreign)
    assert caught.value.location == str(foreign)
    assert everything_in(foreign) == before


def test_a_folder_with_another_tools_meta_json_is_refused(foreign: Path) -> None:
    (foreign / "meta.json").write_text(json.dumps({"format": "photo-album", "version": 3}))
    before = everything_in(foreign)
    with pytest.raises(NotAStoreError, match="photo-album"):
        FileBackedMemoryDatabase(foreign)
    assert everything_in(foreign) == before


def test_a_missing_or_empty_folder_becomes_a_store(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "missing"):
        with FileBackedMemoryDatabase(folder) as store:
            store.save_agent_reward(AGENT, 1.0, {})
        assert (folder / "meta.json").exists()


def test_cli_stats_on_a_folder_that_is_not_a_store_is_one_line_and_writes_nothing(
    foreign: Path, subprocess_env: dict[str, str]
) -> None:
    before = everything_in(foreign)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rlmemory.cli import main; main()",
            "stats",
            "--db",
            str(foreign),
        ],
        capture_output=True,
        text=True,
        env={**subprocess_env, "COLUMNS": "400"},
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "is not an rlmemory file store" in result.stderr
    assert everything_in(foreign) == before
    assert not (foreign / ".lock").exists() and not os.path.exists(foreign / "meta.json")


def test_a_damaged_history_of_one_agent_does_not_stop_others_from_writing(
    base_dir: Path,
) -> None:
    with FileBackedMemoryDatabase(base_dir) as store:
        store.save_agent_reward("other", 0.5, {})
        store.save_agent_reward(AGENT, 0.5, {})
    damaged = base_dir / "agents" / safe_dirname("other") / "rewards.jsonl"
    damaged.write_text(damaged.read_text().replace('"reward":0.5', '"reward":"high"'))
    with FileBackedMemoryDatabase(base_dir) as store:
        assert store.save_agent_reward(AGENT, 1.0, {}) == 3
        with pytest.raises(CorruptStoreError, match="reward is 'high'"):
            store.get_agent_rewards("other")
