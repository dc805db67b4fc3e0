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

__all__ = ["moving_average", "plot_reward_curve"]


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
    return (sums[ends] - sums[starts]) / (ends - starts)


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
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(Path(path), format="png")
