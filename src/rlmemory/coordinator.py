"""The learning loop: route each request to a sub-agent, reward the outcome, learn, remember.

:class:`RLCoordinatorAgent` picks a sub-agent for each request with a routing learner
(Q-learning, policy gradient or a linear contextual bandit), runs it, computes the
reward, and stores the decision, the interaction, the reward and the learner's changed
parameters as one transaction. Feedback given later credits exactly the decision it is
about. Everything lives in a :class:`~rlmemory.store.base.MemoryStore`, so a restarted
coordinator continues where it stopped — with ``seed=``, it makes exactly the decisions
an uninterrupted one would have made.

>>> import asyncio, os, tempfile
>>> from rlmemory.store.sql import MemoryDatabase
>>> async def demo():
...     with MemoryDatabase(os.path.join(tempfile.mkdtemp(), "memory.db")) as db:
...         coordinator = await create_rl_agent_architecture(
...             None, db, {"echo": str.upper, "count": len}, seed=7
...         )
...         result = await coordinator.process_request("hello there")
...         await coordinator.update_from_feedback(
...             "hello there", result["response"], "great, thanks",
...             decision_id=result["decision_id"])
...         return result["selected_agent"] in ("echo", "count"), db.count_agent_decisions(
...             "rl_coordinator")
>>> asyncio.run(demo())
(True, 1)

The states of a decision's reward, kept in the ``reward`` JSON of its row:

* ``{"status": "observed", "value": r, "source": "outcome" | "feedback" | "explicit", ...}``
  — a reward was learned (at once from the sub-agent's outcome, or later);
* ``{"status": "pending", "deadline": t, "outcome_reward": r, ...}`` — with
  ``reward_wait`` set, nothing learned yet; a reward may arrive until ``deadline``;
* ``{"status": "defaulted", "value": d, "source": "default", ...}`` — the wait window
  passed and the default reward was learned; rewards arriving later are appended to
  ``late_rewards`` (and stored as reward rows) but not learned.

Every form also carries ``performance_metrics`` (what feedback is scored against later)
and ``interaction_id`` (the interaction row of the decision).
"""

from __future__ import annotations

import contextlib
import heapq
import importlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rlmemory.errors import UnknownDecisionError
from rlmemory.store._validation import check_finite, check_interaction_text
from rlmemory.store.base import MemoryStore, Row
from rlmemory.subagents import SubAgentOutcome, check_sub_agent, run_sub_agent
from rlmemory.types import Choice, Observation

__all__ = ["LEARNER_TYPES", "RLCoordinatorAgent", "create_rl_agent_architecture"]

logger = logging.getLogger(__name__)

#: ``rl_agent_type`` -> (module, class). Imported when used.
LEARNER_TYPES: dict[str, tuple[str, str]] = {
    "q_learning": ("rlmemory.learners.qlearning", "QLearningAgent"),
    "policy_gradient": ("rlmemory.learners.policy_gradient", "PolicyGradientAgent"),
    "linucb": ("rlmemory.learners.bandits", "LinUCBAgent"),
    "thompson": ("rlmemory.learners.bandits", "ThompsonSamplingAgent"),
    "epsilon_greedy": ("rlmemory.learners.bandits", "EpsilonGreedyAgent"),
    "squarecb": ("rlmemory.learners.squarecb", "SquareCBAgent"),
}

#: Name of the coordinator made by :func:`create_rl_agent_architecture`.
DEFAULT_COORDINATOR_NAME = "rl_coordinator"


def check_rl_agent_type(rl_agent_type: object) -> str:
    """Return ``rl_agent_type`` if it names a learner, else ``ValueError`` listing them.

    >>> check_rl_agent_type("sarsa")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: unknown rl_agent_type 'sarsa'; valid types: q_learning, policy_gradient, ...
    """
    if rl_agent_type not in LEARNER_TYPES:
        raise ValueError(
            f"unknown rl_agent_type {rl_agent_type!r}; valid types: {', '.join(LEARNER_TYPES)}"
        )
    return str(rl_agent_type)


def check_sub_agents(sub_agents: object) -> dict[str, Any]:
    """Return a copy of ``sub_agents`` if it is a non-empty mapping of usable sub-agents."""
    if not isinstance(sub_agents, Mapping):
        raise TypeError(
            f"sub_agents must be a mapping of name to sub-agent, not {type(sub_agents).__name__}"
        )
    if not sub_agents:
        raise ValueError(
            "sub_agents is empty: give at least one sub-agent (an object with "
            "execute(request, db), or a callable taking the request)"
        )
    for name, agent in sub_agents.items():
        check_sub_agent(name, agent)
    return dict(sub_agents)


class RLCoordinatorAgent:
    """Routes requests to sub-agents and learns from the rewards, persistently.

    ``name`` names every stored row and the learner's parameters; ``model`` is a
    LangChain chat model for state extraction, or ``None`` for the offline extractor;
    ``reward_system`` a :class:`~rlmemory.rewards.RewardSystem`; ``sub_agents`` maps
    names (the actions) to sub-agents (see :mod:`rlmemory.subagents`).
    ``rl_agent_type`` is one of :data:`LEARNER_TYPES`; the learner is ``.rl_agent``.

    Options:

    * ``seed`` — decision ``i`` of this coordinator draws its randomness from
      ``numpy.random.default_rng([seed, i])``, where ``i`` counts the decisions stored
      under ``name``; so a restarted coordinator repeats exactly what an uninterrupted
      one would do. Without a seed, fresh entropy is drawn once per object.
    * ``state_extractor`` — replaces :func:`rlmemory.features.make_state_extractor`.
    * ``features`` — a featuriser (``text -> vector`` with ``name`` and ``dimension``,
      such as :class:`~rlmemory.features.text.TextFeaturizer`) giving the context vector
      of each request instead of the extractor's; the state key still comes from the
      extractor. A featuriser with an async ``acall`` is awaited. Learners that take
      sparse vectors (``accepts_sparse``, like ``squarecb``) get the featuriser's
      ``sparse(text)``; such vectors are not stored with the decision, and a reward that
      arrives later re-computes them from the stored request. ``squarecb`` defaults to
      ``TextFeaturizer()``; the other learners to the extractor's vector.
    * ``policy_update_every`` — passed to the policy-gradient learner.
    * ``subagent_timeout`` — seconds a sub-agent may run (None: no limit); a sub-agent
      that raises or runs longer is a failed task, with its error recorded.
    * ``reward_wait`` — seconds. When set, a request does not learn at once: its
      decision waits for :meth:`reward` or :meth:`update_from_feedback`, and when the
      window passes :meth:`apply_expired_rewards` learns ``default_reward`` instead
      (``None``: the reward computed from the sub-agent's outcome alone).
    * ``checkpoint_every`` — take a numbered version of the learned state every N
      learning updates (:mod:`rlmemory.ops.versions`); decisions record the version
      they were made under. :meth:`rollback` restores a version and reloads the learner.
    * Other keyword arguments go to the learner (for example ``exploration_rate``).
    """

    def __init__(
        self,
        name: str,
        model: Any,
        db: MemoryStore,
        reward_system: Any,
        sub_agents: Mapping[str, Any],
        rl_agent_type: str = "q_learning",
        *,
        seed: int | None = None,
        state_extractor: Any = None,
        features: Any = None,
        policy_update_every: int = 10,
        subagent_timeout: float | None = 30.0,
        reward_wait: float | None = None,
        default_reward: float | None = None,
        checkpoint_every: int | None = None,
        **learner_options: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.rl_agent_type = check_rl_agent_type(rl_agent_type)
        self.sub_agents = check_sub_agents(sub_agents)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        if isinstance(policy_update_every, bool) or not isinstance(policy_update_every, int):
            raise TypeError("policy_update_every must be an int")
        if policy_update_every < 1:
            raise ValueError(f"policy_update_every must be >= 1, got {policy_update_every}")
        self.subagent_timeout = _optional_seconds(
            subagent_timeout, "subagent_timeout", positive=True
        )
        self.reward_wait = _optional_seconds(reward_wait, "reward_wait", positive=False)
        self.default_reward = (
            None if default_reward is None else check_finite(default_reward, "default_reward")
        )
        self.name = name
        self.model = model
        self.db = db
        self.reward_system = reward_system
        self.seed = seed
        self.policy_update_every = policy_update_every
        if state_extractor is None:
            from rlmemory.features import make_state_extractor

            state_extractor = make_state_extractor(model)
        self.state_extractor = state_extractor
        if features is not None and not callable(features):
            raise TypeError(
                f"features must be a featuriser (text -> vector), not {type(features).__name__}"
            )
        if features is None and self.rl_agent_type == "squarecb":
            # SquareCB is the learner for hashed text; the extractor's 16 numbers waste it.
            from rlmemory.features.text import TextFeaturizer

            features = TextFeaturizer()
        self.featurizer = features
        self.rl_agent = self._build_learner(learner_options)
        self._auto_checkpoint = None
        if checkpoint_every is not None:
            from rlmemory.ops.versions import AutoCheckpoint

            self._auto_checkpoint = AutoCheckpoint(db, name, checkpoint_every)
        self._updates_in_unit = 0
        self._unit_depth = 0
        self._entropy = seed if seed is not None else _fresh_entropy()
        self._next_decision_index = db.count_agent_decisions(name)
        self._index_needs_recount = False
        self._in_flight = 0
        self._pending: list[tuple[float, int]] = []
        if self.reward_wait is not None:
            self._load_pending_decisions()

    # ------------------------------------------------------------------ set-up
    def _build_learner(self, options: dict[str, Any]) -> Any:
        module_name, class_name = LEARNER_TYPES[self.rl_agent_type]
        learner_class = getattr(importlib.import_module(module_name), class_name)
        actions = list(self.sub_agents)
        options.setdefault("seed", self.seed)
        if self.rl_agent_type == "q_learning":
            return learner_class(
                self.name, self.model, self.db, self.reward_system, self.state_extractor,
                actions, **options,
            )  # fmt: skip
        if self.rl_agent_type == "policy_gradient":
            options.setdefault("policy_update_every", self.policy_update_every)
            return learner_class(
                self.name, self.model, self.db, self.reward_system, self.state_extractor,
                actions, **options,
            )  # fmt: skip
        return learner_class(self.name, self.db, actions, **options)

    def _load_pending_decisions(self) -> None:
        for decision in self.db.iter_agent_decisions(self.name):
            reward = decision["reward"]
            if isinstance(reward, dict) and reward.get("status") == "pending":
                heapq.heappush(self._pending, (float(reward["deadline"]), decision["id"]))

    def add_sub_agent(self, name: str, agent: Any) -> None:
        """Add a sub-agent as a new action; what was learned for the others is kept."""
        check_sub_agent(name, agent)
        if name in self.sub_agents:
            raise ValueError(f"sub-agent {name!r} already exists")
        self.rl_agent.add_action(name)
        self.sub_agents[name] = agent

    # --------------------------------------------------------------- requests
    async def process_request(
        self,
        request: str,
        history: Sequence[Any] | None = None,
        features: Sequence[float] | np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Route ``request`` to a sub-agent, reward the outcome, learn, and store it all.

        Returns the sub-agent's result (``success``, ``response``, ``error`` …) plus
        ``selected_agent``, ``reward`` (None while pending), ``reward_status``,
        ``performance_metrics``, ``propensity``, ``state``, ``decision_id`` and
        ``interaction_id``. ``features``, when given, is used as the context vector
        instead of the extractor's (the state key still comes from the extractor).
        If storing fails, nothing is stored, the learner is reloaded from the store,
        and the error is raised.
        """
        check_interaction_text(request, "request")  # before anything is written or learned
        given_features = None if features is None else _check_features(features)
        self.apply_expired_rewards()
        observation = await self._observe(request, history, given_features)
        choice = self._choose(observation)
        try:
            outcome = await run_sub_agent(
                self.sub_agents[choice.action], request, self.db, self.subagent_timeout
            )
            return self._record(request, observation, choice, outcome)
        except BaseException:
            self._index_needs_recount = True
            raise
        finally:
            self._in_flight -= 1

    async def _observe(
        self, request: str, history: Sequence[Any] | None, features: np.ndarray | None
    ) -> Observation:
        extractor = self.state_extractor
        observation: Observation
        if hasattr(extractor, "aextract"):
            observation = await extractor.aextract(request, history)
        else:
            observation = extractor.extract(request, history)
        if features is None and self.featurizer is not None:
            features = await self._featurize(request)
        if features is not None:
            observation = Observation(state=observation.state, features=features)
        return observation

    async def _featurize(self, request: str) -> Any:
        """The featuriser's vector of ``request``: sparse if the learner takes it."""
        featurizer = self.featurizer
        if getattr(self.rl_agent, "accepts_sparse", False) and hasattr(featurizer, "sparse"):
            return featurizer.sparse(request)
        if hasattr(featurizer, "acall"):
            return _check_features(await featurizer.acall(request))
        return _check_features(featurizer(request))

    def _observation_of(self, decision: Row) -> Observation:
        """What the learner saw for a stored decision (sparse vectors are re-computed)."""
        observation = _observation_of(decision)
        if observation.features.size or self.featurizer is None:
            return observation
        reward = decision["reward"]
        interaction_id = reward.get("interaction_id") if isinstance(reward, dict) else None
        if interaction_id is None:
            return observation
        request = self.db.get_agent_interaction(interaction_id)["request"]
        if getattr(self.rl_agent, "accepts_sparse", False) and hasattr(self.featurizer, "sparse"):
            vector = self.featurizer.sparse(request)
        else:
            vector = _check_features(self.featurizer(request))
        return Observation(state=observation.state, features=vector)

    def _choose(self, observation: Observation) -> Choice:
        # No await between taking the index and choosing: concurrent requests get
        # distinct, consecutive indices in the order they reach this point.
        if self._index_needs_recount and self._in_flight == 0:
            self._next_decision_index = self.db.count_agent_decisions(self.name)
            self._index_needs_recount = False
        rng = np.random.default_rng([self._entropy, self._next_decision_index])
        choice: Choice = self.rl_agent.choose(observation, rng)
        if choice.action not in self.sub_agents:
            raise RuntimeError(
                f"learner {type(self.rl_agent).__name__} chose {choice.action!r}, "
                f"which is not a sub-agent ({', '.join(self.sub_agents)})"
            )
        self._next_decision_index += 1
        self._in_flight += 1
        return choice

    def _record(
        self, request: str, observation: Observation, choice: Choice, outcome: SubAgentOutcome
    ) -> dict[str, Any]:
        metrics = {
            "success_rate": 1.0 if outcome.success else 0.0,
            "response_time": outcome.response_time,
            "tool_usage": outcome.tool_usage,
        }
        cost_metrics = getattr(self.reward_system, "cost_metrics", None)
        if cost_metrics is not None:
            # Stored with the decision, so a reward recomputed from feedback later
            # charges the same cost.
            metrics.update(cost_metrics(choice.action, outcome.result))
        outcome_reward, components = self.reward_system.compute_reward(None, metrics)
        now = time.time()
        if self.reward_wait is None:
            reward_json: dict[str, Any] = {
                "status": "observed",
                "value": outcome_reward,
                "source": "outcome",
                "performance_metrics": metrics,
            }
        else:
            reward_json = {
                "status": "pending",
                "deadline": now + self.reward_wait,
                "outcome_reward": outcome_reward,
                "performance_metrics": metrics,
            }
        response = outcome.result["response"]
        with self._unit_of_work():
            decision_id = self.db.save_agent_decision(
                self.name,
                observation.state,
                choice.action,
                choice.scores,
                reward_json,
                propensity=choice.propensity,
                features=_storable(observation.features),
            )
            interaction_id = self.db.save_agent_interaction(
                self.name, request, response, None, decision_id
            )
            reward_json["interaction_id"] = interaction_id
            self.db.set_decision_reward(decision_id, reward_json)
            if self.reward_wait is None:
                self.db.save_agent_reward(
                    self.name, outcome_reward, {**components, "source": "outcome"}, decision_id
                )
                self._learn(observation, choice.action, outcome_reward)
        if self.reward_wait is not None:
            heapq.heappush(self._pending, (reward_json["deadline"], decision_id))
        return {
            **outcome.result,
            "selected_agent": choice.action,
            "reward": outcome_reward if self.reward_wait is None else None,
            "reward_status": reward_json["status"],
            "performance_metrics": metrics,
            "propensity": choice.propensity,
            "state": observation.state,
            "decision_id": decision_id,
            "interaction_id": interaction_id,
        }

    # ---------------------------------------------------------------- feedback
    async def update_from_feedback(
        self, request: str, response: str, feedback: Any, decision_id: int | None = None
    ) -> dict[str, Any]:
        """Credit ``feedback`` to the action taken in the decision it is about.

        The decision is ``decision_id``, or the one of the newest stored interaction
        with exactly this ``request`` and ``response``. The feedback is stored on the
        interaction (marked learned), the reward is recomputed from it and the
        decision's stored performance metrics, stored, and learned — unless the
        decision's default reward was already learned (then it is stored only).
        An unknown decision or interaction is a ``LookupError`` and nothing is stored.
        Returns ``decision_id``, ``selected_agent``, ``reward`` and ``learned``.
        """
        check_interaction_text(request, "request")
        check_interaction_text(response, "response")
        feedback_text = check_interaction_text(_feedback_text(feedback), "feedback")
        assert feedback_text is not None
        if decision_id is None:
            interaction = self.db.find_agent_interaction(self.name, request, response)
            if interaction is None:
                raise LookupError(
                    f"agent {self.name!r} has no stored interaction with this request and "
                    f"response: {request[:60]!r} -> {response[:60]!r}"
                )
            if interaction["decision_id"] is None:
                raise LookupError(
                    f"interaction {interaction['id']} of agent {self.name!r} has no decision "
                    "to credit"
                )
            decision = self._own_decision(interaction["decision_id"])
            interaction_id: int | None = interaction["id"]
        else:
            decision = self._own_decision(decision_id)
            interaction_id = self._interaction_of(decision, request, response)
        credited = self._credit(
            decision,
            feedback,
            source="feedback",
            feedback_text=feedback_text,
            interaction_id=interaction_id,
            new_interaction=(request, response),
        )
        assert credited is not None  # only a batch claim can come back empty
        reward, learned = credited
        return {
            "decision_id": decision["id"],
            "selected_agent": decision["selected_action"],
            "reward": reward,
            "learned": learned,
        }

    async def reward(self, decision_id: int, value: float) -> dict[str, Any]:
        """Give decision ``decision_id`` its reward ``value`` (a finite number).

        Learned unless the decision's default reward was already applied; stored in
        any case. Returns ``decision_id``, ``selected_agent``, ``reward``, ``learned``.
        """
        value = check_finite(value, "value")
        decision = self._own_decision(decision_id)
        with self._unit_of_work():
            self.db.save_agent_reward(self.name, value, {"source": "explicit"}, decision["id"])
            learned = self._apply_reward(decision["id"], value, source="explicit")
        return {
            "decision_id": decision["id"],
            "selected_agent": decision["selected_action"],
            "reward": value,
            "learned": learned,
        }

    async def learn_from_batch(self, batch_size: int = 10) -> dict[str, Any]:
        """Learn from up to ``batch_size`` stored interactions with feedback not yet learned.

        Finds feedback however it was written (this API, another process, plain SQL
        into ``agent_interactions.feedback``), oldest first, and learns each exactly
        once, also across restarts. Interactions without a stored decision, and
        feedback the reward system cannot score (a custom reward system may refuse some), cannot be
        credited: they are marked learned, logged, and counted as skipped. Feedback on a
        decision whose sub-agent was since removed (retired) is stored as a reward and
        marked learned but teaches nothing; it is counted as skipped and in
        ``interactions_retired``, and never blocks the feedback after it.
        Returns ``{"status": "success", "interactions_processed": n,
        "interactions_skipped": k, "interactions_retired": r}``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        processed = skipped = retired = 0
        for interaction in self.db.get_unlearned_feedback(self.name, batch_size):
            decision = self._decision_or_none(interaction["decision_id"])
            if decision is not None and not self._scorable(decision, interaction):
                decision = None
            if decision is None:
                with self._unit_of_work():
                    self.db.mark_feedback_learned([interaction["id"]])
                skipped += 1
                continue
            credited = self._credit(
                decision,
                interaction["feedback"],
                source="feedback",
                feedback_text=None,
                interaction_id=interaction["id"],
                unlearned_feedback=interaction["feedback"],
            )
            if credited is None:
                continue  # another process learned it first
            if decision["selected_action"] in self.rl_agent.actions:
                processed += 1
            else:
                retired += 1
                skipped += 1
        return {
            "status": "success",
            "interactions_processed": processed,
            "interactions_skipped": skipped,
            "interactions_retired": retired,
        }

    def apply_expired_rewards(self, now: float | None = None) -> int:
        """Learn the default reward of every pending decision whose wait window has passed.

        ``now`` (seconds since the epoch) defaults to the current time. Called at the
        start of every :meth:`process_request`; returns how many decisions it defaulted.
        Only decisions this object stored or found pending when it was created are
        tracked.
        """
        if self.reward_wait is None or not self._pending:
            return 0
        now = time.time() if now is None else check_finite(now, "now")
        defaulted = 0
        while self._pending and self._pending[0][0] <= now:
            deadline, decision_id = heapq.heappop(self._pending)
            try:
                with self._unit_of_work():
                    # Read under the learner's lock: another process may have rewarded it.
                    decision = self._decision_or_none(decision_id)
                    if decision is None or not _is_pending(decision["reward"]):
                        continue
                    value = self.default_reward
                    if value is None:
                        value = decision["reward"]["outcome_reward"]
                    self.db.save_agent_reward(self.name, value, {"source": "default"}, decision_id)
                    self._apply_reward(decision_id, value, source="default", now=now)
            except BaseException:
                heapq.heappush(self._pending, (deadline, decision_id))
                raise
            defaulted += 1
        return defaulted

    # ----------------------------------------------------------------- helpers
    def _own_decision(self, decision_id: object) -> Row:
        if isinstance(decision_id, bool) or not isinstance(decision_id, int):
            raise TypeError(f"decision_id must be an int, not {type(decision_id).__name__}")
        decision = self.db.get_agent_decision(decision_id)
        if decision["agent_name"] != self.name:
            raise UnknownDecisionError(decision_id)
        return decision

    def _decision_or_none(self, decision_id: int | None) -> Row | None:
        if decision_id is None:
            return None
        try:
            return self._own_decision(decision_id)
        except LookupError:
            return None

    def _interaction_of(self, decision: Row, request: str, response: str) -> int | None:
        reward = decision["reward"]
        if isinstance(reward, dict) and isinstance(reward.get("interaction_id"), int):
            return int(reward["interaction_id"])
        interaction = self.db.find_agent_interaction(self.name, request, response)
        if interaction is not None and interaction["decision_id"] == decision["id"]:
            return int(interaction["id"])
        return None

    def _scorable(self, decision: Row, interaction: Row) -> bool:
        """Whether the reward system can score this stored feedback (logged if not)."""
        try:
            self.reward_system.compute_reward(interaction["feedback"], _metrics_of(decision))
        except (ValueError, TypeError) as error:
            logger.warning(
                "agent %r: feedback on interaction %s cannot be scored and is skipped: %s",
                self.name,
                interaction["id"],
                error,
            )
            return False
        return True

    def _credit(
        self,
        decision: Row,
        feedback: Any,
        *,
        source: str,
        feedback_text: str | None,
        interaction_id: int | None,
        new_interaction: tuple[str, str] | None = None,
        unlearned_feedback: str | None = None,
    ) -> tuple[float, bool] | None:
        """Store and learn the reward of ``feedback`` for ``decision``.

        With ``unlearned_feedback``, the interaction is first claimed: if, inside the
        transaction, it is already learned or its feedback changed (another process
        got there first), nothing is done and None is returned.
        """
        value, components = self.reward_system.compute_reward(feedback, _metrics_of(decision))
        with self._unit_of_work():
            if unlearned_feedback is not None and interaction_id is not None:
                current = self.db.get_agent_interaction(interaction_id)
                if current["feedback_learned"] or current["feedback"] != unlearned_feedback:
                    return None
            if interaction_id is None and new_interaction is not None:
                request, response = new_interaction
                interaction_id = self.db.save_agent_interaction(
                    self.name, request, response, feedback_text, decision["id"]
                )
            elif feedback_text is not None and interaction_id is not None:
                self.db.set_interaction_feedback(interaction_id, feedback_text)
            self.db.save_agent_reward(
                self.name, value, {**components, "source": source}, decision["id"]
            )
            learned = self._apply_reward(decision["id"], value, source=source)
            if interaction_id is not None:
                self.db.mark_feedback_learned([interaction_id])
            if learned and self.rl_agent_type == "policy_gradient":
                self.rl_agent.update_policy()
        return value, learned

    def _apply_reward(
        self, decision_id: int, value: float, *, source: str, now: float | None = None
    ) -> bool:
        """Learn ``value`` for the decision unless its default was applied; update its JSON.

        Called inside a unit of work; the decision is read there, so its reward
        status is the one committed by whichever process wrote last.
        """
        decision = self.db.get_agent_decision(decision_id)
        stored = decision["reward"]
        reward_json = dict(stored) if isinstance(stored, dict) else {"initial": stored}
        now = time.time() if now is None else now
        action = decision["selected_action"]
        if reward_json.get("status") == "defaulted":
            late = list(reward_json.get("late_rewards", []))
            late.append({"value": value, "source": source, "timestamp": now})
            reward_json["late_rewards"] = late
            learned = False
        elif action not in self.rl_agent.actions:
            # A retired sub-agent: the reward is recorded, there is nothing to teach.
            status = "defaulted" if source == "default" else "observed"
            reward_json.update(status=status, value=value, source=source, rewarded_at=now)
            reward_json["not_learned"] = f"sub-agent {action!r} is no longer an action"
            logger.warning(
                "agent %r: decision %s chose %r, which is no longer a sub-agent; its %s "
                "reward is stored but not learned",
                self.name,
                decision["id"],
                action,
                source,
            )
            learned = False
        else:
            self._learn(self._observation_of(decision), decision["selected_action"], value)
            status = "defaulted" if source == "default" else "observed"
            reward_json.update(status=status, value=value, source=source, rewarded_at=now)
            learned = True
        self.db.set_decision_reward(decision["id"], reward_json)
        return learned

    @contextlib.contextmanager
    def _unit_of_work(self) -> Iterator[None]:
        """A store transaction, holding this learner's lock, that reloads the learner
        when it fails.

        The lock (:meth:`MemoryStore.lock_learner`) is taken first, before anything is
        read or written. Every "already learned?" check (feedback claimed, decision
        still pending, default already applied) reads after it: on PostgreSQL (READ
        COMMITTED) each statement then sees what the previous holder committed, so two
        processes cannot both find a reward unlearned and both learn it. Taking it
        first also gives every unit one lock order (learner lock, then rows), so two
        units never deadlock. SQLite's ``BEGIN IMMEDIATE`` and the file store's folder
        lock already exclude other writers.

        The learner updates its in-memory parameters as it writes them; if the
        transaction rolls back (in the block or at commit), those parameters no
        longer match the store, so they are re-read from it.
        """
        self._unit_depth += 1
        try:
            with self.db.transaction():
                if self._unit_depth == 1:
                    self.db.lock_learner(self.name)
                yield
        except BaseException:
            self._updates_in_unit = 0
            self.rl_agent.reload()
            raise
        finally:
            self._unit_depth -= 1
        if self._unit_depth == 0 and self._updates_in_unit:
            # Checkpoint only what is committed: after the outermost unit of work.
            updates, self._updates_in_unit = self._updates_in_unit, 0
            if self._auto_checkpoint is not None:
                self._auto_checkpoint.maybe_checkpoint(updates)

    def _learn(self, observation: Any, action: str, reward: float) -> None:
        """One learning update of the taken action, counted for automatic checkpoints."""
        self.rl_agent.learn(observation, action, reward)
        self._updates_in_unit += 1

    def rollback(self, version: int) -> Any:
        """Restore the learned state of ``version`` and reload the learner from it.

        The current state is kept as a new version first and the restored one is added
        as another (:func:`rlmemory.ops.versions.rollback`): history is never rewritten.
        """
        from rlmemory.ops.versions import rollback

        try:
            return rollback(self.db, self.name, version)
        finally:
            self.rl_agent.reload()


async def create_rl_agent_architecture(
    model: Any,
    db: MemoryStore,
    sub_agents: Mapping[str, Any],
    rl_agent_type: str = "q_learning",
    seed: int | None = None,
    **options: Any,
) -> RLCoordinatorAgent:
    """Build a coordinator named ``options.pop("name", "rl_coordinator")`` over ``sub_agents``.

    A :class:`~rlmemory.rewards.RewardSystem` on ``db`` is made unless
    ``reward_system=`` is given (``reward_weights=`` sets its weights, ``cost_weight=``
    and ``prices=`` its cost component, see :mod:`rlmemory.rewards`). Other options
    go to :class:`RLCoordinatorAgent` and, through it, to the learner. An unknown
    ``rl_agent_type`` or no sub-agents is a ``ValueError`` saying what is valid.
    """
    check_rl_agent_type(rl_agent_type)
    check_sub_agents(sub_agents)
    name = options.pop("name", DEFAULT_COORDINATOR_NAME)
    reward_system = options.pop("reward_system", None)
    weights = options.pop("reward_weights", None)
    cost_options = {key: options.pop(key) for key in ("cost_weight", "prices") if key in options}
    if reward_system is None:
        from rlmemory.rewards import RewardSystem

        reward_system = RewardSystem(db, weights, **cost_options)
    elif cost_options:
        raise ValueError("cost_weight and prices configure the RewardSystem; set them on it")
    return RLCoordinatorAgent(
        name, model, db, reward_system, sub_agents, rl_agent_type, seed=seed, **options
    )


def _observation_of(decision: Row) -> Observation:
    features = decision.get("features")
    vector = np.asarray(features if features is not None else [], dtype=np.float64)
    return Observation(state=decision["state"], features=vector)


def _metrics_of(decision: Row) -> dict[str, Any]:
    stored = decision["reward"]
    metrics = stored.get("performance_metrics") if isinstance(stored, dict) else None
    return dict(metrics) if isinstance(metrics, Mapping) else {}


def _is_pending(reward: Any) -> bool:
    return isinstance(reward, dict) and reward.get("status") == "pending"


def _storable(features: Any) -> np.ndarray | None:
    """The vector stored with a decision: dense ones, sparse ones not at all."""
    return features if isinstance(features, np.ndarray) else None


def _fresh_entropy() -> int:
    """128 bits of fresh entropy, as ``numpy.random.SeedSequence`` draws them."""
    entropy = np.random.SeedSequence().entropy
    if not isinstance(entropy, int):  # pragma: no cover - SeedSequence() draws an int
        raise TypeError(f"SeedSequence drew {type(entropy).__name__} entropy, not an int")
    return entropy


def _check_features(features: Any) -> np.ndarray:
    try:
        vector = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("features must be a sequence of numbers") from None
    if vector.ndim != 1 or vector.size == 0:
        raise ValueError(f"features must be a non-empty 1-D vector, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("features contains NaN or infinity")
    return vector


def _feedback_text(feedback: Any) -> str:
    """How ``feedback`` is written into the interaction's ``feedback`` column."""
    if isinstance(feedback, str):
        return feedback
    if isinstance(feedback, Mapping):
        return json.dumps(dict(feedback), ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(feedback, bool) or not isinstance(feedback, int | float):
        raise TypeError(
            f"feedback must be a text, a 1-5 rating or a mapping, not {type(feedback).__name__}"
        )
    return str(check_finite(feedback, "feedback"))


def _optional_seconds(value: Any, field: str, *, positive: bool) -> float | None:
    if value is None:
        return None
    seconds = check_finite(value, field)
    if seconds < 0 or (positive and seconds == 0):
        raise ValueError(f"{field} must be {'> 0' if positive else '>= 0'} seconds, got {seconds}")
    return seconds
