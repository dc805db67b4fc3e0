"""CLI commands ``stats``, ``rewards`` and ``show``: what is stored and what was learned."""

from __future__ import annotations

from pathlib import Path

import typer

from rlmemory.cli.app import app
from rlmemory.cli.common import (
    AgentArgument,
    DbOption,
    FormatOption,
    check_output_format,
    console,
    format_time,
    new_table,
    opened_store,
    print_json,
    require_agent,
    write_plot,
)
from rlmemory.learned import LearnedPolicy, learned_policy
from rlmemory.rewards import cost_summary

__all__ = ["rewards", "show", "stats"]

RewardsPlotOption = typer.Option(None, "--plot", help="Also write these rewards as a PNG.")


@app.command()
def stats(db: str | None = DbOption, output: str = FormatOption) -> None:
    """Per agent: decisions, rewards, mean reward, quality and cost, last update.

    Quality and cost are the means over the newest 1,000 rewards (cost over those that
    report one). The table leaves out the interactions count to fit 80 columns;
    ``--format json`` has it.
    """
    check_output_format(output)
    with opened_store(db) as store:
        rows = []
        for agent in store.list_agents():
            recent = cost_summary(store, agent).get("all", {})
            rows.append(
                {
                    "agent": agent,
                    **store.agent_stats(agent),
                    "mean_quality": recent.get("mean_quality"),
                    "mean_cost": recent.get("mean_cost"),
                }
            )
        location = store.location
    if output == "json":
        print_json(rows)
        return
    if not rows:
        console.print(f"No agents stored in {location}.")
        return
    numbers = ("decisions", "rewards", "mean", "quality", "cost")
    table = new_table(f"Agents in {location}", ("agent", *numbers, "last update"), right=numbers)
    for row in rows:
        table.add_row(
            row["agent"],
            str(row["decisions"]),
            str(row["rewards"]),
            _number(row["mean_reward"]),
            _number(row["mean_quality"]),
            _number(row["mean_cost"], spec=".4g"),
            format_time(row["last_update"]),
        )
    console.print(table)


@app.command()
def rewards(
    agent: str = AgentArgument,
    db: str | None = DbOption,
    limit: int = typer.Option(20, "--limit", min=1, help="How many of the newest rewards."),
    plot: Path | None = RewardsPlotOption,
    output: str = FormatOption,
) -> None:
    """The newest rewards of AGENT with their components; optionally plotted."""
    check_output_format(output)
    with opened_store(db) as store:
        require_agent(store, agent)
        rows = store.get_agent_rewards(agent, limit)
        by_sub_agent = cost_summary(store, agent, limit)
    by_sub_agent.pop("all", None)
    if plot is not None:
        if not rows:
            raise ValueError(f"agent {agent!r} has no rewards to plot")
        oldest_first = [row["reward"] for row in reversed(rows)]
        write_plot(
            oldest_first,
            plot,
            title=f"{agent}: newest {len(rows)} rewards",
            window=min(50, max(1, len(rows) // 5)),
        )
    if output == "json":
        print_json({"rewards": rows, "per_sub_agent": by_sub_agent})
        return
    table = new_table(
        f"Newest {len(rows)} rewards of {agent}",
        ("id", "time", "decision", "reward", "quality", "cost", "components"),
        right=("id", "decision", "reward", "quality", "cost"),
    )
    for row in rows:
        components = ", ".join(
            f"{key}={value:.3g}" if isinstance(value, int | float) else f"{key}={value}"
            for key, value in row["reward_components"].items()
        )
        table.add_row(
            str(row["id"]),
            format_time(row["timestamp"]),
            "-" if row["decision_id"] is None else str(row["decision_id"]),
            f"{row['reward']:.3f}",
            _number(row["reward_components"].get("quality", row["reward"])),
            _number(row["reward_components"].get("cost"), spec=".4g"),
            components,
        )
    console.print(table)
    if by_sub_agent:
        columns = ("sub-agent", "rewards", "mean reward", "quality", "cost")
        summary = new_table(f"Per sub-agent, same {len(rows)} rewards", columns, right=columns[1:])
        for sub_agent, entry in sorted(by_sub_agent.items()):
            summary.add_row(
                sub_agent,
                str(entry["rewards"]),
                _number(entry["mean_reward"]),
                _number(entry["mean_quality"]),
                _number(entry["mean_cost"], spec=".4g"),
            )
        console.print(summary)
    if plot is not None:
        console.print(f"Plot written to {plot}")


@app.command()
def show(
    agent: str = AgentArgument,
    db: str | None = DbOption,
    top: int = typer.Option(20, "--top", min=1, help="Q-learning: how many states, most visited."),
    output: str = FormatOption,
) -> None:
    """Print the policy AGENT has learned.

    Q-learning: per state, the best sub-agent with its value, every value, and how many
    decisions were made there. Bandits: per sub-agent, times chosen, mean reward, rewards
    learned from and the size of its weights. Policy gradient: per sub-agent, times
    chosen, mean reward, mean probability and the size of its weights.
    """
    check_output_format(output)
    with opened_store(db) as store:
        require_agent(store, agent)
        policy = learned_policy(store, agent, top_states=top)
    if output == "json":
        print_json(policy.to_dict())
        return
    _print_policy(policy)


def _number(value: float | None, digits: int = 3, spec: str | None = None) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return format(value, spec or f".{digits}f")


def _print_policy(policy: LearnedPolicy) -> None:
    kind = policy.learner.replace("_", " ")
    console.print(f"{policy.agent_name}: {kind}, {policy.decisions} decisions")
    if policy.states:
        shown = len(policy.states)
        total = int(policy.details.get("states", shown))
        actions = sorted({action for state in policy.states for action in state.values})
        table = new_table(
            f"Best sub-agent per state ({shown} of {total} states, most visited first)",
            ("state", "best", "value", "visits", *(a.removesuffix("_agent") for a in actions)),
            right=("value", "visits", *(a.removesuffix("_agent") for a in actions)),
        )
        for state in policy.states:
            table.add_row(
                state.state,
                state.best_action.removesuffix("_agent"),
                _number(state.best_value),
                str(state.visits),
                *(_number(state.values.get(action), 2) for action in actions),
            )
        console.print(table)
    columns = ["sub-agent", "chosen", "mean reward"]
    if policy.learner == "linear_bandit":
        columns += ["learned from", "|weights|"]
    if policy.learner == "policy_gradient":
        columns += ["mean prob.", "|weights|"]
    table = new_table("Per sub-agent", columns, right=columns[1:])
    for action in policy.actions:
        extra = []
        if policy.learner == "linear_bandit":
            learned = action.learned_from
            extra = ["-" if learned is None else str(learned), _number(action.weight_norm)]
        if policy.learner == "policy_gradient":
            extra = [_number(action.mean_probability), _number(action.weight_norm)]
        table.add_row(action.action, str(action.chosen), _number(action.mean_reward), *extra)
    console.print(table)
    if policy.details and policy.learner != "q_learning":
        console.print(
            ", ".join(f"{key.replace('_', ' ')} {value:g}" for key, value in policy.details.items())
        )
    if policy.learner == "nothing_learned":
        console.print("No learned parameters are stored yet (decisions without rewards?).")
