"""Action sampling shared by the Q-learning and policy-gradient learners, with exact probabilities.

Each sampler draws a fixed number of values from the generator, whatever the outcome,
so a restarted learner given the same generator makes the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rlmemory.store._validation import check_finite, check_name
from rlmemory.types import Observation


def check_actions(actions: object, field: str = "actions") -> list[str]:
    """Return ``actions`` as a list of unique non-empty strings, or raise.

    >>> check_actions(["search", "coding"])
    ['search', 'coding']
    >>> check_actions([])
    Traceback (most recent call last):
    ValueError: actions must name at least one action
    """
    if isinstance(actions, str | bytes) or not isinstance(actions, Sequence):
        raise TypeError(f"{field} must be a sequence of action names, not {type(actions).__name__}")
    clean: list[str] = []
    for action in actions:
        check_action_name(action)
        if action in clean:
            raise ValueError(f"action {action!r} appears twice in {field}")
        clean.append(action)
    if not clean:
        raise ValueError(f"{field} must name at least one action")
    return clean


def check_action_name(action: object) -> str:
    """Return ``action`` if it is a non-empty string."""
    if not isinstance(action, str):
        raise TypeError(f"an action name must be a str, not {type(action).__name__}")
    if not action:
        raise ValueError("an action name must be a non-empty string")
    return check_name(action, "action name")  # the store's limit: refused now, not at a save


def check_known_action(action: object, actions: Sequence[str]) -> int:
    """Return the index of ``action`` in ``actions``; ValueError naming both if unknown."""
    check_action_name(action)
    try:
        return actions.index(action)
    except ValueError:
        raise ValueError(
            f"unknown action {action!r}; valid actions: {', '.join(actions)}"
        ) from None


def check_observation(observation: object) -> Observation:
    """Return ``observation`` if it is an :class:`~rlmemory.types.Observation`, else TypeError.

    >>> check_observation("search for papers")
    Traceback (most recent call last):
    TypeError: observation must be an Observation (from a state extractor), not str
    """
    if not isinstance(observation, Observation):
        raise TypeError(
            "observation must be an Observation (from a state extractor), "
            f"not {type(observation).__name__}"
        )
    return observation


def check_reward(reward: object) -> float:
    """``reward`` as a finite float (NaN/inf: ValueError, non-number: TypeError)."""
    return check_finite(reward, "reward")


#: Largest feature magnitude a learner accepts. Squares and products of such values
#: (``x @ x`` over a million dimensions is 1e206) stay far inside float64's 1.8e308,
#: so scores and statistics stay finite; beyond it ``1e300 * 1e300`` is already inf.
MAX_FEATURE_MAGNITUDE = 1e100


def check_feature_values(vector: np.ndarray, field: str = "features") -> np.ndarray:
    """Return ``vector`` if every entry is finite and at most :data:`MAX_FEATURE_MAGNITUDE`.

    >>> check_feature_values(np.array([1.0, 1e300]))
    Traceback (most recent call last):
    ValueError: features[1] is 1e+300; feature values must lie within ±1e+100 (scale them down)
    """
    finite = np.isfinite(vector)
    if not finite.all():
        index = int(np.flatnonzero(~finite.ravel())[0])
        raise ValueError(f"{field} contain NaN or infinite values ({field}[{index}])")
    too_large = np.abs(vector) > MAX_FEATURE_MAGNITUDE
    if too_large.any():
        index = int(np.flatnonzero(too_large.ravel())[0])
        raise ValueError(
            f"{field}[{index}] is {vector.ravel()[index]:g}; feature values must lie within "
            f"±{MAX_FEATURE_MAGNITUDE:g} (scale them down)"
        )
    return vector


def check_rate(value: object, field: str, *, low: float, high: float, low_open: bool) -> float:
    """``value`` as a float in ``(low, high]`` (``low_open``) or ``[low, high]``."""
    number = check_finite(value, field)
    below = number <= low if low_open else number < low
    if below or number > high:
        left = "(" if low_open else "["
        raise ValueError(f"{field} must be in {left}{low}, {high}], got {number}")
    return number


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities proportional to ``exp(logits)``, computed without overflow.

    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    shifted = np.exp(logits - np.max(logits))
    return np.asarray(shifted / shifted.sum())


def sample_index(probabilities: np.ndarray, rng: np.random.Generator) -> int:
    """Draw an index with the given probabilities, using exactly one ``rng.random()``.

    >>> sample_index(np.array([0.0, 1.0, 0.0]), np.random.default_rng(0))
    1
    """
    cumulative = np.cumsum(probabilities)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    # Rounding can put the draw on the total; never return an action of probability 0.
    return min(index, int(np.flatnonzero(probabilities > 0)[-1]))


def epsilon_greedy(
    values: Mapping[str, float], epsilon: float, rng: np.random.Generator
) -> tuple[str, float]:
    """Pick an action epsilon-greedily with random tie-breaking; return it and its probability.

    With probability ``epsilon`` any action uniformly, otherwise one of the actions
    with the highest value, uniformly. A greedy action therefore has probability
    ``(1 - epsilon) / ties + epsilon / n``, any other ``epsilon / n``. Two draws from
    ``rng`` every time.

    >>> rng = np.random.default_rng(0)
    >>> epsilon_greedy({"a": 1.0, "b": 0.0}, 0.0, rng)
    ('a', 1.0)
    """
    actions = list(values)
    best = max(values.values())
    greedy = [action for action in actions if values[action] == best]
    explore = rng.random() < epsilon
    pick = rng.random()
    pool = actions if explore else greedy
    action = pool[min(math.floor(pick * len(pool)), len(pool) - 1)]
    return action, epsilon_greedy_probabilities(values, epsilon)[action]


def epsilon_greedy_probabilities(values: Mapping[str, float], epsilon: float) -> dict[str, float]:
    """The probability :func:`epsilon_greedy` gives each action.

    >>> epsilon_greedy_probabilities({"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0}, 0.4)
    {'a': 0.4, 'b': 0.4, 'c': 0.1, 'd': 0.1}
    """
    best = max(values.values())
    greedy_count = sum(1 for value in values.values() if value == best)
    explore = epsilon / len(values)
    return {
        action: explore + ((1.0 - epsilon) / greedy_count if value == best else 0.0)
        for action, value in values.items()
    }
