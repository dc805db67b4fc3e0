"""Correcting history: fix or delete a recorded reward or interaction, and relearn.

A wrong reward taught the learner something wrong. Correct the reward row (and the
reward recorded on its decision), then :func:`relearn`: the agent's learned state is
rolled back to a version and the logged decisions made after that version are
replayed through the learner with their (corrected) rewards. Everything keeps a
trace: the rollback and the relearned state are new versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlmemory.learners.base import Observation, RoutingLearner
from rlmemory.ops.progress import ProgressCallback, counted
from rlmemory.ops.versions import checkpoint, get_version, rollback
from rlmemory.store._validation import check_finite, check_id
from rlmemory.store.base import MemoryStore, Row


def correct_reward(
    store: MemoryStore,
    reward_id: int,
    reward: float,
    reward_components: Mapping[str, Any] | None = None,
) -> Row:
    """Replace the value (and optionally the components) of a stored reward.

    When the reward's decision records this very value as its learned reward, the
    decision is corrected too, so :func:`relearn` replays the corrected value: a plain
    number is replaced; a mapping (the coordinator's ``{"status", "value", ...}``) keeps
    its other keys and gets ``"value"`` replaced and ``"corrected_from"`` added. Returns
    the reward row as it was before. An unknown id is a ``LookupError``.
    """
    reward_id = check_id(reward_id, "reward_id")
    value = check_finite(reward, "reward")
    with store.transaction():
        before = _under_learner_lock(store, store.get_agent_reward, reward_id)
        store.update_agent_reward(reward_id, value, reward_components)
        decision = _decision_learning(store, before)
        if decision is not None:
            recorded = decision["reward"]
            if isinstance(recorded, Mapping):
                corrected: Any = {**recorded, "value": value, "corrected_from": before["reward"]}
            else:
                corrected = value
            store.set_decision_reward(decision["id"], corrected)
    return before


def delete_reward(store: MemoryStore, reward_id: int) -> Row:
    """Delete a stored reward; a decision that learned it stops counting it.

    A decision recording this reward as its learned value gets no learnable reward any
    more (a number becomes None; a mapping gets ``"status": "retracted"`` and
    ``"value": None``, the old value kept as ``"retracted_value"``), so :func:`relearn`
    skips it. Returns the deleted row. An unknown id is a ``LookupError``.
    """
    reward_id = check_id(reward_id, "reward_id")
    with store.transaction():
        before = _under_learner_lock(store, store.get_agent_reward, reward_id)
        store.delete_agent_reward(reward_id)
        decision = _decision_learning(store, before)
        if decision is not None:
            recorded = decision["reward"]
            if isinstance(recorded, Mapping):
                retracted: Any = {
                    **recorded,
                    "status": "retracted",
                    "value": None,
                    "retracted_value": reward_value(recorded),
                }
            else:
                retracted = None
            store.set_decision_reward(decision["id"], retracted)
    return before


def _under_learner_lock(store: MemoryStore, read: Callable[[int], Row], row_id: int) -> Row:
    """``read(row_id)`` again after taking the lock of the row's agent (in a transaction).

    Learning reads a decision's reward and marks feedback learned under that lock; a
    correction made without it could interleave with a learner in another process (on
    PostgreSQL, whose row reads take no lock) and be overwritten or learned half-way.
    """
    store.lock_learner(read(row_id)["agent_name"])
    return read(row_id)


def _decision_learning(store: MemoryStore, reward_row: Row) -> Row | None:
    """The decision of ``reward_row`` if it records that reward's value as learned."""
    decision_id = reward_row.get("decision_id")
    if decision_id is None:
        return None
    try:
        decision = store.get_agent_decision(decision_id)
    except LookupError:
        return None  # the decision was pruned; the reward row stands alone
    learned = reward_value(decision["reward"])
    if learned is None or learned != float(reward_row["reward"]):
        return None  # it learned another reward (feedback, a default): leave it
    return decision


def correct_interaction(
    store: MemoryStore,
    interaction_id: int,
    *,
    request: str | None = None,
    response: str | None = None,
    feedback: str | None = None,
) -> Row:
    """Replace the request, response and/or feedback text of an interaction.

    New feedback is marked not yet learned, so ``learn_from_batch`` learns it. Returns
    the row as it was before.
    """
    interaction_id = check_id(interaction_id, "interaction_id")
    if request is None and response is None and feedback is None:
        raise ValueError("give at least one of request, response, feedback to correct")
    with store.transaction():
        before = _under_learner_lock(store, store.get_agent_interaction, interaction_id)
        if request is not None or response is not None:
            store.update_agent_interaction(interaction_id, request=request, response=response)
        if feedback is not None:
            store.set_interaction_feedback(interaction_id, feedback)
    return before


def delete_interaction(store: MemoryStore, interaction_id: int) -> Row:
    """Delete an interaction; return it as it was."""
    interaction_id = check_id(interaction_id, "interaction_id")
    with store.transaction():
        before = _under_learner_lock(store, store.get_agent_interaction, interaction_id)
        store.delete_agent_interaction(interaction_id)
    return before


def reward_value(recorded: Any) -> float | None:
    """The learnable number in a decision's recorded reward, or None (pending, or not a number).

    >>> reward_value(0.75), reward_value(None), reward_value({"reward": 1}), reward_value("x")
    (0.75, None, 1.0, None)
    """
    if isinstance(recorded, Mapping):
        recorded = recorded.get("reward", recorded.get("value"))
    if isinstance(recorded, bool) or not isinstance(recorded, int | float):
        return None
    return float(recorded) if math.isfinite(recorded) else None


@dataclass(frozen=True)
class RelearnReport:
    """What :func:`relearn` did.

    ``replayed`` decisions were learned again; ``skipped`` had no numeric reward or an
    action the learner does not know. ``rollback_version`` holds the restored state,
    ``final_version`` the relearned one.
    """

    agent_name: str
    from_version: int
    replayed: int
    skipped: int
    rollback_version: int
    final_version: int


def relearn(
    store: MemoryStore,
    learner: RoutingLearner,
    version: int,
    *,
    progress: ProgressCallback | None = None,
) -> RelearnReport:
    """Roll ``learner``'s agent back to ``version`` and replay the decisions logged after it.

    Decisions after the version's decision watermark are replayed oldest first through
    ``learner.learn(Observation(state, features), selected_action, reward)``, with the
    reward recorded on the decision now (corrections included). The learner must be
    the one stored under the agent's name.

    Rollback, replay and the final version are one transaction holding the learner's
    lock (:meth:`MemoryStore.lock_learner`): other processes learning for the agent
    wait until it ends, and two relearns run one after the other, so each decision is
    replayed once. If anything fails nothing changes and the learner is reloaded.
    ``progress(decisions replayed or skipped, decisions)`` is called every few hundred
    decisions.
    """
    agent_name = learner.name
    target = get_version(store, agent_name, version)
    try:
        with store.transaction():
            store.lock_learner(agent_name)
            outcome = rollback(store, agent_name, version)
            learner.reload()
            replayed = skipped = 0
            decisions = store.iter_agent_decisions(
                agent_name, after_id=target.state.decision_watermark
            )
            # An upper bound: only the decisions after the version are replayed.
            total = store.count_agent_decisions(agent_name)
            for decision in counted(decisions, progress, total=total):
                value = reward_value(decision["reward"])
                action = decision["selected_action"]
                if value is None or action not in learner.actions:
                    skipped += 1
                    continue
                features = np.asarray(decision["features"] or [], dtype=np.float64)
                learner.learn(Observation(decision["state"], features), action, value)
                replayed += 1
            final = checkpoint(
                store, agent_name, f"relearned {replayed} decisions logged after version {version}"
            )
    except BaseException:
        learner.reload()
        raise
    return RelearnReport(agent_name, version, replayed, skipped, outcome.new_version, final)
