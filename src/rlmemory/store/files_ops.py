"""Moved: the file store's maintenance is :mod:`rlmemory.store.files.maintenance`.

This alias keeps the old import path ``rlmemory.store.files_ops`` working.
"""

import sys

from rlmemory.store.files import maintenance as _moved

sys.modules[__name__] = _moved
