"""Operations on a store: versions and rollback, pruning, compression, encryption, backup, export.

Each job has its own module and works through the public store API
(:class:`rlmemory.store.base.MemoryStore`); none of them touches SQL or files of a store
directly, except :mod:`rlmemory.ops.backup`, which uses SQLite's own backup API on a
SQLite file. ``zstandard`` and ``cryptography`` (dependencies) and the optional
``pandas`` and ``pyarrow`` (the ``export`` extra) are imported only when a function
needing them runs.
"""

from __future__ import annotations
