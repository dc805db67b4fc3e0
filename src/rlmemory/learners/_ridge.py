"""Per-action ridge regression with inverses kept up to date by Sherman–Morrison.

Each action ``k`` has ``A_k = ridge * I + sum_i w_i x_i x_i^T`` and
``b_k = sum_i w_i r_i x_i``. We keep ``A_k^{-1}`` (never ``A_k``) so that an update
costs O(d^2) and scoring every action for one context is a few vectorised numpy calls.
``theta_k = A_k^{-1} b_k`` is cached and recomputed from the two stored arrays in the
same way on update and on load, so a model restored from its arrays scores exactly
like the one that wrote them.

With ``prior_mean = m`` the models are fitted to ``r_i - m`` (so ``b_k`` holds the
centred rewards) and predict ``theta_k . x + m``: an action with no data predicts
``m`` and little data is shrunk towards ``m`` instead of towards 0.

>>> import numpy as np
>>> arms = RidgeArms(dimension=2, ridge=1.0)
>>> arms.add_action()
>>> arms.update(0, np.array([1.0, 0.0]), 1.0)
>>> arms.means(np.array([1.0, 0.0])).round(3).tolist()
[0.5]
>>> optimistic = RidgeArms(dimension=2, ridge=1.0, prior_mean=1.0)
>>> optimistic.add_action()
>>> optimistic.means(np.array([1.0, 0.0])).tolist()
[1.0]
"""

from __future__ import annotations

import numpy as np

#: Suffix of the per-action store key: ``f"{action}/{STATE_SUFFIX}"``.
STATE_SUFFIX = "ridge"


def state_key(action: str) -> str:
    """The store key holding one action's statistics."""
    return f"{action}/{STATE_SUFFIX}"


class RidgeArms:
    """Stacked ridge models, one per action, indexed by position."""

    def __init__(self, dimension: int, ridge: float, prior_mean: float = 0.0) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        if not np.isfinite(ridge) or ridge <= 0:
            raise ValueError(f"ridge must be a positive finite number, got {ridge}")
        if not np.isfinite(prior_mean):
            raise ValueError(f"prior_mean must be a finite number, got {prior_mean}")
        self.dimension = dimension
        self.ridge = float(ridge)
        self.prior_mean = float(prior_mean)
        self.A_inv = np.empty((0, dimension, dimension))
        self.b = np.empty((0, dimension))
        self.theta = np.empty((0, dimension))
        self.counts = np.empty(0, dtype=np.int64)
        rows, columns = np.triu_indices(dimension)
        self._upper = rows * dimension + columns
        self._upper_mirror = columns * dimension + rows

    def add_action(self, state: np.ndarray | None = None) -> None:
        """Append one action: fresh (``A^{-1} = I / ridge``, ``b = 0``) or from its state."""
        d = self.dimension
        self.A_inv = np.concatenate([self.A_inv, np.eye(d)[None] / self.ridge])
        self.b = np.concatenate([self.b, np.zeros((1, d))])
        self.theta = np.concatenate([self.theta, np.zeros((1, d))])
        self.counts = np.append(self.counts, np.int64(0))
        if state is not None:
            self.set_state(self.counts.size - 1, state)

    def state_size(self) -> int:
        """Length of one action's packed state: count, ``b`` and the upper triangle."""
        return 1 + self.dimension + self._upper.size

    def state_of(self, k: int) -> np.ndarray:
        """Action ``k``'s statistics packed in one float64 vector, as the store keeps them.

        Layout: ``[count, b_0 … b_{d-1}, upper triangle of A^{-1} row by row]``.
        ``A^{-1}`` is exactly symmetric (every update subtracts ``outer(u, u) * c``), so
        its upper triangle restores it bit for bit at half the bytes.
        """
        return np.concatenate(
            ([float(self.counts[k])], self.b[k], self.A_inv[k].ravel()[self._upper])
        )

    def set_state(self, k: int, state: np.ndarray) -> None:
        """Restore action ``k`` from :meth:`state_of`'s vector."""
        packed = np.asarray(state, dtype=np.float64)
        if packed.shape != (self.state_size(),):
            raise ValueError(
                f"stored statistics have shape {packed.shape}, expected "
                f"({self.state_size()},) for dimension {self.dimension}"
            )
        d = self.dimension
        flat = np.empty(d * d)
        flat[self._upper] = packed[1 + d :]
        flat[self._upper_mirror] = packed[1 + d :]
        self.A_inv[k] = flat.reshape(d, d)
        self.b[k] = packed[1 : 1 + d]
        self.counts[k] = int(packed[0])
        self.theta[k] = self.A_inv[k] @ self.b[k]

    def snapshot(self, k: int) -> tuple[np.ndarray, np.ndarray, np.int64]:
        """A copy of action ``k``'s statistics, to undo an update whose write failed."""
        return self.A_inv[k].copy(), self.b[k].copy(), self.counts[k]

    def restore(self, k: int, snapshot: tuple[np.ndarray, np.ndarray, np.int64]) -> None:
        """Put back what :meth:`snapshot` copied."""
        self.A_inv[k], self.b[k], self.counts[k] = snapshot
        self.theta[k] = self.A_inv[k] @ self.b[k]

    def update(self, k: int, x: np.ndarray, reward: float, weight: float = 1.0) -> None:
        """Add ``weight * x x^T`` to ``A_k`` and ``weight * (reward - prior_mean) * x`` to ``b_k``.

        ``b_k`` thus holds centred rewards; :meth:`means` adds ``prior_mean`` back.
        """
        A_inv = self.A_inv[k]
        u = A_inv @ x
        # multiply.outer(u, u) * c is exactly symmetric, so A_inv stays exactly symmetric.
        A_inv -= np.multiply.outer(u, u) * (weight / (1.0 + weight * (x @ u)))
        self.b[k] += (weight * (reward - self.prior_mean)) * x
        self.theta[k] = A_inv @ self.b[k]
        self.counts[k] += 1

    def means(self, x: np.ndarray) -> np.ndarray:
        """Predicted reward of every action for context ``x``: ``theta_k . x + prior_mean``."""
        return np.asarray(self.theta @ x + self.prior_mean)

    def mean_rows(self, contexts: np.ndarray) -> np.ndarray:
        """:meth:`means` for every row of ``contexts``, shape (n, number of actions)."""
        return contexts @ self.theta.T + self.prior_mean

    def variances(self, x: np.ndarray) -> np.ndarray:
        """``x^T A_k^{-1} x`` for every action (the width of its confidence ellipsoid)."""
        return np.asarray(np.maximum((self.A_inv @ x) @ x, 0.0))
