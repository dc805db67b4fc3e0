"""Child-process writer for the concurrency tests: opens a store by location and writes.

Run as ``python store_worker.py LOCATION MODE WORKER START COUNT``. The child opens the
store, prints ``ready``, waits for one line on standard input (so that all children start
writing together), then writes:

* ``q-states``  -- COUNT ``save_q_values`` calls, each a new state ``w{WORKER}-s{i}``;
* ``q-actions`` -- COUNT ``save_q_values`` calls on shared states ``s{i}``, action ``w{WORKER}``;
* ``rewards``   -- COUNT ``save_agent_reward`` appends, components ``{"worker", "i"}``;
* ``steps``     -- COUNT ``append_learner_steps`` calls, key ``w{WORKER}``, values ``[i]``.

Then it prints ``done`` and exits 0; any exception escapes with a traceback and a
non-zero exit status, which the parent reports.
"""

from __future__ import annotations

import sys

AGENT = "router"


def main(location: str, mode: str, worker: int, start: int, count: int) -> None:
    from rlmemory.store import open_store

    store = open_store(location)
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "q-states":
        for i in range(start, start + count):
            store.save_q_values(AGENT, {f"w{worker}-s{i}": {"a": float(i), "b": -float(i)}})
    elif mode == "q-actions":
        for i in range(start, start + count):
            store.save_q_values(AGENT, {f"s{i}": {f"w{worker}": float(worker * 100_000 + i)}})
    elif mode == "rewards":
        for i in range(start, start + count):
            store.save_agent_reward(AGENT, float(i), {"worker": worker, "i": i})
    elif mode == "steps":
        import numpy as np

        for i in range(start, start + count):
            store.append_learner_steps(AGENT, [(f"w{worker}", np.array([float(i)]))])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    location_arg, mode_arg, worker_arg, start_arg, count_arg = sys.argv[1:6]
    main(location_arg, mode_arg, int(worker_arg), int(start_arg), int(count_arg))
