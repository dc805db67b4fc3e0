"""Moved to :mod:`rlmemory.store.sql.scrub`; this old path names that module."""

import sys

from rlmemory.store.sql import scrub as _moved

sys.modules[__name__] = _moved
