"""Cost-aware rewards: reported cost or token usage, priced per agent, stored and shown.

On every backend (the ``make_store`` fixture): the coordinator charges what each
sub-agent's answer cost, stores it with the decision and the reward components, and
``rlmemory stats`` / ``rlmemory rewards`` show quality and cost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from rlmemory.cli.app import app
from rlmemory.coordinator import create_rl_agent_architecture
from rlmemory.rewards import RewardSystem, TokenPrice, cost_summary

PRICES = {
    "cheap": TokenPrice(input_per_million=0.5, output_per_million=1.5),
    "strong": {"input_per_million": 10.0, "output_per_million": 30.0},
}


def cheap(request: str) -> AIMessage:
    """An answer as a LangChain chat model returns it: text and token usage."""
    return AIMessage(
        content=f"cheap: {request}",
        usage_metadata={"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500},
    )


def strong(request: str) -> dict[str, Any]:
    return {"success": True, "response": f"strong: {request}", "cost": 0.05}


def test_the_reward_is_quality_minus_the_weighted_cost() -> None:
    system = RewardSystem(None, cost_weight=10.0)
    reward, components = system.compute_reward(
        5, {"success_rate": 1.0, "response_time": 0.0, "cost": 0.02}
    )
    assert (reward, components["quality"]) == (0.8, 1.0)
    assert (components["cost"], components["cost_weight"]) == (0.02, 10.0)
    free, free_components = system.compute_reward(5, {"success_rate": 1.0, "response_time": 0.0})
    assert free == 1.0 and "cost" not in free_components


def test_token_usage_is_priced_by_the_agents_entry_and_a_reported_cost_wins() -> None:
    system = RewardSystem(None, prices=PRICES)
    usage = {"usage_metadata": {"input_tokens": 1000, "output_tokens": 500}}
    assert system.cost_metrics("cheap", usage)["cost"] == pytest.approx(0.00125)
    assert system.cost_metrics("strong", usage)["cost"] == pytest.approx(0.025)
    assert system.cost_metrics("strong", {**usage, "cost": 0.5})["cost"] == 0.5
    unpriced = system.cost_metrics("other", usage)
    assert unpriced == {"input_tokens": 1000.0, "output_tokens": 500.0}


@pytest.mark.parametrize(
    ("options", "metrics", "error", "words"),
    [
        ({"cost_weight": -1.0}, {}, ValueError, "cost_weight"),
        ({"cost_weight": float("nan")}, {}, ValueError, "cost_weight"),
        ({"prices": {"a": {"input": 1.0}}}, {}, ValueError, "input_per_million"),
        (
            {"prices": {"a": {"input_per_million": -1, "output_per_million": 0}}},
            {},
            ValueError,
            "input_per_million",
        ),
        ({}, {"cost": -0.1}, ValueError, "cost"),
        ({}, {"cost": "free"}, TypeError, "cost"),
        ({}, {"cost": float("inf")}, ValueError, "cost"),
    ],
)
def test_bad_costs_and_prices_are_refused_naming_the_field(
    options: dict[str, Any], metrics: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        RewardSystem(None, **options).compute_reward(None, metrics)


def test_bad_token_usage_is_refused_and_nothing_is_stored(make_store: Any) -> None:
    store = make_store()
    system = RewardSystem(store, prices=PRICES)
    with pytest.raises(ValueError, match="input_tokens"):
        system.cost_metrics("cheap", {"usage_metadata": {"input_tokens": -5}})
    with pytest.raises(TypeError, match="usage_metadata"):
        system.cost_metrics("cheap", {"usage_metadata": 12})
    assert store.get_agent_rewards("router") == []


def test_the_coordinator_charges_each_sub_agents_cost_and_stores_it(make_store: Any) -> None:
    store = make_store()
    coordinator = asyncio.run(
        create_rl_agent_architecture(
            None,
            store,
            {"cheap": cheap, "strong": strong},
            "epsilon_greedy",  # optimistic start: tries both, then keeps the better
            seed=1,
            name="router",
            cost_weight=4.0,
            prices=PRICES,
            reward_wait=None,
        )
    )
    results = [asyncio.run(coordinator.process_request(f"question {i}")) for i in range(40)]
    for result in results:
        decision = store.get_agent_decision(result["decision_id"])
        metrics = decision["reward"]["performance_metrics"]
        expected_cost = 0.00125 if result["selected_agent"] == "cheap" else 0.05
        assert metrics["cost"] == pytest.approx(expected_cost)
    rewards = {row["decision_id"]: row for row in store.get_agent_rewards("router", 100)}
    for result in results:
        components = rewards[result["decision_id"]]["reward_components"]
        assert components["cost_weight"] == 4.0
        assert result["reward"] == pytest.approx(components["quality"] - 4.0 * components["cost"])
    summary = cost_summary(store, "router")
    assert summary["all"]["rewards"] == 40
    assert summary["cheap"]["mean_cost"] == pytest.approx(0.00125)
    assert summary["strong"]["mean_cost"] == pytest.approx(0.05)
    # Same quality, so the cheaper answer earns more and the learner comes to prefer it.
    assert summary["cheap"]["mean_reward"] > summary["strong"]["mean_reward"]
    assert summary["cheap"]["rewards"] > summary["strong"]["rewards"]


def test_stats_and_rewards_show_quality_and_cost(tmp_path: Any) -> None:
    from rlmemory.store.sql import MemoryDatabase

    path = tmp_path / "m.db"
    with MemoryDatabase(path) as store:
        system = RewardSystem(store, cost_weight=10.0)
        system.calculate_reward("router", None, {"success_rate": 1.0, "cost": 0.02})
        system.calculate_reward("router", None, {"success_rate": 0.0})
    runner = CliRunner()
    stats = runner.invoke(app, ["stats", "--db", str(path)], env={"COLUMNS": "200"})
    assert stats.exit_code == 0, stats.output
    assert "quality" in stats.output and "cost" in stats.output
    assert "0.02" in stats.output  # mean cost over the rewards that report one
    rewards = runner.invoke(app, ["rewards", "router", "--db", str(path)], env={"COLUMNS": "200"})
    assert rewards.exit_code == 0, rewards.output
    assert "quality" in rewards.output and "0.650" in rewards.output and "0.02" in rewards.output
    assert "Per sub-agent" in rewards.output
