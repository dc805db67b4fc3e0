"""LangGraph: a router node that learns which node should handle a graph's state.

:func:`create_router_node` makes a node for ``StateGraph.add_node``. Called with the
graph's state, it reads the request text from the state, turns it into the
coordinator's features (:func:`rlmemory.features.make_state_extractor`, or yours),
lets any rlmemory learner choose among the nodes, stores the decision with its
propensity, and returns ``Command(goto=<node>, update={"decision_id": …,
"propensity": …})``. Later — in a node after the answer, or after an ``interrupt()``
that asked a person — :meth:`LearnedRouter.reward` (or the node made by
:func:`create_feedback_node`) credits that decision: the learner learns from it, and
the reward is stored with the decision, once. Needs ``pip install rlmemory[langgraph]``.

>>> import tempfile, os
>>> from typing import TypedDict
>>> from langgraph.graph import END, START, StateGraph
>>> from rlmemory.learners.bandits import EpsilonGreedyAgent
>>> from rlmemory.store.sql import MemoryDatabase
>>> class State(TypedDict, total=False):
...     request: str
...     answer: str
...     decision_id: int
...     propensity: float
>>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
>>> learner = EpsilonGreedyAgent("graph_router", db, ["search", "code"], seed=0)
>>> router = create_router_node(learner, db, seed=0)
>>> graph = StateGraph(State)
>>> graph.add_node("route", router, destinations=("search", "code"))  # doctest: +ELLIPSIS
<...>
>>> graph.add_node("search", lambda state: {"answer": "found it"})  # doctest: +ELLIPSIS
<...>
>>> graph.add_node("code", lambda state: {"answer": "print('hi')"})  # doctest: +ELLIPSIS
<...>
>>> _ = graph.add_edge(START, "route")
>>> _ = graph.add_edge("search", END)
>>> _ = graph.add_edge("code", END)
>>> result = graph.compile().invoke({"request": "write a python function"})
>>> router.reward(result["decision_id"], 1.0)
1.0
>>> db.get_agent_decision(result["decision_id"])["reward"]["status"]
'observed'
>>> db.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from langgraph.types import Command, interrupt

from rlmemory.errors import UnknownDecisionError
from rlmemory.types import Observation

__all__ = ["LearnedRouter", "create_feedback_node", "create_router_node", "state_text"]

#: State keys read, in this order, for the request text when no ``text=`` is given.
TEXT_KEYS = ("request", "input", "question", "query")


def state_text(state: Mapping[str, Any]) -> str:
    """The request in a graph's state: its newest human message, else a text key.

    >>> state_text({"request": "find flights"})
    'find flights'
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> state_text({"messages": [HumanMessage("hi"), AIMessage("hello"), HumanMessage("fix")]})
    'fix'
    """
    for message in reversed(state.get("messages") or []):
        kind = getattr(message, "type", None)
        if kind is None and isinstance(message, Mapping):
            kind = message.get("role") or message.get("type")
        if kind in ("human", "user"):
            content = getattr(message, "content", None)
            if content is None and isinstance(message, Mapping):
                content = message.get("content")
            if isinstance(content, str):
                return content
    for key in TEXT_KEYS:
        value = state.get(key)
        if isinstance(value, str):
            return value
    raise ValueError(
        "the graph state has no request text: give it a human message in 'messages' or one "
        f"of the keys {', '.join(TEXT_KEYS)}, or pass text= to create_router_node"
    )


class LearnedRouter:
    """A LangGraph node that routes with an rlmemory learner; see :func:`create_router_node`."""

    def __init__(
        self,
        learner: Any,
        db: Any,
        *,
        name: str | None = None,
        routes: Mapping[str, str] | None = None,
        text: Callable[[Mapping[str, Any]], str] = state_text,
        state_extractor: Any = None,
        features: Callable[[str], Any] | None = None,
        reward_system: Any = None,
        seed: int | None = None,
    ) -> None:
        if not callable(getattr(learner, "choose", None)) or not callable(
            getattr(learner, "learn", None)
        ):
            raise TypeError("learner must be an rlmemory learner (choose and learn methods)")
        self.learner = learner
        self.db = db
        self.name = name or learner.name
        self.routes = dict(routes or {})
        unknown = set(self.routes) - set(learner.actions)
        if unknown:
            raise ValueError(f"routes name actions the learner lacks: {sorted(unknown)}")
        self.text = text
        if state_extractor is None:
            from rlmemory.features import make_state_extractor

            state_extractor = make_state_extractor(None)
        self.state_extractor = state_extractor
        self.features = features
        if reward_system is None:
            from rlmemory.rewards import RewardSystem

            reward_system = RewardSystem(db)
        self.reward_system = reward_system
        self._rng = np.random.default_rng(seed)

    def destinations(self) -> tuple[str, ...]:
        """The node names this router can go to (for ``add_node(..., destinations=)``)."""
        return tuple(self.routes.get(action, action) for action in self.learner.actions)

    def __call__(self, state: Mapping[str, Any]) -> Command[str]:
        request = self.text(state)
        observation = self.state_extractor.extract(request, None)
        if self.features is not None:
            vector = np.asarray(self.features(request), dtype=np.float64)
            observation = Observation(state=observation.state, features=vector)
        choice = self.learner.choose(observation, self._rng)
        decision_id = self.db.save_agent_decision(
            self.name,
            observation.state,
            choice.action,
            choice.scores,
            {"status": "pending", "source": "langgraph"},
            propensity=choice.propensity,
            features=observation.features,
        )
        return Command(
            goto=self.routes.get(choice.action, choice.action),
            update={"decision_id": decision_id, "propensity": choice.propensity},
        )

    def reward(
        self,
        decision_id: int,
        reward: float | None = None,
        *,
        feedback: Any = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> float:
        """Credit decision ``decision_id`` with ``reward``, or with the reward of
        ``feedback`` (a 1-5 rating, a text …) and ``metrics`` by the RewardSystem.

        The learner learns it and the reward is stored with the decision, in one
        transaction, exactly once: a decision that already has a reward is a
        ``ValueError`` and nothing changes. Returns the reward.
        """
        if (reward is None) == (feedback is None and metrics is None):
            raise ValueError("give either reward or feedback/metrics")
        if reward is not None:
            value = _finite(reward)
            components: dict[str, Any] = {"reward": value}
        else:
            value, components = self.reward_system.compute_reward(feedback, metrics)
        learned = False
        try:
            self._credit(decision_id, value, components)
            learned = True
        finally:
            if not learned:
                # The learner may have learned in memory what the store rolled back.
                self.learner.reload()
        return value

    def _credit(self, decision_id: int, value: float, components: dict[str, Any]) -> None:
        with self.db.transaction():
            self.db.lock_learner(self.name)
            decision = self.db.get_agent_decision(decision_id)
            if decision["agent_name"] != self.name:
                raise UnknownDecisionError(decision_id)
            recorded = decision["reward"]
            if not (isinstance(recorded, Mapping) and recorded.get("status") == "pending"):
                raise ValueError(f"decision {decision_id} already has a reward")
            self.db.set_decision_reward(
                decision_id, {"status": "observed", "value": value, "source": "langgraph"}
            )
            self.db.save_agent_reward(
                self.name, value, {**components, "source": "langgraph"}, decision_id
            )
            features = decision.get("features")
            observation = Observation(
                state=decision["state"],
                features=np.asarray(features if features is not None else [], dtype=np.float64),
            )
            self.learner.learn(observation, decision["selected_action"], value)


def create_router_node(learner: Any, db: Any, **options: Any) -> LearnedRouter:
    """A router node for ``StateGraph.add_node`` (see the module's example).

    ``learner`` is any rlmemory learner whose actions are node names (or map them
    with ``routes={action: node}``); decisions are stored in ``db`` under
    ``name=`` (default: the learner's name). ``text=`` takes the request text from
    the state (default :func:`state_text`); ``state_extractor=`` replaces the
    coordinator's default extractor; ``features=`` (text -> vector, e.g. a
    featuriser) replaces its context vector; ``seed=`` seeds the choices.
    """
    return LearnedRouter(learner, db, **options)


def create_feedback_node(
    router: LearnedRouter,
    *,
    question: Callable[[Mapping[str, Any]], Any] | None = None,
    reward_key: str = "reward",
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A node that asks a person for feedback with ``interrupt()`` and rewards the decision.

    The graph pauses (it needs a checkpointer); ``graph.invoke(Command(resume=answer),
    config)`` resumes it, and ``answer`` — a number is the reward itself, anything else
    (a 1-5 rating as text, a comment, a mapping) is feedback for the RewardSystem —
    credits ``state["decision_id"]``. The node writes the reward under ``reward_key``.
    ``question(state)`` is what the interrupt shows (default: the decision and the
    answer, if the state has one).
    """

    def ask_and_reward(state: Mapping[str, Any]) -> dict[str, Any]:
        if "decision_id" not in state:
            raise ValueError("the graph state has no decision_id: route with the router first")
        shown = (
            question(state)
            if question is not None
            else {"decision_id": state["decision_id"], "answer": state.get("answer")}
        )
        answer = interrupt(shown)
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            value = router.reward(state["decision_id"], float(answer))
        else:
            value = router.reward(state["decision_id"], feedback=answer)
        return {reward_key: value}

    return ask_and_reward


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"reward must be a number, not {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"reward must be finite, got {number}")
    return number
