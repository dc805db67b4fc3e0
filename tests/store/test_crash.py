"""A writer killed with SIGKILL at random moments never loses an acknowledged write.

A child interpreter (``store_worker.py`` in ``crash`` mode) writes in a loop and prints
an acknowledgement after each write returns. The parent kills it at a random point,
then opens the store: it must open, SQLite's ``PRAGMA integrity_check`` must say ``ok``,
and every acknowledged Q-value and reward must be there. Then the next writer goes on
in the same store, so later rounds also read past whatever the earlier kills left.
The next writer is started while the current one runs, to hide interpreter start-up.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WORKER_SCRIPT = Path(__file__).with_name("store_worker.py")
AGENT = "router"
KILLS = 20
ROUND_STRIDE = 1_000_000  # each round writes its own range of state indexes


class Writer:
    """One crash-mode child: started, released, killed, and its acknowledgements parsed."""

    def __init__(self, location: str, start: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), location, "crash", "0", str(start), "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.acked_states: dict[str, float] = {}
        self.acked_reward_ids: set[int] = set()

    def wait_ready(self) -> None:
        if self.process.stdout.readline().strip() != "ready":
            self.process.wait(60)
            pytest.fail(f"crash writer could not open the store:\n{self.process.stderr.read()}")

    def release(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def read_acknowledgement(self) -> None:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(60)
            pytest.fail(f"crash writer died by itself:\n{self.process.stderr.read()}")
        self._record(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(60)
        for line in self.process.stdout.read().splitlines():
            self._record(line)
        self.process.stdout.close()
        self.process.stderr.close()
        self.process.stdin.close()

    def acknowledgements(self) -> int:
        return len(self.acked_states) + len(self.acked_reward_ids)

    def _record(self, line: str) -> None:
        kind, index, *rest = line.split()
        if kind == "q":
            self.acked_states[f"s{index}"] = float(index)
        elif kind == "r":
            self.acked_reward_ids.add(int(rest[0]))


def assert_sqlite_integrity(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def assert_every_acknowledged_write_is_there(
    make_store: Any, acked_states: dict[str, float], acked_reward_ids: set[int], round_index: int
) -> None:
    if make_store.sqlite_path is not None:
        assert_sqlite_integrity(make_store.sqlite_path)
    with make_store() as store:
        table = store.get_q_table(AGENT) or {}
        reward_ids = {row["id"] for row in store.get_agent_rewards(AGENT, limit=10**7)}
    lost_states = sorted(
        state for state, value in acked_states.items() if table.get(state) != {"a": value}
    )
    assert not lost_states, f"after kill {round_index}: acknowledged states lost: {lost_states}"
    lost_rewards = sorted(acked_reward_ids - reward_ids)
    assert not lost_rewards, f"after kill {round_index}: acknowledged rewards lost: {lost_rewards}"


@pytest.mark.slow
def test_sigkilled_writer_loses_no_acknowledged_write(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    rng = random.Random(20_240_601)
    make_store().close()
    acked_states: dict[str, float] = {}
    acked_reward_ids: set[int] = set()
    writer = upcoming = Writer(make_store.location, 0, subprocess_env)
    try:
        for round_index in range(KILLS):
            writer = upcoming
            writer.wait_ready()
            writer.release()
            if round_index + 1 < KILLS:
                next_start = (round_index + 1) * ROUND_STRIDE
                upcoming = Writer(make_store.location, next_start, subprocess_env)
            target = rng.randint(1, 40)
            while writer.acknowledgements() < target:
                writer.read_acknowledgement()
            time.sleep(rng.uniform(0.0, 0.003))  # land the kill anywhere inside the next writes
            writer.kill()
            acked_states.update(writer.acked_states)
            acked_reward_ids |= writer.acked_reward_ids
            assert_every_acknowledged_write_is_there(
                make_store, acked_states, acked_reward_ids, round_index
            )
    finally:
        for leftover in (writer, upcoming):
            if leftover.process.poll() is None:
                leftover.kill()
    assert len(acked_states) >= KILLS
