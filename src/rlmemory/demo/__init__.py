"""The offline demo: three sub-agents that do real work and a stream of requests for them.

* :class:`~rlmemory.demo.agents.DocsSearchAgent` — full-text search over the Python
  documentation topics that ship with Python (``pydoc_data.topics``);
* :class:`~rlmemory.demo.agents.StatisticsAgent` — summary statistics over the numbers
  in the request;
* :class:`~rlmemory.demo.agents.PythonRunnerAgent` — runs the Python snippet given in
  backticks in a subprocess with a timeout.

:func:`~rlmemory.demo.requests.demo_requests` generates a seeded stream of requests
of the three kinds, and :func:`~rlmemory.demo.run.run_demo` routes them through an
:class:`~rlmemory.coordinator.RLCoordinatorAgent` (what ``rlmemory demo`` does).
"""

from __future__ import annotations

from rlmemory.demo.agents import (
    DocsSearchAgent,
    PythonRunnerAgent,
    StatisticsAgent,
    demo_sub_agents,
)
from rlmemory.demo.requests import DemoRequest, demo_requests

__all__ = [
    "DemoRequest",
    "DocsSearchAgent",
    "PythonRunnerAgent",
    "StatisticsAgent",
    "demo_requests",
    "demo_sub_agents",
]
