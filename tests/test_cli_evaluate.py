"""``rlmemory evaluate`` and ``rlmemory export-log``, run through Typer's CliRunner."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.store import open_store

runner = CliRunner()


def evaluate_router(db: str, *options: str):
    """Run ``rlmemory evaluate --agent router --db DB`` with ``options`` added."""
    return runner.invoke(app, ["evaluate", "--agent", "router", "--db", db, *options])


@pytest.fixture
def logged_store(tmp_path):
    """A SQLite store whose agent ``router`` logged 300 uniform-random decisions."""
    path = str(tmp_path / "memory.db")
    rng = np.random.default_rng(0)
    with open_store(path) as store:
        for _ in range(300):
            x = rng.normal(size=2)
            action = "search" if rng.random() < 0.5 else "code"
            reward = float((x[0] > 0) == (action == "search"))
            store.save_agent_decision(
                "router", "s", action, {}, reward, propensity=0.5, features=x.tolist()
            )
    return path


def test_evaluate_prints_estimates_beside_the_observed_value(logged_store):
    result = evaluate_router(logged_store, "--policy", "uniform", "--bootstrap", "100")
    assert result.exit_code == 0, result.output
    lines = {
        line[:27].strip(): line
        for line in result.output.splitlines()
        if line.startswith(("uniform", "logging"))
    }
    assert set(lines) >= {
        "uniform (IPS)",
        "uniform (SNIPS)",
        "uniform (DR)",
        "logging policy (observed)",
    }
    # Uniform is the logging policy here: IPS equals the observed mean reward exactly.
    assert lines["uniform (IPS)"].split()[2] == lines["logging policy (observed)"].split()[3]
    assert "evaluated on the 150 newer ones" in result.output


def test_evaluate_trains_linucb_on_the_older_half(logged_store):
    result = evaluate_router(
        logged_store, "--policy", "linucb", "--alpha", "0.2", "--bootstrap", "100"
    )
    assert result.exit_code == 0, result.output
    assert "trained on 150" in result.output
    snips = next(line for line in result.output.splitlines() if "linucb (SNIPS)" in line)
    observed = next(line for line in result.output.splitlines() if "observed" in line)
    assert float(snips.split()[2]) > float(observed.split()[3])


def test_evaluate_reports_bad_input_in_one_line(logged_store):
    result = evaluate_router(logged_store, "--policy", "oracle")
    assert result.exit_code == 1
    assert "unknown policy 'oracle'" in result.output
    result = runner.invoke(app, ["evaluate", "--agent", "nobody", "--db", logged_store])
    assert result.exit_code == 1
    assert "no agent 'nobody'" in result.output


def test_export_log_writes_the_open_bandit_pipeline_layout(logged_store, tmp_path):
    out = tmp_path / "log.csv"
    result = runner.invoke(app, ["export-log", "router", "--out", str(out), "--db", logged_store])
    assert result.exit_code == 0, result.output
    assert "wrote 300 decisions" in result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300
    assert {row["pscore"] for row in rows} == {"0.5"}
    assert {row["action_name"] for row in rows} == {"search", "code"}


def test_export_log_refuses_an_unknown_format(logged_store, tmp_path):
    result = runner.invoke(
        app, ["export-log", "router", "--out", str(tmp_path / "log.xlsx"), "--db", logged_store]
    )
    assert result.exit_code == 1
    assert ".csv or .parquet" in result.output


def test_evaluate_warns_when_the_logging_policy_never_tried_the_alternatives(tmp_path):
    path = str(tmp_path / "memory.db")
    with open_store(path) as store:
        for i in range(40):
            action = "search" if i % 2 else "code"
            store.save_agent_decision(
                "router", "s", action, {}, 1.0, propensity=1.0, features=[1.0, float(i)]
            )
    result = evaluate_router(path, "--policy", "uniform", "--bootstrap", "50")
    assert result.exit_code == 0, result.output
    assert "effective sample size: 20" in result.output
    message = " ".join(result.output.split())
    assert "chose with probability 1 in 100 %" in message
    assert "50 % of the candidate's probability" in message


def test_evaluate_does_not_warn_when_every_action_was_explored(logged_store):
    result = evaluate_router(logged_store, "--bootstrap", "50")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
