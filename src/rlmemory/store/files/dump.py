"""The rows of each backup table, read from a frozen file store (see ``snapshot.py``).

The rows are shaped like the SQL store's tables (:data:`rlmemory.store.rows.BACKUP_TABLES`),
so a backup moves between backends: ids kept, encrypted values still encrypted, JSON
columns as JSON text, bytes as bytes. Times the file store keeps per row (history
timestamps, ``at`` of Q-table changes, learner steps' ``last_updated``, versions'
``created``) are given as kept; the tables' ``last_updated`` is their files'
modification time, as :meth:`agent_stats` reads it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rlmemory.store._validation import to_json
from rlmemory.store.files.encode import decode_array, decode_step
from rlmemory.store.files.io import iter_records_forward, read_document
from rlmemory.store.files.layout import (
    ARRAYS_FILE,
    ARRAYS_UPDATES_FILE,
    HISTORY_FILE,
    POLICY_FILE,
    Q_TABLE_FILE,
    Q_UPDATES_FILE,
    STEPS_FILE,
    VERSIONS_DATA_FILE,
    VERSIONS_FILE,
)
from rlmemory.store.files.rows import all_rows
from rlmemory.store.files.settings import read_settings, settings_rows
from rlmemory.store.files.snapshot import FrozenAgent, FrozenStore
from rlmemory.store.files.tables import fold, state_times
from rlmemory.store.rows import BACKUP_TABLES, SETTINGS_TABLE, Row

#: Backup table of each history -> its short name (``rewards``, …).
HISTORY_OF = {
    "agent_rewards": "rewards",
    "agent_interactions": "interactions",
    "agent_decisions": "decisions",
}


def dump_table(frozen: FrozenStore, name: str) -> Iterator[Row]:
    """Every row of the backup table ``name`` (one of ``BACKUP_TABLES``)."""
    if name not in BACKUP_TABLES:
        raise ValueError(f"unknown table {name!r}; tables are {', '.join(BACKUP_TABLES)}")
    frozen.check_open()
    if name in HISTORY_OF:
        rows: list[Row] = []
        file_name = HISTORY_FILE[HISTORY_OF[name]]
        for agent in frozen.agents:
            for row in all_rows(agent.path(file_name), end=agent.end(file_name)):
                rows.append(sql_history_row(name, agent.name, row))
        yield from sorted(rows, key=lambda row: row["id"])
    elif name == SETTINGS_TABLE:
        if frozen.settings is not None:
            document = read_settings(frozen.settings.path)
            yield from settings_rows(document, frozen.settings.modified)
    elif name != "q_tables_unmigrated":  # the file store never holds seed Q-tables
        for index, agent in enumerate(frozen.agents, start=1):
            yield from _AGENT_TABLES[name](agent, index)


def _q_table(agent: FrozenAgent) -> dict[str, Any] | None:
    return fold(agent.path(Q_TABLE_FILE), agent.path(Q_UPDATES_FILE), 2, agent.end(Q_UPDATES_FILE))


def _q_agents(agent: FrozenAgent, index: int) -> Iterator[Row]:
    updated = agent.modified(Q_TABLE_FILE, Q_UPDATES_FILE)
    if _q_table(agent) is not None and updated is not None:
        yield {"id": index, "agent_name": agent.name, "last_updated": updated}


def _q_values(agent: FrozenAgent, index: int) -> Iterator[Row]:
    table = _q_table(agent) or {}
    base_time = agent.modified(Q_TABLE_FILE) or 0.0
    times = state_times(
        agent.path(Q_UPDATES_FILE), base_time=base_time, end=agent.end(Q_UPDATES_FILE)
    )
    for state in sorted(table):
        for action in sorted(table[state]):
            yield {
                "agent_name": agent.name,
                "state": state,
                "action": action,
                "value": table[state][action],
                "last_updated": times.get(state, base_time),
            }


def _policy_params(agent: FrozenAgent, index: int) -> Iterator[Row]:
    params = read_document(agent.path(POLICY_FILE))
    if params is not None:
        yield {
            "id": index,
            "agent_name": agent.name,
            "policy_params": to_json(params, "policy_params"),
            "last_updated": agent.modified(POLICY_FILE),
        }


def _learner_arrays(agent: FrozenAgent, index: int) -> Iterator[Row]:
    base = agent.path(ARRAYS_FILE)
    arrays = fold(base, agent.path(ARRAYS_UPDATES_FILE), 1, agent.end(ARRAYS_UPDATES_FILE))
    updated = agent.modified(ARRAYS_FILE, ARRAYS_UPDATES_FILE) or 0.0
    for key in sorted(arrays or {}):
        array = decode_array(key, (arrays or {})[key], base)
        yield {
            "agent_name": agent.name,
            "key": key,
            "dtype": array.dtype.name,
            "shape": json.dumps(list(array.shape)),
            "data": np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes(),
            "last_updated": updated,
        }


def _learner_steps(agent: FrozenAgent, index: int) -> Iterator[Row]:
    path = agent.path(STEPS_FILE)
    updated = agent.modified(STEPS_FILE)
    for _, record in iter_records_forward(path, agent.end(STEPS_FILE)):
        step = decode_step(record, path)
        stamp = record.get("last_updated")
        yield {
            "id": step.id,
            "agent_name": agent.name,
            "key": step.key,
            "data": step.values.astype("<f8").tobytes(),
            "last_updated": stamp if isinstance(stamp, int | float) else updated,
        }


def _agent_versions(agent: FrozenAgent, index: int) -> Iterator[Row]:
    data = {
        record.get("version"): record.get("payload")
        for _, record in iter_records_forward(
            agent.path(VERSIONS_DATA_FILE), agent.end(VERSIONS_DATA_FILE)
        )
    }
    for _, record in iter_records_forward(agent.path(VERSIONS_FILE), agent.end(VERSIONS_FILE)):
        number = record.get("version")
        yield {
            "agent_name": agent.name,
            "version": number,
            "note": record.get("note", ""),
            "created": record.get("created"),
            "payload": base64.b64decode(data.get(number) or ""),
        }


_AGENT_TABLES = {
    "q_agents": _q_agents,
    "q_values": _q_values,
    "policy_params": _policy_params,
    "learner_arrays": _learner_arrays,
    "learner_steps": _learner_steps,
    "agent_versions": _agent_versions,
}


def sql_history_row(table: str, agent: str, row: Mapping[str, Any]) -> Row:
    """A file-store history row in the SQL store's column layout."""
    out: Row = {"id": row["id"], "agent_name": agent}
    if table == "agent_rewards":
        out.update(
            reward=row.get("reward"),
            reward_components=to_json(row.get("reward_components"), "reward_components"),
            timestamp=row.get("timestamp"),
            decision_id=row.get("decision_id"),
        )
    elif table == "agent_interactions":
        out.update(
            request=row.get("request"),
            response=row.get("response"),
            feedback=row.get("feedback"),
            timestamp=row.get("timestamp"),
            decision_id=row.get("decision_id"),
            learned_feedback=row.get("learned_feedback"),
        )
    else:
        features = row.get("features")
        out.update(
            state=row.get("state"),
            selected_action=row.get("selected_action"),
            q_values=to_json(row.get("q_values"), "q_values"),
            reward=to_json(row.get("reward"), "reward"),
            timestamp=row.get("timestamp"),
            propensity=row.get("propensity"),
            features=None if features is None else to_json(features, "features"),
            version=row.get("version"),
        )
    return out
