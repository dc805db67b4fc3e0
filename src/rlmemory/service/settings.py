"""A learning loop's settings: what they hold, their defaults, and how requests change them.

A loop's settings are one JSON document in the store (namespace ``"loops"``, key = the
loop's name), so every worker and every restart sees the same. :class:`LoopSettings` is
that document as a frozen dataclass; :func:`settings_from_request` applies the
Personalizer-shaped fields of ``PUT /loops/{loop}`` (camelCase) to it, and
:func:`parse_duration` reads ``rewardWaitTime`` (ISO-8601 duration or seconds).

>>> parse_duration("PT10M"), parse_duration("P1DT0.5S"), parse_duration(30)
(600.0, 86400.5, 30.0)
>>> settings = settings_from_request({"learner": "linucb", "rewardWaitTime": "PT1M"})
>>> settings.learner, settings.reward_wait, settings.exploration
('linucb', 60.0, 0.2)
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Learner name -> (module, class). Every class is built as
#: ``cls(loop_name, store, actions, dimension=d, seed=s, **learner_options)`` and offers
#: ``choose``, ``action_probabilities``, ``update`` and ``reload``. Add a learner with
#: :func:`register_learner`.
LOOP_LEARNERS: dict[str, tuple[str, str]] = {
    "epsilon_greedy": ("rlmemory.learners.bandits", "EpsilonGreedyAgent"),
    "linucb": ("rlmemory.learners.bandits", "LinUCBAgent"),
    "thompson": ("rlmemory.learners.bandits", "ThompsonSamplingAgent"),
}

#: Learners whose ``epsilon`` option is set from ``explorationPercentage``.
EPSILON_LEARNERS = {"epsilon_greedy"}

LEARNING_MODES = ("online", "apprentice")
REWARD_AGGREGATIONS = ("earliest", "sum")
LOOP_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")

_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class SettingsError(ValueError):
    """A setting has a bad value; ``field`` names it as the request spells it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def register_learner(name: str, module: str, class_name: str) -> None:
    """Make learner ``name`` (class ``module.class_name``) available to loops.

    >>> register_learner("linucb", "rlmemory.learners.bandits", "LinUCBAgent")
    """
    if not isinstance(name, str) or not name:
        raise ValueError("learner name must be a non-empty string")
    LOOP_LEARNERS[name] = (module, class_name)


def check_loop_name(name: object) -> str:
    """Return ``name`` if it is a usable loop name (letters, digits, ``_.-``; 1-100 chars).

    >>> check_loop_name("news/../x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rlmemory.service.settings.SettingsError: loop: must be 1-100 letters, digits, ...
    """
    if not isinstance(name, str) or not LOOP_NAME_PATTERN.fullmatch(name):
        raise SettingsError(
            "loop",
            "must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


def parse_duration(value: object, field_name: str = "rewardWaitTime") -> float:
    """Seconds in ``value``: a number of seconds or an ISO-8601 duration (``PT10M``)."""
    if isinstance(value, bool):
        raise SettingsError(field_name, f"must be seconds or an ISO-8601 duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif (
        isinstance(value, str)
        and (match := _DURATION.fullmatch(value.strip()))
        and any(match.groupdict().values())
    ):
        parts = {key: float(number or 0) for key, number in match.groupdict().items()}
        seconds = (
            parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]
        )
    else:
        raise SettingsError(
            field_name, f"must be seconds or an ISO-8601 duration like PT10M, got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise SettingsError(field_name, f"must be a finite number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class LoopSettings:
    """Everything that defines a loop besides what it learned (stored as one document)."""

    learner: str = "epsilon_greedy"
    learner_options: dict[str, Any] = field(default_factory=dict)
    exploration: float = 0.2
    reward_wait: float = 600.0
    default_reward: float = 0.0
    reward_aggregation: str = "earliest"
    learning_mode: str = "online"
    apprentice_exploration: float = 0.0
    auto_graduate: dict[str, float] | None = None
    dimension: int = 64
    seed: int = field(default_factory=lambda: secrets.randbits(63))
    created: float = field(default_factory=time.time)

    def to_document(self) -> dict[str, Any]:
        """The JSON document stored for this loop."""
        return dataclasses.asdict(self)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> LoopSettings:
        """The settings of a stored document (unknown keys ignored, missing ones defaulted)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in known})

    def to_api(self) -> dict[str, Any]:
        """The settings as ``GET /loops/{loop}`` shows them (camelCase)."""
        graduate = self.auto_graduate
        return {
            "learner": self.learner,
            "learnerOptions": dict(self.learner_options),
            "explorationPercentage": self.exploration,
            "rewardWaitTime": self.reward_wait,
            "defaultReward": self.default_reward,
            "rewardAggregation": self.reward_aggregation,
            "learningMode": self.learning_mode,
            "apprenticeExploration": self.apprentice_exploration,
            "autoGraduate": None
            if graduate is None
            else {"minEvents": int(graduate["min_events"]), "margin": graduate["margin"]},
            "featureDimension": self.dimension,
        }

    def learner_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the learner class besides name, store and actions."""
        options = dict(self.learner_options)
        if self.learner in EPSILON_LEARNERS:
            options.setdefault("epsilon", self.exploration)
        return options


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(key, f"must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(key, f"must be in [{low}, {high}], got {value!r}")
    return float(value)


def _choice(body: Mapping[str, Any], key: str, choices: Any) -> str:
    value = body[key]
    if value not in choices:
        raise SettingsError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _auto_graduate(value: object) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"minEvents", "margin"}:
        raise SettingsError("autoGraduate", 'must be {"minEvents": N, "margin": m} or null')
    events = value.get("minEvents", 100)
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise SettingsError("autoGraduate.minEvents", f"must be a positive integer, got {events!r}")
    margin = _number({"autoGraduate.margin": value.get("margin", 0.0)}, "autoGraduate.margin",
                     -1e9, 1e9)  # fmt: skip
    return {"min_events": events, "margin": margin}


#: Request fields of ``PUT /loops/{loop}`` and the setting each one changes.
REQUEST_FIELDS = (
    "learner",
    "learnerOptions",
    "explorationPercentage",
    "rewardWaitTime",
    "defaultReward",
    "rewardAggregation",
    "learningMode",
    "apprenticeExploration",
    "autoGraduate",
    "featureDimension",
)


def settings_from_request(
    body: Mapping[str, Any], current: LoopSettings | None = None
) -> LoopSettings:
    """``current`` (or the defaults) with the fields of a ``PUT /loops/{loop}`` body applied.

    Fields not given keep their value; an unknown field or a bad value is
    :class:`SettingsError` naming it. ``explorationPercentage`` is a fraction in [0, 1]
    (Personalizer's name; 0.2 means 20 %).
    """
    base = current if current is not None else LoopSettings()
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if unknown:
        raise SettingsError(unknown[0], f"unknown field; known: {', '.join(REQUEST_FIELDS)}")
    changes: dict[str, Any] = {}
    if "learner" in body:
        changes["learner"] = _choice(body, "learner", sorted(LOOP_LEARNERS))
    if "learnerOptions" in body:
        options = body["learnerOptions"]
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise SettingsError("learnerOptions", "must be an object of option names to values")
        changes["learner_options"] = dict(options)
    if "explorationPercentage" in body:
        changes["exploration"] = _number(body, "explorationPercentage", 0.0, 1.0)
    if "rewardWaitTime" in body:
        changes["reward_wait"] = parse_duration(body["rewardWaitTime"])
    if "defaultReward" in body:
        changes["default_reward"] = _number(body, "defaultReward", -1e12, 1e12)
    if "rewardAggregation" in body:
        changes["reward_aggregation"] = _choice(body, "rewardAggregation", REWARD_AGGREGATIONS)
    if "learningMode" in body:
        changes["learning_mode"] = _choice(body, "learningMode", LEARNING_MODES)
    if "apprenticeExploration" in body:
        changes["apprentice_exploration"] = _number(body, "apprenticeExploration", 0.0, 1.0)
    if "autoGraduate" in body:
        changes["auto_graduate"] = _auto_graduate(body["autoGraduate"])
    if "featureDimension" in body:
        dimension = body["featureDimension"]
        if (
            isinstance(dimension, bool)
            or not isinstance(dimension, int)
            or not 2 <= dimension <= 4096
        ):
            raise SettingsError(
                "featureDimension", f"must be an integer in [2, 4096], got {dimension!r}"
            )
        changes["dimension"] = dimension
    return dataclasses.replace(base, **changes)
