"""Driver-level SQL text and error classification for each supported SQL dialect.

The per-step writes of the learners run as plain SQL on a held DBAPI connection
(sqlite3 or psycopg), because going through SQLAlchemy for each one costs 2-4x a bare
upsert. The statements are the same on both dialects apart from the parameter marker
(``?`` for sqlite3, ``%s`` for psycopg) and how a write transaction starts, so they are
written once here and rendered per dialect.

>>> sqlite = driver_sql_for("sqlite")
>>> sqlite.begin_write
'BEGIN IMMEDIATE'
>>> driver_sql_for("postgresql").update_decision_reward
'UPDATE agent_decisions SET reward = %s WHERE id = %s'
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["busy", "corrupt", "unavailable", "retry"]

#: First key of the PostgreSQL advisory locks that serialise one learner's updates.
LEARNER_LOCK_CLASS = 2024112502

_STATEMENTS = {
    "upsert_q_value": (
        "INSERT INTO q_values (agent_name, state, action, value, last_updated) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_name, state, action) "
        "DO UPDATE SET value = excluded.value, last_updated = excluded.last_updated"
    ),
    "register_q_agent": (
        "INSERT INTO q_agents (agent_name, last_updated) VALUES (?, ?) "
        "ON CONFLICT (agent_name) DO NOTHING"
    ),
    "touch_q_agent": (
        "INSERT INTO q_agents (agent_name, last_updated) VALUES (?, ?) "
        "ON CONFLICT (agent_name) DO UPDATE SET last_updated = excluded.last_updated"
    ),
    "delete_q_values": "DELETE FROM q_values WHERE agent_name = ?",
    "select_q_state": "SELECT action, value FROM q_values WHERE agent_name = ? AND state = ?",
    "upsert_policy_params": (
        "INSERT INTO policy_params (agent_name, policy_params, last_updated) VALUES (?, ?, ?) "
        "ON CONFLICT (agent_name) DO UPDATE SET policy_params = excluded.policy_params, "
        "last_updated = excluded.last_updated"
    ),
    "upsert_array": (
        "INSERT INTO learner_arrays (agent_name, key, dtype, shape, data, last_updated) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (agent_name, key) DO UPDATE SET "
        "dtype = excluded.dtype, shape = excluded.shape, data = excluded.data, "
        "last_updated = excluded.last_updated"
    ),
    "select_array": (
        "SELECT dtype, shape, data FROM learner_arrays WHERE agent_name = ? AND key = ?"
    ),
    "insert_learner_step": (
        "INSERT INTO learner_steps (agent_name, key, data, last_updated) VALUES (?, ?, ?, ?) "
        "RETURNING id"
    ),
    "select_learner_steps": (
        "SELECT id, key, data FROM learner_steps WHERE agent_name = ? AND id > ? ORDER BY id"
    ),
    "insert_reward": (
        "INSERT INTO agent_rewards (agent_name, reward, reward_components, timestamp, "
        "decision_id) VALUES (?, ?, ?, ?, ?) RETURNING id"
    ),
    "insert_interaction": (
        "INSERT INTO agent_interactions (agent_name, request, response, feedback, timestamp, "
        "decision_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
    ),
    "insert_decision": (
        "INSERT INTO agent_decisions (agent_name, state, selected_action, q_values, reward, "
        "timestamp, propensity, features, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "(SELECT MAX(version) FROM agent_versions WHERE agent_name = ?)) RETURNING id"
    ),
    # With a decision id: insert only if that decision exists (no row back: unknown id).
    "insert_decision_reward": (
        "INSERT INTO agent_rewards (agent_name, reward, reward_components, timestamp, "
        "decision_id) SELECT ?, ?, ?, ?, id FROM agent_decisions WHERE id = ? RETURNING id"
    ),
    "insert_decision_interaction": (
        "INSERT INTO agent_interactions (agent_name, request, response, feedback, timestamp, "
        "decision_id) SELECT ?, ?, ?, ?, ?, id FROM agent_decisions WHERE id = ? RETURNING id"
    ),
    "update_decision_reward": "UPDATE agent_decisions SET reward = ? WHERE id = ?",
    "mark_feedback_learned": (
        "UPDATE agent_interactions SET learned_feedback = feedback WHERE id = ?"
    ),
}


@dataclass(frozen=True)
class DriverSQL:
    """The hot-path statements of one dialect, ready for its DBAPI driver."""

    dialect: str
    begin_read: str
    begin_write: str
    upsert_q_value: str
    register_q_agent: str
    touch_q_agent: str
    delete_q_values: str
    select_q_state: str
    upsert_policy_params: str
    upsert_array: str
    select_array: str
    insert_learner_step: str
    select_learner_steps: str
    insert_reward: str
    insert_interaction: str
    insert_decision_reward: str
    insert_decision_interaction: str
    insert_decision: str
    update_decision_reward: str
    mark_feedback_learned: str
    #: Statement taking a transaction-scoped lock on one learner's state (empty: none needed).
    lock_learner: str = ""


def driver_sql_for(dialect: str) -> DriverSQL:
    """Render the hot-path statements for ``dialect`` (``"sqlite"`` or ``"postgresql"``)."""
    if dialect == "sqlite":
        # IMMEDIATE takes the write lock up front, so a transaction never has to upgrade
        # a read lock (which in WAL mode fails with SQLITE_BUSY without waiting).
        # The same write lock serialises learners' read-modify-writes: no lock of their own.
        return DriverSQL(dialect, "BEGIN", "BEGIN IMMEDIATE", **_STATEMENTS)
    if dialect == "postgresql":
        rendered = {name: text.replace("?", "%s") for name, text in _STATEMENTS.items()}
        # READ COMMITTED lets two transactions read the same Q-value and both write
        # from it; an advisory lock per learner, held to commit, makes them take turns.
        # The (int, int) key space is apart from save_version's single-key locks.
        lock = f"SELECT pg_advisory_xact_lock({LEARNER_LOCK_CLASS}, hashtext(%s))"
        return DriverSQL(dialect, "BEGIN", "BEGIN", **rendered, lock_learner=lock)
    raise ValueError(f"unsupported SQL dialect {dialect!r}; use sqlite or postgresql")


# SQLite primary result codes (the low byte of the extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock detected.
_POSTGRES_RETRY_STATES = {"40001", "40P01"}
# lock_timeout (lock_not_available) and statement_timeout (query_canceled): the store's
# busy_timeout passed while another session held what this one needed.
_POSTGRES_BUSY_STATES = {"55P03", "57014"}
# Connection exceptions (class 08), server shutdowns, and a session the server ended for
# idling in a transaction longer than idle_in_transaction_session_timeout: it is gone.
_POSTGRES_GONE_STATES = {"57P01", "57P02", "57P03", "25P03"}


def classify_error(error: BaseException) -> ErrorKind | None:
    """Say what a driver error means for the store, or None if it is not the store's problem.

    ``busy``: another process holds a lock, retry later. ``retry``: a transaction lost a
    race (deadlock), retry now. ``corrupt``: the file is not a database or is damaged.
    ``unavailable``: the database cannot be opened at all.

    >>> classify_error(sqlite3.OperationalError("database is locked"))
    'busy'
    >>> classify_error(ValueError("x")) is None
    True
    """
    original = getattr(error, "orig", None) or error
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        message = str(original).lower()
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in message:
            return "busy"
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "file is not a database" in message:
            return "corrupt"
        if "malformed" in message:
            return "corrupt"
        if primary == _SQLITE_CANTOPEN:
            return "unavailable"
        return None
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _POSTGRES_RETRY_STATES:
        return "retry"
    if sqlstate in _POSTGRES_BUSY_STATES:
        return "busy"
    if sqlstate is not None and (sqlstate.startswith("08") or sqlstate in _POSTGRES_GONE_STATES):
        return "unavailable"
    if sqlstate is None and type(original).__name__ in ("OperationalError", "InterfaceError"):
        return "unavailable"  # psycopg: connection lost, closed, or never made
    return None


def is_driver_error(error: BaseException) -> bool:
    """Whether ``error`` comes from the database driver (sqlite3, psycopg) or SQLAlchemy.

    >>> is_driver_error(sqlite3.IntegrityError("UNIQUE constraint failed"))
    True
    >>> is_driver_error(ValueError("x"))
    False
    """
    original = getattr(error, "orig", None) or error
    module = type(original).__module__ or ""
    return isinstance(original, sqlite3.Error) or module.split(".")[0] in ("psycopg", "sqlalchemy")


def postgres_session_options(busy_timeout: float) -> str:
    """The libpq ``options`` that make a PostgreSQL session honour ``busy_timeout`` seconds.

    ``lock_timeout``: a statement waiting for a lock (a row, a learner's advisory lock)
    gives up after ``busy_timeout``, like SQLite's busy handler. A session idle inside a
    transaction for longer (a frozen or stopped process holding locks) is ended by the
    server, so it cannot block the others forever.

    >>> postgres_session_options(2.5)
    '-c lock_timeout=2500 -c idle_in_transaction_session_timeout=2500'
    """
    milliseconds = max(1, int(busy_timeout * 1000))
    return f"-c lock_timeout={milliseconds} -c idle_in_transaction_session_timeout={milliseconds}"
