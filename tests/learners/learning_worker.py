"""Child process for the several-processes learning tests: learns into a shared store.

Run as ``python learning_worker.py LOCATION MODE WORKER COUNT``. The child opens the
store, builds its learner (which loads what is stored now), prints ``ready``, waits
for one line on standard input (so that all children learn at the same time), then:

* ``q``      -- COUNT terminal Q-learning updates of state ``s``, action ``a``, reward
  :data:`Q_REWARD`, learning rate :data:`Q_LEARNING_RATE`, textbook update from
  :data:`Q_INITIAL_VALUE`;
* ``linucb`` -- COUNT LinUCB updates of action ``a`` on features ``[1, 0]`` with reward
  ``WORKER + 1``;
* ``linucb-snapshots`` -- the same with a snapshot every :data:`SNAPSHOT_EVERY` updates
  (snapshots delete the steps they cover while the other processes append theirs).
* ``squarecb`` -- COUNT SquareCB updates of action ``a`` on features ``[1, 0]`` with
  reward :data:`SQUARECB_REWARD` and a small learning rate (the same in every worker,
  so the result of all updates does not depend on their order).

Then it prints ``done`` and exits 0; an exception exits non-zero with its traceback.
"""

from __future__ import annotations

import sys

AGENT = "router"
ACTIONS = ["a", "b"]
Q_LEARNING_RATE = 0.01
Q_REWARD = 1.0
Q_INITIAL_VALUE = 0.0
SNAPSHOT_EVERY = 7
SQUARECB_REWARD = 1.0
SQUARECB_LEARNING_RATE = 0.01


def main(location: str, mode: str, worker: int, count: int) -> None:
    from rlmemory.learners.bandits import LinUCBAgent
    from rlmemory.learners.qlearning import QLearningAgent
    from rlmemory.store import open_store

    store = open_store(location)
    if mode == "q":
        learner = QLearningAgent(
            AGENT,
            None,
            store,
            None,
            None,
            list(ACTIONS),
            learning_rate=Q_LEARNING_RATE,
            initial_value=Q_INITIAL_VALUE,
            replace_initial_value=False,
        )

        def step() -> None:
            learner.update_q_value("s", "a", Q_REWARD)

    elif mode in ("linucb", "linucb-snapshots"):
        every = SNAPSHOT_EVERY if mode == "linucb-snapshots" else 1000
        bandit = LinUCBAgent(AGENT, store, list(ACTIONS), dimension=2, snapshot_every=every)

        def step() -> None:
            bandit.update([1.0, 0.0], "a", float(worker + 1))

    elif mode == "squarecb":
        from rlmemory.learners.squarecb import SquareCBAgent

        square = SquareCBAgent(
            AGENT, store, list(ACTIONS), dimension=2, learning_rate=SQUARECB_LEARNING_RATE
        )

        def step() -> None:
            square.update([1.0, 0.0], "a", SQUARECB_REWARD)

    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        step()
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    location_arg, mode_arg, worker_arg, count_arg = sys.argv[1:5]
    main(location_arg, mode_arg, int(worker_arg), int(count_arg))
