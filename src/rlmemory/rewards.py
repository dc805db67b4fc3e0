"""RewardSystem: turn feedback and performance metrics into one reward in [0, 1].

A reward is the weighted mean of three components, each in [0, 1]:

``user_satisfaction``
    From the feedback. A rating 1–5 maps linearly to [0, 1] (1 -> 0.0, 3 -> 0.5,
    5 -> 1.0). A text is scored by a small negation-aware sentiment lexicon (see
    :func:`text_sentiment`). A text that is only a rating (``"4"``, ``"4/5"``,
    ``"4 stars"``) counts as that rating; one outside 1–5 (``"0"``) is read as plain
    text. With no feedback, satisfaction is a neutral 0.5.
``task_completion``
    ``success_rate`` (a number in [0, 1]), else ``task_completed`` or ``success``
    (bools; 1.0 or 0.0). Neither given: neutral 0.5.
``efficiency``
    The mean of the signals present: ``response_time`` in seconds scores
    ``1 / (1 + t / 5)`` (instant 1.0, 5 s 0.5, 15 s 0.25) and the number of tool
    calls (``tool_usage`` or ``tool_calls``: a count, or a list of calls) scores
    ``1 / (1 + n / 5)``. Neither given: neutral 0.5.

Default weights are 0.5 / 0.3 / 0.2. With no feedback, a failed task answered
instantly is worth 0.45 and a success 0.75, so a success always beats a failure.

**Cost.** That weighted mean is the answer's *quality*. When the performance metrics
carry a ``cost`` (currency: what the sub-agent reported, or its token usage priced by
the ``prices`` table, see :meth:`RewardSystem.cost_metrics`), the reward is
``quality - cost_weight * cost`` (not clamped: an expensive answer can be worth less
than 0), and the components stored with it gain ``quality``, ``cost`` and
``cost_weight``. ``cost_weight`` is how much one unit of currency is worth in reward:
with 20, a call that costs 0.01 must be 0.2 better to be preferred.

>>> from rlmemory.rewards import RewardSystem
>>> rewards = RewardSystem(db=None)
>>> rewards.compute_reward(None, {"task_completed": True, "response_time": 0.0})[0]
0.75
>>> rewards.compute_reward("not helpful at all", {"task_completed": True})[1]["user_satisfaction"]
0.18
>>> rewards.compute_reward(5, {"success_rate": 1.0, "response_time": 0.0})[0]
1.0
>>> priced = RewardSystem(db=None, cost_weight=20.0)
>>> priced.compute_reward(5, {"success_rate": 1.0, "response_time": 0.0, "cost": 0.01})[0]
0.8
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlmemory.store._validation import check_agent_name, check_limit
from rlmemory.store.base import MemoryStore, Row

COMPONENTS = ("user_satisfaction", "task_completion", "efficiency")
DEFAULT_WEIGHTS: dict[str, float] = {
    "user_satisfaction": 0.5,
    "task_completion": 0.3,
    "efficiency": 0.2,
}
NEUTRAL = 0.5

#: Seconds at which the response-time score is 0.5.
RESPONSE_TIME_HALF_SCORE = 5.0
#: Tool calls at which the tool-usage score is 0.5.
TOOL_CALLS_HALF_SCORE = 5.0

# Sentiment lexicon: word -> strength in [-1, 1]. Small on purpose: it covers the words
# people use when they rate an answer, not general prose.
POSITIVE_WORDS: dict[str, float] = {
    "good": 0.7,
    "great": 1.0,
    "excellent": 1.0,
    "perfect": 1.0,
    "awesome": 1.0,
    "amazing": 1.0,
    "fantastic": 1.0,
    "helpful": 0.8,
    "useful": 0.8,
    "correct": 0.7,
    "right": 0.5,
    "accurate": 0.7,
    "clear": 0.6,
    "thanks": 0.5,
    "thank": 0.5,
    "nice": 0.6,
    "fine": 0.4,
    "ok": 0.3,
    "okay": 0.3,
    "works": 0.7,
    "worked": 0.7,
    "work": 0.5,
    "solved": 0.8,
    "love": 0.9,
    "like": 0.5,
    "fast": 0.5,
    "quick": 0.5,
    "satisfied": 0.8,
}
NEGATIVE_WORDS: dict[str, float] = {
    "bad": -0.7,
    "terrible": -1.0,
    "awful": -1.0,
    "horrible": -1.0,
    "useless": -1.0,
    "unhelpful": -0.8,
    "wrong": -0.8,
    "incorrect": -0.8,
    "poor": -0.7,
    "broken": -0.8,
    "fails": -0.7,
    "failed": -0.7,
    "error": -0.5,
    "slow": -0.5,
    "confusing": -0.6,
    "unclear": -0.6,
    "hate": -0.9,
    "irrelevant": -0.8,
    "incomplete": -0.6,
    "disappointing": -0.8,
    "worse": -0.8,
    "worst": -1.0,
    "buggy": -0.8,
    "meh": -0.3,
}
LEXICON: dict[str, float] = {**POSITIVE_WORDS, **NEGATIVE_WORDS}
#: Words that flip the sentiment of the next few words ("n't" endings count too).
NEGATORS = frozenset({"not", "no", "never", "nothing", "hardly", "barely", "without", "cannot"})
#: How many words after a negator it reaches (a clause break ends it earlier).
NEGATION_REACH = 3
#: A negated positive word counts as this fraction of its strength, negatively;
#: a negated negative word as this fraction, positively ("not bad" is mildly good).
NEGATED_POSITIVE_FACTOR = 0.8
NEGATED_NEGATIVE_FACTOR = 0.5
_CLAUSE_BREAKS = frozenset({"but", "however", "although", "though"})
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?]")
_RATING_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*5|stars?|out of 5)?\s*$", re.IGNORECASE)


def text_sentiment(text: str) -> float:
    """Score a feedback text in [-1, 1]: the mean strength of its sentiment words.

    A negator (``not``, ``no``, ``never``, a word ending in ``n't`` ...) flips the
    words within :data:`NEGATION_REACH` after it, up to a punctuation mark or ``but``:
    a negated positive word counts ``-0.8 ×`` its strength, a negated negative word
    ``-0.5 ×`` (so "not bad" is mildly positive). A text without sentiment words is 0.

    >>> text_sentiment("great answer, thanks")
    0.75
    >>> text_sentiment("not helpful")
    -0.64
    >>> text_sentiment("not bad")
    0.35
    >>> text_sentiment("the file is in /tmp")
    0.0
    """
    scores: list[float] = []
    negation_left = 0
    for token in _TOKEN.findall(text.lower()):
        if token in _CLAUSE_BREAKS or not token[0].isalpha():
            negation_left = 0
            continue
        if token in NEGATORS or token.endswith("n't"):
            negation_left = NEGATION_REACH
            continue
        strength = LEXICON.get(token)
        if strength is not None:
            if negation_left > 0:
                factor = NEGATED_POSITIVE_FACTOR if strength > 0 else NEGATED_NEGATIVE_FACTOR
                strength = -factor * strength
            scores.append(strength)
        negation_left = max(0, negation_left - 1)
    if not scores:
        return 0.0
    return round(sum(scores) / len(scores), 10)


def rating_satisfaction(rating: object, field: str = "rating") -> float:
    """Map a 1–5 rating linearly to [0, 1].

    >>> rating_satisfaction(4)
    0.75
    >>> rating_satisfaction(6)
    Traceback (most recent call last):
    ValueError: rating must be between 1 and 5, got 6
    """
    value = _number(rating, field)
    if not 1.0 <= value <= 5.0:
        raise ValueError(f"{field} must be between 1 and 5, got {rating}")
    return (value - 1.0) / 4.0


def _number(value: object, field: str) -> float:
    """``value`` as a finite float; bools and non-numbers are TypeError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int (or Fraction) beyond float's range, such as 10**400
        raise ValueError(
            f"{field} must be a finite number, got one too large for a float"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number, got {number}")
    return number


def _satisfaction_from_text(text: str, field: str) -> float:
    # Feedback texts come from users and from hand-edited rows: a text that looks like
    # a rating but lies outside 1-5 ("0", "9/5") is read as plain text, never an error,
    # so one odd row cannot block batch learning.
    match = _RATING_TEXT.match(text)
    if match and 1.0 <= float(match.group(1)) <= 5.0:
        return rating_satisfaction(float(match.group(1)), field)
    return 0.5 + 0.5 * text_sentiment(text)


def user_satisfaction(feedback: object) -> float:
    """The satisfaction component of ``feedback``, in [0, 1].

    ``feedback`` is ``None`` (neutral 0.5), a 1–5 rating, a text, or a mapping with
    ``rating``, else ``user_feedback`` / ``text`` / ``feedback`` (a text), else
    ``self_evaluation`` (a number in [0, 1] or a text), in that order of precedence.

    >>> user_satisfaction({"rating": 2, "user_feedback": "great"})
    0.25
    >>> user_satisfaction("3/5")
    0.5
    """
    if feedback is None:
        return NEUTRAL
    if isinstance(feedback, str):
        return _satisfaction_from_text(feedback, "feedback")
    if isinstance(feedback, Mapping):
        if feedback.get("rating") is not None:
            return rating_satisfaction(feedback["rating"], "feedback['rating']")
        for key in ("user_feedback", "text", "feedback"):
            text = feedback.get(key)
            if text is not None:
                if not isinstance(text, str):
                    raise TypeError(f"feedback[{key!r}] must be a str, not {type(text).__name__}")
                return _satisfaction_from_text(text, f"feedback[{key!r}]")
        evaluation = feedback.get("self_evaluation")
        if evaluation is None:
            return NEUTRAL
        if isinstance(evaluation, str):
            return _satisfaction_from_text(evaluation, "feedback['self_evaluation']")
        return _unit_interval(evaluation, "feedback['self_evaluation']")
    return rating_satisfaction(feedback, "feedback")


def _unit_interval(value: object, field: str) -> float:
    number = _number(value, field)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{field} must be between 0 and 1, got {number}")
    return number


def task_completion(metrics: Mapping[str, Any]) -> float:
    """The task-completion component from ``success_rate``, ``task_completed`` or
    ``success``, in that order; neutral 0.5 when none is given.

    >>> task_completion({"task_completed": False})
    0.0
    """
    if metrics.get("success_rate") is not None:
        return _unit_interval(metrics["success_rate"], "success_rate")
    for key in ("task_completed", "success"):
        flag = metrics.get(key)
        if flag is None:
            continue
        if isinstance(flag, bool):
            return 1.0 if flag else 0.0
        if isinstance(flag, int) and flag in (0, 1):
            return float(flag)
        raise TypeError(f"{key} must be a bool, not {type(flag).__name__}")
    return NEUTRAL


def _tool_call_count(metrics: Mapping[str, Any]) -> float | None:
    for key in ("tool_usage", "tool_calls"):
        calls = metrics.get(key)
        if calls is None:
            continue
        if isinstance(calls, Sequence) and not isinstance(calls, str | bytes):
            return float(len(calls))
        count = _number(calls, key)
        if count < 0:
            raise ValueError(f"{key} must not be negative, got {count}")
        return count
    return None


def efficiency(metrics: Mapping[str, Any]) -> float:
    """The efficiency component: the mean of the response-time and tool-call scores
    present; neutral 0.5 when neither is given.

    >>> efficiency({"response_time": 5.0})
    0.5
    >>> efficiency({"response_time": 0.0, "tool_calls": ["search", "read"]})
    0.8571428571428572
    """
    scores: list[float] = []
    if metrics.get("response_time") is not None:
        seconds = _number(metrics["response_time"], "response_time")
        if seconds < 0:
            raise ValueError(f"response_time must not be negative, got {seconds}")
        scores.append(1.0 / (1.0 + seconds / RESPONSE_TIME_HALF_SCORE))
    calls = _tool_call_count(metrics)
    if calls is not None:
        scores.append(1.0 / (1.0 + calls / TOOL_CALLS_HALF_SCORE))
    if not scores:
        return NEUTRAL
    return sum(scores) / len(scores)


def normalise_weights(weights: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate component weights and scale them to sum to 1.

    Components not named get weight 0. Unknown names, negative, non-finite or
    non-numeric weights, and an all-zero set are errors.

    >>> normalise_weights({"task_completion": 3, "efficiency": 1})
    {'user_satisfaction': 0.0, 'task_completion': 0.75, 'efficiency': 0.25}
    >>> normalise_weights({"speed": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: unknown reward component 'speed'; valid components: user_satisfaction, ...
    """
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, Mapping):
        raise TypeError(
            f"weights must be a mapping of component to weight, not {type(weights).__name__}"
        )
    for name in weights:
        if name not in COMPONENTS:
            raise ValueError(
                f"unknown reward component {name!r}; valid components: {', '.join(COMPONENTS)}"
            )
    raw = {name: _number(weights.get(name, 0.0), f"weights[{name!r}]") for name in COMPONENTS}
    for name, weight in raw.items():
        if weight < 0:
            raise ValueError(f"weights[{name!r}] must not be negative, got {weight}")
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("reward weights must not all be zero")
    return {name: weight / total for name, weight in raw.items()}


@dataclass(frozen=True)
class TokenPrice:
    """What one sub-agent's tokens cost, in currency per million tokens.

    >>> TokenPrice(input_per_million=0.5, output_per_million=1.5).cost(2000, 1000)
    0.0025
    """

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        for field in ("input_per_million", "output_per_million"):
            if _number(getattr(self, field), field) < 0:
                raise ValueError(f"{field} must not be negative, got {getattr(self, field)}")

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """The price of this many input and output tokens."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return round(total / 1_000_000, 15)


def check_prices(prices: Mapping[str, Any] | None) -> dict[str, TokenPrice]:
    """Validate a per-agent price table: agent -> :class:`TokenPrice` or a mapping
    ``{"input_per_million": …, "output_per_million": …}``.

    >>> check_prices({"gpt": {"input_per_million": 2.5, "output_per_million": 10}})["gpt"]
    TokenPrice(input_per_million=2.5, output_per_million=10)
    >>> check_prices({"gpt": {"input": 2.5}})
    Traceback (most recent call last):
    ValueError: prices['gpt'] must have input_per_million and output_per_million, got ['input']
    """
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise TypeError(f"prices must be a mapping of agent to price, not {type(prices).__name__}")
    table: dict[str, TokenPrice] = {}
    for agent, price in prices.items():
        if not isinstance(agent, str) or not agent:
            raise ValueError(f"prices keys must be agent names, got {agent!r}")
        if isinstance(price, TokenPrice):
            table[agent] = price
            continue
        if not isinstance(price, Mapping):
            raise TypeError(f"prices[{agent!r}] must be a TokenPrice or a mapping")
        if set(price) != {"input_per_million", "output_per_million"}:
            raise ValueError(
                f"prices[{agent!r}] must have input_per_million and output_per_million, "
                f"got {sorted(price)}"
            )
        table[agent] = TokenPrice(price["input_per_million"], price["output_per_million"])
    return table


def token_usage(result: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(input_tokens, output_tokens)`` a sub-agent's result reports, or None.

    Read from ``usage_metadata`` (LangChain's ``AIMessage.usage_metadata``) or
    ``usage``; ``prompt_tokens``/``completion_tokens`` are accepted as the same.

    >>> token_usage({"usage_metadata": {"input_tokens": 12, "output_tokens": 30}})
    (12.0, 30.0)
    """
    for key in ("usage_metadata", "usage"):
        usage = result.get(key)
        if usage is None:
            continue
        if not isinstance(usage, Mapping):
            raise TypeError(f"{key} must be a mapping of token counts, not {type(usage).__name__}")
        counts = []
        for names in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
            found = next((usage[name] for name in names if usage.get(name) is not None), 0)
            count = _number(found, f"{key}[{names[0]!r}]")
            if count < 0:
                raise ValueError(f"{key}[{names[0]!r}] must not be negative, got {count}")
            counts.append(count)
        return counts[0], counts[1]
    return None


def _cost(value: object) -> float:
    cost = _number(value, "cost")
    if cost < 0:
        raise ValueError(f"cost must not be negative, got {cost}")
    return cost


class RewardSystem:
    """Computes rewards from feedback and metrics, and persists them with their components.

    ``db`` is any :class:`~rlmemory.store.base.MemoryStore` (``None`` is allowed when
    only :meth:`compute_reward` is used). ``weights`` maps component names to
    non-negative weights; they are normalised to sum to 1.

    >>> import tempfile, os
    >>> from rlmemory.store.sql import MemoryDatabase
    >>> with MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db")) as db:
    ...     rewards = RewardSystem(db)
    ...     rewards.calculate_reward("router", "great, thanks", {"task_completed": True,
    ...                                                         "response_time": 0.0})
    ...     rewards.get_agent_rewards("router")[0]["reward_components"]["task_completion"]
    0.9375
    1.0
    """

    def __init__(
        self,
        db: MemoryStore | None,
        weights: Mapping[str, Any] | None = None,
        *,
        cost_weight: float = 0.0,
        prices: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.reward_weights = normalise_weights(weights)
        self.cost_weight = _number(cost_weight, "cost_weight")
        if self.cost_weight < 0:
            raise ValueError(f"cost_weight must not be negative, got {cost_weight}")
        self.prices = check_prices(prices)

    def cost_metrics(self, agent: str, result: Mapping[str, Any]) -> dict[str, float]:
        """The cost entries of sub-agent ``agent``'s ``result``, for the performance metrics.

        ``cost`` is the result's own ``cost`` (currency) if it reports one, else its
        token usage (:func:`token_usage`) priced by ``prices[agent]``; tokens reported
        for an agent without a price give ``input_tokens``/``output_tokens`` but no
        cost. Bad values are ``ValueError``/``TypeError`` naming them.

        >>> system = RewardSystem(None, prices={"gpt": TokenPrice(2.5, 10.0)})
        >>> system.cost_metrics("gpt", {"usage_metadata": {"input_tokens": 1000,
        ...                                                "output_tokens": 200}})
        {'input_tokens': 1000.0, 'output_tokens': 200.0, 'cost': 0.0045}
        """
        metrics: dict[str, float] = {}
        usage = token_usage(result)
        if usage is not None:
            metrics["input_tokens"], metrics["output_tokens"] = usage
        if result.get("cost") is not None:
            metrics["cost"] = _cost(result["cost"])
        elif usage is not None and agent in self.prices:
            metrics["cost"] = self.prices[agent].cost(*usage)
        return metrics

    def compute_reward(
        self, feedback: object, performance_metrics: Mapping[str, Any] | None
    ) -> tuple[float, dict[str, float]]:
        """Return ``(reward, components)`` without storing anything.

        Bad metrics raise ``ValueError`` (NaN, infinite, out of range) or
        ``TypeError`` (wrong type), naming the metric.
        """
        if performance_metrics is None:
            performance_metrics = {}
        if not isinstance(performance_metrics, Mapping):
            raise TypeError(
                f"performance_metrics must be a mapping, not {type(performance_metrics).__name__}"
            )
        components = {
            "user_satisfaction": user_satisfaction(feedback),
            "task_completion": task_completion(performance_metrics),
            "efficiency": efficiency(performance_metrics),
        }
        quality = sum(self.reward_weights[name] * value for name, value in components.items())
        quality = min(1.0, max(0.0, round(quality, 12)))
        if performance_metrics.get("cost") is None:
            return quality, components
        cost = _cost(performance_metrics["cost"])
        components.update(quality=quality, cost=cost, cost_weight=self.cost_weight)
        return round(quality - self.cost_weight * cost, 12), components

    def calculate_reward(
        self,
        agent_name: str,
        feedback: object,
        performance_metrics: Mapping[str, Any] | None,
        *,
        decision_id: int | None = None,
    ) -> float:
        """Compute the reward, store it with its components, and return it.

        Nothing is stored when an argument is invalid.
        """
        check_agent_name(agent_name)
        reward, components = self.compute_reward(feedback, performance_metrics)
        self._store().save_agent_reward(agent_name, reward, components, decision_id=decision_id)
        return reward

    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        """The newest ``limit`` rewards of ``agent_name`` (see the store's contract)."""
        check_agent_name(agent_name)
        check_limit(limit)
        return self._store().get_agent_rewards(agent_name, limit)

    def _store(self) -> MemoryStore:
        if self.db is None:
            raise ValueError("this RewardSystem has no store (db=None); it can only compute_reward")
        return self.db


def cost_summary(store: MemoryStore, agent_name: str, limit: int = 1000) -> dict[str, Row]:
    """Quality and cost of the newest ``limit`` rewards of ``agent_name``, per sub-agent.

    Keys are the sub-agents (the action of each reward's decision; ``"-"`` for rewards
    without one) plus ``"all"``. Each value: ``rewards`` (count), ``mean_quality``
    (``quality`` component, else the reward itself), ``mean_cost`` (over the rewards
    that carry a cost; None when none does) and ``mean_reward``.

    >>> import tempfile, os
    >>> from rlmemory.store.sql import MemoryDatabase
    >>> with MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db")) as db:
    ...     system = RewardSystem(db, cost_weight=10.0)
    ...     _ = system.calculate_reward("router", None, {"success_rate": 1.0, "cost": 0.02})
    ...     cost_summary(db, "router")["all"]
    {'rewards': 1, 'mean_quality': 0.65, 'mean_cost': 0.02, 'mean_reward': 0.45}
    """
    check_agent_name(agent_name)
    check_limit(limit)
    actions: dict[int, str] = {}
    groups: dict[str, list[tuple[float, float, float | None]]] = {}
    for row in store.get_agent_rewards(agent_name, limit):
        components = row["reward_components"]
        decision_id = row["decision_id"]
        sub_agent = "-"
        if decision_id is not None:
            if decision_id not in actions:
                try:
                    actions[decision_id] = store.get_agent_decision(decision_id)["selected_action"]
                except LookupError:  # pruned: the reward outlived its decision
                    actions[decision_id] = "-"
            sub_agent = actions[decision_id]
        quality = components.get("quality", row["reward"])
        cost = components.get("cost")
        entry = (float(row["reward"]), float(quality), None if cost is None else float(cost))
        groups.setdefault(sub_agent, []).append(entry)
        groups.setdefault("all", []).append(entry)
    return {name: _summarise(entries) for name, entries in groups.items()}


def _summarise(entries: list[tuple[float, float, float | None]]) -> Row:
    costs = [cost for _, _, cost in entries if cost is not None]
    return {
        "rewards": len(entries),
        "mean_quality": round(sum(quality for _, quality, _ in entries) / len(entries), 12),
        "mean_cost": round(sum(costs) / len(costs), 12) if costs else None,
        "mean_reward": round(sum(reward for reward, _, _ in entries) / len(entries), 12),
    }
