"""Export of rewards, interactions and decisions as CSV, JSON Lines, Parquet and DataFrames."""

from __future__ import annotations

import csv
import json

import pytest

from rlmemory.ops.export import COLUMNS, export_agent, iter_rows, to_dataframe


def _fill(store):
    decision = store.save_agent_decision(
        "router",
        "code",
        "coder",
        {"coder": 0.9, "search": 0.1},
        0.75,
        propensity=0.8,
        features=[1.0, 0.5],
    )
    store.save_agent_decision("router", "chat", "search", {"search": 1.0}, None)
    store.save_agent_reward("router", 0.75, {"task_completion": 1.0}, decision_id=decision)
    store.save_agent_reward("router", 0.25, {"task_completion": 0.0})
    store.save_agent_interaction("router", 'say "hi", please\nnow', "hello, 世界", None, decision)
    store.save_agent_interaction("router", "second", "reply", "good")
    store.save_agent_reward("other", 1.0, {})
    return decision


@pytest.mark.parametrize("table", ["rewards", "interactions", "decisions"])
def test_jsonl_export_holds_every_row_oldest_first_with_nested_values(store, tmp_path, table):
    _fill(store)
    out = tmp_path / f"{table}.jsonl"
    count = export_agent(store, "router", table, "jsonl", out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert count == len(lines) == 2
    assert [row["id"] for row in lines] == sorted(row["id"] for row in lines)
    assert all(tuple(row) == COLUMNS[table] for row in lines)
    assert all(row["agent_name"] == "router" for row in lines)
    if table == "decisions":
        assert lines[0]["q_values"] == {"coder": 0.9, "search": 0.1}
        assert lines[0]["features"] == [1.0, 0.5]
        assert lines[1]["reward"] is None
    if table == "interactions":
        assert lines[0]["request"] == 'say "hi", please\nnow'
        assert lines[1]["feedback"] == "good"


def test_csv_export_quotes_texts_and_writes_nested_values_as_json(store, tmp_path):
    decision = _fill(store)
    out = tmp_path / "interactions.csv"
    export_agent(store, "router", "interactions", "csv", out)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["request"] == 'say "hi", please\nnow'
    assert rows[0]["response"] == "hello, 世界"
    assert rows[0]["feedback"] == ""
    assert int(rows[0]["decision_id"]) == decision
    export_agent(store, "router", "rewards", "csv", tmp_path / "rewards.csv")
    with (tmp_path / "rewards.csv").open(encoding="utf-8", newline="") as handle:
        rewards = list(csv.DictReader(handle))
    assert json.loads(rewards[0]["reward_components"]) == {"task_completion": 1.0}
    assert [float(row["reward"]) for row in rewards] == [0.75, 0.25]


def test_parquet_export_types_columns_for_analysis(store, tmp_path):
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    _fill(store)
    out = tmp_path / "decisions.parquet"
    assert export_agent(store, "router", "decisions", "parquet", out) == 2
    table = pyarrow_parquet.read_table(out)
    assert table.column_names == list(COLUMNS["decisions"])
    assert table.column("features").to_pylist() == [[1.0, 0.5], None]
    assert str(table.schema.field("reward").type) == "double"
    assert table.column("reward").to_pylist() == [0.75, None]
    assert json.loads(table.column("q_values").to_pylist()[0]) == {"coder": 0.9, "search": 0.1}


def test_dataframe_has_one_row_per_stored_row(store):
    pytest.importorskip("pandas")
    _fill(store)
    frame = to_dataframe(store, "router", "rewards")
    assert list(frame.columns) == list(COLUMNS["rewards"])
    assert frame["reward"].tolist() == [0.75, 0.25]
    assert frame["reward_components"].iloc[0] == {"task_completion": 1.0}


def test_agent_without_rows_exports_a_header_only(store, tmp_path):
    out = tmp_path / "empty.csv"
    assert export_agent(store, "nobody", "rewards", "csv", out) == 0
    assert out.read_text().strip() == ",".join(COLUMNS["rewards"])


def test_unknown_table_or_format_is_a_value_error_and_writes_nothing(store, tmp_path):
    out = tmp_path / "x.csv"
    with pytest.raises(ValueError, match="rewards, interactions, decisions"):
        export_agent(store, "router", "q_tables", "csv", out)
    with pytest.raises(ValueError, match="csv, jsonl, parquet"):
        export_agent(store, "router", "rewards", "xlsx", out)
    assert not out.exists()
    with pytest.raises(ValueError, match="agent_name"):
        list(iter_rows(store, "", "rewards"))


def test_failed_export_leaves_the_previous_file_untouched(store, tmp_path, monkeypatch):
    _fill(store)
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "rewards.jsonl"
    out.write_text("previous export\n")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "get_agent_rewards", broken)
    with pytest.raises(RuntimeError):
        export_agent(store, "router", "rewards", "jsonl", out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in folder.iterdir()] == ["rewards.jsonl"]


def test_decisions_export_carries_the_version_each_decision_was_made_under(store, tmp_path):
    # The row shape (rlmemory.store.rows.DecisionRow) is the one list of columns: a column
    # the store returns is exported, on every format.
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    store.save_agent_decision("router", "code", "coder", {"coder": 1.0}, None)
    store.save_version("router", b"snapshot", "first")
    store.save_agent_decision("router", "chat", "search", {"search": 1.0}, None)
    assert [row["version"] for row in iter_rows(store, "router", "decisions")] == [None, 1]
    out = tmp_path / "decisions.parquet"
    export_agent(store, "router", "decisions", "parquet", out)
    assert pyarrow_parquet.read_table(out).column("version").to_pylist() == [None, 1]
    out = tmp_path / "decisions.csv"
    export_agent(store, "router", "decisions", "csv", out)
    with out.open(newline="") as handle:
        assert [row["version"] for row in csv.DictReader(handle)] == ["", "1"]
