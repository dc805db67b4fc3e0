"""The shapes of what the stores hold and return: table names, row types, column lists.

The lowest layer of :mod:`rlmemory.store`: it imports nothing from the store, so the
contract (:mod:`rlmemory.store.base`), the argument checks and every backend can share it.
"""

from __future__ import annotations

from typing import Any, TypedDict

#: A Q-table: state -> action -> value.
QTable = dict[str, dict[str, float]]

#: A row as the stores return it (the history getters document its keys).
Row = dict[str, Any]

#: The history tables that pruning and export know, by their short names.
HISTORY_TABLES = ("rewards", "interactions", "decisions")

#: The SQL store's table names, in load order; the file store produces the same rows.
BACKUP_TABLES = (
    "q_agents",
    "q_values",
    "policy_params",
    "learner_arrays",
    "learner_steps",
    "agent_decisions",
    "agent_rewards",
    "agent_interactions",
    "agent_versions",
    "q_tables_unmigrated",
    # Namespaced settings (service loops, API key hashes): no agent's, loaded last.
    "rlmemory_settings",
)

#: The backup table of the settings (MemoryStore.save_setting), named as in SQL.
SETTINGS_TABLE = "rlmemory_settings"

#: The columns of each backup table's rows, as ``snapshot()`` gives them and
#: ``load_rows()`` takes them on every backend (the SQL schema's columns; a test pins it).
BACKUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "q_agents": ("id", "agent_name", "last_updated"),
    "q_values": ("agent_name", "state", "action", "value", "last_updated"),
    "policy_params": ("id", "agent_name", "policy_params", "last_updated"),
    "learner_arrays": ("agent_name", "key", "dtype", "shape", "data", "last_updated"),
    "learner_steps": ("id", "agent_name", "key", "data", "last_updated"),
    "agent_decisions": (
        "id",
        "agent_name",
        "state",
        "selected_action",
        "q_values",
        "reward",
        "timestamp",
        "propensity",
        "features",
        "version",
    ),
    "agent_rewards": (
        "id",
        "agent_name",
        "reward",
        "reward_components",
        "timestamp",
        "decision_id",
    ),
    "agent_interactions": (
        "id",
        "agent_name",
        "request",
        "response",
        "feedback",
        "timestamp",
        "decision_id",
        "learned_feedback",
    ),
    "agent_versions": ("agent_name", "version", "note", "created", "payload"),
    "q_tables_unmigrated": ("agent_name", "q_table", "last_updated", "problem"),
    "rlmemory_settings": ("namespace", "key", "value", "updated"),
}


class RewardRow(TypedDict):
    """A row of :meth:`~rlmemory.store.base.MemoryStore.get_agent_rewards`."""

    id: int
    agent_name: str
    reward: float
    reward_components: dict[str, Any]
    decision_id: int | None
    timestamp: float


class InteractionRow(TypedDict):
    """A row of :meth:`~rlmemory.store.base.MemoryStore.get_agent_interactions`."""

    id: int
    agent_name: str
    request: str
    response: str
    feedback: str | None
    decision_id: int | None
    feedback_learned: bool
    timestamp: float


class DecisionRow(TypedDict):
    """A row of :meth:`~rlmemory.store.base.MemoryStore.get_agent_decisions`."""

    id: int
    agent_name: str
    state: str
    selected_action: str
    q_values: dict[str, Any]
    reward: Any
    propensity: float | None
    features: list[float] | None
    timestamp: float
    version: int | None


class VersionInfo(TypedDict):
    """A row of :meth:`~rlmemory.store.base.MemoryStore.list_versions`."""

    version: int
    note: str
    created: float
    size: int


class AgentStats(TypedDict):
    """What :meth:`~rlmemory.store.base.MemoryStore.agent_stats` returns."""

    decisions: int
    interactions: int
    rewards: int
    mean_reward: float | None
    last_update: float | None


class QStateStats(TypedDict):
    """A row of :meth:`~rlmemory.store.base.MemoryStore.q_state_stats`."""

    state: str
    actions: int
    last_updated: float
    visits: int


class PruneSummary(TypedDict):
    """What :meth:`~rlmemory.store.base.MemoryStore.prune_history` returns."""

    rows: int
    first_id: int | None
    last_id: int | None
    oldest: float | None
    newest: float | None


def columns_of(shape: type) -> tuple[str, ...]:
    """The keys of a row ``TypedDict``, in declaration order.

    >>> columns_of(RewardRow)
    ('id', 'agent_name', 'reward', 'reward_components', 'decision_id', 'timestamp')
    """
    return tuple(shape.__annotations__)


#: The columns of each history table's rows, in order (export writes them so).
REWARD_COLUMNS = columns_of(RewardRow)
INTERACTION_COLUMNS = columns_of(InteractionRow)
DECISION_COLUMNS = columns_of(DecisionRow)

#: History table short name -> its row columns.
HISTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "rewards": REWARD_COLUMNS,
    "interactions": INTERACTION_COLUMNS,
    "decisions": DECISION_COLUMNS,
}
