"""The file store's header ``meta.json``: what marks a folder as a store, and its version.

``{"format": "rlmemory-files", "schema_version": n}``, plus ``encryption_key_id`` once
the store encrypts. Migrations are header-only: every version added files that are
created when first needed (1 -> 2 versions files, 2 -> 3 learner steps files, 3 -> 4
``settings.json``, 4 -> 5 the feature cache), so upgrading a store rewrites
``schema_version`` and nothing else. A store written by a newer rlmemory is refused.

>>> header_version({"format": FORMAT_NAME, "schema_version": 1}, Path("meta.json"), "demo")
1
>>> header_version({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION + 1},
...                Path("meta.json"), "demo")  # doctest: +ELLIPSIS
Traceback (most recent call last):
rlmemory.errors.SchemaVersionError: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError, SchemaVersionError
from rlmemory.store.base import SCHEMA_VERSION
from rlmemory.store.files.io import encode_document
from rlmemory.store.files.layout import FORMAT_NAME

__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "header_version", "new_header", "upgraded_header"]


def new_header() -> bytes:
    """The header of a store created now."""
    return encode_document({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION})


def header_version(meta: dict[str, Any], path: Path, location: str) -> int:
    """The schema version a header records, once checked.

    A header of another format or without an integer version is a
    :class:`~rlmemory.errors.CorruptStoreError` naming ``path``; a version newer than
    this rlmemory's is a :class:`~rlmemory.errors.SchemaVersionError`.
    """
    found = meta.get("schema_version")
    if meta.get("format") != FORMAT_NAME or isinstance(found, bool) or not isinstance(found, int):
        raise CorruptStoreError(f"{path} is not an rlmemory file-store header", str(path))
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(location, found, SCHEMA_VERSION)
    if found < 1:
        raise CorruptStoreError(f"{path} records an invalid schema version {found}", str(path))
    return found


def upgraded_header(meta: dict[str, Any]) -> bytes | None:
    """The header rewritten for this rlmemory, or None when it is current already."""
    if meta.get("schema_version") == SCHEMA_VERSION:
        return None
    return encode_document({**meta, "schema_version": SCHEMA_VERSION})
