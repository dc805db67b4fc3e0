"""CLI commands ``demo``, ``stats`` and ``rewards``: run the demo, inspect what was learned."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rlmemory.cli.app import app
from rlmemory.cli.common import DbOption, console, opened_store, reported_errors
from rlmemory.coordinator import LEARNER_TYPES, check_rl_agent_type
from rlmemory.demo.plot import plot_reward_curve
from rlmemory.demo.requests import KINDS
from rlmemory.demo.run import DemoOutcome, DemoReport, demo_agent_name, run_demo, stored_rewards
from rlmemory.rewards import cost_summary

__all__ = ["demo", "rewards", "stats"]

DemoPlotOption = typer.Option(
    Path("reward_curve.png"), "--plot", help="Where to write the reward curve (PNG)."
)
RewardsPlotOption = typer.Option(None, "--plot", help="Also write these rewards as a PNG.")


@app.command()
def demo(
    db: str | None = DbOption,
    requests: int = typer.Option(1000, "--requests", "-n", min=1, help="Requests to route."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the request stream and learner."),
    plot: Path = DemoPlotOption,
    agent_type: str = typer.Option(
        "q_learning", "--agent-type", help=f"Learner: {', '.join(LEARNER_TYPES)}."
    ),
) -> None:
    """Route a stream of requests to three offline sub-agents and learn who serves what.

    The sub-agents do real work: search the Python documentation, compute statistics,
    run a Python snippet. Running again continues from the stored state.
    """
    with reported_errors():
        check_rl_agent_type(agent_type)
        if not plot.parent.is_dir():
            raise ValueError(
                f"cannot write the plot to {plot}: folder {plot.parent} does not exist"
            )
    with opened_store(db) as store:
        name = demo_agent_name(agent_type)
        resumed_from = store.count_agent_decisions(name)
        if resumed_from:
            console.print(
                f"Resuming [bold]{name}[/bold] from {resumed_from} stored decisions "
                f"in {store.location}"
            )
        else:
            console.print(
                f"Starting [bold]{name}[/bold] with no stored decisions in {store.location}"
            )
        with Progress(
            TextColumn("routing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("mean reward {task.fields[mean]:.3f}"),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("routing", total=requests, mean=0.0)
            total_reward = 0.0

            def advance(outcome: DemoOutcome) -> None:
                nonlocal total_reward
                total_reward += outcome.reward
                done = int(progress.tasks[0].completed) + 1
                progress.update(task, advance=1, mean=total_reward / done)

            report = asyncio.run(
                run_demo(
                    store, requests=requests, seed=seed, agent_type=agent_type, on_outcome=advance
                )
            )
        _print_routing(report)
        _print_reward_trend(report)
        _write_plot(
            stored_rewards(store, name),
            plot,
            title=f"{name}: reward per request",
            resumed_at=report.resumed_from + 1 if report.resumed_from else None,
        )
    console.print(
        f"Routed {len(report.outcomes)} requests in {report.seconds:.1f} s "
        f"({len(report.outcomes) / report.seconds:.0f} requests/s); "
        f"{report.resumed_from + len(report.outcomes)} decisions stored; "
        f"reward curve written to {plot}"
    )


def _print_routing(report: DemoReport) -> None:
    agents = sorted({agent for counts in report.routing().values() for agent in counts})
    agents = sorted(set(agents) | set(KINDS.values()))
    table = Table(title="Routing this run: requests served per sub-agent (…_agent)")
    table.add_column("request kind")
    for agent in agents:
        table.add_column(agent.removesuffix("_agent"), justify="right")
    table.add_column("right agent", justify="right")
    table.add_column("succeeded", justify="right")
    for kind, counts in report.routing().items():
        served = sum(counts.values())
        right = counts[KINDS[kind]] / served if served else None
        success = report.success_rate(kind)
        table.add_row(
            kind,
            *(str(counts[agent]) for agent in agents),
            _percent(right),
            _percent(success),
        )
    console.print(table)
    last = min(100, len(report.outcomes))
    console.print(
        f"Sent to the right sub-agent: {_percent(report.routed_right_share())} of this run, "
        f"{_percent(report.routed_right_share(last))} of the last {last} requests."
    )


def _print_reward_trend(report: DemoReport, block: int = 50) -> None:
    blocks = report.reward_blocks(block)
    table = Table(title=f"Mean reward per block of {block} requests")
    table.add_column("requests")
    table.add_column("mean reward", justify="right")
    table.add_column("", justify="left")
    table.add_column("right agent", justify="right")
    for first, last, mean, right in blocks:
        table.add_row(f"{first}-{last}", f"{mean:.3f}", "█" * round(mean * 30), _percent(right))
    console.print(table)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"


@app.command()
def stats(db: str | None = DbOption) -> None:
    """Per agent: decisions, interactions, rewards, mean reward, quality and cost, last update.

    Quality and cost are the means over the newest 1,000 rewards (cost over those that
    report one).
    """
    with opened_store(db) as store:
        agents = store.list_agents()
        if not agents:
            console.print(f"No agents stored in {store.location}.")
            return
        table = Table(title=f"Agents in {store.location}")
        table.add_column("agent", overflow="fold")
        for column in ("decisions", "interactions", "rewards", "mean reward", "quality", "cost"):
            table.add_column(column, justify="right")
        table.add_column("last update")
        for agent in agents:
            row = store.agent_stats(agent)
            mean = row["mean_reward"]
            recent = cost_summary(store, agent).get("all", {})
            table.add_row(
                agent,
                str(row["decisions"]),
                str(row["interactions"]),
                str(row["rewards"]),
                "-" if mean is None else f"{mean:.3f}",
                _number_or_dash(recent.get("mean_quality"), ".3f"),
                _number_or_dash(recent.get("mean_cost"), ".4g"),
                _when(row["last_update"]),
            )
        console.print(table)


def _number_or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@app.command()
def rewards(
    agent: str = typer.Argument(..., help="Agent name (see `rlmemory stats`)."),
    db: str | None = DbOption,
    limit: int = typer.Option(20, "--limit", min=1, help="How many of the newest rewards."),
    plot: Path | None = RewardsPlotOption,
) -> None:
    """The newest rewards of AGENT with their components; optionally plotted."""
    with opened_store(db) as store:
        if agent not in store.list_agents():
            raise LookupError(f"no agent {agent!r} in {store.location}")
        rows = store.get_agent_rewards(agent, limit)
        table = Table(title=f"Newest {len(rows)} rewards of {agent}")
        for column in ("id", "time", "decision", "reward", "quality", "cost", "components"):
            table.add_column(column, justify="right" if column != "components" else "left")
        for row in rows:
            components = ", ".join(
                f"{key}={value:.3g}" if isinstance(value, int | float) else f"{key}={value}"
                for key, value in row["reward_components"].items()
            )
            table.add_row(
                str(row["id"]),
                _when(row["timestamp"]),
                "-" if row["decision_id"] is None else str(row["decision_id"]),
                f"{row['reward']:.3f}",
                f"{row['reward_components'].get('quality', row['reward']):.3f}",
                _number_or_dash(row["reward_components"].get("cost"), ".4g"),
                components,
            )
        console.print(table)
        by_sub_agent = cost_summary(store, agent, limit)
        by_sub_agent.pop("all", None)
        if by_sub_agent:
            summary = Table(title=f"Per sub-agent, same {len(rows)} rewards")
            summary.add_column("sub-agent", overflow="fold")
            for column in ("rewards", "mean reward", "quality", "cost"):
                summary.add_column(column, justify="right")
            for sub_agent, entry in sorted(by_sub_agent.items()):
                summary.add_row(
                    sub_agent,
                    str(entry["rewards"]),
                    f"{entry['mean_reward']:.3f}",
                    f"{entry['mean_quality']:.3f}",
                    _number_or_dash(entry["mean_cost"], ".4g"),
                )
            console.print(summary)
        if plot is not None:
            if not rows:
                raise ValueError(f"agent {agent!r} has no rewards to plot")
            oldest_first = [row["reward"] for row in reversed(rows)]
            _write_plot(
                oldest_first,
                plot,
                title=f"{agent}: newest {len(rows)} rewards",
                window=min(50, max(1, len(rows) // 5)),
            )
            console.print(f"Plot written to {plot}")


def _write_plot(rewards: list[float], path: Path, **options: Any) -> None:
    try:
        plot_reward_curve(rewards, path, **options)
    except OSError as error:
        raise ValueError(f"cannot write the plot to {path}: {error.strerror or error}") from None


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
