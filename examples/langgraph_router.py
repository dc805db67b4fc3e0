"""A LangGraph graph whose router learns, from people's ratings, which node answers best.

Offline: the two specialists are langchain-core's fake chat models, and the "person"
who rates each answer at the ``interrupt()`` is simulated (code requests are well
answered by ``coder``, everything else by ``researcher``). Run it twice: the second
run starts from what the first one learned, stored in ``langgraph_router.db`` (or the
path given as the first argument).

    pip install "rlmemory[langgraph]"
    python examples/langgraph_router.py [path/to/store.db]
"""

from __future__ import annotations

import sys
from typing import Any, TypedDict

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from rlmemory import MemoryDatabase
from rlmemory.integrations.langgraph import create_feedback_node, create_router_node
from rlmemory.learners.bandits import EpsilonGreedyAgent

REQUESTS = [
    "write a python function that parses dates",
    "find recent papers on contextual bandits",
    "fix this bug in my javascript code",
    "search for the population of Lyon",
    "refactor the sql query in this script",
    "look up flights from Paris to Oslo",
]


class State(TypedDict, total=False):
    messages: list[Any]
    answer: str
    decision_id: int
    propensity: float
    reward: float


def specialist(answer: str) -> Any:
    model = FakeListChatModel(responses=[answer])

    def answer_node(state: State) -> dict[str, Any]:
        reply = model.invoke(state["messages"])
        return {"answer": reply.content}

    return answer_node


def simulated_rating(request: str, node: str) -> str:
    """What a person would answer at the interrupt: a 1-5 rating."""
    wants_code = any(word in request for word in ("python", "bug", "sql", "code", "javascript"))
    right = (node == "coder") == wants_code
    return "5/5" if right else "2/5"


def build(store: MemoryDatabase) -> Any:
    learner = EpsilonGreedyAgent("graph_router", store, ["coder", "researcher"], seed=7)
    router = create_router_node(learner, store, seed=7)
    graph = StateGraph(State)
    graph.add_node("route", router, destinations=router.destinations())
    graph.add_node("coder", specialist("Here is the code."))
    graph.add_node("researcher", specialist("Here is what I found."))
    graph.add_node("feedback", create_feedback_node(router))
    graph.add_edge(START, "route")
    graph.add_edge("coder", "feedback")
    graph.add_edge("researcher", "feedback")
    graph.add_edge("feedback", END)
    return graph.compile(checkpointer=InMemorySaver())


def main(path: str) -> None:
    with MemoryDatabase(path) as store:
        graph = build(store)
        before = store.count_agent_decisions("graph_router")
        print(f"Stored decisions before this run: {before}")
        right = 0
        rounds = 30
        for index in range(rounds):
            request = REQUESTS[index % len(REQUESTS)]
            config = {"configurable": {"thread_id": f"run{before}-{index}"}}
            paused = graph.invoke({"messages": [HumanMessage(request)]}, config)
            node = store.get_agent_decision(paused["decision_id"])["selected_action"]
            rating = simulated_rating(request, node)
            right += rating == "5/5"
            graph.invoke(Command(resume=rating), config)
        print(f"Routed right: {right}/{rounds}")
        print(f"decisions stored: {store.count_agent_decisions('graph_router')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "langgraph_router.db")
