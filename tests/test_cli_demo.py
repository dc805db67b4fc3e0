"""`rlmemory demo`, `rlmemory stats` and `rlmemory rewards` through Typer's CliRunner."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmemory.cli import app
from rlmemory.demo import (
    DocsSearchAgent,
    PythonRunnerAgent,
    StatisticsAgent,
    demo_requests,
)
from rlmemory.store.sql import MemoryDatabase

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> object:
    return runner.invoke(app, list(args), env={"COLUMNS": "160"})


def test_demo_routes_reports_plots_and_resumes(runner: CliRunner, tmp_path: Path) -> None:
    db, plot = str(tmp_path / "demo.db"), tmp_path / "curve.png"
    first = invoke(
        runner, "demo", "--db", db, "--requests", "60", "--seed", "3", "--plot", str(plot)
    )
    assert first.exit_code == 0, first.output
    assert "Starting demo_q_learning with no stored decisions" in first.output
    for kind in ("search", "statistics", "code"):
        assert kind in first.output
    assert "This run per block of 50 requests" in first.output
    assert "What it learned" in first.output and "What it is worth" in first.output
    assert "uniform random sub-agent" in first.output
    assert "Why the share levels off" in first.output
    assert "Next: rlmemory show demo_q_learning" in first.output
    assert "1-50" in first.output and "51-60" in first.output
    assert "Routed 60 requests" in first.output
    assert plot.read_bytes().startswith(PNG_SIGNATURE)

    second = invoke(runner, "demo", "--db", db, "-n", "30", "--seed", "3", "--plot", str(plot))
    assert second.exit_code == 0, second.output
    assert "Resuming demo_q_learning from 60 stored decisions" in second.output
    assert "61-90" in second.output
    assert "90 decisions stored" in second.output
    with MemoryDatabase(db) as store:
        assert store.count_agent_decisions("demo_q_learning") == 90
        rewarded = store.get_agent_rewards("demo_q_learning", 100)
        assert len(rewarded) == 90


def test_demo_sub_agents_really_succeed_and_fail(runner: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    result = invoke(runner, "demo", "--db", db, "-n", "45", "--plot", str(tmp_path / "c.png"))
    assert result.exit_code == 0, result.output
    with MemoryDatabase(db) as store:
        decisions = store.get_agent_decisions("demo_q_learning", 100)
        outcomes = {row["reward"]["performance_metrics"]["success_rate"] for row in decisions}
        interactions = store.get_agent_interactions("demo_q_learning", 100)
    assert outcomes == {0.0, 1.0}
    served_code = [row for row in interactions if "`" in row["request"] and row["response"].strip()]
    assert served_code  # some snippet really ran and printed something


def test_demo_with_a_bandit_learner(runner: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    result = invoke(
        runner, "demo", "--db", db, "-n", "20", "--agent-type", "linucb",
        "--plot", str(tmp_path / "c.png"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "demo_linucb" in result.output


def test_demo_with_an_unknown_learner_is_one_line_and_exit_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = invoke(runner, "demo", "--db", str(tmp_path / "d.db"), "--agent-type", "sarsa")
    assert result.exit_code == 1
    assert "unknown rl_agent_type 'sarsa'; valid types: q_learning" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "d.db").exists()


def test_demo_rejects_a_non_positive_request_count(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "demo", "--db", str(tmp_path / "d.db"), "--requests", "0")
    assert result.exit_code == 2
    assert "--requests" in result.output


def test_demo_with_an_unwritable_plot_path_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    plot = tmp_path / "no" / "such" / "folder" / "c.png"
    result = invoke(runner, "demo", "--db", str(tmp_path / "d.db"), "-n", "5", "--plot", str(plot))
    assert result.exit_code == 1
    assert "cannot write the plot" in result.output
    assert not (tmp_path / "d.db").exists()  # refused before routing anything


def test_stats_lists_every_agent_with_counts(runner: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    with MemoryDatabase(db) as store:
        store.save_agent_reward("router", 0.25, {"source": "test"})
        store.save_agent_reward("router", 0.75, {"source": "test"})
        store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    result = invoke(runner, "stats", "--db", db)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "router" in line]
    assert row.split()[1] == "1"  # decisions
    assert row.split()[2] == "2"  # rewards
    assert "0.500" in row  # mean reward


def test_stats_on_an_empty_store_says_so(runner: CliRunner, tmp_path: Path) -> None:
    MemoryDatabase(str(tmp_path / "empty.db")).close()
    result = invoke(runner, "stats", "--db", str(tmp_path / "empty.db"))
    assert result.exit_code == 0
    assert "No agents stored" in result.output


def test_stats_on_a_corrupt_file_is_one_line_and_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    result = invoke(runner, "stats", "--db", str(corrupt))
    assert result.exit_code == 1
    assert "error:" in result.output and "corrupt.db" in result.output
    assert "Traceback" not in result.output


def test_rewards_lists_the_newest_and_plots_them(runner: CliRunner, tmp_path: Path) -> None:
    db, plot = str(tmp_path / "r.db"), tmp_path / "rewards.png"
    with MemoryDatabase(db) as store:
        for value in (0.1, 0.2, 0.3, 0.4):
            store.save_agent_reward("router", value, {"task_completion": 1.0, "source": "test"})
    result = invoke(runner, "rewards", "router", "--db", db, "--limit", "3", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert "Newest 3 rewards of router" in result.output
    assert "0.400" in result.output and "0.200" in result.output
    assert "0.100" not in result.output
    assert "task_completion=1" in result.output
    assert plot.read_bytes().startswith(PNG_SIGNATURE)


def test_rewards_of_an_unknown_agent_is_one_line_and_exit_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    MemoryDatabase(str(tmp_path / "r.db")).close()
    result = invoke(runner, "rewards", "nobody", "--db", str(tmp_path / "r.db"))
    assert result.exit_code == 1
    assert "no agent 'nobody'" in result.output


def test_python_dash_m_rlmemory_is_the_same_cli(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "src"
    env = {**os.environ, "PYTHONPATH": str(source), "COLUMNS": "160"}
    MemoryDatabase(str(tmp_path / "m.db")).close()
    result = subprocess.run(
        [sys.executable, "-m", "rlmemory", "stats", "--db", str(tmp_path / "m.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "No agents stored" in result.stdout


# ------------------------------------------------------- the demo sub-agents
def execute(agent: object, request: str) -> dict:
    return asyncio.run(agent.execute(request, None))  # type: ignore[attr-defined]


def test_docs_search_ranks_the_topic_named_by_the_query_first() -> None:
    result = execute(DocsSearchAgent(), "Look up operator precedence in the Python reference")
    assert result["success"] is True
    assert result["topics"][0] == "operator-summary"


def test_docs_search_fails_when_no_topic_has_every_word() -> None:
    result = execute(DocsSearchAgent(), "Summarise these measurements: 3, 8, 12")
    assert result["success"] is False
    assert "summarise, measurements" in result["error"]


def test_statistics_need_a_list_of_three_numbers() -> None:
    agent = StatisticsAgent()
    assert execute(agent, "Run `print(divmod(17, 5))`")["success"] is False
    result = execute(agent, "Analyse this data: 2, 4; 4 and 4 5 5 7 9")
    assert result["statistics"]["n"] == 8
    assert result["statistics"]["mean"] == 5.0
    assert result["statistics"]["stdev"] == pytest.approx(2.138, abs=1e-3)


def test_python_runner_reports_the_exception_of_a_failing_snippet() -> None:
    result = execute(PythonRunnerAgent(), "Run `print(1 / 0)`")
    assert result["success"] is False
    assert result["error"] == "ZeroDivisionError: division by zero"


def test_python_runner_stops_a_snippet_at_the_timeout() -> None:
    started = time.perf_counter()
    result = execute(PythonRunnerAgent(timeout=0.5), "Run `while True: pass`")
    assert time.perf_counter() - started < 5
    assert result["success"] is False
    assert result["error"] == "snippet ran longer than 0.5 s"


def test_python_runner_runs_isolated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    result = execute(PythonRunnerAgent(), "Run `import sys; print(sys.flags.isolated)`")
    assert result == {"success": True, "response": "1", "tool_calls": ["python"]}


def test_python_runner_needs_code_in_backticks() -> None:
    result = execute(PythonRunnerAgent(), "Search the docs for lambda expressions")
    assert result["success"] is False
    assert result["error"] == "no code in backticks in the request"


def test_request_stream_is_reproducible_and_mixes_the_three_kinds() -> None:
    first, again = demo_requests(300, seed=5), demo_requests(300, seed=5)
    assert first == again
    assert demo_requests(300, seed=6) != first
    counts = {kind: sum(r.kind == kind for r in first) for kind in ("search", "statistics", "code")}
    assert all(count > 60 for count in counts.values())
