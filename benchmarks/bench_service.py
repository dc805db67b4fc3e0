"""Throughput and latency of the decision service: rank+reward pairs over loopback HTTP.

For each store (SQLite file; PostgreSQL when ``--postgres-url`` names a server whose role
may create databases) and each worker count (1, 2), the script starts ``rlmemory serve``
on 127.0.0.1 and runs a load generator in its own process (httpx, keep-alive
connections). Each pair is a rank of 3 actions with a small context, then the reward of
its event (``earliest``: learned at once, one transaction with the learner's update).

* ``max`` — ``--concurrency`` clients send pairs back to back for ``--pairs`` pairs:
  pairs/s, and rank latency percentiles under that load;
* ``paced`` — pairs started on a fixed schedule of ``--rate`` pairs/s for ``--pairs``
  pairs; rank latency measured from the scheduled start (queueing included, so a
  server that falls behind shows it).

``in-process`` rows run the same loop (epsilon-greedy, 64 hashed features) through
:class:`rlmemory.service.loops.Loop` on the same kind of store, without HTTP.

Run: ``PYTHONPATH=src python benchmarks/bench_service.py [--pairs N] [--postgres-url URL]``.
Targets (issue 9): >= 1,000 pairs/s with SQLite and 2 workers; rank p99 <= 10 ms at
500 pairs/s. Traffic is bounded (``--pairs``, and ``--time-limit`` seconds per run).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bandit_common import machine_description, markdown_table

ACTIONS = [{"id": "search"}, {"id": "analysis"}, {"id": "coding"}]
LOOP = "bench"


def context(number: int) -> list[dict[str, Any]]:
    return [{"user": {"tier": ("free", "pro", "team")[number % 3], "seen": number % 7}}]


def reward_of(number: int, action: str) -> float:
    return 1.0 if ("search", "analysis", "coding")[number % 3] == action else 0.0


# ---------------------------------------------------------------- load generator
async def _pair(client: Any, url: str, number: int, scheduled: float | None) -> float:
    start = time.perf_counter()
    body = {"contextFeatures": context(number), "actions": ACTIONS}
    answer = await client.post(f"{url}/loops/{LOOP}/rank", json=body)
    ranked = time.perf_counter()
    answer.raise_for_status()
    decision = answer.json()
    value = reward_of(number, decision["rewardActionId"])
    rewarded = await client.post(
        f"{url}/loops/{LOOP}/events/{decision['eventId']}/reward", json={"value": value}
    )
    rewarded.raise_for_status()
    return ranked - (scheduled if scheduled is not None else start)


async def _drive(url: str, mode: str, pairs: int, concurrency: int, rate: float,
                 time_limit: float) -> tuple[float, list[float]]:  # fmt: skip
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await _pair(client, url, 0, None)  # warm up: create the loop, open connections
        started = time.perf_counter()
        deadline = started + time_limit
        if mode == "max":
            counter = iter(range(1, pairs + 1))

            async def worker() -> None:
                for number in counter:
                    if time.perf_counter() > deadline:
                        return
                    latencies.append(await _pair(client, url, number, None))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            gate = asyncio.Semaphore(concurrency * 8)

            async def scheduled(number: int, at: float) -> None:
                async with gate:
                    latencies.append(await _pair(client, url, number, at))

            tasks = []
            for number in range(1, pairs + 1):
                at = started + number / rate
                if at > deadline:
                    break
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(scheduled(number, at)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return elapsed, latencies


def _load_process(url: str, mode: str, pairs: int, concurrency: int, rate: float,
                  time_limit: float, results: Any) -> None:  # fmt: skip
    results.put(asyncio.run(_drive(url, mode, pairs, concurrency, rate, time_limit)))


def generate_load(url: str, mode: str, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Run the load generator in its own process; (elapsed seconds, rank latencies)."""
    context_ = multiprocessing.get_context("spawn")
    results = context_.Queue()
    process = context_.Process(
        target=_load_process,
        args=(url, mode, args.pairs, args.concurrency, args.rate, args.time_limit, results),
    )
    process.start()
    outcome = results.get(timeout=args.time_limit + 120)
    process.join(30)
    return outcome


# ------------------------------------------------------------------------ service
def start_service(location: str, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket_port() as port:
        pass
    command = [sys.executable, "-m", "rlmemory", "serve", "--db", location, "--host",
               "127.0.0.1", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    source = str(Path(__file__).resolve().parent.parent / "src")
    paths = [source, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the service did not start")


class socket_port:
    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return int(self.socket.getsockname()[1])

    def __exit__(self, *exc: Any) -> None:
        self.socket.close()


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


# --------------------------------------------------------------------- in-process
def in_process(location: str, pairs: int) -> tuple[float, list[float]]:
    from rlmemory.service.loops import LoopRegistry
    from rlmemory.store import open_store

    with open_store(location) as store:
        loop = LoopRegistry(store).get(LOOP, create=True)
        latencies = []
        started = time.perf_counter()
        for number in range(pairs):
            start = time.perf_counter()
            answer = loop.rank(context(number), ACTIONS)
            latencies.append(time.perf_counter() - start)
            loop.reward(answer.event_id, reward_of(number, answer.reward_action_id))
        return time.perf_counter() - started, latencies


# ------------------------------------------------------------------------ stores
class Stores:
    """Fresh store locations: SQLite files in a temporary folder, PostgreSQL databases."""

    def __init__(self, postgres_url: str | None) -> None:
        self.folder = tempfile.mkdtemp(prefix="bench_service_")
        self.postgres_url = postgres_url
        self.created: list[str] = []

    def fresh(self, backend: str) -> str:
        if backend == "sqlite":
            return str(Path(self.folder) / f"{uuid.uuid4().hex}.db")
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres_url)
        name = f"rlm_bench_{uuid.uuid4().hex[:12]}"
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        import psycopg
        from sqlalchemy.engine import make_url

        plain = make_url(self.postgres_url).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as c:
            for name in self.created:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentiles(latencies: list[float]) -> tuple[str, str, str]:
    values = np.percentile(np.asarray(latencies) * 1000, [50, 99, 99.9])
    return tuple(f"{v:.2f}" for v in values)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000, help="pairs per run (bounded)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in max mode")
    parser.add_argument("--rate", type=float, default=500.0, help="pairs/s in paced mode")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--postgres-url", default=os.environ.get("RLMEMORY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", default="1,2", help="worker counts to run")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    stores = Stores(args.postgres_url)
    rows = []
    try:
        for backend in backends:
            elapsed, latencies = in_process(stores.fresh(backend), min(args.pairs, 2000))
            rows.append([backend, "in-process", "-", f"{len(latencies) / elapsed:,.0f}",
                         *percentiles(latencies)])  # fmt: skip
            for workers in (int(w) for w in args.workers.split(",")):
                for mode in ("max", "paced"):
                    process, url = start_service(stores.fresh(backend), workers)
                    try:
                        elapsed, latencies = generate_load(url, mode, args)
                    finally:
                        stop(process)
                    label = mode if mode == "max" else f"paced {args.rate:.0f}/s"
                    rows.append([backend, label, workers, f"{len(latencies) / elapsed:,.0f}",
                                 *percentiles(latencies)])  # fmt: skip
                    print(" | ".join(str(cell) for cell in rows[-1]), file=sys.stderr)
    finally:
        stores.drop_all()
    print(machine_description(["fastapi", "uvicorn", "httpx", "sqlalchemy", "psycopg"]))
    print(f"load average before/after: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"pairs per run: {args.pairs}; max-mode clients: {args.concurrency}")
    print()
    print(markdown_table(
        ["store", "mode", "workers", "pairs/s", "rank p50 ms", "rank p99 ms", "rank p99.9 ms"],
        rows,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
