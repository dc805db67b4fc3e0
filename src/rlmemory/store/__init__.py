"""Storage backends behind one contract, :class:`~rlmemory.store.base.MemoryStore`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlmemory.store.base import SCHEMA_VERSION, MemoryStore

__all__ = ["SCHEMA_VERSION", "MemoryStore", "open_store"]


def open_store(location: str | os.PathLike[str], **options: Any) -> MemoryStore:
    """Open the store named by ``location``.

    * ``postgresql+psycopg://user:pw@host:port/db`` or ``postgresql://…`` -> PostgreSQL
    * ``sqlite:///path/to/file.db`` or a plain path -> SQLite file
    * ``files:///path/to/dir`` or an existing directory -> JSON files

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with open_store(os.path.join(folder, "memory.db")) as store:
    ...     type(store).__name__
    'MemoryDatabase'
    >>> with open_store("files://" + os.path.join(folder, "memory")) as store:
    ...     type(store).__name__
    'FileBackedMemoryDatabase'
    """
    text = str(location)
    if text.startswith("files://"):
        from rlmemory.store.files import FileBackedMemoryDatabase

        return FileBackedMemoryDatabase(text.removeprefix("files://"), **options)
    if "://" not in text and Path(text).is_dir():
        from rlmemory.store.files import FileBackedMemoryDatabase

        return FileBackedMemoryDatabase(text, **options)
    from rlmemory.store.sql import MemoryDatabase

    return MemoryDatabase(text, **options)
