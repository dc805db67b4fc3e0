"""Moved to :mod:`rlmemory.store.sql.schema`; this old path names that module."""

import sys

from rlmemory.store.sql import schema as _moved

sys.modules[__name__] = _moved
