"""Key rotation: re-encrypt every encrypted value of a store with a new key.

The store is opened with its current key (or none, for a store not yet encrypted);
each encrypted text (request, response, feedback) — and each payload when payloads
are encrypted — is decrypted and encrypted again with the new key in one transaction,
plain texts in those columns are encrypted, and the store records the new key's id.
A crash or an error leaves the store as it was, readable with the old key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rlmemory.ops.crypto import Cipher, KeyInput, key_id, resolve_key
from rlmemory.ops.progress import ProgressCallback
from rlmemory.ops.progress import report as report_progress
from rlmemory.store import open_store


@dataclass(frozen=True)
class RotationReport:
    """How many rows and values were re-encrypted, and the id of the key now in use."""

    location: str
    rows: int
    values: int
    old_key_id: str | None
    new_key_id: str


def rotate_key(
    location: str | os.PathLike[str],
    *,
    new_key: KeyInput,
    old_key: KeyInput | None = None,
    progress: ProgressCallback | None = None,
) -> RotationReport:
    """Re-encrypt the store at ``location`` with ``new_key``.

    ``old_key`` defaults to the usual sources (``$RLMEMORY_KEY``, ``$RLMEMORY_KEY_FILE``);
    ``None`` from every source means the store is not encrypted yet. Keys are raw bytes,
    urlsafe base64 text, or a path (``pathlib.Path``) to a key file. ``progress(done,
    total)`` is told when the work starts and ends.
    """
    old_raw = resolve_key(old_key)
    new_raw = resolve_key(new_key)
    if new_raw is None:  # pragma: no cover - resolve_key of a given key never returns None
        raise ValueError("new_key is required")
    with open_store(location, encryption_key=old_raw) as store:
        cipher = Cipher(
            new_raw,
            location=store.location,
            previous_keys=[old_raw] if old_raw is not None else [],
        )
        report_progress(progress, 0, 0)  # the store re-encrypts in one call: no steps to count
        rows, values = store.reencrypt(cipher)
        report_progress(progress, rows, rows)
        return RotationReport(
            store.location,
            rows,
            values,
            None if old_raw is None else key_id(old_raw),
            cipher.key_id,
        )
