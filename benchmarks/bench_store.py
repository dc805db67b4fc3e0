"""Benchmark the SQL store's per-step write and its cold load, against bare drivers.

What one run measures, on one machine:

* one durable incremental update (``MemoryDatabase.save_q_values`` of one entry) against
  a bare ``sqlite3`` one-row UPSERT + COMMIT into an identical table with the same
  journal mode, synchronous setting and cache size, at 1k, 100k and 1M stored entries;
* the seed's way for reference: ``json.dumps`` of the whole Q-table + UPDATE + COMMIT,
  at 1k and 100k entries;
* ``get_q_table`` of a 1M-entry table in a fresh process: time and peak RSS;
* on PostgreSQL (``--postgres URL`` or ``$RLMEMORY_TEST_POSTGRES_URL``): the same
  incremental update against a bare psycopg upsert + commit.

Run: ``PYTHONPATH=src python benchmarks/bench_store.py`` (about 2 minutes); ``--quick``
for a smoke run with small sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ACTIONS = [f"agent_{index}" for index in range(10)]
AGENT = "router"

BARE_TABLE = """CREATE TABLE q_values (
    agent_name TEXT NOT NULL, state TEXT NOT NULL, action TEXT NOT NULL,
    value REAL NOT NULL, last_updated REAL NOT NULL,
    PRIMARY KEY (agent_name, state, action)) WITHOUT ROWID"""
BARE_UPSERT = (
    "INSERT INTO q_values (agent_name, state, action, value, last_updated) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (agent_name, state, action) DO UPDATE SET value = excluded.value, "
    "last_updated = excluded.last_updated"
)
SEED_Q_TABLES = """CREATE TABLE IF NOT EXISTS q_tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    q_table TEXT NOT NULL,
    last_updated REAL NOT NULL,
    UNIQUE(agent_name)
)"""
CACHE_MB = 64


def q_table_of(entries: int) -> dict[str, dict[str, float]]:
    """A Q-table of ``entries`` values: entries / 10 states times 10 actions."""
    rng = random.Random(entries)
    states = max(1, entries // len(ACTIONS))
    return {
        f"state-{index:07d}": {a: rng.uniform(-1, 1) for a in ACTIONS} for index in range(states)
    }


def random_keys(table: dict[str, dict[str, float]], count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    states = list(table)
    return [(rng.choice(states), rng.choice(ACTIONS)) for _ in range(count)]


def bare_sqlite(path: Path, table: dict[str, dict[str, float]]) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(f"PRAGMA cache_size = -{CACHE_MB * 1024}")
    connection.execute("PRAGMA wal_autocheckpoint = 4000")  # as MemoryDatabase's default
    connection.execute(BARE_TABLE)
    now = time.time()
    connection.executemany(
        BARE_UPSERT,
        ((AGENT, s, a, v, now) for s, actions in table.items() for a, v in actions.items()),
    )
    connection.commit()
    return connection


def time_each(
    update: Callable[[str, str, float], None], keys: list[tuple[str, str]]
) -> list[float]:
    """Seconds per call of ``update(state, action, value)``, one per key."""
    timings = []
    clock = time.perf_counter
    for index, (state, action) in enumerate(keys):
        start = clock()
        update(state, action, index * 1e-6)
        timings.append(clock() - start)
    return timings


def interleaved(
    candidates: dict[str, Callable[[str, str, float], None]],
    keys: list[tuple[str, str]],
    rounds: int = 10,
) -> dict[str, list[float]]:
    """Alternate the candidates in ``rounds`` blocks so drift in the machine hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in candidates}
    block = max(1, len(keys) // rounds)
    for start in range(0, len(keys), block):
        for name, update in candidates.items():
            results[name].extend(time_each(update, keys[start : start + block]))
    return results


def summary(timings: list[float]) -> tuple[float, float, float]:
    """Median, mean and 99th percentile in microseconds."""
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1e6, statistics.fmean(ordered) * 1e6, p99 * 1e6


def bench_sqlite_size(entries: int, updates: int, workdir: Path) -> dict[str, object]:
    from rlmemory.store.sql import MemoryDatabase

    table = q_table_of(entries)
    store_path = workdir / f"store-{entries}.db"
    store = MemoryDatabase(store_path, sqlite_cache_mb=CACHE_MB)
    started = time.perf_counter()
    store.save_q_table(AGENT, table)
    load_seconds = time.perf_counter() - started
    bare = bare_sqlite(workdir / f"bare-{entries}.db", table)

    def store_update(state: str, action: str, value: float) -> None:
        store.save_q_values(AGENT, {state: {action: value}})

    def bare_update(state: str, action: str, value: float) -> None:
        bare.execute(BARE_UPSERT, (AGENT, state, action, value, time.time()))
        bare.commit()

    keys = random_keys(table, updates, seed=entries)
    store_update(*keys[0], 0.0)  # warm both statement caches
    bare_update(*keys[0], 0.0)
    results = interleaved({"store": store_update, "bare": bare_update}, keys)
    stored = sum(len(actions) for actions in store.get_q_table(AGENT).values())
    store.close()
    bare.close()
    return {
        "entries": entries,
        "stored": stored,
        "store": summary(results["store"]),
        "bare": summary(results["bare"]),
        "bulk_save_seconds": load_seconds,
        "path": store_path,
    }


def bench_seed_rewrite(entries: int, updates: int, workdir: Path) -> tuple[float, float, float]:
    """The seed's write path: the whole table as JSON, rewritten for every single change."""
    table = q_table_of(entries)
    connection = sqlite3.connect(workdir / f"seed-{entries}.db")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(SEED_Q_TABLES)
    connection.execute(
        "INSERT INTO q_tables (agent_name, q_table, last_updated) VALUES (?, ?, ?)",
        (AGENT, json.dumps(table), time.time()),
    )
    connection.commit()

    def rewrite(state: str, action: str, value: float) -> None:
        table[state][action] = value
        connection.execute(
            "UPDATE q_tables SET q_table = ?, last_updated = ? WHERE agent_name = ?",
            (json.dumps(table), time.time(), AGENT),
        )
        connection.commit()

    timings = time_each(rewrite, random_keys(table, updates, seed=entries + 1))
    connection.close()
    return summary(timings)


COLD_LOAD = """
import resource, sys, time
path = sys.stdin.readline().strip()
from rlmemory.store.sql import MemoryDatabase
store = MemoryDatabase(path)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
table = store.get_q_table("router")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(seconds, before, peak, sum(len(actions) for actions in table.values()))
"""


def start_cold_loader() -> subprocess.Popen[str]:
    """Start the cold-load process now, while this one is small.

    Linux carries a process's peak RSS over fork and exec, so a child started after
    this process has built a 1M-entry table would report this process's peak, not its own.
    """
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-c", COLD_LOAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def bench_cold_load(loader: subprocess.Popen[str], path: Path) -> tuple[float, float, float, int]:
    """get_q_table in the fresh process: seconds, RSS before and peak RSS (MB), entries."""
    output, _ = loader.communicate(f"{path}\n", timeout=600)
    if loader.returncode != 0:
        raise RuntimeError(f"cold load process failed with exit status {loader.returncode}")
    seconds, before_kb, peak_kb, entries = output.split()
    return float(seconds), int(before_kb) / 1024, int(peak_kb) / 1024, int(entries)


def bench_postgres(url: str, entries_list: list[int], updates: int) -> list[dict[str, object]]:
    import psycopg
    import sqlalchemy as sa

    from rlmemory.store.sql import MemoryDatabase

    rows = []
    upsert = BARE_UPSERT.replace("?", "%s")
    bare_url = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    for entries in entries_list:
        agent = f"bench-{os.getpid()}-{entries}"
        bare_agent = agent + "-bare"
        table = q_table_of(entries)
        store = MemoryDatabase(url)
        store.save_q_table(agent, table)
        store.save_q_table(bare_agent, table)
        bare = psycopg.connect(bare_url, autocommit=False)

        def store_update(
            state: str, action: str, value: float, store: MemoryDatabase = store, agent: str = agent
        ) -> None:
            store.save_q_values(agent, {state: {action: value}})

        def bare_update(
            state: str,
            action: str,
            value: float,
            bare: psycopg.Connection = bare,
            bare_agent: str = bare_agent,
        ) -> None:
            bare.execute(upsert, (bare_agent, state, action, value, time.time()))
            bare.commit()

        keys = random_keys(table, updates, seed=entries)
        for warm in keys[:10]:
            store_update(*warm, 0.0)
            bare_update(*warm, 0.0)
        results = interleaved({"store": store_update, "bare": bare_update}, keys)
        started = time.perf_counter()
        loaded = store.get_q_table(agent)
        load_seconds = time.perf_counter() - started
        assert sum(len(actions) for actions in loaded.values()) == entries
        rows.append(
            {
                "entries": entries,
                "store": summary(results["store"]),
                "bare": summary(results["bare"]),
                "load_seconds": load_seconds,
            }
        )
        store.save_q_table(agent, {})
        store.save_q_table(bare_agent, {})
        store.close()
        bare.close()
    return rows


def machine() -> list[str]:
    import numpy
    import sqlalchemy

    try:
        import psycopg

        psycopg_version = psycopg.__version__
    except ImportError:
        psycopg_version = "not installed"
    cpu = platform.processor() or "unknown"
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"platform: {platform.platform()}",
        f"cpu: {cpu} ({os.cpu_count()} logical CPUs)",
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"sqlalchemy {sqlalchemy.__version__}, psycopg {psycopg_version}, "
        f"numpy {numpy.__version__}",
        "load average at start (1/5/15 min): "
        + " / ".join(f"{load:.2f}" for load in os.getloadavg()),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="stored entries")
    parser.add_argument("--updates", type=int, default=10000, help="timed updates per size")
    parser.add_argument("--rewrite-sizes", default="1000,100000")
    parser.add_argument("--rewrite-updates", type=int, default=30)
    parser.add_argument("--postgres", default=os.environ.get("RLMEMORY_TEST_POSTGRES_URL"))
    parser.add_argument("--postgres-sizes", default="1000,100000,1000000")
    parser.add_argument("--no-cold-load", action="store_true")
    parser.add_argument("--workdir", default=None, help="folder for the database files")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.updates, args.rewrite_sizes = "1000,10000", 300, "1000"
        args.rewrite_updates, args.postgres_sizes = 10, "1000"

    sizes = [int(size) for size in args.sizes.split(",")]
    loader = None if args.no_cold_load else start_cold_loader()
    print("\n".join(machine()))
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        workdir = Path(folder)
        print(f"files in {workdir} ({os.statvfs(workdir).f_bsize} B blocks)\n")
        print("SQLite, one durable incremental update (WAL, synchronous=NORMAL), µs per update")
        print(
            f"{'entries':>9} | {'save_q_values med / mean / p99':>31} | "
            f"{'bare sqlite3 med / mean / p99':>30} | ratio med | ratio mean"
        )
        results = []
        for size in sizes:
            result = bench_sqlite_size(size, args.updates, workdir)
            assert result["stored"] == size, result
            results.append(result)
            store, bare = result["store"], result["bare"]
            print(
                f"{size:>9,} | {store[0]:>9.1f} / {store[1]:>7.1f} / {store[2]:>7.1f} | "
                f"{bare[0]:>8.1f} / {bare[1]:>7.1f} / {bare[2]:>7.1f} | "
                f"{store[0] / bare[0]:>9.2f} | {store[1] / bare[1]:>10.2f}"
            )
        if len(results) > 1:
            first, last = results[0], results[-1]
            print(
                f"growth {first['entries']:,} -> {last['entries']:,} entries: "
                f"median {last['store'][0] / first['store'][0]:.2f}x, "
                f"mean {last['store'][1] / first['store'][1]:.2f}x"
            )
        print(
            "bulk save_q_table of the largest table: "
            f"{results[-1]['bulk_save_seconds']:.2f} s for {results[-1]['entries']:,} entries"
        )

        print("\nSeed-style whole-table JSON rewrite + COMMIT, µs per update")
        for size in [int(size) for size in args.rewrite_sizes.split(",") if size]:
            median, mean, p99 = bench_seed_rewrite(size, args.rewrite_updates, workdir)
            print(f"{size:>9,} | {median:>10.1f} / {mean:>10.1f} / {p99:>10.1f}")

        if loader is not None:
            seconds, before_mb, peak_mb, loaded = bench_cold_load(loader, results[-1]["path"])
            print(
                f"\nget_q_table cold load in a fresh process, {loaded:,} entries: "
                f"{seconds:.2f} s, peak RSS {peak_mb:.0f} MB "
                f"(RSS before the call {before_mb:.0f} MB)"
            )

    if args.postgres:
        import sqlalchemy as sa

        shown = sa.make_url(args.postgres).render_as_string(hide_password=True)
        print(f"\nPostgreSQL {shown}, one incremental update + commit, µs per update")
        sizes = [int(size) for size in args.postgres_sizes.split(",")]
        for row in bench_postgres(args.postgres, sizes, args.updates // 2):
            store, bare = row["store"], row["bare"]
            print(
                f"{row['entries']:>9,} | save_q_values {store[0]:>7.1f} / {store[1]:>7.1f} / "
                f"{store[2]:>7.1f} | bare psycopg {bare[0]:>7.1f} / {bare[1]:>7.1f} / "
                f"{bare[2]:>7.1f} | ratio med {store[0] / bare[0]:.2f} | "
                f"get_q_table {row['load_seconds']:.2f} s"
            )
    else:
        print("\nPostgreSQL: skipped (give --postgres URL or RLMEMORY_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
