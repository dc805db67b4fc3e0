"""The LangGraph router on a real compiled graph, offline, on every backend.

The graph: ``route`` (the learned router) -> one of two specialist nodes answering
with langchain-core's fake chat models -> ``feedback`` (``interrupt()`` for a person's
rating) -> END, compiled with an in-memory checkpointer so that a paused run resumes
with ``Command(resume=...)``. The decisions, rewards and learned state live in the
test's real store (``make_store``: sqlite, postgresql, files).
"""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from rlmemory.errors import UnknownDecisionError
from rlmemory.integrations.langgraph import (
    LearnedRouter,
    create_feedback_node,
    create_router_node,
    state_text,
)
from rlmemory.learners.bandits import EpsilonGreedyAgent

ROUTER = "graph_router"
NODES = ["search", "code"]


class State(TypedDict, total=False):
    messages: list[Any]
    answer: str
    decision_id: int
    propensity: float
    reward: float


def specialist(answer: str) -> Any:
    model = FakeListChatModel(responses=[answer] * 1000)

    def node(state: State) -> dict[str, Any]:
        reply = model.invoke(state["messages"])
        return {"answer": reply.content, "messages": [*state["messages"], reply]}

    return node


def build_graph(router: LearnedRouter, *, with_feedback: bool) -> Any:
    graph = StateGraph(State)
    graph.add_node("route", router, destinations=router.destinations())
    graph.add_node("search", specialist("Here are the search results."))
    graph.add_node("code", specialist("def answer(): return 42"))
    graph.add_edge(START, "route")
    if with_feedback:
        graph.add_node("feedback", create_feedback_node(router))
        graph.add_edge("search", "feedback")
        graph.add_edge("code", "feedback")
        graph.add_edge("feedback", END)
        return graph.compile(checkpointer=InMemorySaver())
    graph.add_edge("search", END)
    graph.add_edge("code", END)
    return graph.compile()


def make_router(store: Any, seed: int = 0) -> LearnedRouter:
    learner = EpsilonGreedyAgent(ROUTER, store, list(NODES), epsilon=0.1, seed=seed)
    return create_router_node(learner, store, seed=seed)


def ask(text: str) -> State:
    return {"messages": [HumanMessage(text)]}


def test_the_router_node_stores_a_decision_and_goes_to_the_chosen_node(make_store: Any) -> None:
    store = make_store()
    router = make_router(store)
    result = build_graph(router, with_feedback=False).invoke(ask("write a python function"))
    decision = store.get_agent_decision(result["decision_id"])
    expected = {"search": "Here are the search results.", "code": "def answer(): return 42"}
    assert result["answer"] == expected[decision["selected_action"]]
    assert result["propensity"] == pytest.approx(decision["propensity"])
    assert 0 < result["propensity"] <= 1
    assert decision["reward"]["status"] == "pending"


def test_feedback_after_an_interrupt_rewards_the_decision_once_and_teaches_the_learner(
    make_store: Any,
) -> None:
    store = make_store()
    router = make_router(store)
    graph = build_graph(router, with_feedback=True)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    paused = graph.invoke(ask("write a python function"), config)
    (question,) = paused["__interrupt__"]
    decision_id = paused["decision_id"]
    assert question.value == {"decision_id": decision_id, "answer": paused["answer"]}
    assert store.get_agent_rewards(ROUTER) == []
    finished = graph.invoke(Command(resume=0.9), config)
    assert finished["reward"] == 0.9
    decision = store.get_agent_decision(decision_id)
    assert decision["reward"]["status"] == "observed" and decision["reward"]["value"] == 0.9
    (stored,) = store.get_agent_rewards(ROUTER)
    assert (stored["reward"], stored["decision_id"]) == (0.9, decision_id)
    chosen = decision["selected_action"]
    assert int(router.learner.statistics()[chosen]["count"]) == 1
    reopened = EpsilonGreedyAgent(ROUTER, make_store(), list(NODES))
    assert int(reopened.statistics()[chosen]["count"]) == 1
    with pytest.raises(ValueError, match="already has a reward"):
        router.reward(decision_id, 1.0)
    assert len(store.get_agent_rewards(ROUTER)) == 1
    assert int(router.learner.statistics()[chosen]["count"]) == 1


def test_a_rating_given_at_the_interrupt_goes_through_the_reward_system(make_store: Any) -> None:
    store = make_store()
    graph = build_graph(make_router(store), with_feedback=True)
    config = {"configurable": {"thread_id": "rating"}}
    paused = graph.invoke(ask("search the web for flights"), config)
    finished = graph.invoke(Command(resume="5/5, great answer"), config)
    (stored,) = store.get_agent_rewards(ROUTER)
    assert stored["decision_id"] == paused["decision_id"]
    assert stored["reward_components"]["user_satisfaction"] == 1.0
    assert finished["reward"] == stored["reward"]


def test_the_router_learns_which_node_answers_well(make_store: Any) -> None:
    """Code requests rewarded only when answered by ``code``: the router comes to pick it."""
    store = make_store()
    router = make_router(store, seed=3)
    graph = build_graph(router, with_feedback=False)
    chosen = []
    for index in range(40):
        result = graph.invoke(ask(f"write a python function number {index}"))
        decision = store.get_agent_decision(result["decision_id"])
        chosen.append(decision["selected_action"])
        router.reward(result["decision_id"], 1.0 if decision["selected_action"] == "code" else 0.0)
    assert chosen[-15:].count("code") >= 12


def test_bad_rewards_and_unknown_decisions_are_refused_and_nothing_changes(
    make_store: Any,
) -> None:
    store = make_store()
    router = make_router(store)
    result = build_graph(router, with_feedback=False).invoke(ask("write code"))
    for bad, error in ((float("nan"), ValueError), ("high", TypeError), (True, TypeError)):
        with pytest.raises(error):
            router.reward(result["decision_id"], bad)
    with pytest.raises(UnknownDecisionError):
        router.reward(10**9, 1.0)
    with pytest.raises(ValueError, match="either"):
        router.reward(result["decision_id"])
    assert store.get_agent_rewards(ROUTER) == []
    assert store.get_agent_decision(result["decision_id"])["reward"]["status"] == "pending"


def test_the_request_text_comes_from_the_newest_human_message_or_a_text_key() -> None:
    messages = [HumanMessage("first"), AIMessage("reply"), HumanMessage("second")]
    assert state_text({"messages": messages}) == "second"
    assert state_text({"messages": [{"role": "user", "content": "dict form"}]}) == "dict form"
    assert state_text({"question": "why?"}) == "why?"
    with pytest.raises(ValueError, match="no request text"):
        state_text({"answer": "x"})
