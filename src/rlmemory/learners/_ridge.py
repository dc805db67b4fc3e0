"""Per-action ridge regression with inverses kept up to date by Sherman–Morrison.

Each action ``k`` has ``A_k = ridge * I + sum_i w_i x_i x_i^T`` and
``b_k = sum_i w_i r_i x_i``. We keep ``A_k^{-1}`` (never ``A_k``) so that an update
costs O(d^2) and scoring every action for one context is a few vectorised numpy calls.
``theta_k = A_k^{-1} b_k`` is cached and recomputed from the two stored arrays in the
same way on update and on load, so a model restored from its arrays scores exactly
like the one that wrote them.

>>> import numpy as np
>>> arms = RidgeArms(dimension=2, ridge=1.0)
>>> arms.add_action()
>>> arms.update(0, np.array([1.0, 0.0]), 1.0)
>>> arms.means(np.array([1.0, 0.0])).round(3).tolist()
[0.5]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Suffixes of the per-action array keys in the store: ``f"{action}/{suffix}"``.
ARRAY_SUFFIXES = ("A_inv", "b", "count")


def array_keys(action: str) -> list[str]:
    """The store keys holding one action's statistics."""
    return [f"{action}/{suffix}" for suffix in ARRAY_SUFFIXES]


class RidgeArms:
    """Stacked ridge models, one per action, indexed by position."""

    def __init__(self, dimension: int, ridge: float) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        if not np.isfinite(ridge) or ridge <= 0:
            raise ValueError(f"ridge must be a positive finite number, got {ridge}")
        self.dimension = dimension
        self.ridge = float(ridge)
        self.A_inv = np.empty((0, dimension, dimension))
        self.b = np.empty((0, dimension))
        self.theta = np.empty((0, dimension))
        self.counts = np.empty(0, dtype=np.int64)

    def add_action(self, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        """Append one action: fresh (``A^{-1} = I / ridge``, ``b = 0``) or from stored arrays."""
        d = self.dimension
        if arrays is None:
            A_inv = np.eye(d) / self.ridge
            b = np.zeros(d)
            count = 0
        else:
            A_inv, b, count = self._checked(arrays)
        self.A_inv = np.concatenate([self.A_inv, A_inv[None]])
        self.b = np.concatenate([self.b, b[None]])
        self.theta = np.concatenate([self.theta, (A_inv @ b)[None]])
        self.counts = np.append(self.counts, np.int64(count))

    def set_action(self, k: int, arrays: Mapping[str, np.ndarray] | None) -> None:
        """Replace action ``k``'s statistics (fresh when ``arrays`` is None)."""
        if arrays is None:
            self.A_inv[k] = np.eye(self.dimension) / self.ridge
            self.b[k] = 0.0
            self.counts[k] = 0
        else:
            A_inv, b, count = self._checked(arrays)
            self.A_inv[k] = A_inv
            self.b[k] = b
            self.counts[k] = count
        self.theta[k] = self.A_inv[k] @ self.b[k]

    def _checked(self, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        d = self.dimension
        A_inv = np.array(arrays["A_inv"], dtype=np.float64)
        b = np.array(arrays["b"], dtype=np.float64)
        if A_inv.shape != (d, d) or b.shape != (d,):
            raise ValueError(
                f"stored statistics have shapes {A_inv.shape} and {b.shape}, "
                f"expected ({d}, {d}) and ({d},) for dimension {d}"
            )
        return A_inv, b, int(np.asarray(arrays["count"]).reshape(-1)[0])

    def update(self, k: int, x: np.ndarray, reward: float, weight: float = 1.0) -> None:
        """Add ``weight * x x^T`` to ``A_k`` and ``weight * reward * x`` to ``b_k``."""
        A_inv = self.A_inv[k]
        u = A_inv @ x
        # outer(u, u) * c is exactly symmetric, so A_inv stays exactly symmetric.
        A_inv -= np.outer(u, u) * (weight / (1.0 + weight * (x @ u)))
        self.b[k] += (weight * reward) * x
        self.theta[k] = A_inv @ self.b[k]
        self.counts[k] += 1

    def means(self, x: np.ndarray) -> np.ndarray:
        """Predicted reward of every action for context ``x``: ``theta_k . x``."""
        return self.theta @ x

    def variances(self, x: np.ndarray) -> np.ndarray:
        """``x^T A_k^{-1} x`` for every action (the width of its confidence ellipsoid)."""
        return np.maximum((self.A_inv @ x) @ x, 0.0)

    def arrays_of(self, k: int) -> dict[str, np.ndarray]:
        """Action ``k``'s statistics as the store keeps them (keys without the action)."""
        return {
            "A_inv": self.A_inv[k].copy(),
            "b": self.b[k].copy(),
            "count": np.array([self.counts[k]], dtype=np.int64),
        }
