"""Reward curves as PNG files (matplotlib, no display needed).

Uses matplotlib's object API with the Agg canvas, so it never switches the
backend of a program that imported pyplot.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "curve.png")
>>> plot_reward_curve([0.4, 0.5, 0.8, 0.75], path, title="router", window=2)
>>> open(path, "rb").read(4) == b"\\x89PNG"
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["fitted_range", "moving_average", "plot_demo_history", "plot_reward_curve"]


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start).

    >>> moving_average([1.0, 3.0, 5.0], 2).tolist()
    [1.0, 2.0, 4.0]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    data = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], data]))
    ends = np.arange(1, data.size + 1)
    starts = np.maximum(0, ends - window)
    averages: np.ndarray = (sums[ends] - sums[starts]) / (ends - starts)
    return averages


def plot_reward_curve(
    rewards: Sequence[float],
    path: str | Path,
    *,
    title: str,
    window: int = 50,
    resumed_at: int | None = None,
) -> None:
    """Write a PNG of per-request rewards and their moving average to ``path``.

    ``resumed_at`` (a request number) draws a vertical line where a run resumed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(rewards) == 0:
        raise ValueError("no rewards to plot")
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    numbers = np.arange(1, len(rewards) + 1)
    axes.plot(numbers, rewards, ".", markersize=2, alpha=0.35, label="reward per request")
    axes.plot(numbers, moving_average(rewards, window), linewidth=2, label=f"mean of last {window}")
    if resumed_at:
        axes.axvline(resumed_at, color="grey", linestyle="--", linewidth=1, label="resumed")
    axes.set_xlabel("request")
    axes.set_ylabel("reward")
    axes.set_ylim(*fitted_range([*rewards]))
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(Path(path), format="png")


def fitted_range(values: Sequence[float], margin: float = 0.08) -> tuple[float, float]:
    """A y-range around ``values`` with ``margin`` of their span on each side (at least
    0.05 wide), so that a curve moving between 0.80 and 0.90 is not drawn flat.

    >>> [round(bound, 3) for bound in fitted_range([0.8, 0.9])]
    [0.792, 0.908]
    """
    low, high = float(np.min(values)), float(np.max(values))
    span = max(high - low, 0.05)
    return low - margin * span, high + margin * span


def plot_demo_history(
    rewards: Sequence[float],
    routed_right: Sequence[bool],
    path: str | Path,
    *,
    title: str,
    best_reward: float | None = None,
    exploration_cap: float | None = None,
    resumed_at: int | None = None,
    window: int = 50,
) -> None:
    """Write the demo's two curves to ``path`` as a PNG, one panel each.

    Top: the share of requests sent to the right sub-agent (moving average), with the
    best possible (100 %) and, when given, the most that exploring at a fixed rate
    allows. Bottom: the reward (moving average) with the best possible reward.
    ``resumed_at`` (a request number) marks where this run resumed the stored ones.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(rewards) == 0 or len(rewards) != len(routed_right):
        raise ValueError("need one routed_right flag per reward, and at least one reward")
    numbers = np.arange(1, len(rewards) + 1)
    share = 100.0 * moving_average([float(flag) for flag in routed_right], window)
    reward = moving_average(rewards, window)
    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(numbers, share, linewidth=2, color="tab:blue", label=f"mean of last {window}")
    top.axhline(100.0, color="tab:green", linewidth=1, label="best possible")
    # The first few averages are over a handful of requests; the range ignores them.
    settled = min(10, len(rewards) - 1)
    share_marks = [*share[settled:], 100.0]
    if exploration_cap is not None:
        top.axhline(
            100.0 * exploration_cap,
            color="tab:orange",
            linestyle=":",
            linewidth=1.5,
            label="expected while exploring",
        )
        share_marks.append(100.0 * exploration_cap)
    top.set_ylim(*fitted_range(share_marks))
    top.set_ylabel("routed to the right\nsub-agent (%)")
    bottom.plot(numbers, reward, linewidth=2, color="tab:purple", label=f"mean of last {window}")
    reward_marks = [*reward[settled:]]
    if best_reward is not None:
        bottom.axhline(best_reward, color="tab:green", linewidth=1, label="best possible")
        reward_marks.append(best_reward)
    bottom.set_ylim(*fitted_range(reward_marks))
    bottom.set_ylabel("reward per request")
    bottom.set_xlabel("request")
    for axes in (top, bottom):
        if resumed_at:
            axes.axvline(resumed_at, color="grey", linestyle="--", linewidth=1, label="resumed")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
    top.set_title(title)
    figure.tight_layout()
    figure.savefig(Path(path), format="png")
