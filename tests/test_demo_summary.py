"""What the demo reports it learned and what that is worth (rlmemory.demo.summary, run, plot)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rlmemory.demo.plot import plot_demo_history
from rlmemory.demo.requests import KINDS, demo_requests
from rlmemory.demo.run import DemoOutcome, DemoReport, GreedyChoice, run_demo, stored_history
from rlmemory.demo.summary import learned_by_kind, policy_values
from rlmemory.store import open_store


def uniform_report(count: int = 600, seed: int = 0) -> DemoReport:
    """A run that routed uniformly at random (propensity 1/3); reward 1 when routed right,
    else 0; the learned policy's greedy choice is always right."""
    rng = np.random.default_rng(seed)
    agents = sorted(KINDS.values())
    report = DemoReport("demo_test", "q_learning", resumed_from=0, exploration_rate=0.2)
    for request in demo_requests(count, seed=seed):
        chosen = agents[int(rng.integers(3))]
        right = KINDS[request.kind] == chosen
        report.outcomes.append(
            DemoOutcome(request, chosen, right, 1.0 if right else 0.0, propensity=1 / 3)
        )
        report.greedy.append(GreedyChoice(KINDS[request.kind], 0.9))
    return report


def test_uniform_baseline_equals_the_observed_value_of_a_uniform_run() -> None:
    report = uniform_report()
    values = {value.label: value for value in policy_values(report, n_bootstrap=200)}
    observed = values["as run (learning, exploring 0.2)"]
    assert not observed.estimated
    routed_right = report.routed_right_share()
    assert observed.estimate.value == pytest.approx(routed_right)
    uniform = values["uniform random sub-agent"]
    assert uniform.estimated and uniform.unsupported == 0.0
    # Uniform target on uniform logs: every importance weight is 1, SNIPS is the mean.
    assert uniform.estimate.value == pytest.approx(observed.estimate.value)
    # Always right earns 1 on every request it can be checked on.
    assert values["best possible (right sub-agent)"].estimate.value == pytest.approx(1.0)
    assert values["learned policy, greedy"].estimate.value == pytest.approx(1.0)
    for value in values.values():
        assert value.estimate.ci_low <= value.estimate.value <= value.estimate.ci_high


def test_learned_by_kind_names_the_preferred_sub_agent_and_the_shares() -> None:
    report = uniform_report()
    rows = {row.kind: row for row in learned_by_kind(report)}
    assert set(rows) == set(KINDS)
    for kind, row in rows.items():
        assert (row.learned_agent, row.greedy_right) == (KINDS[kind], 1.0)
        assert row.learned_value == pytest.approx(0.9)
        served = [o for o in report.outcomes if o.request.kind == kind]
        assert row.requests == len(served)
        assert row.routed_right == pytest.approx(
            sum(o.selected_agent == KINDS[kind] for o in served) / len(served)
        )
    assert report.greedy_right_share() == 1.0
    assert report.exploration_cap() == pytest.approx(1 - 0.2 * 2 / 3)


def test_a_demo_run_records_greedy_choices_and_history_matching_its_outcomes(
    tmp_path: Path,
) -> None:
    with open_store(str(tmp_path / "d.db")) as store:
        first = asyncio.run(run_demo(store, requests=30, seed=2))
        second = asyncio.run(run_demo(store, requests=20, seed=2))
        rewards, right = stored_history(store, "demo_q_learning", seed=2)
    assert first.exploration_rate == 0.2
    assert len(second.greedy) == len(second.outcomes) == 20
    outcomes = first.outcomes + second.outcomes
    assert rewards == [o.reward for o in outcomes]
    assert right == [o.routed_right for o in outcomes]
    assert all(0 < o.propensity <= 1 for o in outcomes)
    plot = tmp_path / "curve.png"
    plot_demo_history(
        rewards, right, plot, title="t", best_reward=0.72, exploration_cap=0.87, resumed_at=31
    )
    assert plot.read_bytes().startswith(b"\x89PNG")
