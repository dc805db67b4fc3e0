"""Child process for the exactly-once tests: one coordinator process on a shared store.

Run as ``python exactly_once_worker.py LOCATION MODE WORKER``. The child opens the
store, builds the coordinator :data:`AGENT` (a LinUCB router over :data:`SUB_AGENTS`),
prints ``ready``, waits for one line on standard input (so that all children work at
the same moment), then:

* ``batch``    -- loops ``learn_from_batch(5)`` until no unlearned feedback is left;
* ``requests`` -- :data:`REQUESTS_PER_WORKER` requests, each given feedback: every
  other one through ``update_from_feedback``, the rest in its interaction's
  ``feedback`` column, with ``learn_from_batch(5)`` after every fifth request;
  then the same loop as ``batch``;
* ``expire``   -- ``apply_expired_rewards`` with a clock past every deadline;
* ``explicit`` -- ``reward(decision_id, 1.0)`` for the pending decisions whose id has
  the parity of ``WORKER``, then ``apply_expired_rewards`` as ``expire``;
* ``relearn``  -- :func:`rlmemory.ops.history.relearn` from version 1.

Then it prints ``done`` and exits 0; an exception exits non-zero with its traceback.
"""

from __future__ import annotations

import asyncio
import sys
import time

AGENT = "router"
SUB_AGENTS = ("a", "b")
REQUESTS_PER_WORKER = 25
REWARD_WAIT = 3600.0


def sub_agents(names: tuple[str, ...] = SUB_AGENTS) -> dict[str, object]:
    """Sub-agents that answer at once: the response names the sub-agent."""
    return {name: (lambda request, name=name: f"{name}: {request}") for name in names}


async def build(store: object, *, reward_wait: float | None = None) -> object:
    from rlmemory.coordinator import create_rl_agent_architecture

    return await create_rl_agent_architecture(
        None, store, sub_agents(), "linucb", seed=1, name=AGENT, reward_wait=reward_wait
    )


async def learn_until_done(coordinator: object, store: object) -> None:
    while store.get_unlearned_feedback(AGENT, 1):
        await coordinator.learn_from_batch(5)


async def work(location: str, mode: str, worker: int) -> None:
    from rlmemory.store import open_store

    store = open_store(location)
    waiting = mode in ("expire", "explicit")
    coordinator = await build(store, reward_wait=REWARD_WAIT if waiting else None)
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "batch":
        await learn_until_done(coordinator, store)
    elif mode == "requests":
        for number in range(REQUESTS_PER_WORKER):
            request = f"request {worker}-{number}"
            result = await coordinator.process_request(request)
            if number % 2:
                await coordinator.update_from_feedback(
                    request, result["response"], "great, thanks", decision_id=result["decision_id"]
                )
            else:
                store.set_interaction_feedback(result["interaction_id"], "great, thanks")
            if number % 5 == 4:
                await coordinator.learn_from_batch(5)
        await learn_until_done(coordinator, store)
    elif mode in ("expire", "explicit"):
        if mode == "explicit":
            for decision in store.iter_agent_decisions(AGENT):
                if decision["id"] % 2 == worker % 2:
                    await coordinator.reward(decision["id"], 1.0)
        coordinator.apply_expired_rewards(now=time.time() + 2 * REWARD_WAIT)
    elif mode == "relearn":
        from rlmemory.ops.history import relearn

        relearn(store, coordinator.rl_agent, 1)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    store.close()


if __name__ == "__main__":
    location, mode, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(work(location, mode, worker))
    print("done", flush=True)
