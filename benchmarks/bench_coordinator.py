"""Overhead of RLCoordinatorAgent.process_request with instant sub-agents, everything persisted.

Each request: offline state extraction, an epsilon-greedy choice over a Q-table of
10,000 states, an instant sub-agent, the reward, and one transaction on a SQLite file
that stores the decision, the interaction, the reward and the changed Q-value.

Rows:

* ``incremental`` — rlmemory as shipped: one Q-value upsert per update;
* ``seed-style`` — the same coordinator with a learner that, like the seed, rewrites
  the whole Q-table (``save_q_table``) after every update;
* ``incremental, 100 concurrent`` — batches of 100 ``process_request`` calls under
  ``asyncio.gather``; latency is per batch / 100 (throughput view only).

``CPU`` columns are the thread's CPU time per request (time.thread_time), which
leaves out waiting for a CPU taken by other processes; the ``noise floor`` row runs
a pure-Python busy loop as long as the median request, so its p99 shows the tail
that the machine adds by itself.

Run: ``PYTHONPATH=src python benchmarks/bench_coordinator.py [--requests N]``.
Targets (issue 3): p99 <= 2 ms and >= 1,000 requests/s for ``incremental``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import zlib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.coordinator import create_rl_agent_architecture
from rlmemory.features import OfflineStateExtractor
from rlmemory.learners.base import Observation
from rlmemory.learners.qlearning import QLearningAgent
from rlmemory.store.sql import MemoryDatabase

ACTIONS = ["search_agent", "analysis_agent", "coding_agent"]
BUCKETS = 417  # 24 offline states x 417 buckets = 10,008 states
NAME = "bench_router"


class TenThousandStates:
    """The offline extractor, with its state split into 417 buckets by request text."""

    def __init__(self) -> None:
        self.offline = OfflineStateExtractor()
        self.dimension = self.offline.dimension
        self.states = [f"{s}#{b}" for s in self.offline.states for b in range(BUCKETS)]

    def extract(self, request: str, history: Any = None) -> Observation:
        observation = self.offline.extract(request, history)
        bucket = zlib.crc32(request.encode()) % BUCKETS
        return Observation(state=f"{observation.state}#{bucket}", features=observation.features)


class WholeTablePersistence(QLearningAgent):
    """Seed-style persistence: every update rewrites the whole Q-table."""

    def update_q_value(
        self, state: str, action: str, reward: float, next_state: Any = None
    ) -> None:
        super().update_q_value(state, action, reward, next_state)
        self.db.save_q_table(self.name, self.q_table)


def instant_sub_agents() -> dict[str, Any]:
    def make(name: str) -> Any:
        async def serve(request: str) -> dict[str, Any]:
            return {"success": name[0] in request, "response": f"{name} done"}

        return serve

    return {name: make(name) for name in ACTIONS}


def requests(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    verbs = ["search for", "analyse", "fix the code of", "compare", "find docs on", "debug"]
    nouns = ["sales", "the parser", "latency", "bees", "a regex", "growth", "the cache"]
    return [
        f"{verbs[rng.integers(len(verbs))]} {nouns[rng.integers(len(nouns))]} "
        f"#{rng.integers(10**6)}"
        for _ in range(count)
    ]


async def build(path: Path, seed_style: bool) -> Any:
    db = MemoryDatabase(path)
    extractor = TenThousandStates()
    rng = np.random.default_rng(0)
    if db.get_q_table(NAME) is None:
        db.save_q_table(
            NAME,
            {
                state: {a: float(v) for a, v in zip(ACTIONS, rng.uniform(0.4, 0.8, 3), strict=True)}
                for state in extractor.states
            },
        )
    coordinator = await create_rl_agent_architecture(
        None, db, instant_sub_agents(), "q_learning", seed=1, name=NAME, state_extractor=extractor
    )
    if seed_style:
        coordinator.rl_agent = WholeTablePersistence(
            NAME, None, db, coordinator.reward_system, extractor, ACTIONS, seed=1
        )
    assert len(coordinator.rl_agent.q_table) >= 10_000
    return coordinator


async def measure(
    path: Path, count: int, seed_style: bool, concurrency: int = 1
) -> dict[str, float]:
    coordinator = await build(path, seed_style)
    warmup = requests(max(20, count // 20), seed=1)
    for text in warmup:
        await coordinator.process_request(text)
    texts = requests(count, seed=2)
    latencies, cpu_times = [], []
    started = time.perf_counter()
    for offset in range(0, count, concurrency):
        batch = texts[offset : offset + concurrency]
        t0, c0 = time.perf_counter(), time.thread_time()
        if concurrency == 1:
            await coordinator.process_request(batch[0])
        else:
            await asyncio.gather(*(coordinator.process_request(text) for text in batch))
        cpu_times.append((time.thread_time() - c0) / len(batch))
        latencies.append((time.perf_counter() - t0) / len(batch))
    elapsed = time.perf_counter() - started
    stored = coordinator.db.count_agent_decisions(NAME)
    coordinator.db.close()
    assert stored == len(warmup) + count, (stored, len(warmup), count)
    return summary(count, latencies, cpu_times, elapsed)


def summary(
    count: int, latencies: list[float], cpu_times: list[float], elapsed: float
) -> dict[str, float]:
    wall_ms, cpu_ms = np.array(latencies) * 1000.0, np.array(cpu_times) * 1000.0
    return {
        "requests": count,
        "p50": float(np.percentile(wall_ms, 50)),
        "p99": float(np.percentile(wall_ms, 99)),
        "p999": float(np.percentile(wall_ms, 99.9)),
        "max": float(wall_ms.max()),
        "mean": float(statistics.fmean(wall_ms)),
        "cpu_p50": float(np.percentile(cpu_ms, 50)),
        "cpu_p99": float(np.percentile(cpu_ms, 99)),
        "per_second": count / elapsed,
    }


def noise_floor(count: int, seconds: float) -> dict[str, float]:
    """The same number of pure-Python busy loops of about ``seconds`` each: the tail
    latency this machine adds by itself (other processes, scheduling)."""

    def busy(rounds: int) -> int:
        total = 0
        for value in range(rounds):
            total += value
        return total

    t0 = time.perf_counter()
    busy(200_000)
    rounds = max(1, int(seconds * 200_000 / (time.perf_counter() - t0)))
    latencies, cpu_times = [], []
    started = time.perf_counter()
    for _ in range(count):
        t0, c0 = time.perf_counter(), time.thread_time()
        busy(rounds)
        cpu_times.append(time.thread_time() - c0)
        latencies.append(time.perf_counter() - t0)
    return summary(count, latencies, cpu_times, time.perf_counter() - started)


def machine() -> str:
    return (
        f"{platform.platform()}; {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}); "
        f"Python {platform.python_version()}; SQLite {__import__('sqlite3').sqlite_version}; "
        f"SQLAlchemy {version('sqlalchemy')}; numpy {version('numpy')}; "
        f"filesystem of {tempfile.gettempdir()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per row")
    parser.add_argument("--seed-style-requests", type=int, default=300)
    options = parser.parse_args()
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        incremental = Path(folder, "incremental.db")
        rows.append(("incremental", asyncio.run(measure(incremental, options.requests, False))))
        concurrent = Path(folder, "concurrent.db")
        rows.append(
            (
                "incremental, 100 concurrent",
                asyncio.run(measure(concurrent, options.requests, False, concurrency=100)),
            )
        )
        seed = Path(folder, "seed_style.db")
        rows.append(("seed-style", asyncio.run(measure(seed, options.seed_style_requests, True))))
    rows.append(
        (
            "noise floor: busy loop of the same p50",
            noise_floor(options.requests, rows[0][1]["p50"] / 1000.0),
        )
    )
    print(f"machine: {machine()}")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print("Q-table: 10,008 states x 3 actions, SQLite file (WAL, synchronous=NORMAL)\n")
    print(
        "| persistence | requests | p50 ms | p99 ms | p99.9 ms | max ms | mean ms | CPU p50 ms "
        "| CPU p99 ms | requests/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, row in rows:
        print(
            f"| {label} | {row['requests']} | {row['p50']:.3f} | {row['p99']:.3f} | "
            f"{row['p999']:.3f} | {row['max']:.3f} | {row['mean']:.3f} | "
            f"{row['cpu_p50']:.3f} | {row['cpu_p99']:.3f} | "
            f"{row['per_second']:,.0f} |"
        )


if __name__ == "__main__":
    main()
