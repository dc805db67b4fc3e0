"""The SQL store: :class:`MemoryDatabase` on a SQLite file or a PostgreSQL database.

The package reads top-down; a module imports only from the ones listed before it:

* :mod:`~rlmemory.store.sql.url` — which database a path or URL names.
* :mod:`~rlmemory.store.sql.dialect` — the driver-level SQL of the per-step writes, per
  dialect, and what a driver error means (busy, corrupt, unavailable).
* :mod:`~rlmemory.store.sql.schema` — the tables, the ``q_tables`` view, the triggers.
* :mod:`~rlmemory.store.sql.migrations` — creating the schema, upgrading older ones.
* :mod:`~rlmemory.store.sql.scrub` — rewriting storage after a key rotation.
* :mod:`~rlmemory.store.sql.backup_rows` — what a row of a backup must look like.
* :mod:`~rlmemory.store.sql.connection` — ``SqlConnection``: the engine, the held
  connection, transactions, retries, typed errors.
* :mod:`~rlmemory.store.sql.codec` — ``SqlCodec`` (a connection): the encryption
  key, sealed texts, decoding stored rows.
* The parts, each standing only on the connection or the codec, never on each other:
  :mod:`~rlmemory.store.sql.learned` (Q-values, policy parameters, arrays, learner
  steps), :mod:`~rlmemory.store.sql.history` (rewards, interactions, decisions),
  :mod:`~rlmemory.store.sql.feature_cache`, :mod:`~rlmemory.store.sql.settings`,
  :mod:`~rlmemory.store.sql.maintenance` (versions, corrections, pruning, backup,
  key rotation).
* :mod:`~rlmemory.store.sql.database` — :class:`MemoryDatabase`: the parts together
  with :class:`rlmemory.store.base.MemoryStore`, whose public methods check the
  arguments and call the parts' hooks.
"""

from __future__ import annotations

from rlmemory.store.sql.database import MemoryDatabase

__all__ = ["MemoryDatabase"]
