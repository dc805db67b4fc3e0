"""A frozen process holding a learner's lock makes the others fail fast, on every backend.

A child takes ``lock_learner`` inside a transaction and is frozen with SIGSTOP (as a
debugger, a paused container or a swapped-out worker would freeze it). Another child
opened with a busy timeout of 2 s must get ``StoreBusyError`` — not wait forever, as
PostgreSQL did before it set ``lock_timeout`` from ``busy_timeout``. Every wait is
bounded by the subprocess timeouts below; the frozen child is resumed and ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOLDER = Path(__file__).with_name("store_holder.py")
BOUND_SECONDS = 60  # far above the 2 s busy timeout: only a wait without end reaches it


@contextlib.contextmanager
def frozen_lock_holder(
    location: str, env: dict[str, str], role: str = "hold"
) -> Iterator[subprocess.Popen]:
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), location, role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = holder.stdout.readline().strip()
        if line != "locked":
            holder.kill()
            pytest.fail(f"the lock holder did not start: {holder.stderr.read()}")
        os.kill(holder.pid, signal.SIGSTOP)
        yield holder
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait(BOUND_SECONDS)


def test_a_frozen_lock_holder_makes_others_raise_store_busy_error(
    make_store: Any, backend: str, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    with frozen_lock_holder(make_store.location, subprocess_env):
        waiter = subprocess.run(
            [sys.executable, str(HOLDER), make_store.location, "wait", "2"],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=BOUND_SECONDS,
        )
    assert waiter.returncode == 0, waiter.stderr
    lines = waiter.stdout.split("\n")
    assert lines[0] == "StoreBusyError", waiter.stdout + waiter.stderr
    if backend == "postgresql":
        # The timeout inside a transaction fails the block: never a silent rollback.
        assert lines[1] == "raised TransactionAbortedError", waiter.stdout
    with make_store() as store:
        assert store.get_agent_rewards("router") == []  # the frozen holder never committed


def test_a_correction_waits_for_the_learner_lock_and_times_out_while_it_is_held(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    """correct_reward takes the agent's learner lock (on PostgreSQL it read and wrote
    without it, so a learner in another process could interleave); a frozen holder makes
    it a StoreBusyError, and the reward is left as it was."""
    with make_store() as store:
        decision = store.save_agent_decision("router", "s", "a", {"a": 0.0}, None, propensity=1.0)
        reward_id = store.save_agent_reward("router", 1.0, {}, decision_id=decision)
    assert reward_id == 1
    # Only the lock is held: no row the correction writes is locked by the holder.
    with frozen_lock_holder(make_store.location, subprocess_env, "hold-lock-only"):
        corrector = subprocess.run(
            [sys.executable, str(HOLDER), make_store.location, "correct", "2"],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=BOUND_SECONDS,
        )
    assert corrector.stdout.split("\n")[0] == "StoreBusyError", corrector.stdout + corrector.stderr
    with make_store() as store:
        assert store.get_agent_reward(reward_id)["reward"] == 1.0
