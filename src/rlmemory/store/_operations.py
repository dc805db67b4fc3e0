"""Names both stores' operations share: the backup table order and the unknown-reward error."""

from __future__ import annotations

#: The SQL store's table names, in load order; the file store produces the same rows.
BACKUP_TABLES = (
    "q_agents",
    "q_values",
    "policy_params",
    "learner_arrays",
    "agent_decisions",
    "agent_rewards",
    "agent_interactions",
    "agent_versions",
    "q_tables_unmigrated",
)


class UnknownRewardError(LookupError):
    """No reward with this id exists in this store.

    >>> str(UnknownRewardError(7))
    'no reward with id 7'
    """

    def __init__(self, reward_id: object) -> None:
        super().__init__(f"no reward with id {reward_id!r}")
        self.reward_id = reward_id


__all__ = ["BACKUP_TABLES", "UnknownRewardError"]
