"""A writer killed with SIGKILL at random moments never loses an acknowledged write.

A child process writes in a loop (``save_q_values`` of a new state, then
``save_agent_reward``) and sends an acknowledgement after each write returns. The parent
kills it with SIGKILL at a random point, then opens the store: it must open, SQLite's
``PRAGMA integrity_check`` must say ``ok``, and every acknowledged Q-value and reward
must be there. The next writer then goes on in the same store, so later rounds also
read and write past whatever the earlier kills left behind.

Children are forked from the test process (``multiprocessing`` "fork" context) rather
than started as new interpreters: importing SQLAlchemy and numpy in every child cost
about a second per kill. A forked child opens its own store and shares nothing with the
parent's (the parent has no store open while a child runs), and SIGKILL leaves exactly
what it would leave of an independent interpreter: no cleanup, no flush, torn writes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import sqlite3
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

AGENT = "router"
KILLS = 20
ROUND_STRIDE = 1_000_000  # each round writes its own range of state indexes

_FORK = multiprocessing.get_context("fork")


def _write_until_killed(location: str, start: int, acknowledgements: Connection) -> None:
    """Child process body: write forever, acknowledging each write after it returns."""
    from rlmemory.store import open_store

    store = open_store(location)
    index = start
    while True:
        store.save_q_values(AGENT, {f"s{index}": {"a": float(index)}})
        acknowledgements.send_bytes(f"q {index}".encode())
        reward_id = store.save_agent_reward(AGENT, float(index), {"i": index})
        acknowledgements.send_bytes(f"r {index} {reward_id}".encode())
        index += 1


class Writer:
    """One forked writer: started, killed, and its acknowledgements collected."""

    def __init__(self, location: str, start: int) -> None:
        self._receiver, sender = _FORK.Pipe(duplex=False)
        self.process = _FORK.Process(
            target=_write_until_killed, args=(location, start, sender), daemon=True
        )
        self.process.start()
        sender.close()
        self.acked_states: dict[str, float] = {}
        self.acked_reward_ids: set[int] = set()

    def read_acknowledgement(self) -> None:
        try:
            message = self._receiver.recv_bytes()
        except EOFError:
            self.process.join(30)
            pytest.fail(f"writer died by itself (exit code {self.process.exitcode}); see stderr")
        self._record(message)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(30)
        with contextlib.suppress(EOFError):
            while self._receiver.poll():
                self._record(self._receiver.recv_bytes())
        self._receiver.close()

    def acknowledgements(self) -> int:
        return len(self.acked_states) + len(self.acked_reward_ids)

    def _record(self, message: bytes) -> None:
        kind, index, *rest = message.decode().split()
        if kind == "q":
            self.acked_states[f"s{index}"] = float(index)
        else:
            self.acked_reward_ids.add(int(rest[0]))


def assert_sqlite_integrity(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def assert_every_acknowledged_write_is_there(
    make_store: Any, acked_states: dict[str, float], acked_reward_ids: set[int], kill: int
) -> None:
    if make_store.sqlite_path is not None:
        assert_sqlite_integrity(make_store.sqlite_path)
    with make_store() as store:
        table = store.get_q_table(AGENT) or {}
        reward_ids = {row["id"] for row in store.get_agent_rewards(AGENT, limit=10**7)}
    lost_states = sorted(
        state for state, value in acked_states.items() if table.get(state) != {"a": value}
    )
    assert not lost_states, f"after kill {kill}: acknowledged states lost: {lost_states}"
    lost_rewards = sorted(acked_reward_ids - reward_ids)
    assert not lost_rewards, f"after kill {kill}: acknowledged rewards lost: {lost_rewards}"


@pytest.mark.slow
def test_sigkilled_writer_loses_no_acknowledged_write(make_store: Any) -> None:
    rng = random.Random(20_240_601)
    make_store().close()
    acked_states: dict[str, float] = {}
    acked_reward_ids: set[int] = set()
    for kill in range(KILLS):
        writer = Writer(make_store.location, kill * ROUND_STRIDE)
        try:
            target = rng.randint(1, 40)
            while writer.acknowledgements() < target:
                writer.read_acknowledgement()
            time.sleep(rng.uniform(0.0, 0.003))  # land the kill anywhere inside the next writes
        finally:
            writer.kill()
        acked_states.update(writer.acked_states)
        acked_reward_ids |= writer.acked_reward_ids
        assert_every_acknowledged_write_is_there(make_store, acked_states, acked_reward_ids, kill)
    assert len(acked_states) >= KILLS
    assert acked_reward_ids
