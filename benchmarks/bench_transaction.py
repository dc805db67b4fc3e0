"""Cost of one coordinator-style store transaction, on SQLite and PostgreSQL.

One transaction does what ``RLCoordinatorAgent.process_request`` stores for a request:
``lock_learner``, a decision, an interaction, the decision's reward JSON, a reward, a
re-read of the state's Q-values and one Q-value upsert — seven store calls. This is
where per-call costs inside ``transaction()`` (savepoints, lock settings) show up;
``bench_store.py`` measures single calls outside transactions.

Run: ``PYTHONPATH=src python benchmarks/bench_transaction.py [--transactions N]
[--postgres URL]`` (``$RLMEMORY_TEST_POSTGRES_URL`` by default). Prints median and p99
milliseconds per transaction and per store call; on PostgreSQL also the same seven
statements on a bare psycopg connection without (``bare``) and with (``bare+sp``) a
savepoint before each, the price of making every call its own savepoint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rlmemory.store.sql import MemoryDatabase

AGENT = "bench_router"
CALLS_PER_TRANSACTION = 7


def one_request(store: MemoryDatabase, number: int) -> None:
    state = f"state-{number % 100}"
    with store.transaction():
        store.lock_learner(AGENT)
        decision = store.save_agent_decision(AGENT, state, "a", {"a": 0.5}, None)
        store.save_agent_interaction(AGENT, f"request {number}", "response", None, decision)
        store.set_decision_reward(decision, {"status": "observed", "value": 1.0})
        store.save_agent_reward(AGENT, 1.0, {"source": "outcome"}, decision)
        values = store.get_q_values(AGENT, state)
        store.save_q_values(AGENT, {state: {"a": values.get("a", 0.0) + 0.1}})


def measure(store: MemoryDatabase, transactions: int) -> list[float]:
    for warm in range(20):
        one_request(store, warm)
    timings = []
    for number in range(transactions):
        started = time.perf_counter()
        one_request(store, number)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def bare_postgres(url: str, transactions: int, *, savepoints: bool) -> list[float]:
    """Seven plain INSERTs in one psycopg transaction, optionally each after a savepoint
    (``RELEASE; SAVEPOINT``, one round trip): the price of a savepoint per store call."""
    import psycopg
    import sqlalchemy as sa

    plain_url = sa.make_url(url).set(drivername="postgresql")
    timings = []
    with psycopg.connect(plain_url.render_as_string(hide_password=False), autocommit=True) as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE TEMP TABLE bench_rows (id serial PRIMARY KEY, v int)")
        for number in range(transactions + 20):
            started = time.perf_counter()
            cursor.execute("BEGIN")
            for call in range(CALLS_PER_TRANSACTION):
                if savepoints:
                    cursor.execute("RELEASE SAVEPOINT c; SAVEPOINT c" if call else "SAVEPOINT c")
                cursor.execute("INSERT INTO bench_rows (v) VALUES (%s) RETURNING id", (call,))
                cursor.fetchall()
            cursor.execute("COMMIT")
            if number >= 20:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def row(label: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    median = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    per_call = median / CALLS_PER_TRANSACTION
    return f"| {label:<10} | {median:8.3f} | {p99:8.3f} | {per_call:8.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("RLMEMORY_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| backend    | median ms | p99 ms  | ms/call |")
    print("|------------|-----------|---------|---------|")
    with tempfile.TemporaryDirectory() as folder, MemoryDatabase(Path(folder) / "b.db") as store:
        print(row("sqlite", measure(store, args.transactions)), flush=True)
    if args.postgres:
        with MemoryDatabase(args.postgres) as store:
            agent_rows = store.count_agent_decisions(AGENT)
            print(row("postgresql", measure(store, args.transactions)), flush=True)
            assert store.count_agent_decisions(AGENT) > agent_rows
            store.prune_history(AGENT, "decisions", keep_newest=1)
            store.prune_history(AGENT, "interactions", keep_newest=1)
            store.prune_history(AGENT, "rewards", keep_newest=1)
        for savepoints in (False, True):
            label = "bare+sp" if savepoints else "bare"
            timings = bare_postgres(args.postgres, args.transactions, savepoints=savepoints)
            print(row(label, timings), flush=True)
    else:
        print("PostgreSQL: skipped (give --postgres URL or RLMEMORY_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
