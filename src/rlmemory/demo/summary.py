"""What a demo run learned and what it is worth, from its outcomes and logged propensities.

:func:`learned_by_kind` gives, per request kind, the sub-agent the learned policy now
prefers. :func:`policy_values` compares, on the run's logged decisions, the policy as
it ran (learning and exploring) with a uniform random router, the learned policy
choosing greedily, and the best possible router (always the sub-agent made for the
request). The last three never ran: their values are off-policy estimates (SNIPS,
:mod:`rlmemory.offpolicy`) from the probability each logged choice had.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rlmemory.demo.requests import KINDS
from rlmemory.demo.run import DemoReport
from rlmemory.offpolicy import (
    Estimate,
    LoggedDecisions,
    observed_value,
    snips_estimate,
    support_diagnostics,
)

__all__ = ["KindSummary", "PolicyValue", "learned_by_kind", "policy_values"]


@dataclass(frozen=True)
class KindSummary:
    """One request kind: the sub-agent made for it, the learned choice and its value,
    and the shares routed right (greedy, and as run) and served successfully."""

    kind: str
    right_agent: str
    learned_agent: str
    learned_value: float
    greedy_right: float
    routed_right: float
    succeeded: float
    requests: int


def learned_by_kind(report: DemoReport) -> list[KindSummary]:
    """Per request kind of the run: what the learned policy chooses for it.

    ``learned_agent`` is the greedy choice most often made for the kind's requests
    and ``learned_value`` its mean value (Q-value, or probability) over them.
    """
    rows = []
    for kind, right_agent in KINDS.items():
        pairs = [
            (outcome, greedy)
            for outcome, greedy in zip(report.outcomes, report.greedy, strict=False)
            if outcome.request.kind == kind
        ]
        if not pairs:
            continue
        votes = Counter(greedy.agent for _, greedy in pairs)
        learned = votes.most_common(1)[0][0]
        values = [greedy.value for _, greedy in pairs if greedy.agent == learned]
        rows.append(
            KindSummary(
                kind=kind,
                right_agent=right_agent,
                learned_agent=learned,
                learned_value=float(np.mean(values)),
                greedy_right=votes[right_agent] / len(pairs),
                routed_right=sum(o.selected_agent == right_agent for o, _ in pairs) / len(pairs),
                succeeded=sum(o.success for o, _ in pairs) / len(pairs),
                requests=len(pairs),
            )
        )
    return rows


@dataclass(frozen=True)
class PolicyValue:
    """A routing policy's mean reward per request on the run's requests, with its interval.

    ``estimated`` is True for an off-policy estimate, False for the observed mean.
    ``unsupported`` is the share of the policy's choices the logs never tried (the
    estimate cannot speak for those; see :class:`rlmemory.offpolicy.SupportDiagnostics`).
    """

    label: str
    estimate: Estimate
    estimated: bool
    unsupported: float = 0.0


def _logged(report: DemoReport) -> tuple[LoggedDecisions, list[str]]:
    actions = sorted(set(KINDS.values()) | {o.selected_agent for o in report.outcomes})
    index = {action: k for k, action in enumerate(actions)}
    logged = LoggedDecisions(
        contexts=np.zeros((len(report.outcomes), 1)),
        actions=np.array([index[o.selected_agent] for o in report.outcomes]),
        rewards=np.array([o.reward for o in report.outcomes]),
        propensities=np.array([o.propensity for o in report.outcomes]),
        action_names=actions,
    )
    return logged, actions


def _one_hot(choices: list[str], actions: list[str]) -> np.ndarray:
    matrix = np.zeros((len(choices), len(actions)))
    matrix[np.arange(len(choices)), [actions.index(choice) for choice in choices]] = 1.0
    return matrix


def policy_values(
    report: DemoReport, *, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> list[PolicyValue]:
    """The run as it went, a uniform random router, the learned greedy policy and the
    best possible router, each with a bootstrap interval (see the module docstring).

    The greedy policy is judged on the requests it learned from, so its estimate is
    somewhat optimistic; the others are not.
    """
    if not report.outcomes:
        raise ValueError("the demo run has no outcomes to evaluate")
    logged, actions = _logged(report)
    uniform = np.full((len(logged), len(actions)), 1.0 / len(actions))
    greedy = _one_hot([choice.agent for choice in report.greedy], actions)
    best = _one_hot([KINDS[o.request.kind] for o in report.outcomes], actions)
    explore = "" if report.exploration_rate is None else f", exploring {report.exploration_rate:g}"
    values = [
        PolicyValue(
            f"as run (learning{explore})",
            observed_value(logged, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed),
            False,
        )
    ]
    for label, target in (
        ("uniform random sub-agent", uniform),
        ("learned policy, greedy", greedy),
        ("best possible (right sub-agent)", best),
    ):
        support = support_diagnostics(logged, target)
        values.append(
            PolicyValue(
                label,
                snips_estimate(
                    logged, target, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
                ),
                True,
                support.unsupported_mass,
            )
        )
    return values
