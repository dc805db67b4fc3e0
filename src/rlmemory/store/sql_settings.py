"""Moved to :mod:`rlmemory.store.sql.settings`; this old path names that module."""

import sys

from rlmemory.store.sql import settings as _moved

sys.modules[__name__] = _moved
