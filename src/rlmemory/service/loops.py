"""Learning loops: a named learner with settings, ranking and learning from rewards in the store.

A :class:`Loop` is what the decision service serves: ``rank`` turns Personalizer-shaped
context features and candidate actions into a decision (stored, with the exact
probabilities it had), ``reward`` and ``activate`` feed it back, and
``apply_expired_rewards`` closes reward windows. Loop ``X`` keeps its decisions,
rewards and learned values under agent name ``X`` — the library, the CLI (``stats``,
``evaluate``, ``versions`` …) and the service see one history — and its settings in
the store's ``loops`` settings, so every worker process and every restart agree.

Each decision's ``reward`` JSON follows the coordinator's states (``pending`` →
``observed`` | ``defaulted``, see :mod:`rlmemory.coordinator`) and adds what a service
needs: ``event_id``, ``deadline`` (None while a deferred event is not activated),
``received`` (rewards within the window, for ``sum``), ``ranking`` (the answer given,
for idempotent repeats), ``late_rewards`` and, in apprentice mode, ``baseline``,
``learner_choice`` and ``learner_probabilities``. One reward row is stored per learned
decision (its learned value); rewards that arrive late are kept in ``late_rewards``.

Exactly-once across processes: every change of a decision's reward state happens in
one store transaction that first takes :meth:`MemoryStore.lock_learner` on the loop
and then re-reads the decision, so two workers cannot both learn it; the learner's
update inside builds on the statistics stored by any worker (it re-reads them).

>>> import os, tempfile
>>> from rlmemory.store import open_store
>>> store = open_store(os.path.join(tempfile.mkdtemp(), "memory.db"))
>>> loops = LoopRegistry(store)
>>> loop = loops.get("news", create=True)
>>> answer = loop.rank([{"user": {"country": "fr"}}], [{"id": "sports"}, {"id": "politics"}],
...                    event_id="e1")
>>> sorted(action for action, _ in answer.ranking), sum(p for _, p in answer.ranking)
(['politics', 'sports'], 1.0)
>>> loop.reward("e1", 1.0).learned
True
>>> loop.rank([{"user": {"country": "fr"}}], [{"id": "sports"}, {"id": "politics"}],
...           event_id="e1") == answer
True
>>> store.close()
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import importlib
import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlmemory.errors import UnknownDecisionError
from rlmemory.features import DictFeaturizer, stable_hash
from rlmemory.learners.base import Observation
from rlmemory.service.settings import (
    LOOP_LEARNERS,
    LoopSettings,
    SettingsError,
    check_loop_name,
)
from rlmemory.store.base import MemoryStore, Row

LOOPS_NAMESPACE = "loops"
#: Event ids of loop ``X`` live in settings namespace ``events/X`` (event id -> decision id).
EVENTS_NAMESPACE_PREFIX = "events/"
#: The decision row's state column for service decisions (learners use the features).
RANK_STATE = "rank"
MAX_EVENT_ID_LENGTH = 200
MAX_ACTIONS = 1000


class UnknownLoopError(LookupError):
    """No loop of that name exists."""


class UnknownEventError(LookupError):
    """No event of that id exists in the loop."""


class RequestError(ValueError):
    """A request value is not acceptable; ``field`` names it as the request spells it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class RankResult:
    """The answer to a rank request, in Personalizer's shape (see :meth:`to_api`)."""

    event_id: str
    ranking: tuple[tuple[str, float], ...]
    reward_action_id: str
    decision_id: int

    def to_api(self) -> dict[str, Any]:
        return {
            "ranking": [{"id": action, "probability": p} for action, p in self.ranking],
            "eventId": self.event_id,
            "rewardActionId": self.reward_action_id,
        }


@dataclass(frozen=True)
class RewardOutcome:
    """What a reward did: whether it was learned now, and the decision's status after it."""

    event_id: str
    decision_id: int
    learned: bool
    status: str


def _event_namespace(loop: str) -> str:
    return EVENTS_NAMESPACE_PREFIX + loop


def check_event_id(event_id: object) -> str:
    """Return ``event_id`` if it is a usable event id (1-200 characters, no NUL)."""
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
        or "\x00" in event_id
    ):
        raise RequestError("eventId", f"must be a string of 1-{MAX_EVENT_ID_LENGTH} characters")
    return event_id


def check_reward_value(value: object) -> float:
    """Return ``value`` as a float if it is a finite number, else :class:`RequestError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError("value", f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise RequestError("value", f"must be a finite number, got {value!r}")
    return number


def _candidate_ids(actions: object, excluded: object) -> tuple[list[str], list[str]]:
    """(all action ids in request order, the ids not excluded); RequestError when bad."""
    if not isinstance(actions, Sequence) or isinstance(actions, str) or not actions:
        raise RequestError("actions", "must be a non-empty list of {id, features}")
    if len(actions) > MAX_ACTIONS:
        raise RequestError("actions", f"at most {MAX_ACTIONS} actions per request")
    ids: list[str] = []
    for position, action in enumerate(actions):
        action_id = action.get("id") if isinstance(action, Mapping) else None
        if not isinstance(action_id, str) or not action_id or "/" in action_id:
            raise RequestError(f"actions[{position}].id", "must be a non-empty string without '/'")
        ids.append(action_id)
    if len(set(ids)) != len(ids):
        raise RequestError("actions", "action ids must be unique")
    excluded_ids = [] if excluded is None else excluded
    if not isinstance(excluded_ids, Sequence) or isinstance(excluded_ids, str):
        raise RequestError("excludedActions", "must be a list of action ids")
    unknown = [action for action in excluded_ids if action not in ids]
    if unknown:
        raise RequestError("excludedActions", f"{unknown[0]!r} is not among the actions")
    candidates = [action for action in ids if action not in set(excluded_ids)]
    if not candidates:
        raise RequestError("excludedActions", "every action is excluded; nothing can be ranked")
    return ids, candidates


def learned_actions(store: MemoryStore, loop: str) -> list[str]:
    """The actions loop ``loop`` has learned about (in its snapshot or its step log)."""
    from rlmemory.learners._ridge_log import SNAPSHOT_MARKER_KEY

    actions = {key.rpartition("/")[0] for key in store.get_arrays(loop) if key.endswith("/ridge")}
    actions |= {step.key for step in store.get_learner_steps(loop)}
    actions.discard(SNAPSHOT_MARKER_KEY)
    return sorted(actions)


def check_rank_request(
    context_features: Any,
    actions: Any,
    excluded_actions: Any,
    event_id: Any,
    defer_activation: Any,
) -> tuple[list[str], list[str]]:
    """Check a rank request before anything is stored; return (all ids, candidate ids).

    Every problem is a :class:`RequestError` naming the request field.
    """
    ids, candidates = _candidate_ids(actions, excluded_actions)
    if event_id is not None:
        check_event_id(event_id)
    if not isinstance(defer_activation, bool):
        raise RequestError("deferActivation", "must be true or false")
    probe = DictFeaturizer(2)
    try:
        list(probe.leaves(context_features))
    except ValueError as error:
        raise RequestError("contextFeatures", str(error)) from None
    for position, action in enumerate(actions):
        features = action.get("features")
        if features is not None:
            try:
                list(probe.leaves(features))
            except ValueError as error:
                raise RequestError(f"actions[{position}].features", str(error)) from None
    return ids, candidates


def _is_pending(reward: Any) -> bool:
    return isinstance(reward, dict) and reward.get("status") == "pending"


class Loop:
    """One learning loop in one process: ranks, learns, and reports (see the module).

    Objects are made by :class:`LoopRegistry`; methods are thread-safe.
    ``refresh_seconds`` bounds how old the learned statistics used for ranking may be
    when other processes learn (this process's own learning is seen at once).
    """

    def __init__(
        self,
        store: MemoryStore,
        name: str,
        settings: LoopSettings,
        *,
        refresh_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.name = check_loop_name(name)
        self.settings = settings
        self.refresh_seconds = refresh_seconds
        self.featurizer = DictFeaturizer(settings.dimension)
        self._lock = threading.RLock()
        # Learners by candidate action set: (learner, generation, loaded at).
        self._learners: dict[tuple[str, ...], list[Any]] = {}
        self._generation = 0
        self._pending: list[tuple[float, int]] = []
        self._scanned_pending = False

    # ---------------------------------------------------------------- learners
    def _learner_class(self) -> Any:
        module_name, class_name = LOOP_LEARNERS[self.settings.learner]
        return getattr(importlib.import_module(module_name), class_name)

    def build_learner(self, actions: Sequence[str]) -> Any:
        """A learner of this loop's kind over ``actions``, loaded from the store."""
        return self._learner_class()(
            self.name,
            self.store,
            list(actions),
            dimension=self.settings.dimension,
            seed=None,
            **self.settings.learner_arguments(),
        )

    def _learner_for(self, actions: Sequence[str]) -> Any:
        key = tuple(actions)
        entry = self._learners.get(key)
        now = time.monotonic()
        if entry is None:
            if len(self._learners) >= 64:
                self._learners.clear()
            entry = self._learners[key] = [self.build_learner(actions), self._generation, now]
        elif entry[1] != self._generation or now - entry[2] > self.refresh_seconds:
            entry[0].reload()
            entry[1], entry[2] = self._generation, now
        return entry[0]

    def _forget_learners(self) -> None:
        self._learners.clear()

    # -------------------------------------------------------------------- rank
    def rank(
        self,
        context_features: Any,
        actions: Sequence[Mapping[str, Any]],
        excluded_actions: Sequence[str] | None = None,
        event_id: str | None = None,
        defer_activation: bool = False,
    ) -> RankResult:
        """Rank ``actions`` for the context and store the decision (see the module).

        A repeated ``event_id`` returns the stored decision unchanged. Excluded actions
        get probability 0 and are never chosen.
        """
        request = (context_features, actions, excluded_actions, event_id, defer_activation)
        return self._rank_checked(*request, *check_rank_request(*request))

    def _rank_checked(
        self,
        context_features: Any,
        actions: Sequence[Mapping[str, Any]],
        excluded_actions: Sequence[str] | None,
        event_id: str | None,
        defer_activation: bool,
        ids: list[str],
        candidates: list[str],
    ) -> RankResult:
        """:meth:`rank` once :func:`check_rank_request` accepted the request."""
        if event_id is not None:
            known = self._known_event(event_id)
            if known is not None:
                return known
        vector = self.featurizer(context_features)
        with self._lock:
            self._apply_expired_locked(time.time())
            given_event = event_id is not None
            event_id = uuid.uuid4().hex if event_id is None else event_id
            rng = np.random.default_rng([self.settings.seed, stable_hash(event_id)])
            learner = self._learner_for(candidates)
            choice = learner.choose(Observation(RANK_STATE, vector), rng)
            probabilities = learner.action_probabilities(vector)
            reward_json = self._pending_json(event_id, defer_activation, candidates)
            if self.settings.learning_mode == "apprentice":
                chosen, propensity, probabilities = self._apprentice_choice(
                    candidates, choice.action, probabilities, rng
                )
                reward_json.update(
                    baseline=candidates[0],
                    learner_choice=choice.action,
                    learner_probabilities=learner.action_probabilities(vector),
                )
            else:
                chosen, propensity = choice.action, choice.propensity
            ranking = tuple((action, float(probabilities.get(action, 0.0))) for action in ids)
            reward_json["ranking"] = [list(pair) for pair in ranking]
            with self.store.transaction():
                if given_event:
                    # Serialise ranks carrying client event ids: a repeat is found, not doubled.
                    self.store.lock_learner(self.name)
                    known = self._known_event(event_id)
                    if known is not None:
                        return known
                decision_id = self.store.save_agent_decision(
                    self.name,
                    RANK_STATE,
                    chosen,
                    {action: p for action, p in ranking if action in candidates},
                    reward_json,
                    propensity=propensity,
                    features=vector,
                )
                self.store.save_setting(
                    _event_namespace(self.name), event_id, {"decision": decision_id}
                )
            if reward_json["deadline"] is not None:
                heapq.heappush(self._pending, (reward_json["deadline"], decision_id))
        return RankResult(event_id, ranking, chosen, decision_id)

    def _pending_json(self, event_id: str, deferred: bool, candidates: list[str]) -> dict[str, Any]:
        settings = self.settings
        return {
            "status": "pending",
            "event_id": event_id,
            "deadline": None if deferred else time.time() + settings.reward_wait,
            "deferred": deferred,
            "aggregation": settings.reward_aggregation,
            "default_reward": settings.default_reward,
            "mode": settings.learning_mode,
            "actions": candidates,
            "received": [],
        }

    def _apprentice_choice(
        self,
        candidates: list[str],
        learner_choice: str,
        learner_probabilities: Mapping[str, float],
        rng: np.random.Generator,
    ) -> tuple[str, float, dict[str, float]]:
        """Baseline (first candidate), or with ``apprentice_exploration`` the learner's pick."""
        share = self.settings.apprentice_exploration
        baseline = candidates[0]
        logging_policy = {
            action: share * float(learner_probabilities.get(action, 0.0))
            + (1.0 - share) * (action == baseline)
            for action in candidates
        }
        chosen = learner_choice if share > 0 and rng.random() < share else baseline
        return chosen, logging_policy[chosen], logging_policy

    def _known_event(self, event_id: str) -> RankResult | None:
        mapping = self.store.get_setting(_event_namespace(self.name), event_id)
        if mapping is None:
            return None
        decision = self.store.get_agent_decision(int(mapping["decision"]))
        stored = decision["reward"]
        ranking = tuple((str(a), float(p)) for a, p in stored.get("ranking", []))
        return RankResult(event_id, ranking, decision["selected_action"], decision["id"])

    def decision_of(self, event_id: str) -> Row:
        """The stored decision of ``event_id``; :class:`UnknownEventError` when none."""
        event_id = check_event_id(event_id)
        mapping = self.store.get_setting(_event_namespace(self.name), event_id)
        if mapping is None:
            raise UnknownEventError(f"loop {self.name!r} has no event {event_id!r}")
        try:
            return self.store.get_agent_decision(int(mapping["decision"]))
        except UnknownDecisionError:
            raise UnknownEventError(f"loop {self.name!r} has no event {event_id!r}") from None

    # ------------------------------------------------------------------ reward
    def reward(self, event_id: str, value: Any, action_id: str | None = None) -> RewardOutcome:
        """Give event ``event_id`` the reward ``value`` (see the module for windows).

        ``action_id``, when given, must be the action the event rewards; an excluded
        or unknown action is :class:`RequestError`.
        """
        value = check_reward_value(value)
        with self._lock:
            now = time.time()
            with self._unit_of_work():
                # Read the event once, under the loop's lock: the state it shows is the one
                # this transaction changes (a refusal below writes nothing).
                self.store.lock_learner(self.name)
                decision = self.decision_of(event_id)
                if action_id is not None and action_id != decision["selected_action"]:
                    self._refuse_action(decision, action_id)
                reward_json = dict(decision["reward"])
                learned = False
                if not _is_pending(reward_json):
                    late = list(reward_json.get("late_rewards", []))
                    late.append({"value": value, "timestamp": now})
                    reward_json["late_rewards"] = late
                else:
                    received = [*reward_json.get("received", []), value]
                    reward_json["received"] = received
                    active = not reward_json.get("deferred")
                    if active and reward_json.get("aggregation") == "earliest":
                        self._learn(decision, reward_json, received[0], "explicit", now)
                        learned = True
                self.store.set_decision_reward(decision["id"], reward_json)
            self._apply_expired_locked(now)
            return RewardOutcome(event_id, decision["id"], learned, reward_json["status"])

    def _refuse_action(self, decision: Row, action_id: str) -> None:
        reward_json = decision["reward"]
        ranked = [pair[0] for pair in reward_json.get("ranking", [])]
        if action_id not in ranked:
            raise RequestError("actionId", f"{action_id!r} was not among the event's actions")
        if action_id not in reward_json.get("actions", ranked):
            raise RequestError("actionId", f"{action_id!r} was excluded from this event")
        raise RequestError(
            "actionId",
            f"the event rewards the action it returned, {decision['selected_action']!r}, "
            f"not {action_id!r}",
        )

    def activate(self, event_id: str) -> bool:
        """Activate a deferred event: its reward window starts now. False if it was active."""
        with self._lock:
            decision = self.decision_of(event_id)
            now = time.time()
            with self._unit_of_work():
                self.store.lock_learner(self.name)
                decision = self.store.get_agent_decision(decision["id"])
                reward_json = dict(decision["reward"])
                if not (_is_pending(reward_json) and reward_json.get("deferred")):
                    return False
                reward_json["deferred"] = False
                reward_json["deadline"] = now + self.settings.reward_wait
                received = reward_json.get("received", [])
                if received and reward_json.get("aggregation") == "earliest":
                    self._learn(decision, reward_json, received[0], "explicit", now)
                self.store.set_decision_reward(decision["id"], reward_json)
            if _is_pending(reward_json):
                heapq.heappush(self._pending, (reward_json["deadline"], decision["id"]))
            return True

    def _learn(
        self, decision: Row, reward_json: dict[str, Any], value: float, source: str, now: float
    ) -> None:
        """Learn ``value`` for the decision's action and mark ``reward_json`` learned.

        Called inside a unit of work that holds the loop's lock (see the module).
        """
        candidates = reward_json.get("actions") or [decision["selected_action"]]
        learner = self._learner_for(candidates)
        features = np.asarray(decision["features"], dtype=np.float64)
        learner.update(features, decision["selected_action"], value)
        self._generation += 1
        entry = self._learners.get(tuple(candidates))
        if entry is not None:
            entry[1] = self._generation
        status = "defaulted" if source == "default" else "observed"
        reward_json.update(status=status, value=value, source=source, rewarded_at=now)
        self.store.save_agent_reward(self.name, value, {"source": source}, decision["id"])

    @contextlib.contextmanager
    def _unit_of_work(self) -> Iterator[None]:
        """A store transaction after which, if it fails, learners are re-read from the store
        (their memory may hold updates the store rolled back)."""
        try:
            with self.store.transaction():
                yield
        except BaseException:
            self._forget_learners()
            raise

    # ------------------------------------------------------- reward windows
    def apply_expired_rewards(self, now: float | None = None) -> int:
        """Close every reward window that has passed; return how many events were learned.

        ``earliest`` events with no reward and ``sum`` events learn their value
        (``defaultReward`` when nothing arrived). Events stored by other processes are
        found by one scan of the loop's decisions the first time this runs.
        """
        with self._lock:
            return self._apply_expired_locked(time.time() if now is None else now)

    def _apply_expired_locked(self, now: float) -> int:
        if not self._scanned_pending:
            self._scanned_pending = True
            for decision in self.store.iter_agent_decisions(self.name):
                reward = decision["reward"]
                if _is_pending(reward) and reward.get("deadline") is not None:
                    heapq.heappush(self._pending, (float(reward["deadline"]), decision["id"]))
        closed = 0
        while self._pending and self._pending[0][0] <= now:
            deadline, decision_id = heapq.heappop(self._pending)
            try:
                with self._unit_of_work():
                    self.store.lock_learner(self.name)
                    try:
                        decision = self.store.get_agent_decision(decision_id)
                    except UnknownDecisionError:
                        continue
                    reward_json = dict(decision["reward"])
                    if not _is_pending(reward_json) or reward_json.get("deadline") is None:
                        continue
                    if float(reward_json["deadline"]) > now:  # re-activated meanwhile
                        heapq.heappush(self._pending, (float(reward_json["deadline"]), decision_id))
                        continue
                    received = reward_json.get("received", [])
                    if received and reward_json.get("aggregation") == "sum":
                        value, source = float(sum(received)), "sum"
                    else:
                        value, source = float(reward_json.get("default_reward", 0.0)), "default"
                    self._learn(decision, reward_json, value, source, now)
                    self.store.set_decision_reward(decision_id, reward_json)
            except BaseException:
                heapq.heappush(self._pending, (deadline, decision_id))
                raise
            closed += 1
        return closed

    # ------------------------------------------------------------- reporting
    def stats(self) -> dict[str, Any]:
        """Settings and live figures: ranks, rewards, mean reward, pending events, version."""
        counts = self.store.agent_stats(self.name)
        versions = self.store.list_versions(self.name)
        return {
            "loop": self.name,
            "settings": self.settings.to_api(),
            "ranks": counts["decisions"],
            "rewards": counts["rewards"],
            "meanReward": counts["mean_reward"],
            "pendingEvents": max(0, counts["decisions"] - counts["rewards"]),
            "currentVersion": versions[-1]["version"] if versions else None,
        }


def apprentice_report(store: MemoryStore, loop: str, *, seed: int = 0) -> dict[str, Any]:
    """How the learner compares with the baseline on the loop's apprentice-mode events.

    ``agreement`` is the share of apprentice events where the learner's own choice was
    the baseline. ``estimate`` is the IPS estimate (with a 95 % bootstrap interval) of
    the mean reward of the learner minus that of the baseline, from the logged
    propensities: each rewarded event contributes ``r (pi_L(a) - [a = baseline]) / p``,
    where ``pi_L`` is the learner's probability of the action taken ``a`` (recorded at
    decision time, before the event was learned) and ``p`` the logged propensity.
    Under a pure baseline (``apprenticeExploration`` 0) the learner is credited only
    where it agrees, so the estimate cannot exceed 0; a small ``apprenticeExploration``
    lets the logs speak for the learner's other choices.
    """
    from rlmemory.offpolicy import LoggedDecisions, ips_estimate

    events = agreed = 0
    contributions: list[float] = []
    for decision in store.iter_agent_decisions(loop):
        reward = decision["reward"]
        if not isinstance(reward, dict) or reward.get("mode") != "apprentice":
            continue
        events += 1
        agreed += reward.get("learner_choice") == reward.get("baseline")
        if reward.get("status") not in ("observed", "defaulted"):
            continue
        action = decision["selected_action"]
        learner_probability = float(reward.get("learner_probabilities", {}).get(action, 0.0))
        baseline_indicator = 1.0 if action == reward.get("baseline") else 0.0
        propensity = float(decision["propensity"] or 1.0)
        contributions.append(
            float(reward["value"]) * (learner_probability - baseline_indicator) / propensity
        )
    report: dict[str, Any] = {
        "events": events,
        "rewardedEvents": len(contributions),
        "agreement": agreed / events if events else None,
        "estimate": None,
    }
    if contributions:
        n = len(contributions)
        rewards = np.asarray(contributions, dtype=np.float64)
        logged = LoggedDecisions(np.zeros((n, 1)), np.zeros(n), rewards, np.ones(n), ["x"])
        estimate = ips_estimate(logged, np.ones((n, 1)), seed=seed)
        report["estimate"] = {
            "learnerMinusBaseline": estimate.value,
            "low": estimate.ci_low,
            "high": estimate.ci_high,
            "confidence": estimate.confidence,
        }
    return report


class LoopRegistry:
    """The loops of one store, as one process sees them (settings re-read per request)."""

    def __init__(self, store: MemoryStore, *, refresh_seconds: float = 0.5) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._loops: dict[str, Loop] = {}
        self._lock = threading.Lock()

    def settings_of(self, name: str) -> LoopSettings | None:
        """The stored settings of loop ``name``, or None when it does not exist."""
        document = self.store.get_setting(LOOPS_NAMESPACE, check_loop_name(name))
        return None if document is None else LoopSettings.from_document(document)

    def get(self, name: str, *, create: bool = False) -> Loop:
        """Loop ``name`` with its current stored settings; created with defaults if asked."""
        settings = self.settings_of(name)
        if settings is None:
            if not create:
                raise UnknownLoopError(f"no loop named {name!r}")
            settings = self._create(name)
        with self._lock:
            loop = self._loops.get(name)
            if loop is None or loop.settings != settings:
                if loop is not None and loop.settings.dimension == settings.dimension:
                    loop.settings = settings
                    loop._forget_learners()
                else:
                    loop = self._loops[name] = Loop(
                        self.store, name, settings, refresh_seconds=self.refresh_seconds
                    )
            return loop

    def rank(
        self,
        name: str,
        context_features: Any,
        actions: Sequence[Mapping[str, Any]],
        excluded_actions: Sequence[str] | None = None,
        event_id: str | None = None,
        defer_activation: bool = False,
    ) -> RankResult:
        """Check the rank request, then rank on loop ``name`` (created with defaults if new:
        a request refused creates nothing). Arguments as :meth:`Loop.rank`."""
        request = (context_features, actions, excluded_actions, event_id, defer_activation)
        check_loop_name(name)
        checked = check_rank_request(*request)
        return self.get(name, create=True)._rank_checked(*request, *checked)

    def _create(self, name: str) -> LoopSettings:
        with self.store.transaction():
            self.store.lock_learner(name)
            document = self.store.get_setting(LOOPS_NAMESPACE, name)
            if document is not None:  # another process created it meanwhile
                return LoopSettings.from_document(document)
            settings = LoopSettings()
            self.store.save_setting(LOOPS_NAMESPACE, name, settings.to_document())
            return settings

    def put(self, name: str, settings: LoopSettings) -> Loop:
        """Store ``settings`` for loop ``name`` (created if new) after checking that its
        learned statistics can be used with them (else :class:`SettingsError`)."""
        check_loop_name(name)
        with self.store.transaction():
            candidate = Loop(self.store, name, settings)
            try:
                candidate.build_learner(learned_actions(self.store, name) or ["probe"])
            except (ValueError, TypeError) as error:
                field = "learnerOptions" if isinstance(error, TypeError) else "learner"
                raise SettingsError(field, str(error)) from None
            self.store.save_setting(LOOPS_NAMESPACE, name, settings.to_document())
        return self.get(name)

    def graduate(self, name: str) -> Loop:
        """Switch loop ``name`` from apprentice to online learning."""
        settings = self.settings_of(name)
        if settings is None:
            raise UnknownLoopError(f"no loop named {name!r}")
        return self.put(name, dataclasses.replace(settings, learning_mode="online"))

    def graduate_if_ready(self, name: str) -> bool:
        """Graduate an apprentice loop with ``auto_graduate`` once it has ``min_events``
        rewarded events and the lower bound of (learner - baseline) exceeds ``margin``."""
        settings = self.settings_of(name)
        rule = None if settings is None else settings.auto_graduate
        if settings is None or settings.learning_mode != "apprentice" or rule is None:
            return False
        report = apprentice_report(self.store, name)
        estimate = report["estimate"]
        if report["rewardedEvents"] < rule["min_events"] or estimate is None:
            return False
        if estimate["low"] <= rule["margin"]:
            return False
        self.graduate(name)
        return True

    def names(self) -> list[str]:
        """Every loop's name, sorted."""
        return list(self.store.list_settings(LOOPS_NAMESPACE))

    def delete(self, name: str) -> int | None:
        """Delete loop ``name``: its learned state is saved as a version first, then cleared
        with its settings and event ids (decisions, rewards and versions stay). Returns
        the version number holding what it had learned (None if it had learned nothing)."""
        from rlmemory.ops.versions import AgentState, apply_state, capture_state, checkpoint

        if self.settings_of(name) is None:
            raise UnknownLoopError(f"no loop named {name!r}")
        with self.store.transaction():
            version = None
            if not capture_state(self.store, name).is_empty:
                version = checkpoint(self.store, name, f"auto: before deleting loop {name}")
                apply_state(self.store, name, AgentState())
            for event_id in self.store.list_settings(_event_namespace(name)):
                self.store.delete_setting(_event_namespace(name), event_id)
            self.store.delete_setting(LOOPS_NAMESPACE, name)
        with self._lock:
            self._loops.pop(name, None)
        return version

    def apply_expired_rewards(self, now: float | None = None) -> int:
        """Close passed reward windows of every loop in the store."""
        closed = 0
        for name in self.names():
            try:
                loop = self.get(name)
            except UnknownLoopError:  # deleted meanwhile
                continue
            closed += loop.apply_expired_rewards(now)
        return closed


__all__ = [
    "Loop",
    "LoopRegistry",
    "LoopSettings",
    "RankResult",
    "RequestError",
    "RewardOutcome",
    "SettingsError",
    "UnknownEventError",
    "UnknownLoopError",
]
