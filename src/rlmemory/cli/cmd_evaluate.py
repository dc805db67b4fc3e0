"""CLI commands ``evaluate`` and ``export-log``: off-policy estimates and the decision log."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rlmemory.cli.app import app
from rlmemory.cli.common import DbOption, console, opened_store
from rlmemory.offpolicy import POLICY_NAMES, evaluate_candidate, export_decision_log

__all__ = ["evaluate", "export_log"]

OutOption = typer.Option(..., "--out", help="File to write: .csv or .parquet.")


@app.command()
def evaluate(
    agent: str = typer.Option(..., "--agent", help="Name of the agent whose decisions to use."),
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
) -> None:
    """Estimate what a candidate policy would have earned on an agent's logged decisions.

    Prints IPS, SNIPS and doubly robust estimates with bootstrap intervals beside the
    logging policy's observed mean reward on the same held-out decisions.
    """
    options = {
        key: value
        for key, value in (("alpha", alpha), ("epsilon", epsilon), ("v", v))
        if value is not None
    }
    with opened_store(db) as store:
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
    level = f"{100 * confidence:g} %"
    console.print(
        f"{policy}: trained on {result.n_train} decisions of {agent}, "
        f"evaluated on the {result.n_evaluated} newer ones"
    )
    table = Table()
    table.add_column("estimate")
    table.add_column("value", justify="right")
    table.add_column(f"{level} CI", justify="right")
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
            f"Log with exploration (epsilon_greedy or thompson) to evaluate other policies."
        )


@app.command("export-log")
def export_log(
    agent: str = typer.Argument(..., help="Name of the agent whose decisions to export."),
    out: Path = OutOption,
    db: str | None = DbOption,
) -> None:
    """Write an agent's rewarded decisions in the Open Bandit Pipeline layout.

    Columns: decision_id, action, action_name, reward, pscore, context_0 … context_{d-1}.
    """
    with opened_store(db) as store:
        rows = export_decision_log(store, agent, out)
    console.print(f"wrote {rows} decisions of {agent} to {out}")
