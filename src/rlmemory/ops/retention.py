"""Retention policies: what old history, old versions and cold Q-table states an agent drops.

A :class:`RetentionPolicy` bounds, per agent, the rewards, interactions and decisions
(by age and/or by row count, newest kept), the versions (idem; the newest version is
always kept), and the Q-table: states not updated for a given time, or outside the N
most visited (visits are the decisions taken in that state).

:func:`prune` with ``dry_run=True`` only reports what would go. A real prune first
saves a version of the agent ("auto: before prune"), so a Q-table pruned too hard can be
rolled back; history rows, once pruned, are gone — take a backup first if they matter.

>>> policy = RetentionPolicy(rewards=TableRule(max_rows=1000), q_keep_most_visited=500)
>>> policy.is_empty
False
>>> RetentionPolicy.from_mapping({"max_age_days": 30, "versions": {"max_rows": 20}})
RetentionPolicy(rewards=TableRule(max_age_seconds=2592000.0, max_rows=None), ...)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmemory.ops.versions import checkpoint, list_versions
from rlmemory.store._validation import check_agent_name, check_finite
from rlmemory.store.base import HISTORY_TABLES, MemoryStore

DAY = 86_400.0


@dataclass(frozen=True)
class TableRule:
    """Keep rows younger than ``max_age_seconds`` and at most the ``max_rows`` newest.

    A row goes when either bound excludes it; ``None`` means no bound.
    """

    max_age_seconds: float | None = None
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.max_age_seconds is not None:
            age = _check_seconds(self.max_age_seconds, "max_age_seconds")
            object.__setattr__(self, "max_age_seconds", age)
        if self.max_rows is not None:
            _check_count(self.max_rows, "max_rows")

    @property
    def is_empty(self) -> bool:
        """Whether this rule keeps everything."""
        return self.max_age_seconds is None and self.max_rows is None

    def cutoff(self, now: float) -> float | None:
        """The timestamp before which rows go, or None."""
        return None if self.max_age_seconds is None else now - self.max_age_seconds


def _check_seconds(value: object, name: str) -> float:
    seconds = check_finite(value, name)
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0, got {seconds}")
    return seconds


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class RetentionPolicy:
    """Retention rules of one agent; every rule is optional."""

    rewards: TableRule = field(default_factory=TableRule)
    interactions: TableRule = field(default_factory=TableRule)
    decisions: TableRule = field(default_factory=TableRule)
    versions: TableRule = field(default_factory=TableRule)
    #: Drop Q-table states not updated for this many seconds.
    q_unvisited_seconds: float | None = None
    #: Keep only the states with the most decisions (ties kept by recency).
    q_keep_most_visited: int | None = None

    def __post_init__(self) -> None:
        if self.q_unvisited_seconds is not None:
            _check_seconds(self.q_unvisited_seconds, "q_unvisited_seconds")
        if self.q_keep_most_visited is not None:
            _check_count(self.q_keep_most_visited, "q_keep_most_visited")

    @property
    def is_empty(self) -> bool:
        """Whether the policy keeps everything."""
        return (
            all(rule.is_empty for rule in (self.rewards, self.interactions, self.decisions))
            and self.versions.is_empty
            and self.q_unvisited_seconds is None
            and self.q_keep_most_visited is None
        )

    def rule(self, table: str) -> TableRule:
        """The rule of ``table`` (rewards, interactions, decisions or versions)."""
        rule = getattr(self, table)
        if not isinstance(rule, TableRule):
            raise ValueError(f"{table!r} is not a table with a retention rule")
        return rule

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> RetentionPolicy:
        """Build a policy from plain data (a JSON policy file, CLI options).

        Keys: ``max_age_days`` / ``max_rows`` (defaults for the three history tables),
        ``rewards`` / ``interactions`` / ``decisions`` / ``versions`` (each a mapping
        with ``max_age_days`` and/or ``max_rows``), ``q_unvisited_days``,
        ``q_keep_most_visited``. Unknown keys are a ``ValueError`` naming them.
        """
        known = {"max_age_days", "max_rows", "q_unvisited_days", "q_keep_most_visited"}
        known |= {*HISTORY_TABLES, "versions"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(
                f"unknown retention keys {sorted(unknown)}; valid keys are {sorted(known)}"
            )
        default = _rule(spec, "policy")
        rules = {
            table: _rule(spec[table], table) if table in spec else default
            for table in HISTORY_TABLES
        }
        versions = _rule(spec["versions"], "versions") if "versions" in spec else TableRule()
        unvisited = spec.get("q_unvisited_days")
        return cls(
            **rules,
            versions=versions,
            q_unvisited_seconds=None
            if unvisited is None
            else check_finite(unvisited, "q_unvisited_days") * DAY,
            q_keep_most_visited=spec.get("q_keep_most_visited"),
        )


def policy_spec_for(document: Mapping[str, Any], agent_name: str) -> dict[str, Any]:
    """The policy mapping that applies to ``agent_name`` in a policy document.

    A document is either one policy for every agent, or ``{"default": {...}, "agents":
    {"name": {...}}}``. Every part that should be an object and is not is a
    ``ValueError`` naming where it is, so a typo in a policy file reads as one line.

    >>> policy_spec_for({"default": {"max_rows": 5}, "agents": {"a": {"max_rows": 9}}}, "b")
    {'max_rows': 5}
    >>> policy_spec_for({"agents": {"a": 5}}, "a")
    Traceback (most recent call last):
    ValueError: policy agents.a must be an object of retention rules, not int (5)
    """
    if not isinstance(document, Mapping):
        raise ValueError(f"a policy must be a JSON object, not {type(document).__name__}")
    if "agents" not in document and "default" not in document:
        return dict(document)
    extra = sorted(set(document) - {"agents", "default"})
    if extra:
        raise ValueError(
            f"a policy with 'agents' or 'default' has no other keys; found {extra} "
            "(put them under 'default')"
        )
    agents = document.get("agents", {})
    if not isinstance(agents, Mapping):
        raise ValueError(f"policy agents must be an object of agent names, not {_shown(agents)}")
    for name, spec in agents.items():
        if not isinstance(spec, Mapping):
            raise ValueError(
                f"policy agents.{name} must be an object of retention rules, not {_shown(spec)}"
            )
    default = document.get("default", {})
    if not isinstance(default, Mapping):
        raise ValueError(
            f"policy default must be an object of retention rules, not {_shown(default)}"
        )
    return dict(agents.get(agent_name, default))


def _shown(value: object) -> str:
    return f"{type(value).__name__} ({value!r:.40})"


def _rule(spec: object, name: str) -> TableRule:
    if not isinstance(spec, Mapping):
        raise ValueError(f"policy {name} must be an object of rules, not {_shown(spec)}")
    days = spec.get("max_age_days")
    return TableRule(
        max_age_seconds=None if days is None else check_finite(days, f"{name}.max_age_days") * DAY,
        max_rows=spec.get("max_rows"),
    )


# ------------------------------------------------------------------- planning
@dataclass(frozen=True)
class TablePlan:
    """What pruning one history table removes: row count, id range and time range."""

    table: str
    rows: int
    first_id: int | None = None
    last_id: int | None = None
    oldest: float | None = None
    newest: float | None = None


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (or, for a dry run, would remove) for one agent.

    ``saved_version`` is the version taken before pruning (None for a dry run or when
    nothing was to go).
    """

    agent_name: str
    dry_run: bool
    tables: list[TablePlan]
    versions: list[int]
    q_states: list[str]
    saved_version: int | None = None

    @property
    def is_empty(self) -> bool:
        """Whether nothing goes."""
        return not self.versions and not self.q_states and all(t.rows == 0 for t in self.tables)

    def counts(self) -> dict[str, int]:
        """Rows (or versions, or states) per kind."""
        counts = {plan.table: plan.rows for plan in self.tables}
        counts["versions"] = len(self.versions)
        counts["q_states"] = len(self.q_states)
        return counts


def _versions_to_prune(
    store: MemoryStore, agent_name: str, rule: TableRule, now: float, *, pending: int = 0
) -> list[int]:
    """Versions that go; ``pending`` newer versions about to be saved count as kept."""
    if rule.is_empty:
        return []
    versions = list_versions(store, agent_name)
    # The newest version is always kept (the one saved before pruning, once it exists).
    candidates = versions if pending else versions[:-1]
    doomed = set()
    cutoff = rule.cutoff(now)
    if cutoff is not None:
        doomed |= {info.version for info in candidates if info.created < cutoff}
    if rule.max_rows is not None:
        keep = max(rule.max_rows, 1)
        surplus = len(versions) + pending - keep
        doomed |= {info.version for info in versions[: max(surplus, 0)]}
    return sorted(doomed)


def q_states_to_prune(
    stats: Sequence[Mapping[str, Any]],
    *,
    now: float,
    unvisited_seconds: float | None,
    keep_most_visited: int | None,
) -> list[str]:
    """Which Q-table states go, from per-state ``last_updated`` and ``visits``.

    >>> stats = [
    ...     {"state": "hot", "visits": 90, "last_updated": 990.0},
    ...     {"state": "cold", "visits": 5, "last_updated": 10.0},
    ...     {"state": "warm", "visits": 20, "last_updated": 900.0},
    ... ]
    >>> q_states_to_prune(stats, now=1000.0, unvisited_seconds=500, keep_most_visited=None)
    ['cold']
    >>> q_states_to_prune(stats, now=1000.0, unvisited_seconds=None, keep_most_visited=1)
    ['cold', 'warm']
    """
    doomed: set[str] = set()
    if unvisited_seconds is not None:
        cutoff = now - unvisited_seconds
        doomed |= {str(row["state"]) for row in stats if float(row["last_updated"]) < cutoff}
    if keep_most_visited is not None:
        ranked = sorted(
            stats, key=lambda row: (-int(row["visits"]), -float(row["last_updated"]), row["state"])
        )
        doomed |= {str(row["state"]) for row in ranked[keep_most_visited:]}
    return sorted(doomed)


def prune(
    store: MemoryStore,
    agent_name: str,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneReport:
    """Apply ``policy`` to ``agent_name``; with ``dry_run`` only report.

    A real prune saves a version of the agent's learned state first and then deletes,
    all in one transaction.
    """
    check_agent_name(agent_name)
    if not isinstance(policy, RetentionPolicy):
        raise TypeError(f"policy must be a RetentionPolicy, not {type(policy).__name__}")
    moment = time.time() if now is None else check_finite(now, "now")
    with store.transaction():
        tables = [
            _table_plan(store, agent_name, table, policy.rule(table), moment, dry_run=True)
            for table in HISTORY_TABLES
        ]
        versions = _versions_to_prune(store, agent_name, policy.versions, moment, pending=1)
        q_states: list[str] = []
        if policy.q_unvisited_seconds is not None or policy.q_keep_most_visited is not None:
            q_states = q_states_to_prune(
                store.q_state_stats(agent_name),
                now=moment,
                unvisited_seconds=policy.q_unvisited_seconds,
                keep_most_visited=policy.q_keep_most_visited,
            )
        report = PruneReport(agent_name, dry_run, tables, versions, q_states)
        if dry_run or report.is_empty:
            return report
        saved = checkpoint(store, agent_name, "auto: before prune")
        tables = [
            _table_plan(store, agent_name, table, policy.rule(table), moment, dry_run=False)
            for table in HISTORY_TABLES
        ]
        versions = _versions_to_prune(store, agent_name, policy.versions, moment)
        if versions:
            store.delete_versions(agent_name, versions)
        if q_states:
            store.delete_q_states(agent_name, q_states)
    return PruneReport(agent_name, False, tables, versions, q_states, saved_version=saved)


def _table_plan(
    store: MemoryStore, agent_name: str, table: str, rule: TableRule, now: float, *, dry_run: bool
) -> TablePlan:
    if rule.is_empty:
        return TablePlan(table, 0)
    summary = store.prune_history(
        agent_name,
        table,
        older_than=rule.cutoff(now),
        keep_newest=rule.max_rows,
        dry_run=dry_run,
    )
    return TablePlan(
        table,
        int(summary["rows"]),
        summary.get("first_id"),
        summary.get("last_id"),
        summary.get("oldest"),
        summary.get("newest"),
    )
