"""Figures for the dashboard: per loop, live counts and per-minute series from recent decisions.

The page (``dashboard.html``, served by the app, no network needed) polls
:func:`dashboard_data` and draws it as inline SVG. Series cover the last
:data:`WINDOW_MINUTES` minutes and are computed from at most :data:`RECENT_DECISIONS`
newest decisions per loop, so the cost of a refresh does not grow with the history.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rlmemory.service.loops import LoopRegistry, apprentice_report

WINDOW_MINUTES = 30
RECENT_DECISIONS = 5000


def loop_series(decisions: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """Per-minute ranks, learned rewards, mean reward and action shares (oldest minute first).

    >>> rows = [{"timestamp": 130.0, "selected_action": "a",
    ...          "reward": {"status": "observed", "value": 1.0, "rewarded_at": 140.0}}]
    >>> series = loop_series(rows, now=150.0)
    >>> series["ranks"][-1], series["rewards"][-1], series["meanReward"][-1]
    (1, 1, 1.0)
    >>> sum(series["actions"]["a"]), len(series["actions"]["a"])
    (1, 30)
    """
    start = (int(now // 60) - WINDOW_MINUTES + 1) * 60
    ranks = [0] * WINDOW_MINUTES
    rewards = [0] * WINDOW_MINUTES
    reward_sums = [0.0] * WINDOW_MINUTES
    shares: dict[str, list[int]] = {}
    for decision in decisions:
        minute = int((decision["timestamp"] - start) // 60)
        if 0 <= minute < WINDOW_MINUTES:
            ranks[minute] += 1
            shares.setdefault(decision["selected_action"], [0] * WINDOW_MINUTES)[minute] += 1
        reward = decision["reward"]
        if isinstance(reward, dict) and reward.get("status") in ("observed", "defaulted"):
            learned_minute = int((float(reward.get("rewarded_at", 0.0)) - start) // 60)
            if 0 <= learned_minute < WINDOW_MINUTES:
                rewards[learned_minute] += 1
                reward_sums[learned_minute] += float(reward["value"])
    mean = [s / n if n else None for s, n in zip(reward_sums, rewards, strict=True)]
    return {
        "start": start,
        "ranks": ranks,
        "rewards": rewards,
        "meanReward": mean,
        "actions": dict(sorted(shares.items())),
    }


def dashboard_data(registry: LoopRegistry) -> dict[str, Any]:
    """Everything the dashboard draws, for every loop."""
    now = time.time()
    loops = []
    for name in registry.names():
        loop = registry.get(name)
        recent = registry.store.get_agent_decisions(name, limit=RECENT_DECISIONS)
        pending_by_action = Counter(
            d["selected_action"]
            for d in recent
            if isinstance(d["reward"], dict) and d["reward"].get("status") == "pending"
        )
        loops.append(
            {
                **loop.stats(),
                "series": loop_series(recent, now),
                "pendingByAction": dict(pending_by_action),
                "versions": registry.store.list_versions(name),
                "apprentice": apprentice_report(registry.store, name)
                if loop.settings.learning_mode == "apprentice"
                else None,
            }
        )
    return {"generated": now, "windowMinutes": WINDOW_MINUTES, "loops": loops}
