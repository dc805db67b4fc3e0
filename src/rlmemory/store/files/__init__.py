"""The file store: :class:`FileBackedMemoryDatabase` keeps rlmemory's data in a folder of
JSON and JSON Lines files (``docs/store-files.md``).

Where things live, bottom up (each module imports only modules above it in this list):

* the files and how they are written and read — ``layout`` (names), ``io`` (atomic
  writes, appends, JSON Lines), ``guard`` (no links), ``check`` (types of what is read),
  ``lock`` (the folder lock), ``journal`` (undo journal), ``encode``, ``rows``
  (histories with patches), ``folded``, ``totals``, ``schema`` (``meta.json``),
  ``snapshot`` (freezing files for a backup);
* the class, one layer per module — ``folder`` (opening, locks, transactions) <-
  ``records`` (agent folders, ids, rows) <- ``tables`` (tables with updates logs) <-
  ``settings`` <- ``versions`` <- ``backup`` (with ``dump``) <- ``maintenance`` <-
  ``histories`` <- ``database`` (:class:`FileBackedMemoryDatabase`).
"""

from __future__ import annotations

from rlmemory.store.files.database import FileBackedMemoryDatabase

__all__ = ["FileBackedMemoryDatabase"]
