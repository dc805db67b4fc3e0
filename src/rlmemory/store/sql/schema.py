"""Tables, the ``q_tables`` view and the schema migrations of the SQL store.

The seed's five relations keep their names and columns (extra columns are appended).
Q-values live one row per (agent, state, action) in ``q_values``; ``q_tables`` is a
view that assembles the seed's JSON column from them, so an update writes one row
whatever the size of the table, and ``SELECT q_table FROM q_tables`` still works.

Versions: 0 is a database written by the seed's code (its five ``CREATE TABLE``
statements, ``q_tables`` a real table of JSON, no ``rlmemory_meta``); 1 is the first
rlmemory layout; 2 adds ``agent_versions`` and the ``version`` column of decisions;
3 adds ``learner_steps`` (the linear learners' per-update log); 4 adds
``rlmemory_settings`` (namespaced JSON documents: service loops, API key hashes); 5 adds
``feature_cache`` (vectors of expensive featurisers).
:data:`MIGRATIONS` lists the steps from each version to the next.

>>> from sqlalchemy.dialects import sqlite
>>> "json_group_object" in q_tables_view_sql("sqlite")
True
>>> [(step.from_version, step.to_version) for step in MIGRATIONS]
[(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from rlmemory.store.base import SCHEMA_VERSION

metadata = sa.MetaData()

# Timestamps and values: the seed's SQLite REAL (8-byte float); DOUBLE PRECISION on
# PostgreSQL, whose REAL is a 4-byte float that would round epoch seconds to minutes.
Real = sa.Double().with_variant(sqlite.REAL(), "sqlite")
# SQLite needs exactly INTEGER for an autoincrementing rowid alias; BIGSERIAL elsewhere.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _row_id() -> sa.Column:
    return sa.Column("id", RowId, primary_key=True, autoincrement=True)


q_agents = sa.Table(
    "q_agents",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False, unique=True),
    sa.Column("last_updated", Real, nullable=False),
    sqlite_autoincrement=True,
)

q_values = sa.Table(
    "q_values",
    metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, primary_key=True),
    sa.Column("action", sa.Text, primary_key=True),
    sa.Column("value", Real, nullable=False),
    sa.Column("last_updated", Real, nullable=False),
    sqlite_with_rowid=False,
)

policy_params = sa.Table(
    "policy_params",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False, unique=True),
    sa.Column("policy_params", sa.Text, nullable=False),
    sa.Column("last_updated", Real, nullable=False),
    sqlite_autoincrement=True,
)

agent_rewards = sa.Table(
    "agent_rewards",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("reward", Real, nullable=False),
    sa.Column("reward_components", sa.Text, nullable=False),
    sa.Column("timestamp", Real, nullable=False),
    sa.Column("decision_id", RowId, nullable=True),
    sa.Index("ix_agent_rewards_agent_id", "agent_name", "id"),
    sa.Index("ix_agent_rewards_decision", "decision_id"),
    sqlite_autoincrement=True,
)

_UNLEARNED = "feedback IS NOT NULL AND (learned_feedback IS NULL OR learned_feedback <> feedback)"

agent_interactions = sa.Table(
    "agent_interactions",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("feedback", sa.Text, nullable=True),
    sa.Column("timestamp", Real, nullable=False),
    sa.Column("decision_id", RowId, nullable=True),
    sa.Column("learned_feedback", sa.Text, nullable=True),
    sa.Index("ix_agent_interactions_agent_id", "agent_name", "id"),
    sa.Index("ix_agent_interactions_decision", "decision_id"),
    sa.Index(
        "ix_agent_interactions_unlearned",
        "agent_name",
        "id",
        sqlite_where=sa.text(_UNLEARNED),
        postgresql_where=sa.text(_UNLEARNED),
    ),
    sqlite_autoincrement=True,
)

agent_decisions = sa.Table(
    "agent_decisions",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("selected_action", sa.Text, nullable=False),
    sa.Column("q_values", sa.Text, nullable=False),
    sa.Column("reward", sa.Text, nullable=False),
    sa.Column("timestamp", Real, nullable=False),
    sa.Column("propensity", Real, nullable=True),
    sa.Column("features", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Index("ix_agent_decisions_agent_id", "agent_name", "id"),
    sqlite_autoincrement=True,
)

learner_arrays = sa.Table(
    "learner_arrays",
    metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("dtype", sa.Text, nullable=False),
    sa.Column("shape", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("last_updated", Real, nullable=False),
)

#: What linear learners learned since their last snapshot in ``learner_arrays``: one row
#: per update, O(d) bytes (``data`` is little-endian float64), replayed on load.
learner_steps = sa.Table(
    "learner_steps",
    metadata,
    _row_id(),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("last_updated", Real, nullable=False),
    sa.Index("ix_learner_steps_agent_id", "agent_name", "id"),
    sqlite_autoincrement=True,
)

#: Vectors of expensive featurisers (embeddings), by featuriser name and SHA-256 of the text.
feature_cache = sa.Table(
    "feature_cache",
    metadata,
    sa.Column("featurizer", sa.Text, primary_key=True),
    sa.Column("text_sha256", sa.Text, primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("created", Real, nullable=False),
    sa.Index("feature_cache_by_age", "featurizer", "created"),
)

#: Per-agent counts of the history tables, kept by triggers (:func:`summary_trigger_sql`)
#: so that ``agent_stats`` and ``list_agents`` do not scan a million rows.
agent_summary = sa.Table(
    "agent_summary",
    metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("decisions", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("interactions", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rewards", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reward_sum", Real, nullable=False, server_default="0"),
    sa.Column("last_history", Real, nullable=True),
)

_COUNTED = (
    ("agent_decisions", "decisions"),
    ("agent_interactions", "interactions"),
    ("agent_rewards", "rewards"),
)


def summary_trigger_sql(dialect: str) -> list[str]:
    """Statements creating the triggers that keep ``agent_summary`` current."""
    statements = []
    for table, counter in _COUNTED:
        added = "NEW.reward" if table == "agent_rewards" else "0"
        removed = "OLD.reward" if table == "agent_rewards" else "0"
        newest = (
            "MAX(COALESCE(agent_summary.last_history, excluded.last_history), "
            "excluded.last_history)"
            if dialect == "sqlite"
            else "GREATEST(agent_summary.last_history, excluded.last_history)"
        )
        insert = (
            f"INSERT INTO agent_summary (agent_name, {counter}, reward_sum, last_history) "
            f"VALUES (NEW.agent_name, 1, {added}, NEW.timestamp) "
            f"ON CONFLICT (agent_name) DO UPDATE SET {counter} = agent_summary.{counter} + 1, "
            "reward_sum = agent_summary.reward_sum + excluded.reward_sum, "
            f"last_history = {newest}"
        )
        delete = (
            f"UPDATE agent_summary SET {counter} = {counter} - 1, "
            f"reward_sum = reward_sum - {removed} WHERE agent_name = OLD.agent_name"
        )
        change = (
            "UPDATE agent_summary SET reward_sum = reward_sum - OLD.reward + NEW.reward "
            "WHERE agent_name = NEW.agent_name"
        )
        if dialect == "sqlite":
            statements.append(
                f"CREATE TRIGGER rlm_{counter}_added AFTER INSERT ON {table} BEGIN {insert}; END"
            )
            statements.append(
                f"CREATE TRIGGER rlm_{counter}_removed AFTER DELETE ON {table} BEGIN {delete}; END"
            )
            if table == "agent_rewards":
                statements.append(
                    "CREATE TRIGGER rlm_rewards_changed AFTER UPDATE OF reward ON agent_rewards "
                    f"BEGIN {change}; END"
                )
        elif dialect == "postgresql":
            # Statement-level triggers over transition tables: one summary update per
            # statement, not per row. (Updating one row many times in one transaction
            # is quadratic in PostgreSQL: each update walks the row's version chain.)
            statements.extend(_postgres_summary_triggers(table, counter))
        else:
            raise ValueError(f"unsupported SQL dialect {dialect!r}")
    return statements


def _postgres_summary_triggers(table: str, counter: str) -> list[str]:
    reward = "reward" if table == "agent_rewards" else "0"
    added = (
        f"INSERT INTO agent_summary (agent_name, {counter}, reward_sum, last_history) "
        f"SELECT agent_name, COUNT(*), SUM({reward}), MAX(timestamp) FROM new_rows "
        f"GROUP BY agent_name ON CONFLICT (agent_name) DO UPDATE SET "
        f"{counter} = agent_summary.{counter} + excluded.{counter}, "
        "reward_sum = agent_summary.reward_sum + excluded.reward_sum, "
        "last_history = GREATEST(agent_summary.last_history, excluded.last_history)"
    )
    removed = (
        f"UPDATE agent_summary s SET {counter} = s.{counter} - o.n, "
        "reward_sum = s.reward_sum - o.total FROM "
        f"(SELECT agent_name, COUNT(*) AS n, SUM({reward}) AS total FROM old_rows "
        "GROUP BY agent_name) o WHERE s.agent_name = o.agent_name"
    )
    changed = (
        "UPDATE agent_summary s SET reward_sum = s.reward_sum + d.delta FROM "
        "(SELECT n.agent_name, SUM(n.reward - o.reward) AS delta FROM new_rows n "
        "JOIN old_rows o ON o.id = n.id GROUP BY n.agent_name) d "
        "WHERE s.agent_name = d.agent_name"
    )
    bodies = [("added", "INSERT", "NEW TABLE AS new_rows", added)]
    bodies.append(("removed", "DELETE", "OLD TABLE AS old_rows", removed))
    if table == "agent_rewards":
        bodies.append(("changed", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", changed))
    statements = []
    for suffix, event, transition, body in bodies:
        name = f"rlm_{counter}_{suffix}"
        statements.append(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {body}; "
            "RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    return statements


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


#: Numbered snapshots of an agent's learned state (rlmemory.ops.versions), compressed.
agent_versions = sa.Table(
    "agent_versions",
    metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created", Real, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

rlmemory_meta = sa.Table(
    "rlmemory_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: Namespaced JSON documents (MemoryStore.save_setting): loop settings, API key hashes.
rlmemory_settings = sa.Table(
    "rlmemory_settings",
    metadata,
    sa.Column("namespace", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated", Real, nullable=False),
)

#: Q-tables of the seed's databases whose JSON could not be read during the migration.
#: Kept as they were so nothing is lost; reading such an agent raises CorruptStoreError.
q_tables_unmigrated = sa.Table(
    "q_tables_unmigrated",
    metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("q_table", sa.Text, nullable=False),
    sa.Column("last_updated", Real, nullable=False),
    sa.Column("problem", sa.Text, nullable=False),
)

#: Tables that hold per-agent data, for listing agents.
AGENT_TABLES = (
    q_agents,
    q_values,
    policy_params,
    learner_arrays,
    learner_steps,
    agent_rewards,
    agent_interactions,
    agent_decisions,
    agent_versions,
)

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

# SQLite's JSON functions print floats with 15 significant digits, which does not
# round-trip; 17 digits does up to 1e100 with SQLite's own printf, 20 digits beyond.
_SQLITE_EXACT_NUMBER = (
    "json(CASE WHEN abs(v.value) < 1e100 THEN printf('%!.17g', v.value) "
    "ELSE printf('%!.20g', v.value) END)"
)


def q_tables_view_sql(dialect: str) -> str:
    """``CREATE VIEW q_tables`` for ``dialect``: the seed's columns, JSON merged from rows."""
    if dialect == "sqlite":
        table_json = f"""(SELECT json_group_object(s.state, json(s.actions)) FROM (
            SELECT v.state AS state, json_group_object(v.action, {_SQLITE_EXACT_NUMBER}) AS actions
            FROM q_values v WHERE v.agent_name = a.agent_name GROUP BY v.state
        ) s)"""
    elif dialect == "postgresql":
        table_json = """(SELECT json_object_agg(s.state, s.actions ORDER BY s.state)::text FROM (
            SELECT v.state AS state, json_object_agg(v.action, v.value ORDER BY v.action) AS actions
            FROM q_values v WHERE v.agent_name = a.agent_name GROUP BY v.state
        ) s)"""
    else:
        raise ValueError(f"unsupported SQL dialect {dialect!r}")
    return f"""CREATE VIEW q_tables AS
SELECT a.id AS id,
       a.agent_name AS agent_name,
       COALESCE({table_json}, '{{}}') AS q_table,
       COALESCE((SELECT MAX(v.last_updated) FROM q_values v WHERE v.agent_name = a.agent_name),
                a.last_updated) AS last_updated
FROM q_agents a"""


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
    old_rows = []
    if "q_tables" in sa.inspect(connection).get_table_names():
        old_rows = connection.exec_driver_sql(
            "SELECT id, agent_name, q_table, last_updated FROM q_tables ORDER BY id"
        ).all()
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
