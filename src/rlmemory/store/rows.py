"""The shapes of what the stores hold and return: table names, row types, column lists.

The lowest layer of :mod:`rlmemory.store`: it imports nothing from the store, so the
contract (:mod:`rlmemory.store.base`), the argument checks and every backend can share it.
"""

from __future__ import annotations

from typing import Any

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
