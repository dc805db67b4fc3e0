"""Off-policy evaluation: unbiasedness on a known problem, intervals, the store round trip."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from rlmemory.learners.bandits import LinUCBAgent
from rlmemory.offpolicy import (
    LoggedDecisions,
    clopper_pearson,
    dm_estimate,
    dr_estimate,
    evaluate_candidate,
    evaluate_policy,
    exact_ips_interval,
    export_decision_log,
    import_logged_decisions,
    ips_estimate,
    learn_from_batch,
    load_logged_decisions,
    snips_estimate,
    support_diagnostics,
)

# A problem whose value is known: 4 context types (one-hot), 3 actions.
MEAN_REWARD = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.3, 0.3, 0.6], [0.5, 0.1, 0.4]])
LOGGING = np.array([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.5, 0.3]])
TARGET = np.array([[1.0, 0.0, 0.0], [0.0, 0.7, 0.3], [0.1, 0.1, 0.8], [0.5, 0.0, 0.5]])
TRUE_VALUE = float(np.mean((TARGET * MEAN_REWARD).sum(axis=1)))  # context types equally likely


def synthetic_log(n: int, rng: np.random.Generator) -> tuple[LoggedDecisions, np.ndarray]:
    types = rng.integers(0, 4, n)
    cumulative = LOGGING[types].cumsum(axis=1)
    actions = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), 2)
    rewards = (rng.random(n) < MEAN_REWARD[types, actions]).astype(float)
    logged = LoggedDecisions(
        np.eye(4)[types], actions, rewards, LOGGING[types, actions], ["a", "b", "c"]
    )
    return logged, TARGET[types]


def test_ips_is_unbiased_on_a_problem_with_a_known_value():
    rng = np.random.default_rng(2024)
    estimates = []
    for _ in range(400):
        logged, target = synthetic_log(300, rng)
        estimates.append(ips_estimate(logged, target, n_bootstrap=1).value)
    standard_error = np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - TRUE_VALUE) <= 3 * standard_error


@pytest.mark.parametrize("estimator", [ips_estimate, snips_estimate, dr_estimate])
def test_estimates_and_their_intervals_cover_the_true_value(estimator):
    logged, target = synthetic_log(20_000, np.random.default_rng(7))
    estimate = estimator(logged, target, n_bootstrap=300, confidence=0.99, seed=1)
    assert estimate.ci_low <= TRUE_VALUE <= estimate.ci_high
    assert estimate.ci_high - estimate.ci_low < 0.05
    assert estimate.ci_low <= estimate.value <= estimate.ci_high


def test_direct_method_with_the_true_reward_model_has_no_model_bias():
    logged, target = synthetic_log(5000, np.random.default_rng(3))
    truth_model = logged.contexts @ MEAN_REWARD
    dm = dm_estimate(logged, target, predictions=truth_model, n_bootstrap=50)
    sample_value = float((target * truth_model).sum(axis=1).mean())
    assert dm.value == pytest.approx(sample_value, abs=1e-12)
    assert abs(dm.value - TRUE_VALUE) < 0.02


def test_evaluating_the_logging_policy_reproduces_its_observed_mean_reward():
    logged, _ = synthetic_log(3000, np.random.default_rng(4))
    results = evaluate_policy(logged, LOGGING[logged.contexts.argmax(axis=1)], n_bootstrap=100)
    assert results["IPS"].value == pytest.approx(logged.rewards.mean(), abs=1e-12)
    assert results["SNIPS"].value == pytest.approx(logged.rewards.mean(), abs=1e-12)
    assert set(results) == {"IPS", "SNIPS", "DM", "DR"}


def test_support_diagnostics_flag_what_a_deterministic_logger_never_tried():
    logged = LoggedDecisions(
        np.zeros((4, 1)), [0, 0, 1, 1], [1.0] * 4, [1.0, 1.0, 0.5, 0.5], ["a", "b"]
    )
    always_b = np.tile([0.0, 1.0], (4, 1))
    diagnostics = support_diagnostics(logged, always_b)
    assert diagnostics.deterministic_share == 0.5
    assert diagnostics.unsupported_mass == 0.5
    assert diagnostics.effective_sample_size == pytest.approx(2.0)
    uniform_log, target = synthetic_log(500, np.random.default_rng(0))
    assert support_diagnostics(uniform_log, target).unsupported_mass == 0.0


def test_bootstrap_intervals_are_reproducible_with_a_seed():
    logged, target = synthetic_log(1000, np.random.default_rng(5))
    first = snips_estimate(logged, target, n_bootstrap=200, seed=9)
    second = snips_estimate(logged, target, n_bootstrap=200, seed=9)
    assert first == second


def test_clopper_pearson_matches_known_intervals():
    low, high = clopper_pearson(0, 100)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 100), rel=1e-6)
    low, high = clopper_pearson(5, 10)
    assert (low, high) == pytest.approx((0.187086, 0.812914), abs=1e-5)


def test_exact_ips_interval_scales_the_binomial_interval_of_matched_successes():
    n = 1000
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, n)
    rewards = (rng.random(n) < 0.3).astype(float)
    logged = LoggedDecisions(np.zeros((n, 1)), actions, rewards, np.full(n, 0.25), list("abcd"))
    always_a = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    matched = int(np.sum((actions == 0) & (rewards == 1)))
    low, high = exact_ips_interval(logged, always_a)
    expected = clopper_pearson(matched, n)
    assert (low, high) == pytest.approx((4 * expected[0], 4 * expected[1]))
    assert low <= ips_estimate(logged, always_a, n_bootstrap=1).value <= high


def test_zero_or_out_of_range_propensities_are_refused():
    with pytest.raises(ValueError, match="propensities must be in"):
        LoggedDecisions(np.zeros((2, 1)), [0, 1], [1.0, 0.0], [0.5, 0.0], ["a", "b"])
    with pytest.raises(ValueError, match="propensities must be in"):
        LoggedDecisions(np.zeros((1, 1)), [0], [1.0], [float("nan")], ["a"])


def test_target_probabilities_of_the_wrong_shape_or_not_summing_to_one_are_refused():
    logged, target = synthetic_log(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        ips_estimate(logged, target[:, :2])
    with pytest.raises(ValueError, match="sum to 1"):
        ips_estimate(logged, target * 0.5)


def store_decisions(store, rewards, propensity=0.5):
    ids = []
    for i, reward in enumerate(rewards):
        ids.append(
            store.save_agent_decision(
                "router",
                "s",
                "a" if i % 2 == 0 else "b",
                {},
                reward,
                propensity=propensity,
                features=[1.0, float(i)],
            )
        )
    return ids


def test_stored_decisions_load_oldest_first_and_pending_rewards_are_skipped(store):
    ids = store_decisions(store, [1.0, None, 0.0, 0.5])
    logged = load_logged_decisions(store, "router")
    assert logged.decision_ids.tolist() == [ids[0], ids[2], ids[3]]
    assert logged.rewards.tolist() == [1.0, 0.0, 0.5]
    assert logged.action_names == ["a", "b"]
    assert logged.actions.tolist() == [0, 0, 1]
    assert logged.contexts[:, 1].tolist() == [0.0, 2.0, 3.0]


def test_the_coordinators_reward_forms_are_read_and_pending_ones_skipped(store):
    forms = [
        {"status": "observed", "value": 0.75, "source": "outcome"},
        {"status": "pending", "deadline": 1.0, "outcome_reward": 0.5},
        {"status": "defaulted", "value": 0.25, "source": "default"},
    ]
    store_decisions(store, forms)
    assert load_logged_decisions(store, "router").rewards.tolist() == [0.75, 0.25]


def test_a_reward_that_is_not_a_number_is_an_error_naming_the_decision(store):
    ids = store_decisions(store, [{"status": "observed", "value": "great"}])
    with pytest.raises(ValueError, match=f"decision {ids[0]} has a reward that is not a number"):
        load_logged_decisions(store, "router")


def test_a_stored_decision_without_propensity_is_an_error_naming_it(store):
    store_decisions(store, [1.0])
    missing = store.save_agent_decision("router", "s", "a", {}, 1.0, features=[0.0, 0.0])
    with pytest.raises(ValueError, match=f"decision {missing} .*propensity None"):
        load_logged_decisions(store, "router")


def test_imported_logs_round_trip_through_the_store(store):
    contexts = np.array([[0.5, 1.0], [2.0, -1.0], [0.0, 0.25]])
    ids = import_logged_decisions(
        store, "obd", contexts, ["item_1", "item_2", "item_1"], [0.0, 1.0, 0.0], [0.5, 0.25, 0.5]
    )
    assert len(ids) == 3
    logged = load_logged_decisions(store, "obd")
    np.testing.assert_array_equal(logged.contexts, contexts)
    assert logged.action_names == ["item_1", "item_2"]
    assert logged.propensities.tolist() == [0.5, 0.25, 0.5]


def test_an_import_with_one_bad_row_stores_nothing(store):
    with pytest.raises(ValueError, match=r"row 1 has 0\.0"):
        import_logged_decisions(store, "obd", [[1.0], [2.0]], ["a", "b"], [1.0, 0.0], [0.5, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        import_logged_decisions(store, "obd", [[1.0], [float("nan")]], ["a", "b"], [1, 0], [1, 1])
    assert store.count_agent_decisions("obd") == 0


def test_export_writes_the_open_bandit_pipeline_layout(store, tmp_path):
    store_decisions(store, [1.0, 0.0, None])
    path = tmp_path / "log.csv"
    assert export_decision_log(store, "router", path) == 2
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "decision_id",
        "action",
        "action_name",
        "reward",
        "pscore",
        "context_0",
        "context_1",
    ]
    assert [(r["action"], r["action_name"], r["reward"], r["pscore"]) for r in rows] == [
        ("0", "a", "1.0", "0.5"),
        ("1", "b", "0.0", "0.5"),
    ]
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "log.parquet"
    export_decision_log(store, "router", parquet)
    frame = pandas.read_parquet(parquet)
    assert frame["pscore"].tolist() == [0.5, 0.5]
    assert frame["context_1"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        export_decision_log(store, "router", tmp_path / "log.json")


def test_learning_from_a_batch_weights_rounds_by_inverse_propensity(store):
    logged = LoggedDecisions(
        [[1.0], [1.0], [1.0]], [0, 0, 1], [1.0, 0.0, 1.0], [0.25, 0.5, 0.5], ["a", "b"]
    )
    learner = LinUCBAgent("router", store, ["a", "b"])
    learn_from_batch(learner, logged)
    weights = np.array([4.0, 2.0, 2.0]) / np.mean([4.0, 2.0, 2.0])
    expected_theta_a = (weights[0] * 1.0) / (1.0 + weights[0] + weights[1])
    assert learner.statistics()["a"]["theta"][0] == pytest.approx(expected_theta_a)
    reloaded = LinUCBAgent("router", store, ["a", "b"])
    assert np.array_equal(reloaded.statistics()["a"]["A_inv"], learner.statistics()["a"]["A_inv"])


def test_candidate_evaluation_compares_with_the_observed_value_on_held_out_rounds(store):
    rng = np.random.default_rng(0)
    for _ in range(400):
        x = rng.normal(size=2)
        action = "a" if rng.random() < 0.5 else "b"
        reward = float((x[0] > 0) == (action == "a"))
        store.save_agent_decision(
            "router", "s", action, {}, reward, propensity=0.5, features=x.tolist()
        )
    uniform = evaluate_candidate(store, "router", "uniform", n_bootstrap=100)
    assert uniform.n_train == 200 and uniform.n_evaluated == 200
    assert uniform.estimates["IPS"].value == pytest.approx(uniform.observed.value)
    linucb = evaluate_candidate(store, "router", "linucb", n_bootstrap=100)
    assert linucb.estimates["SNIPS"].value > uniform.observed.ci_high
    with pytest.raises(ValueError, match="unknown policy"):
        evaluate_candidate(store, "router", "oracle")


@pytest.mark.parametrize("rl_agent_type", ["linucb", "thompson", "epsilon_greedy"])
def test_a_bandit_coordinators_stored_decisions_can_be_evaluated(tmp_path, rl_agent_type):
    import asyncio

    from rlmemory.coordinator import create_rl_agent_architecture
    from rlmemory.store.sql import MemoryDatabase

    async def route(db):
        coordinator = await create_rl_agent_architecture(
            None, db, {"shout": str.upper, "measure": len}, rl_agent_type, seed=1
        )
        for i in range(40):
            await coordinator.process_request(f"request number {i} " + "word " * (i % 7))

    with MemoryDatabase(tmp_path / "memory.db") as db:
        asyncio.run(route(db))
        logged = load_logged_decisions(db, "rl_coordinator")
        assert len(logged) == 40
        assert np.all((logged.propensities > 0) & (logged.propensities <= 1))
        result = evaluate_candidate(db, "rl_coordinator", "uniform", n_bootstrap=50)
    assert result.n_evaluated == 20
    assert np.isfinite(result.estimates["DR"].value)
