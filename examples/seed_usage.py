"""The seed document's usage example, runnable offline.

Run it with ``python examples/seed_usage.py [path/to/agent_memory.db]``. It needs no
network and no API key: ``model=None`` selects the offline state extractor. Swap in
any LangChain chat model (for example ``ChatAnthropic(model=...)``) to let the model
classify requests instead.

Run it twice: the second run loads what the first one learned and continues.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
from typing import Any

from rlmemory import MemoryDatabase, create_rl_agent_architecture

NOTES = [
    "Reinforcement learning trains an agent from rewards instead of labelled examples.",
    "Q-learning keeps a table of action values per state and updates it after each reward.",
    "A policy gradient method adjusts the probabilities of actions in the direction of reward.",
    "SQLite stores a whole database in one file and needs no server.",
    "A contextual bandit chooses one action per context and sees the reward of that action only.",
]


class SearchAgent:
    """Finds the notes that mention the words of the request."""

    async def execute(self, request: str, db: Any) -> dict[str, Any]:
        words = {w for w in re.findall(r"[a-z]{4,}", request.lower())} - {"search", "information"}
        hits = [note for note in NOTES if words & set(re.findall(r"[a-z]{4,}", note.lower()))]
        if not hits:
            return {"success": False, "response": "", "error": "nothing found"}
        return {"success": True, "response": " ".join(hits[:2]), "tool_calls": ["search"]}


class AnalysisAgent:
    """Summarises the numbers in the request."""

    async def execute(self, request: str, db: Any) -> dict[str, Any]:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", request)]
        if len(numbers) < 2:
            return {"success": False, "response": "", "error": "need at least two numbers"}
        mean, spread = statistics.fmean(numbers), statistics.stdev(numbers)
        return {"success": True, "response": f"mean {mean:.2f}, stdev {spread:.2f}"}


class CodingAgent:
    """Checks that the Python code in backticks compiles."""

    async def execute(self, request: str, db: Any) -> dict[str, Any]:
        match = re.search(r"`([^`]+)`", request)
        if match is None:
            return {"success": False, "response": "", "error": "no code in backticks"}
        try:
            compile(match.group(1), "<request>", "exec")
        except SyntaxError as error:
            return {"success": True, "response": f"syntax error: {error.msg} (line {error.lineno})"}
        return {"success": True, "response": "the code compiles"}


REQUESTS = [
    "Search for information about reinforcement learning",
    "Analyse these response times: 120 95 130 110",
    "Check this code: `def area(r): return 3.14 * r * r`",
    "Search for information about contextual bandit methods",
    "Analyse the scores 7 9 8 6 10",
    "Check this code: `for i in range(3) print(i)`",
]


async def main(db_path: str = "agent_memory.db") -> None:
    # Create memory database
    db = MemoryDatabase(db_path)

    # Create language model (None: offline state extraction, no API key needed)
    model = None

    # Create sub-agents
    sub_agents = {
        "search_agent": SearchAgent(),
        "analysis_agent": AnalysisAgent(),
        "coding_agent": CodingAgent(),
    }

    # Create RL coordinator agent (it loads what earlier runs learned)
    rl_coordinator = await create_rl_agent_architecture(
        model=model, db=db, sub_agents=sub_agents, rl_agent_type="q_learning"
    )
    print(f"Stored decisions before this run: {db.count_agent_decisions(rl_coordinator.name)}")

    # Process a request
    result = await rl_coordinator.process_request(
        "Search for information about reinforcement learning", history=[]
    )
    print(
        f"{result['selected_agent']} answered (reward {result['reward']:.2f}): {result['response']}"
    )

    # More requests; the Q-table is saved value by value as the coordinator learns
    for request in REQUESTS * 3:
        result = await rl_coordinator.process_request(request)
        print(
            f"  {request[:45]:<45} -> {result['selected_agent']:<15} reward {result['reward']:.2f}"
        )

    # Feedback credits the sub-agent that actually handled that request
    await rl_coordinator.update_from_feedback(
        request, result["response"], "helpful, thanks", decision_id=result["decision_id"]
    )

    # Feedback can also come later, from elsewhere: here written onto a stored interaction
    interaction = db.get_agent_interactions(rl_coordinator.name, limit=2)[1]
    db.set_interaction_feedback(interaction["id"], "not helpful")

    # Perform batch learning from past interactions
    learning_result = await rl_coordinator.learn_from_batch(batch_size=10)
    print(f"Learning result: {learning_result}")

    q_table = db.get_q_table(rl_coordinator.name) or {}
    print(
        f"Q-table: {len(q_table)} states stored; decisions stored: "
        f"{db.count_agent_decisions(rl_coordinator.name)}"
    )
    db.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2]))
