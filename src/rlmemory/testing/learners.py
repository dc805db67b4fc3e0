"""check_learner: one behaviour suite that every routing learner must pass, on any store.

A learner is anything with the :class:`~rlmemory.learners.base.RoutingLearner` methods
(``choose``, ``probabilities``, ``learn``, ``add_action``, ``reload``, ``name``,
``actions``) that keeps its parameters in a :class:`~rlmemory.store.base.MemoryStore`.
:func:`yield_checks` gives one :class:`LearnerCheck` per behaviour; :func:`check_learner`
runs them all. A failed check raises :class:`LearnerCheckError` naming the check, the
learner and what went wrong. The checks:

``choices_are_well_formed``
    ``choose`` returns a known action, a propensity in (0, 1] and a score for every
    action; the same generator state gives the same :class:`~rlmemory.types.Choice`;
    choosing writes nothing to the store.
``probabilities_sum_to_one_and_match_propensities``
    ``probabilities`` gives every action a probability, summing to 1; each choice's
    propensity is its action's probability; 1000 choices fall on the actions at those
    rates.
``resume_is_exact``
    A learner rebuilt halfway on a newly opened store object (a restart) makes the same
    choices, with the same propensities and scores, as one that never stopped.
``learning_persists``
    A new learner object on a newly opened store sees exactly what another learned.
``bad_rewards_change_nothing``, ``bad_actions_change_nothing``, ``bad_observations_change_nothing``
    A reward that is not a finite number, an unknown action, an action or observation of
    the wrong type (in ``learn``, ``choose`` and ``add_action``) raise ``TypeError`` or
    ``ValueError`` whose message names the problem, and leave both the learner and the
    store as they were.
``added_actions_are_offered``
    After ``add_action``, the new action has a probability and a score.

Write a factory that builds your learner from a :class:`LearnerSetup` (agent name,
store, actions, feature dimension) and a function that opens a new store object on one
location each time it is called; every check uses its own agent names in that store.

>>> import tempfile, os
>>> from rlmemory.learners.qlearning import QLearningAgent
>>> from rlmemory.store import open_store
>>> path = os.path.join(tempfile.mkdtemp(), "memory.db")
>>> def make_learner(setup):
...     return QLearningAgent(setup.name, None, setup.store, None, None, setup.actions)
>>> check_learner(make_learner, lambda: open_store(path))
>>> [check.name for check in yield_checks(make_learner, lambda: open_store(path))][:2]
['choices_are_well_formed', 'probabilities_sum_to_one_and_match_propensities']

In a pytest suite, parametrise over the checks to see each one pass or fail by name::

    @pytest.mark.parametrize("check", yield_checks(make_learner, opener), ids=str)
    def test_my_learner(check):
        check()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlmemory.store.base import MemoryStore
from rlmemory.types import Choice, Observation

#: The actions every check offers the learner.
ACTIONS = ("search_agent", "analysis_agent", "coding_agent")
#: How many choices the frequency check draws per observation.
FREQUENCY_DRAWS = 1000
#: Largest gap between a drawn frequency and its probability (about 4.4 standard
#: deviations at p = 0.5 with 1000 draws; the draws are seeded, so no flakiness).
FREQUENCY_TOLERANCE = 0.07

LearnerFactory = Callable[["LearnerSetup"], Any]
StoreOpener = Callable[[], MemoryStore]
#: A bad input to try: (what it is, the call on a learner, a word its error must contain).
Attempt = tuple[str, Callable[[Any], object], str]


class LearnerCheckError(AssertionError):
    """A learner failed one of the checks; the message names the check and the failure."""


@dataclass(frozen=True)
class LearnerSetup:
    """What a learner factory is given: build a learner called ``name`` on ``store``.

    ``actions`` are the sub-agent names to offer (a fresh list each time);
    ``dimension`` the length of the observations' feature vectors.
    """

    name: str
    store: MemoryStore
    actions: list[str]
    dimension: int


@dataclass(frozen=True)
class LearnerCheck:
    """One named behaviour check, ready to run: ``check()`` raises or returns None."""

    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        self.run()

    def __str__(self) -> str:
        return self.name


class _Context:
    """Opens stores and builds learners for one check; closes its stores at the end."""

    def __init__(
        self,
        check: str,
        make_learner: LearnerFactory,
        open_store: StoreOpener,
        dimension: int,
        propensity_tolerance: float,
    ) -> None:
        self.check = check
        self.make_learner = make_learner
        self.open_store = open_store
        self.dimension = dimension
        self.propensity_tolerance = propensity_tolerance
        self.stores: list[MemoryStore] = []
        self.learner_type = "learner"

    def store(self) -> MemoryStore:
        opened = self.open_store()
        self.stores.append(opened)
        return opened

    def learner(self, name: str, store: MemoryStore | None = None) -> Any:
        setup = LearnerSetup(
            name=f"check-{self.check}-{name}".replace("_", "-"),
            store=self.store() if store is None else store,
            actions=list(ACTIONS),
            dimension=self.dimension,
        )
        learner = self.make_learner(setup)
        self.learner_type = type(learner).__name__
        missing = [
            method
            for method in ("choose", "probabilities", "learn", "add_action", "reload")
            if not callable(getattr(learner, method, None))
        ]
        self.expect(not missing, f"the learner lacks {', '.join(missing)}")
        return learner

    def observations(self, count: int = 6) -> list[Observation]:
        rng = np.random.default_rng(20240601)
        return [
            Observation(
                state=f"state-{index % 3}",
                features=np.append(rng.normal(size=self.dimension - 1), 1.0),
            )
            for index in range(count)
        ]

    def expect(self, condition: bool, failure: str) -> None:
        if not condition:
            raise LearnerCheckError(f"{self.check} ({self.learner_type}): {failure}")

    def close(self) -> None:
        for opened in reversed(self.stores):
            opened.close()


def _reward(index: int, action: str) -> float:
    """A deterministic reward: the action matching the observation's kind pays best."""
    return 1.0 if action == ACTIONS[index % len(ACTIONS)] else 0.25


def _run_steps(learner: Any, observations: list[Observation], rng: Any, steps: range) -> list[Any]:
    """Choose and learn for each step; return (action, propensity, scores) per step."""
    trace = []
    for step in steps:
        observation = observations[step % len(observations)]
        choice = learner.choose(observation, rng)
        trace.append((choice.action, choice.propensity, dict(choice.scores)))
        learner.learn(observation, choice.action, _reward(step, choice.action))
    return trace


def _plain(value: Any) -> Any:
    """``value`` with arrays as lists and tuples as lists, comparable with ``==``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _stored(store: MemoryStore, name: str) -> Any:
    """Everything a learner may persist under ``name``, comparable with ``==``."""
    return _plain(
        {
            "q_table": store.get_q_table(name),
            "policy_params": store.get_policy_params(name),
            "arrays": store.get_arrays(name),
            "steps": [tuple(step) for step in store.get_learner_steps(name)],
        }
    )


def _probabilities(learner: Any, observations: list[Observation]) -> list[dict[str, float]]:
    return [dict(learner.probabilities(observation)) for observation in observations]


# ------------------------------------------------------------------------ the checks
def _choices_are_well_formed(context: _Context) -> None:
    store = context.store()
    learner = context.learner("learner", store)
    before = _stored(store, learner.name)
    for index, observation in enumerate(context.observations()):
        choice = learner.choose(observation, np.random.default_rng(index))
        again = learner.choose(observation, np.random.default_rng(index))
        context.expect(isinstance(choice, Choice), f"choose returned {type(choice).__name__}")
        context.expect(choice.action in ACTIONS, f"chose unknown action {choice.action!r}")
        context.expect(
            isinstance(choice.propensity, float) and 0.0 < choice.propensity <= 1.0,
            f"propensity {choice.propensity!r} is not a float in (0, 1]",
        )
        context.expect(
            set(choice.scores) == set(ACTIONS),
            f"scores name {sorted(choice.scores)}, not every action {sorted(ACTIONS)}",
        )
        context.expect(
            (choice.action, choice.propensity, choice.scores)
            == (again.action, again.propensity, again.scores),
            f"the same generator state gave {choice} and then {again}",
        )
        total = math.fsum(learner.probabilities(observation).values())
        context.expect(
            abs(total - 1.0) < 1e-9, f"an untrained learner's probabilities sum to {total!r}"
        )
    context.expect(_stored(store, learner.name) == before, "choosing wrote to the store")


def _probabilities_sum_to_one_and_match_propensities(context: _Context) -> None:
    learner = context.learner("learner")
    observations = context.observations()
    _run_steps(learner, observations, np.random.default_rng(1), range(12))
    rng = np.random.default_rng(2)
    for observation in observations[:2]:
        probabilities = learner.probabilities(observation)
        context.expect(
            list(probabilities) == list(learner.actions),
            f"probabilities name {list(probabilities)}, not the actions {learner.actions}",
        )
        context.expect(
            all(0.0 <= p <= 1.0 for p in probabilities.values()),
            f"probabilities outside [0, 1]: {probabilities}",
        )
        total = math.fsum(probabilities.values())
        context.expect(abs(total - 1.0) < 1e-9, f"probabilities sum to {total!r}: {probabilities}")
        counts = dict.fromkeys(probabilities, 0)
        for _ in range(FREQUENCY_DRAWS):
            choice = learner.choose(observation, rng)
            gap = abs(choice.propensity - probabilities[choice.action])
            context.expect(
                gap <= context.propensity_tolerance,
                f"choice of {choice.action!r} has propensity {choice.propensity!r}, but "
                f"probabilities give it {probabilities[choice.action]!r}",
            )
            counts[choice.action] += 1
        for action, probability in probabilities.items():
            rate = counts[action] / FREQUENCY_DRAWS
            context.expect(
                abs(rate - probability) <= FREQUENCY_TOLERANCE,
                f"{action!r} was chosen at rate {rate:.3f} over {FREQUENCY_DRAWS} draws, "
                f"but its probability is {probability:.3f}",
            )


def _resume_is_exact(context: _Context) -> None:
    observations = context.observations()
    steps = 16
    straight = context.learner("straight")
    straight_trace = _run_steps(straight, observations, np.random.default_rng(7), range(steps))

    rng = np.random.default_rng(7)
    first = context.learner("restarted")
    trace = _run_steps(first, observations, rng, range(steps // 2))
    rebuilt = context.learner("restarted")  # a new learner on a newly opened store
    trace += _run_steps(rebuilt, observations, rng, range(steps // 2, steps))
    for step, (expected, got) in enumerate(zip(straight_trace, trace, strict=True)):
        context.expect(
            expected == got,
            f"step {step}: a learner rebuilt at step {steps // 2} chose {got}, one that "
            f"never stopped chose {expected}",
        )
    context.expect(
        _probabilities(rebuilt, observations) == _probabilities(straight, observations),
        "after the same steps, the rebuilt learner's probabilities differ",
    )


def _learning_persists(context: _Context) -> None:
    observations = context.observations()
    fresh = _probabilities(context.learner("untrained"), observations)
    learner = context.learner("trained")
    _run_steps(learner, observations, np.random.default_rng(3), range(12))
    learned = _probabilities(learner, observations)
    context.expect(learned != fresh, "12 rewarded steps changed no probability")
    reopened = context.learner("trained")
    context.expect(
        _probabilities(reopened, observations) == learned,
        "a new learner on a newly opened store does not see what was learned",
    )
    learner.reload()
    context.expect(
        _probabilities(learner, observations) == learned, "reload() changed what was learned"
    )


def _refused_without_change(context: _Context, attempts: list[Attempt]) -> None:
    """Each attempt ``(label, call, word)`` must raise naming ``word`` and change nothing."""
    store = context.store()
    learner = context.learner("learner", store)
    observations = context.observations()
    _run_steps(learner, observations, np.random.default_rng(4), range(6))
    stored = _stored(store, learner.name)
    probabilities = _probabilities(learner, observations)
    for label, call, word in attempts:
        try:
            call(learner)
        except (TypeError, ValueError) as error:
            context.expect(
                word.lower() in str(error).lower(),
                f"{label} raised {type(error).__name__}({str(error)!r}), which does not "
                f"name {word!r}",
            )
        except Exception as error:
            raise LearnerCheckError(
                f"{context.check} ({context.learner_type}): {label} raised "
                f"{type(error).__name__}({error}), not TypeError or ValueError"
            ) from error
        else:
            context.expect(False, f"{label} was accepted")
        context.expect(_stored(store, learner.name) == stored, f"{label} changed the store")
        context.expect(
            _probabilities(learner, observations) == probabilities,
            f"{label} changed the learner's probabilities",
        )
    reopened = context.learner("learner")
    context.expect(
        _probabilities(reopened, observations) == probabilities,
        "after the refused inputs, a new learner on the store sees other probabilities",
    )


def _learning(observation: object, action: object, reward: object) -> Callable[[Any], object]:
    """A call of ``learner.learn(observation, action, reward)`` on the learner given."""
    return lambda learner: learner.learn(observation, action, reward)


def _choosing(observation: object) -> Callable[[Any], object]:
    """A call of ``learner.choose(observation, rng)`` on the learner given."""
    return lambda learner: learner.choose(observation, np.random.default_rng(0))


def _bad_rewards_change_nothing(context: _Context) -> None:
    observation = context.observations()[0]
    rewards: list[object] = [float("nan"), float("inf"), -float("inf"), "1.0", None, [1.0]]
    attempts: list[Attempt] = [
        (f"learn with reward {reward!r}", _learning(observation, ACTIONS[0], reward), "reward")
        for reward in rewards
    ]
    _refused_without_change(context, attempts)


def _bad_actions_change_nothing(context: _Context) -> None:
    observation = context.observations()[0]
    attempts: list[Attempt] = [
        ("learn for the unknown action 'nobody'", _learning(observation, "nobody", 1.0), "nobody"),
        ("learn for action 3", _learning(observation, 3, 1.0), "action"),
        ("learn for action None", _learning(observation, None, 1.0), "action"),
        ("add_action(3)", lambda learner: learner.add_action(3), "action"),
        ("add_action('')", lambda learner: learner.add_action(""), "action"),
    ]
    _refused_without_change(context, attempts)


def _bad_observations_change_nothing(context: _Context) -> None:
    bad: list[object] = ["search for papers", None, {"state": "s", "features": [1.0]}]
    attempts: list[Attempt] = [
        *(
            (f"learn from observation {item!r}", _learning(item, ACTIONS[0], 1.0), "observation")
            for item in bad
        ),
        *((f"choose for observation {item!r}", _choosing(item), "observation") for item in bad),
    ]
    _refused_without_change(context, attempts)


def _added_actions_are_offered(context: _Context) -> None:
    learner = context.learner("learner")
    observations = context.observations()
    _run_steps(learner, observations, np.random.default_rng(5), range(6))
    learner.add_action("newcomer_agent")
    context.expect(
        "newcomer_agent" in learner.actions, f"actions after add_action: {learner.actions}"
    )
    for index, observation in enumerate(observations):
        probabilities = learner.probabilities(observation)
        context.expect(
            set(probabilities) == {*ACTIONS, "newcomer_agent"},
            f"probabilities after add_action name {sorted(probabilities)}",
        )
        total = math.fsum(probabilities.values())
        context.expect(abs(total - 1.0) < 1e-9, f"probabilities sum to {total!r}")
        choice = learner.choose(observation, np.random.default_rng(index))
        context.expect(
            "newcomer_agent" in choice.scores, f"scores after add_action: {choice.scores}"
        )


_CHECKS: tuple[Callable[[_Context], None], ...] = (
    _choices_are_well_formed,
    _probabilities_sum_to_one_and_match_propensities,
    _resume_is_exact,
    _learning_persists,
    _bad_rewards_change_nothing,
    _bad_actions_change_nothing,
    _bad_observations_change_nothing,
    _added_actions_are_offered,
)


def yield_checks(
    make_learner: LearnerFactory,
    open_store: StoreOpener,
    *,
    dimension: int = 8,
    propensity_tolerance: float = 1e-3,
) -> Iterator[LearnerCheck]:
    """One :class:`LearnerCheck` per behaviour, each building its learners with
    ``make_learner`` on stores from ``open_store``.

    ``open_store()`` must open a new store object on the same location every call (the
    checks close what they open). ``dimension`` is the length of the feature vectors
    (the last entry is a constant 1). ``propensity_tolerance`` is how far a choice's
    propensity may be from its action's probability: 1e-3 admits numerically
    integrated probabilities (Thompson sampling); exact learners meet it with room.
    """
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 2:
        raise ValueError(f"dimension must be an int >= 2, got {dimension!r}")
    for function in _CHECKS:
        name = function.__name__.lstrip("_")
        yield LearnerCheck(
            name,
            _bound(function, name, make_learner, open_store, dimension, propensity_tolerance),
        )


def _bound(
    function: Callable[[_Context], None],
    name: str,
    make_learner: LearnerFactory,
    open_store: StoreOpener,
    dimension: int,
    propensity_tolerance: float,
) -> Callable[[], None]:
    def run() -> None:
        context = _Context(name, make_learner, open_store, dimension, propensity_tolerance)
        try:
            function(context)
        finally:
            context.close()

    return run


def check_learner(
    make_learner: LearnerFactory,
    open_store: StoreOpener,
    *,
    dimension: int = 8,
    propensity_tolerance: float = 1e-3,
) -> None:
    """Run every check of :func:`yield_checks`; the first failure raises
    :class:`LearnerCheckError`."""
    for check in yield_checks(
        make_learner, open_store, dimension=dimension, propensity_tolerance=propensity_tolerance
    ):
        check()


__all__ = [
    "ACTIONS",
    "LearnerCheck",
    "LearnerCheckError",
    "LearnerSetup",
    "check_learner",
    "yield_checks",
]
