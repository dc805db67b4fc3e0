"""A routing workload for learner tests: three kinds of request, three simulated sub-agents.

Requests are generated from templates with a seeded generator; each simulated
sub-agent succeeds only on requests of its own kind. The reward comes from the real
:class:`~rlmemory.rewards.RewardSystem` with no feedback and the real success flag,
so a success is worth 0.75 and a failure 0.45.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlmemory.learners.base import RoutingLearner
from rlmemory.rewards import RewardSystem

SUB_AGENTS = ["search_agent", "analysis_agent", "coding_agent"]

TOPICS = [
    "reinforcement learning",
    "climate policy",
    "quantum computing",
    "the French revolution",
    "protein folding",
    "solar panels",
    "jazz history",
    "vaccine trials",
]
THINGS = ["a list of dates", "email addresses", "a binary tree", "log lines", "user records"]

TEMPLATES: dict[str, list[str]] = {
    "search_agent": [
        "Search for information about {topic}",
        "Find recent articles on {topic}",
        "Look up who first described {topic}",
        "What is the latest news about {topic}?",
        "Where can I read the documentation on {topic}?",
        "Can you find sources about {topic} for my essay, with links to each of them please",
        "Tell me about {topic}",
    ],
    "analysis_agent": [
        "Analyze these numbers: {numbers}",
        "Compute the mean and median of {numbers}",
        "What is the trend in {numbers}?",
        "Compare the growth of {numbers} against last year",
        "Summarize the distribution of {numbers}",
        "Is there a correlation between {numbers} and the sales we had this quarter in Europe",
        "How much did it change: {numbers}",
    ],
    "coding_agent": [
        "Write a Python function that sorts {thing}",
        "Fix this bug: ```def mean(xs): return sum(xs) / len(x)```",
        "Implement a class for {thing}",
        "Why does parse(data) raise an exception here?",
        "Refactor this script:\nfor i in range(10):\n    print(i)",
        "How do I write a regex that matches {thing}?",
        "Make this faster: total = 0; for x in items: total += x;",
    ],
}


@dataclass(frozen=True)
class Request:
    """One generated request and the sub-agent that can handle it."""

    text: str
    kind: str


def make_request(rng: np.random.Generator) -> Request:
    """A random request of a random kind."""
    kind = SUB_AGENTS[int(rng.integers(len(SUB_AGENTS)))]
    templates = TEMPLATES[kind]
    template = templates[int(rng.integers(len(templates)))]
    numbers = ", ".join(str(int(n)) for n in rng.integers(1, 100, size=int(rng.integers(3, 8))))
    text = template.format(
        topic=TOPICS[int(rng.integers(len(TOPICS)))],
        thing=THINGS[int(rng.integers(len(THINGS)))],
        numbers=numbers,
    )
    return Request(text=text, kind=kind)


def run_routing(
    learner: RoutingLearner,
    extractor,
    reward_system: RewardSystem,
    *,
    requests: int,
    seed: int,
    start: int = 0,
) -> list[bool]:
    """Route ``requests`` generated requests; return, per request, whether it was routed right.

    Decision ``i`` (counting from ``start``) draws from ``default_rng([seed, i])``, as
    the coordinator does, so a run split in parts equals one run.
    """
    request_rng = np.random.default_rng([seed, 1_000_000])
    for _ in range(start):
        make_request(request_rng)
    routed_right = []
    for index in range(start, start + requests):
        request = make_request(request_rng)
        observation = extractor.extract(request.text)
        choice = learner.choose(observation, np.random.default_rng([seed, index]))
        success = choice.action == request.kind
        reward, _ = reward_system.compute_reward(
            None, {"task_completed": success, "response_time": 0.0}
        )
        learner.learn(observation, choice.action, reward)
        routed_right.append(success)
    return routed_right
