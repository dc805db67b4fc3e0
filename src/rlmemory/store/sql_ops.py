"""Moved to :mod:`rlmemory.store.sql.maintenance`; this old path names that module."""

import sys

from rlmemory.store.sql import maintenance as _moved

sys.modules[__name__] = _moved
