"""Moved: the tables to :mod:`rlmemory.store.sql.schema`, the migrations to
:mod:`rlmemory.store.sql.migrations`. This old path names them both."""

from rlmemory.store.sql.migrations import *  # noqa: F403
from rlmemory.store.sql.migrations import __all__ as _migrations
from rlmemory.store.sql.schema import *  # noqa: F403
from rlmemory.store.sql.schema import __all__ as _tables

__all__ = [*_tables, *_migrations]
