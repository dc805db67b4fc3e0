"""The tables of the SQL store, its ``q_tables`` view and the triggers that count history.

The one definition of what the database holds: SQLAlchemy Core tables (their columns
are also the rows of a backup, :mod:`rlmemory.store.sql.backup_rows`), and the DDL that
Core cannot express. The seed's five relations keep their names and columns (extra
columns are appended). Q-values live one row per (agent, state, action) in
``q_values``; ``q_tables`` is a view that assembles the seed's JSON column from them, so
an update writes one row whatever the size of the table, and ``SELECT q_table FROM
q_tables`` still works. How a database gets to this layout from an older one is
:mod:`rlmemory.store.sql.migrations`.

>>> "json_group_object" in q_tables_view_sql("sqlite")
True
>>> sorted(table.name for table in AGENT_TABLES)[:2]
['agent_decisions', 'agent_interactions']
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

metadata = sa.MetaData()

# Timestamps and values: the seed's SQLite REAL (8-byte float); DOUBLE PRECISION on
# PostgreSQL, whose REAL is a 4-byte float that would round epoch seconds to minutes.
Real: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
# SQLite needs exactly INTEGER for an autoincrementing rowid alias; BIGSERIAL elsewhere.
RowId: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _row_id() -> sa.Column[int]:
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


__all__ = [
    "AGENT_TABLES",
    "Real",
    "RowId",
    "agent_decisions",
    "agent_interactions",
    "agent_rewards",
    "agent_summary",
    "agent_versions",
    "feature_cache",
    "learner_arrays",
    "learner_steps",
    "metadata",
    "policy_params",
    "q_agents",
    "q_tables_unmigrated",
    "q_tables_view_sql",
    "q_values",
    "rlmemory_meta",
    "rlmemory_settings",
    "summary_trigger_sql",
]
