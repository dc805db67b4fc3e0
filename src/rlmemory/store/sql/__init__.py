"""The SQL store: :class:`MemoryDatabase` on a SQLite file or a PostgreSQL database.

Placeholder while the package takes shape (issue 11).
"""

from __future__ import annotations

from rlmemory.store.sql.database import MemoryDatabase

__all__ = ["MemoryDatabase"]
