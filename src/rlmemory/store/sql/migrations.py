"""How a SQL database gets to the current schema: create it, or upgrade an older one.

Versions: 0 is a database written by the seed's code (its five ``CREATE TABLE``
statements, :data:`SEED_DDL`, ``q_tables`` a real table of JSON, no ``rlmemory_meta``);
1 is the first rlmemory layout; 2 adds ``agent_versions`` and the ``version`` column of
decisions; 3 adds ``learner_steps`` (the linear learners' per-update log); 4 adds
``rlmemory_settings`` (namespaced JSON documents: service loops, API key hashes); 5 adds
``feature_cache`` (vectors of expensive featurisers). :data:`MIGRATIONS` lists the steps
from each version to the next; :func:`prepare_schema` runs what a database needs when a
store opens it. The tables themselves are :mod:`rlmemory.store.sql.schema`.

>>> [(step.from_version, step.to_version) for step in MIGRATIONS]
[(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rlmemory.errors import NotAStoreError, SchemaVersionError
from rlmemory.store.base import SCHEMA_VERSION
from rlmemory.store.sql.schema import (
    agent_decisions,
    agent_interactions,
    agent_rewards,
    agent_summary,
    agent_versions,
    feature_cache,
    learner_steps,
    metadata,
    policy_params,
    q_agents,
    q_tables_unmigrated,
    q_tables_view_sql,
    q_values,
    rlmemory_meta,
    rlmemory_settings,
    summary_trigger_sql,
)

#: The advisory lock PostgreSQL stores take while they create or upgrade the schema.
_SCHEMA_LOCK = 2024112501

#: The seed's five relations, with the seed's exact DDL (what version 0 looks like).
SEED_DDL = (
    """CREATE TABLE IF NOT EXISTS q_tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    q_table TEXT NOT NULL,
    last_updated REAL NOT NULL,
    UNIQUE(agent_name)
)""",
    """CREATE TABLE IF NOT EXISTS policy_params (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    policy_params TEXT NOT NULL,
    last_updated REAL NOT NULL,
    UNIQUE(agent_name)
)""",
    """CREATE TABLE IF NOT EXISTS agent_rewards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    reward REAL NOT NULL,
    reward_components TEXT NOT NULL,
    timestamp REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS agent_interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    feedback TEXT,
    timestamp REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS agent_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_name TEXT NOT NULL,
    state TEXT NOT NULL,
    selected_action TEXT NOT NULL,
    q_values TEXT NOT NULL,
    reward TEXT NOT NULL,
    timestamp REAL NOT NULL
)""",
)


def _backfill_summary(connection: sa.Connection) -> None:
    """Count the history rows already stored into ``agent_summary``."""
    connection.exec_driver_sql(
        """INSERT INTO agent_summary
        (agent_name, decisions, interactions, rewards, reward_sum, last_history)
        SELECT n.agent_name,
            (SELECT COUNT(*) FROM agent_decisions d WHERE d.agent_name = n.agent_name),
            (SELECT COUNT(*) FROM agent_interactions i WHERE i.agent_name = n.agent_name),
            (SELECT COUNT(*) FROM agent_rewards r WHERE r.agent_name = n.agent_name),
            COALESCE((SELECT SUM(r.reward) FROM agent_rewards r
                      WHERE r.agent_name = n.agent_name), 0),
            (SELECT MAX(t.stamp) FROM (
                SELECT MAX(timestamp) AS stamp FROM agent_decisions d
                    WHERE d.agent_name = n.agent_name
                UNION ALL SELECT MAX(timestamp) FROM agent_interactions i
                    WHERE i.agent_name = n.agent_name
                UNION ALL SELECT MAX(timestamp) FROM agent_rewards r
                    WHERE r.agent_name = n.agent_name) t)
        FROM (SELECT agent_name FROM agent_decisions
              UNION SELECT agent_name FROM agent_interactions
              UNION SELECT agent_name FROM agent_rewards) n"""
    )


def read_schema_version(connection: sa.Connection) -> int | None:
    """The version in ``rlmemory_meta``, 0 for a seed database, None for an empty one."""
    names = set(sa.inspect(connection).get_table_names())
    if rlmemory_meta.name in names:
        value = connection.execute(
            sa.select(rlmemory_meta.c.value).where(rlmemory_meta.c.key == "schema_version")
        ).scalar_one_or_none()
        if value is not None:
            return int(value)
    if names & {"q_tables", "policy_params", "agent_rewards", "agent_interactions"}:
        return 0
    return None


def missing_tables(connection: sa.Connection) -> set[str]:
    """Tables of the current schema that the database lacks (added without a version bump)."""
    return set(metadata.tables) - set(sa.inspect(connection).get_table_names())


def create_schema(connection: sa.Connection) -> None:
    """Create the current schema in a database that has none of it."""
    metadata.create_all(connection)
    connection.exec_driver_sql(q_tables_view_sql(connection.dialect.name))
    for statement in summary_trigger_sql(connection.dialect.name):
        connection.exec_driver_sql(statement)
    _write_version(connection, SCHEMA_VERSION)


def _write_version(connection: sa.Connection, version: int) -> None:
    connection.execute(sa.delete(rlmemory_meta).where(rlmemory_meta.c.key == "schema_version"))
    connection.execute(sa.insert(rlmemory_meta).values(key="schema_version", value=str(version)))


@dataclass(frozen=True)
class Migration:
    """One step from ``from_version`` to ``to_version``, run inside one transaction."""

    from_version: int
    to_version: int
    apply: Callable[[sa.Connection], None]
    summary: str


def _add_missing_columns(connection: sa.Connection, table: sa.Table) -> None:
    present = {column["name"] for column in sa.inspect(connection).get_columns(table.name)}
    preparer = connection.dialect.identifier_preparer
    for column in table.columns:
        if column.name in present:
            continue
        column_type = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE {preparer.quote(table.name)} "
            f"ADD COLUMN {preparer.quote(column.name)} {column_type}"
        )


def _parse_seed_q_table(text: str) -> dict[str, dict[str, float]]:
    table = json.loads(text)
    if not isinstance(table, dict):
        raise ValueError("the Q-table is not a JSON object")
    rows: dict[str, dict[str, float]] = {}
    for state, actions in table.items():
        if not isinstance(actions, dict):
            raise ValueError(f"state {state!r} does not map to an object of actions")
        row = {}
        for action, value in actions.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"value of {state!r}/{action!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(f"value of {state!r}/{action!r} is not finite")
            row[action] = float(value)
        rows[state] = row
    return rows


def _migrate_seed_to_v1(connection: sa.Connection) -> None:
    """Seed layout -> per-entry Q-values, the q_tables view, the extra columns, metadata."""
    old_rows: list[Any] = []
    if "q_tables" in sa.inspect(connection).get_table_names():
        old_rows = list(
            connection.exec_driver_sql(
                "SELECT id, agent_name, q_table, last_updated FROM q_tables ORDER BY id"
            ).all()
        )
        connection.exec_driver_sql("DROP TABLE q_tables")
    metadata.create_all(connection)  # new tables and indexes; existing tables untouched
    for table in (policy_params, agent_rewards, agent_interactions, agent_decisions):
        _add_missing_columns(connection, table)
    # Indexes on pre-existing tables are not created by create_all(checkfirst) when the
    # table exists, so create them explicitly.
    existing = {
        index["name"]
        for table in (agent_rewards, agent_interactions, agent_decisions)
        for index in sa.inspect(connection).get_indexes(table.name)
    }
    for table in (agent_rewards, agent_interactions, agent_decisions):
        for index in table.indexes:
            if index.name not in existing:
                index.create(connection)
    now = time.time()
    for row_id, agent_name, text, last_updated in old_rows:
        stamp = float(last_updated) if last_updated is not None else now
        try:
            parsed = _parse_seed_q_table(text)
        except (ValueError, TypeError) as problem:
            connection.execute(
                sa.insert(q_tables_unmigrated).values(
                    agent_name=agent_name, q_table=text, last_updated=stamp, problem=str(problem)
                )
            )
            continue
        connection.execute(
            sa.insert(q_agents).values(id=row_id, agent_name=agent_name, last_updated=stamp)
        )
        entries = [
            {"agent_name": agent_name, "state": s, "action": a, "value": v, "last_updated": stamp}
            for s, actions in parsed.items()
            for a, v in actions.items()
        ]
        if entries:
            connection.execute(sa.insert(q_values), entries)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('q_agents', 'id'), "
            "COALESCE((SELECT MAX(id) FROM q_agents), 0) + 1, false)"
        )
    connection.exec_driver_sql(q_tables_view_sql(connection.dialect.name))


def _add_versions(connection: sa.Connection) -> None:
    """Version 1 -> 2: agent_versions, agent_decisions.version, agent_summary."""
    agent_versions.create(connection, checkfirst=True)
    _add_missing_columns(connection, agent_decisions)
    agent_summary.create(connection, checkfirst=True)
    connection.exec_driver_sql("DELETE FROM agent_summary")
    _backfill_summary(connection)
    for statement in summary_trigger_sql(connection.dialect.name):
        connection.exec_driver_sql(statement)


def _add_learner_steps(connection: sa.Connection) -> None:
    """Version 2 -> 3: learner_steps. Statistics already in learner_arrays load as before."""
    learner_steps.create(connection, checkfirst=True)


def _add_settings(connection: sa.Connection) -> None:
    """Version 3 -> 4: rlmemory_settings."""
    rlmemory_settings.create(connection, checkfirst=True)


def _add_feature_cache(connection: sa.Connection) -> None:
    """Version 4 -> 5: the feature_cache table."""
    feature_cache.create(connection, checkfirst=True)


#: Ordered steps; ``MIGRATIONS[i]`` goes from version i to i + 1.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        0,
        1,
        _migrate_seed_to_v1,
        "seed layout: Q-tables JSON -> q_values rows + q_tables view; decision ids, "
        "feedback bookkeeping, propensities, arrays, schema metadata",
    ),
    Migration(
        1,
        2,
        _add_versions,
        "versions of learned state (agent_versions), the version each decision was made "
        "under, per-agent history counters (agent_summary, kept by triggers)",
    ),
    Migration(
        2,
        3,
        _add_learner_steps,
        "learner_steps: linear learners log each update in O(d) and snapshot their "
        "statistics every N updates",
    ),
    Migration(
        3,
        4,
        _add_settings,
        "settings: namespaced JSON documents (rlmemory_settings) for service loops and "
        "API key hashes",
    ),
    Migration(
        4,
        5,
        _add_feature_cache,
        "feature_cache: vectors of expensive featurisers (embeddings) by text hash",
    ),
)


def migrate(connection: sa.Connection, from_version: int) -> int:
    """Apply every migration from ``from_version`` up to :data:`SCHEMA_VERSION`."""
    version = from_version
    for step in MIGRATIONS:
        if step.from_version == version and version < SCHEMA_VERSION:
            step.apply(connection)
            version = step.to_version
            _write_version(connection, version)
    return version


def prepare_schema(engine: sa.Engine, location: str, *, create: bool = True) -> int:
    """Create or upgrade the schema of the database behind ``engine``; return its version.

    Without ``create`` a database holding no rlmemory tables (and no seed tables) is
    :class:`NotAStoreError`, and nothing is written to it.

    A database already at :data:`SCHEMA_VERSION` with every table costs one look. Else
    the work runs under the database's write lock (SQLite's ``BEGIN IMMEDIATE``, an
    advisory lock on PostgreSQL), looking again once the lock is held, since another
    process may have done it meanwhile. A newer schema is :class:`SchemaVersionError`.
    """
    with engine.connect() as connection:
        version = read_schema_version(connection)
        complete = version == SCHEMA_VERSION and not missing_tables(connection)
        connection.rollback()
        if complete:
            return SCHEMA_VERSION
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaVersionError(location, version, SCHEMA_VERSION)
        if version is None and not create:
            raise NotAStoreError(f"{location} holds no rlmemory store", location)
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        version = read_schema_version(connection)
        if version is None:
            create_schema(connection)
            version = SCHEMA_VERSION
        elif version > SCHEMA_VERSION:
            raise SchemaVersionError(location, version, SCHEMA_VERSION)
        elif version < SCHEMA_VERSION:
            version = migrate(connection, version)
        else:
            metadata.create_all(connection)  # tables added to this version
        connection.commit()
        return version


__all__ = [
    "MIGRATIONS",
    "SEED_DDL",
    "Migration",
    "create_schema",
    "migrate",
    "missing_tables",
    "prepare_schema",
    "read_schema_version",
]
