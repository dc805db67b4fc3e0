"""API keys of the decision service: made once, stored as hashes, checked in constant time.

A key reads ``rlm_<id>_<secret>``. Only the SHA-256 of the whole key is stored (settings
namespace ``api_keys``, key = ``<id>``, with its scope and creation time), so the store
never holds a usable key; :func:`new_api_key` returns the key once. Scopes: ``rank``
(rank, reward, activate, reading loops) and ``admin`` (everything, including settings,
model import and deletion).

>>> import os, tempfile
>>> from rlmemory.store import open_store
>>> store = open_store(os.path.join(tempfile.mkdtemp(), "memory.db"))
>>> key = new_api_key(store, "rank")
>>> check_api_key(store, key), check_api_key(store, key + "x"), check_api_key(store, "junk")
('rank', None, None)
>>> [entry["scope"] for entry in list_api_keys(store)]
['rank']
>>> store.close()
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from rlmemory.store.base import MemoryStore

KEYS_NAMESPACE = "api_keys"
SCOPES = ("rank", "admin")
_PREFIX = "rlm"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key(store: MemoryStore, scope: str, note: str = "") -> str:
    """Make a key of ``scope`` (``rank`` or ``admin``), store its hash, return the key."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    key_id = secrets.token_hex(6)
    key = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    store.save_setting(
        KEYS_NAMESPACE,
        key_id,
        {"sha256": _digest(key), "scope": scope, "created": time.time(), "note": note},
    )
    return key


def check_api_key(store: MemoryStore, key: str) -> str | None:
    """The scope of ``key``, or None when it is not a stored key (constant-time compare)."""
    parts = key.split("_") if isinstance(key, str) else []
    if len(parts) < 3 or parts[0] != _PREFIX or not parts[1]:
        return None
    try:
        entry = store.get_setting(KEYS_NAMESPACE, parts[1])
    except (TypeError, ValueError):
        return None
    if entry is None or not hmac.compare_digest(str(entry.get("sha256", "")), _digest(key)):
        return None
    scope = entry.get("scope")
    return scope if scope in SCOPES else None


def list_api_keys(store: MemoryStore) -> list[dict[str, Any]]:
    """Every stored key's id, scope, note and creation time (never the key)."""
    return [
        {"id": key_id, "scope": entry.get("scope"), "note": entry.get("note", ""),
         "created": entry.get("created")}
        for key_id, entry in store.list_settings(KEYS_NAMESPACE).items()
    ]  # fmt: skip


def revoke_api_key(store: MemoryStore, key_id: str) -> bool:
    """Delete the key with id ``key_id``; return whether it existed."""
    return store.delete_setting(KEYS_NAMESPACE, key_id)


def has_api_keys(store: MemoryStore) -> bool:
    """Whether any key is stored."""
    return bool(store.list_settings(KEYS_NAMESPACE))
