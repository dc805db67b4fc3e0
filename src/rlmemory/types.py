"""Value types that features and learners share: an :class:`Observation` and a :class:`Choice`.

They live below both packages so that ``rlmemory.features`` (which produces
observations) and ``rlmemory.learners`` (which consume them and return choices) import
this module and never each other. ``rlmemory.learners.base`` re-exports both names.

>>> import numpy as np
>>> observation = Observation(state="search:short:text", features=np.ones(2))
>>> observation
Observation(state='search:short:text')
>>> Choice(action="search_agent", propensity=0.9, scores={"search_agent": 0.8})
Choice(action='search_agent', propensity=0.9, scores={'search_agent': 0.8})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What a learner sees of one request.

    ``state`` is a bounded discrete key (for tabular learners); ``features`` a
    fixed-length float vector (for linear learners). Extractors fill both.
    """

    state: str
    features: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Choice:
    """A learner's decision: the action, the probability it had, and the scores seen.

    ``propensity`` is the probability with which ``action`` was chosen under the
    learner's exploration, in (0, 1]; off-policy evaluation relies on it.
    ``scores`` are the per-action values (Q-values, probabilities or UCB scores)
    stored with the decision.
    """

    action: str
    propensity: float
    scores: dict[str, float]


__all__ = ["Choice", "Observation"]
