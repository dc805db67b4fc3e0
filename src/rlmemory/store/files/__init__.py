"""The file store: :class:`FileBackedMemoryDatabase` keeps rlmemory's data in a folder of
JSON and JSON Lines files (see ``docs/store-files.md``)."""

from __future__ import annotations

from rlmemory.store.files.database import FileBackedMemoryDatabase

__all__ = ["FileBackedMemoryDatabase"]
