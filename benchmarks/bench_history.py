"""History stays fast: reads with a million stored rows, and version compression.

Part 1 fills a store with ``--rows`` rewards, decisions and interactions (each) for
one agent, plus a few other agents, then times the reads a dashboard or ``rlmemory
stats`` makes: ``get_agent_rewards(limit=10)``, ``get_agent_decisions(limit=10)``,
``agent_stats`` and ``list_agents``. Target: each <= 5 ms (median and p99 printed).

Part 2 builds a ``--q-entries`` Q-table (states x 10 actions, random values) and
reports the size of its JSON, and ratio and time of zstandard at several levels, as
versions store it (:meth:`rlmemory.ops.versions.AgentState.to_payload`).

Run::

    PYTHONPATH=src python benchmarks/bench_history.py               # SQLite, 1M rows
    PYTHONPATH=src python benchmarks/bench_history.py --db postgresql+psycopg://...
    PYTHONPATH=src python benchmarks/bench_history.py --rows 100000 --q-entries 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bandit_common import machine_description, markdown_table

from rlmemory.ops.compression import compress_bytes, decompress_bytes
from rlmemory.ops.versions import AgentState
from rlmemory.store import open_store
from rlmemory.store.base import MemoryStore

AGENT = "bench-router"
ACTIONS = ("search", "analysis", "coding", "math", "chat", "docs", "sql", "web", "shell", "vision")


def fill(store: MemoryStore, rows: int, batch: int = 5000) -> float:
    """Append ``rows`` decisions, rewards and interactions for AGENT; return seconds."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    done = 0
    while done < rows:
        count = min(batch, rows - done)
        with store.transaction():
            for index in range(done, done + count):
                action = ACTIONS[index % len(ACTIONS)]
                reward = float(rng.random())
                decision = store.save_agent_decision(
                    AGENT,
                    f"state-{index % 50}",
                    action,
                    {action: reward},
                    reward,
                    propensity=0.9,
                )
                store.save_agent_reward(
                    AGENT, reward, {"task_completion": 1.0}, decision_id=decision
                )
                store.save_agent_interaction(
                    AGENT, f"request {index}", f"response {index}", None, decision
                )
        done += count
        print(f"\r  filled {done:,}/{rows:,}", end="", flush=True)
    for other in range(5):
        store.save_agent_reward(f"other-{other}", 0.5, {})
    print()
    return time.perf_counter() - started


def fill_bulk(store: MemoryStore, rows: int, batch: int = 50_000) -> float:
    """Like :func:`fill`, through ``load_rows`` (what a restore uses): much faster on
    PostgreSQL, where one round trip per row dominates. Needs an empty store."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    now = time.time()
    for first in range(1, rows + 1, batch):
        ids = range(first, min(first + batch, rows + 1))
        rewards = rng.random(len(ids))
        with store.transaction():
            store.load_rows(
                "agent_decisions",
                (
                    {
                        "id": i,
                        "agent_name": AGENT,
                        "state": f"state-{i % 50}",
                        "selected_action": ACTIONS[i % len(ACTIONS)],
                        "q_values": json.dumps({ACTIONS[i % len(ACTIONS)]: float(r)}),
                        "reward": json.dumps(float(r)),
                        "timestamp": now,
                        "propensity": 0.9,
                        "features": None,
                        "version": None,
                    }
                    for i, r in zip(ids, rewards, strict=True)
                ),
            )
            store.load_rows(
                "agent_rewards",
                (
                    {
                        "id": i,
                        "agent_name": AGENT,
                        "reward": float(r),
                        "reward_components": '{"task_completion":1.0}',
                        "timestamp": now,
                        "decision_id": i,
                    }
                    for i, r in zip(ids, rewards, strict=True)
                ),
            )
            store.load_rows(
                "agent_interactions",
                (
                    {
                        "id": i,
                        "agent_name": AGENT,
                        "request": f"request {i}",
                        "response": f"response {i}",
                        "feedback": None,
                        "timestamp": now,
                        "decision_id": i,
                        "learned_feedback": None,
                    }
                    for i in ids
                ),
            )
        print(f"\r  filled {ids[-1]:,}/{rows:,}", end="", flush=True)
    for other in range(5):
        store.save_agent_reward(f"other-{other}", 0.5, {})
    print()
    return time.perf_counter() - started


def timed(
    call: Callable[[], object], repeats: int, budget: float = 5.0
) -> tuple[float, float, int]:
    """Median and p99 in ms over up to ``repeats`` calls (fewer once ``budget`` s are spent)."""
    call()  # warm-up: compiled statements, page cache
    samples = []
    spent = 0.0
    while len(samples) < repeats and (spent < budget or len(samples) < 5):
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        spent += elapsed
        samples.append(elapsed * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return statistics.median(samples), p99, len(samples)


def history_part(location: str, rows: int, repeats: int, refill: bool, bulk: bool) -> None:
    with open_store(location) as store:
        existing = store.count_agent_decisions(AGENT)
        if existing < rows or refill:
            how = "load_rows" if bulk else "save_agent_* calls"
            print(f"Filling {location} with {rows:,} rows per table ({how}) ...")
            if bulk:
                seconds = fill_bulk(store, rows)
            else:
                seconds = fill(store, rows - (0 if refill else existing))
            print(f"  {seconds:.1f} s")
        stats = store.agent_stats(AGENT)
        print(
            f"Stored for {AGENT}: {stats['decisions']:,} decisions, "
            f"{stats['interactions']:,} interactions, {stats['rewards']:,} rewards"
        )
        checks = {
            "get_agent_rewards(limit=10)": lambda: store.get_agent_rewards(AGENT, limit=10),
            "get_agent_decisions(limit=10)": lambda: store.get_agent_decisions(AGENT, limit=10),
            "get_agent_interactions(limit=10)": lambda: store.get_agent_interactions(
                AGENT, limit=10
            ),
            "agent_stats (rlmemory stats, one agent)": lambda: store.agent_stats(AGENT),
            "list_agents": store.list_agents,
            "rlmemory stats (all agents)": lambda: [
                store.agent_stats(name) for name in store.list_agents()
            ],
        }
        table = []
        for name, call in checks.items():
            median, p99, samples = timed(call, repeats)
            verdict = "yes" if p99 <= 5.0 else "NO"
            table.append((name, f"{median:.3f}", f"{p99:.3f}", samples, verdict))
        print()
        print(f"Reads with {stats['rewards']:,} rows per table ({type(store).__name__})")
        print(markdown_table(("read", "median ms", "p99 ms", "calls", "p99 <= 5 ms"), table))


def compression_part(entries: int, levels: list[int]) -> None:
    rng = np.random.default_rng(1)
    states = entries // len(ACTIONS)
    values = rng.normal(0.5, 0.2, size=(states, len(ACTIONS)))
    q_table = {
        f"intent-{index % 97}|len-{index % 7}|code-{index % 2}|{index}": dict(
            zip(ACTIONS, map(float, row), strict=True)
        )
        for index, row in enumerate(values)
    }
    started = time.perf_counter()
    raw = json.dumps(q_table, separators=(",", ":")).encode()
    encode_seconds = time.perf_counter() - started
    print()
    print(
        f"Q-table of {states:,} states x {len(ACTIONS)} actions = {states * len(ACTIONS):,} "
        f"entries; JSON {len(raw) / 1e6:.1f} MB (encoded in {encode_seconds:.2f} s)"
    )
    table = []
    for level in levels:
        started = time.perf_counter()
        packed = compress_bytes(raw, level)
        compress_seconds = time.perf_counter() - started
        started = time.perf_counter()
        assert decompress_bytes(packed) == raw
        decompress_seconds = time.perf_counter() - started
        table.append(
            (
                level,
                f"{len(packed) / 1e6:.2f}",
                f"{len(raw) / len(packed):.2f}",
                f"{compress_seconds:.2f}",
                f"{len(raw) / 1e6 / compress_seconds:.0f}",
                f"{decompress_seconds:.3f}",
            )
        )
    print(
        markdown_table(
            ("zstd level", "compressed MB", "ratio", "compress s", "MB/s", "decompress s"), table
        )
    )
    state = AgentState(q_table=q_table)
    started = time.perf_counter()
    payload = state.to_payload()
    to_seconds = time.perf_counter() - started
    started = time.perf_counter()
    AgentState.from_payload(payload)
    from_seconds = time.perf_counter() - started
    print(
        f"\nVersion payload (JSON + zstd level 3) end to end: {len(payload) / 1e6:.2f} MB, "
        f"snapshot encode {to_seconds:.2f} s, decode {from_seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", help="store location (default: a SQLite file in a temp dir)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--q-entries", type=int, default=1_000_000)
    parser.add_argument("--levels", default="1,3,9")
    parser.add_argument("--refill", action="store_true", help="append rows even if present")
    parser.add_argument(
        "--bulk", action="store_true", help="fill an empty store with load_rows (fast)"
    )
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--skip-compression", action="store_true")
    arguments = parser.parse_args()
    print(machine_description(["numpy", "sqlalchemy", "psycopg", "zstandard", "cryptography"]))
    print(f"sqlite: {__import__('sqlite3').sqlite_version}; {platform.python_implementation()}")
    if not arguments.skip_history:
        location = arguments.db or os.path.join(tempfile.mkdtemp(), "bench_history.db")
        history_part(location, arguments.rows, arguments.repeats, arguments.refill, arguments.bulk)
    if not arguments.skip_compression:
        compression_part(arguments.q_entries, [int(x) for x in arguments.levels.split(",")])


if __name__ == "__main__":
    main()
