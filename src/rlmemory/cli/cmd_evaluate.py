"""CLI commands ``evaluate`` and ``export-log``: off-policy estimates and the decision log."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from rlmemory.cli.app import app
from rlmemory.cli.common import (
    AgentArgument,
    DbOption,
    FormatOption,
    check_output_format,
    console,
    new_table,
    opened_store,
    print_json,
    require_agent,
)
from rlmemory.offpolicy import POLICY_NAMES, evaluate_candidate, export_decision_log

__all__ = ["evaluate", "export_log"]

OutOption = typer.Option(..., "--out", "-o", help="File to write: .csv or .parquet.")
#: ``evaluate --agent NAME``, the spelling before AGENT became an argument as everywhere.
AgentAliasOption = typer.Option(None, "--agent", hidden=True)


def _one_agent(argument: str | None, option: str | None) -> str:
    if argument and option and argument != option:
        raise ValueError(f"two agents given: {argument!r} and --agent {option!r}; give one")
    agent = argument or option
    if not agent:
        raise ValueError("give the agent: rlmemory evaluate AGENT (see `rlmemory stats`)")
    return agent


@app.command()
def evaluate(
    agent: str | None = typer.Argument(
        None, help="Agent whose logged decisions to use (see `rlmemory stats`).", show_default=False
    ),
    agent_option: str | None = AgentAliasOption,
    policy: str = typer.Option(
        "linucb", "--policy", help=f"Candidate policy: {', '.join(POLICY_NAMES)}."
    ),
    db: str | None = DbOption,
    train_fraction: float = typer.Option(
        0.5,
        "--train-fraction",
        min=0.0,
        max=0.95,
        help="Oldest share of the decisions the candidate learns from; the rest evaluate it.",
    ),
    alpha: float | None = typer.Option(None, "--alpha", help="LinUCB exploration width."),
    epsilon: float | None = typer.Option(None, "--epsilon", help="Epsilon-greedy exploration."),
    v: float | None = typer.Option(None, "--v", help="Thompson sampling posterior scale."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, help="Bootstrap replicates."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level, in (0, 1)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap and the policy."),
    output: str = FormatOption,
) -> None:
    """Estimate what a candidate policy would have earned on AGENT's logged decisions.

    Prints IPS, SNIPS and doubly robust estimates with bootstrap intervals beside the
    logging policy's observed mean reward on the same held-out decisions.
    """
    check_output_format(output)
    agent = _one_agent(agent, agent_option)
    options: dict[str, Any] = {
        key: value
        for key, value in (("alpha", alpha), ("epsilon", epsilon), ("v", v))
        if value is not None
    }
    with opened_store(db) as store:
        require_agent(store, agent)
        result = evaluate_candidate(
            store,
            agent,
            policy,
            train_fraction=train_fraction,
            n_bootstrap=bootstrap,
            confidence=confidence,
            seed=seed,
            **options,
        )
    if output == "json":
        print_json(dataclasses.asdict(result))
        return
    level = f"{100 * confidence:g} %"
    console.print(
        f"{policy}: trained on {result.n_train} decisions of {agent}, "
        f"evaluated on the {result.n_evaluated} newer ones"
    )
    table = new_table(None, ("estimate", "value", f"{level} CI"), right=("value", f"{level} CI"))
    rows = [(f"{policy} ({name})", estimate) for name, estimate in result.estimates.items()]
    rows.append(("logging policy (observed)", result.observed))
    for label, estimate in rows:
        table.add_row(
            label, f"{estimate.value:.4f}", f"{estimate.ci_low:.4f} – {estimate.ci_high:.4f}"
        )
    console.print(table)
    support = result.support
    console.print(f"effective sample size: {support.effective_sample_size:.0f}")
    if support.unsupported_mass > 0.01:
        console.print(
            f"[yellow]warning:[/yellow] the logging policy chose with probability 1 in "
            f"{100 * support.deterministic_share:.0f} % of these decisions and never tried "
            f"the alternatives there; {100 * support.unsupported_mass:.0f} % of the "
            f"candidate's probability falls on those untried actions, which the logs cannot "
            f"check (IPS counts it as zero, SNIPS ignores it, DR trusts its reward model). "
            f"Log with exploration (epsilon_greedy or thompson) to evaluate other policies.",
            markup=True,
        )


@app.command("export-log")
def export_log(
    agent: str = AgentArgument,
    out: Path = OutOption,
    db: str | None = DbOption,
) -> None:
    """Write AGENT's rewarded decisions in the Open Bandit Pipeline layout.

    Columns: decision_id, action, action_name, reward, pscore, context_0 … context_{d-1}.
    """
    with opened_store(db) as store:
        require_agent(store, agent)
        rows = export_decision_log(store, agent, out)
    console.print(f"wrote {rows} decisions of {agent} to {out}")
