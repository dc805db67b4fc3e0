"""Moved to :mod:`rlmemory.store.sql.dialect`; this old path names that module."""

import sys

from rlmemory.store.sql import dialect as _moved

sys.modules[__name__] = _moved
