"""Operations on a store: versions and rollback, pruning, compression, encryption, backup, export.

Each job has its own module and works through the public store API
(:class:`rlmemory.store.base.MemoryStore`); none of them touches SQL or files of a store
directly, except :mod:`rlmemory.ops.backup`, which uses SQLite's own backup API on a
SQLite file. Optional packages (``zstandard``, ``cryptography``, ``pandas``, ``pyarrow``;
the ``ops`` and ``export`` extras) are imported only when the function needing them runs.
"""

from __future__ import annotations
