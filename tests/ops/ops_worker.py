"""Child-process writer for the backup-under-load test.

Run as ``python ops_worker.py LOCATION WORKER``. The child opens the store, prints
``ready``, and writes units until its standard input is closed or says ``stop``:
each unit is one transaction holding a decision, a reward and an interaction that
name the worker and the unit's sequence number. After each commit it prints the
sequence number, so the parent can wait for progress without sleeping.
"""

from __future__ import annotations

import os
import selectors
import sys


def main(location: str, worker: int) -> None:
    from rlmemory.store import open_store

    store = open_store(location)
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    sequence = 0
    while True:
        if selector.select(timeout=0):
            line = sys.stdin.readline()
            if not line or line.strip() == "stop":
                break
        tag = f"w{worker}-{sequence}"
        with store.transaction():
            decision = store.save_agent_decision(
                "router", tag, f"action{worker}", {"w": worker}, sequence, features=[1.0, 2.0]
            )
            store.save_agent_reward("router", sequence / 1000, {"worker": worker}, decision)
            store.save_agent_interaction(
                "router", f"request {tag}", f"response {tag}", None, decision
            )
            store.save_q_values("router", {f"w{worker}": {"seq": float(sequence)}})
        print(sequence, flush=True)
        sequence += 1
    store.close()
    print("done", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
