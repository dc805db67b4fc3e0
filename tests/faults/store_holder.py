"""Child process for the timeout tests: holds a learner's lock, or waits for it.

Run as ``python store_holder.py LOCATION ROLE [BUSY_SECONDS]``:

* ``hold`` -- opens the store, begins a transaction, takes ``lock_learner("router")``,
  writes one reward, prints ``locked`` and waits for a line on standard input (the
  test freezes it with SIGSTOP meanwhile), then commits and prints ``done``.
* ``hold-lock-only`` -- the same without the write: only the learner lock is held.
* ``correct`` -- opens the store with a busy timeout of BUSY_SECONDS, corrects reward 1
  with :func:`rlmemory.ops.history.correct_reward` and prints the exception it got
  (``none`` if none).
* ``wait`` -- opens the store with a busy timeout of BUSY_SECONDS, tries the same in a
  transaction and prints the name of the exception it got (``none`` if none), and
  then whether a write made before the failing call inside one transaction survived:
  ``silent-loss`` if the block exited normally yet stored nothing, ``raised`` if
  the block raised, ``kept`` if it committed what it had written.
"""

from __future__ import annotations

import contextlib
import sys

AGENT = "router"


def open_with_timeout(location: str, seconds: float) -> object:
    from rlmemory.store import open_store

    option = "lock_timeout" if location.startswith("files://") else "busy_timeout"
    return open_store(location, **{option: seconds})


def hold(location: str, write: bool = True) -> None:
    from rlmemory.store import open_store

    store = open_store(location)
    with store.transaction():
        store.lock_learner(AGENT)
        if write:
            store.save_agent_reward(AGENT, 1.0, {"by": "holder"})
        print("locked", flush=True)
        sys.stdin.readline()
    print("done", flush=True)


def wait(location: str, seconds: float) -> None:
    from rlmemory.errors import StoreError

    try:
        # The file store takes its folder lock to open: it may be busy already here.
        store = open_with_timeout(location, seconds)
        with store.transaction():
            store.lock_learner(AGENT)
            store.save_agent_reward(AGENT, 2.0, {"by": "waiter"})
        print("none", flush=True)
    except Exception as error:
        print(type(error).__name__, flush=True)
    if location.startswith("postgresql"):
        # Inside one transaction: a write, then a call that times out on the server and
        # is swallowed. The block must not exit normally having stored nothing.
        before = store.agent_stats("waiter")["rewards"]
        try:
            with store.transaction():
                store.save_agent_reward("waiter", 3.0, {})
                with contextlib.suppress(StoreError):
                    store.lock_learner(AGENT)
            outcome = "kept" if store.agent_stats("waiter")["rewards"] > before else "silent-loss"
        except StoreError as error:
            outcome = f"raised {type(error).__name__}"
        print(outcome, flush=True)
        store.close()


def correct(location: str, seconds: float) -> None:
    from rlmemory.ops.history import correct_reward

    try:
        with open_with_timeout(location, seconds) as store:
            correct_reward(store, 1, 0.25)
        print("none", flush=True)
    except Exception as error:
        print(type(error).__name__, flush=True)


if __name__ == "__main__":
    location, role = sys.argv[1], sys.argv[2]
    if role == "hold":
        hold(location)
    elif role == "hold-lock-only":
        hold(location, write=False)
    elif role == "correct":
        correct(location, float(sys.argv[3]))
    else:
        wait(location, float(sys.argv[3]))
