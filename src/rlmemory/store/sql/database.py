"""MemoryDatabase: the SQL store, on a SQLite file by default or PostgreSQL by URL.

One implementation for both databases, assembled from parts that each stand on the
connection below them (:mod:`rlmemory.store.sql`'s docstring draws the house):

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "memory.db")
>>> with MemoryDatabase(path) as db:
...     db.save_q_values("router", {"greeting": {"chat_agent": 0.5}})
...     db.save_q_values("router", {"code": {"coding_agent": 1.0}})
...     db.get_q_table("router")
{'code': {'coding_agent': 1.0}, 'greeting': {'chat_agent': 0.5}}
>>> import sqlite3, json
>>> json.loads(sqlite3.connect(path).execute(
...     "SELECT q_table FROM q_tables WHERE agent_name = ?", ("router",)).fetchone()[0])
{'code': {'coding_agent': 1.0}, 'greeting': {'chat_agent': 0.5}}

Every call made inside :meth:`~MemoryDatabase.transaction` shares its transaction:

>>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
>>> try:
...     with db.transaction():
...         _ = db.save_agent_reward("router", 1.0, {"speed": 1.0})
...         raise RuntimeError("the step failed")
... except RuntimeError:
...     pass
>>> db.get_agent_rewards("router")
[]
>>> db.close(); db.close()
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

from rlmemory.store.base import MemoryStore
from rlmemory.store.rows import Row
from rlmemory.store.sql import schema
from rlmemory.store.sql.feature_cache import SqlFeatureCache
from rlmemory.store.sql.history import SqlHistory
from rlmemory.store.sql.learned import SqlLearnedState
from rlmemory.store.sql.maintenance import SqlMaintenance
from rlmemory.store.sql.settings import SqlSettings


class MemoryDatabase(
    SqlLearnedState, SqlHistory, SqlFeatureCache, SqlSettings, SqlMaintenance, MemoryStore
):
    """The seed's ``MemoryDatabase``: every rlmemory table in one SQL database.

    ``db_path`` is a file path or ``sqlite:///path`` (SQLite, WAL mode), or
    ``postgresql+psycopg://user:password@host:port/dbname`` (``postgresql://`` works
    too). ``busy_timeout`` is how many seconds a write waits for other processes'
    locks before :class:`rlmemory.errors.StoreBusyError`; ``sqlite_cache_mb`` sizes
    SQLite's page cache for this connection; ``sqlite_wal_autocheckpoint`` is how many
    WAL pages a commit may leave before it copies them back into the database file
    (SQLite's own default is 1,000; ours is 4,000, see ``docs/store-sql.md``).

    ``encryption_key`` (raw bytes, urlsafe base64 text, or a ``Path`` to a key file;
    else ``$RLMEMORY_KEY``, ``key_file``, ``$RLMEMORY_KEY_FILE``) turns on AES-GCM
    encryption of request, response and feedback texts, and with ``encrypt_payloads``
    of version payloads too (:mod:`rlmemory.store.crypto`). The store records its key's
    id; opening it with another key is an :class:`rlmemory.errors.EncryptionKeyError`.

    ``create=False`` opens only an existing store: a missing SQLite file, or a file or
    PostgreSQL database holding no rlmemory tables, is :class:`rlmemory.errors.NotAStoreError`
    and nothing is created (tools that only read use it, so a typo makes nothing).

    The public methods are :class:`~rlmemory.store.base.MemoryStore`'s: they check the
    arguments and call the hooks the parts implement.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "agent_memory.db",
        *,
        busy_timeout: float = 60.0,
        sqlite_cache_mb: int = 64,
        sqlite_wal_autocheckpoint: int = 4000,
        encryption_key: Any = None,
        key_file: str | os.PathLike[str] | None = None,
        encrypt_payloads: bool = False,
        create: bool = True,
    ) -> None:
        super().__init__(
            db_path,
            busy_timeout=busy_timeout,
            sqlite_cache_mb=sqlite_cache_mb,
            sqlite_wal_autocheckpoint=sqlite_wal_autocheckpoint,
            encryption_key=encryption_key,
            key_file=key_file,
            encrypt_payloads=encrypt_payloads,
            create=create,
        )

    # ------------------------------------------------------------------- inspection
    def list_agents(self) -> list[str]:
        def build() -> sa.ClauseElement:
            # History tables are counted in agent_summary: reading it avoids scanning them.
            counted = {schema.agent_rewards, schema.agent_interactions, schema.agent_decisions}
            names = [
                sa.select(table.c.agent_name)
                for table in schema.AGENT_TABLES
                if table not in counted and table is not schema.q_values
            ]
            summary = schema.agent_summary.c
            names.append(
                sa.select(summary.agent_name).where(
                    summary.decisions + summary.interactions + summary.rewards > 0
                )
            )
            names.append(sa.select(schema.q_tables_unmigrated.c.agent_name))
            return sa.union(*names)

        rows = self._read("agents", build, atomic=True)
        return sorted(name for (name,) in rows)

    def _agent_stats(self, agent_name: str) -> Row:
        def work(cursor: Any) -> Row:
            # Counters kept by triggers (schema.summary_trigger_sql): O(1) per agent.
            decisions, interactions, rewards, reward_sum = self._summary(cursor, agent_name)
            return {
                "decisions": decisions,
                "interactions": interactions,
                "rewards": rewards,
                "mean_reward": reward_sum / rewards if rewards else None,
                "last_update": self._last_update(cursor, agent_name),
            }

        return self._run(work, write=False)

    def _summary(self, cursor: Any, agent_name: str) -> tuple[int, int, int, float]:
        summary = schema.agent_summary.c
        rows = self._execute(
            cursor,
            "summary",
            lambda: sa.select(
                summary.decisions, summary.interactions, summary.rewards, summary.reward_sum
            ).where(summary.agent_name == sa.bindparam("agent")),
            agent=agent_name,
        ).fetchall()
        if not rows:
            return 0, 0, 0, 0.0
        decisions, interactions, rewards, reward_sum = rows[0]
        return int(decisions), int(interactions), int(rewards), float(reward_sum)

    def _last_update(self, cursor: Any, agent_name: str) -> float | None:
        def build() -> sa.ClauseElement:
            # The newest history row's time is kept in agent_summary by the triggers.
            summary = schema.agent_summary.c
            parts = [
                sa.select(summary.last_history.label("stamp")).where(
                    summary.agent_name == sa.bindparam("agent")
                )
            ]
            for table in (
                schema.q_agents,
                schema.q_values,
                schema.policy_params,
                schema.learner_arrays,
                schema.learner_steps,
            ):
                parts.append(
                    sa.select(sa.func.max(table.c.last_updated).label("stamp")).where(
                        table.c.agent_name == sa.bindparam("agent")
                    )
                )
            union = sa.union_all(*parts).subquery()
            return sa.select(sa.func.max(union.c.stamp))

        (stamp,) = self._execute(cursor, "last_update", build, agent=agent_name).fetchone()
        return None if stamp is None else float(stamp)

    def _count_agent_decisions(self, agent_name: str) -> int:
        summary = schema.agent_summary.c
        rows = self._read(
            "count_decisions",
            lambda: sa.select(summary.decisions).where(summary.agent_name == sa.bindparam("agent")),
            agent=agent_name,
        )
        return int(rows[0][0]) if rows else 0

    def __repr__(self) -> str:
        return f"MemoryDatabase({self.location!r})"


__all__ = ["MemoryDatabase"]
