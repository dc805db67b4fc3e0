"""CLI command ``demo``: route a stream of requests to three offline sub-agents and learn."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rlmemory.cli.app import app
from rlmemory.cli.common import DbOption, console, new_table, opened_store, reported_errors
from rlmemory.coordinator import LEARNER_TYPES, check_rl_agent_type
from rlmemory.demo.plot import plot_demo_history
from rlmemory.demo.requests import KINDS
from rlmemory.demo.run import DemoOutcome, DemoReport, demo_agent_name, run_demo, stored_history
from rlmemory.demo.summary import PolicyValue, learned_by_kind, policy_values

__all__ = ["demo"]

DemoPlotOption = typer.Option(
    Path("reward_curve.png"), "--plot", help="Where to write the reward curve (PNG)."
)


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
    with opened_store(db, create=True) as store:
        name = demo_agent_name(agent_type)
        resumed_from = store.count_agent_decisions(name)
        if resumed_from:
            console.print(
                f"Resuming {name} from {resumed_from} stored decisions in {store.location}"
            )
        else:
            console.print(f"Starting {name} with no stored decisions in {store.location}")
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
        _print_learned(report)
        _print_trend(report)
        values = _print_values(report)
        rewards, right = stored_history(store, name, seed)
        plot_demo_history(
            rewards,
            right,
            plot,
            title=f"{name}: what the coordinator learned",
            best_reward=values[-1].estimate.value,
            exploration_cap=report.exploration_cap(),
            resumed_at=report.resumed_from + 1 if report.resumed_from else None,
            window=50 if len(rewards) < 500 else 100,
        )
    console.print(
        f"Routed {len(report.outcomes)} requests in {report.seconds:.1f} s "
        f"({len(report.outcomes) / report.seconds:.0f} requests/s); "
        f"{report.resumed_from + len(report.outcomes)} decisions stored; "
        f"curves written to {plot}"
    )
    _print_next_steps(name, db)


def _print_learned(report: DemoReport) -> None:
    value_label = "Q-value" if report.agent_type == "q_learning" else "prob."
    columns = ("request kind", "learned choice", value_label, "greedy", "as run", "succeeded")
    table = new_table(
        "What it learned: the sub-agent it now prefers per request kind",
        columns,
        right=columns[2:],
    )
    for row in learned_by_kind(report):
        mark = "" if row.learned_agent == row.right_agent else " (wrong)"
        table.add_row(
            row.kind,
            f"{row.learned_agent}{mark}",
            f"{row.learned_value:.3f}",
            _percent(row.greedy_right),
            _percent(row.routed_right),
            _percent(row.succeeded),
        )
    console.print(table)
    console.print(
        "greedy: share of the kind's requests its learned choice sends to the sub-agent made "
        "for them; as run: share this run sent there while it was still learning and exploring."
    )


def _print_trend(report: DemoReport) -> None:
    size = max(50, 50 * round(len(report.outcomes) / 5 / 50))
    columns = ("requests", "routed right", "mean reward", "")
    table = new_table(f"This run per block of {size} requests", columns, right=columns[1:3])
    for first, last, mean, right in report.reward_blocks(size):
        table.add_row(f"{first}-{last}", _percent(right), f"{mean:.3f}", "█" * round(right * 30))
    console.print(table)


def _print_values(report: DemoReport) -> list[PolicyValue]:
    """Print what the run and the other policies are worth; return the values (the best
    possible last)."""
    values = policy_values(report)
    table = new_table(
        "What it is worth: mean reward per request on this run's requests",
        ("routing policy", "reward", "95 % interval", "how"),
        right=("reward", "95 % interval"),
    )
    for value in values:
        estimate = value.estimate
        how = "estimated (SNIPS)" if value.estimated else "observed"
        if value.unsupported > 0.01:
            how += f", {100 * value.unsupported:.0f} % untried"
        table.add_row(
            value.label,
            f"{estimate.value:.3f}",
            f"{estimate.ci_low:.3f}–{estimate.ci_high:.3f}",
            how,
        )
    console.print(table)
    console.print(
        "Estimates reweight each logged reward by how likely the policy was to make the "
        "logged choice (rlmemory.offpolicy); the greedy policy is judged on the requests it "
        "learned from, so its figure is somewhat optimistic."
    )
    routed = report.routed_right_share()
    greedy = report.greedy_right_share()
    cap = report.exploration_cap()
    if cap is not None and report.exploration_rate is not None:
        console.print(
            f"Why the share levels off: {report.agent_type} keeps exploring — with probability "
            f"{report.exploration_rate:g} it picks a sub-agent at random, right only one time "
            f"in {len(KINDS)} — so on average at most {_percent(cap)} of requests reach the "
            f"right sub-agent while it learns (this run: {_percent(routed)}). Choosing greedily, "
            f"the learned policy sends {_percent(greedy)} of this run's requests to the right "
            "sub-agent."
        )
    else:
        console.print(
            f"This run sent {_percent(routed)} of its requests to the right sub-agent; "
            f"choosing greedily, the learned policy sends {_percent(greedy)} there. "
            f"{report.agent_type} explores where it is unsure, less as it learns."
        )
    return values


def _print_next_steps(name: str, db: str | None) -> None:
    where = f" --db {db}" if db else ""
    console.print(
        f"Next: rlmemory show {name}{where} (the learned policy), "
        f"rlmemory stats{where} (every agent), "
        f"rlmemory evaluate {name}{where} (what another policy would earn)."
    )


def _percent(share: float | None) -> str:
    # A no-break space: a wrapped line never starts with a lone "%".
    return "-" if share is None else f"{100 * share:.0f}\u00a0%"
