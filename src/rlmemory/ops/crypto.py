"""Encryption at rest, kept at its old import path: it lives in :mod:`rlmemory.store.crypto`.

The store seals and opens payloads, so the cipher lives below it; ``rlmemory.ops.crypto``
re-exports every public name for code written against the old path.
"""

from rlmemory.store.crypto import (
    BYTES_MAGIC,
    ENV_KEY,
    ENV_KEY_FILE,
    KEY_BYTES,
    KEY_ID_CHARS,
    NONCE_BYTES,
    TEXT_PREFIX,
    Cipher,
    KeyInput,
    encrypted_key_id,
    generate_key,
    is_encrypted_bytes,
    is_encrypted_text,
    key_id,
    missing_key_error,
    new_key_file,
    parse_key,
    read_key_file,
    resolve_key,
    reveal_bytes,
    reveal_text,
)

__all__ = [
    "BYTES_MAGIC",
    "ENV_KEY",
    "ENV_KEY_FILE",
    "KEY_BYTES",
    "KEY_ID_CHARS",
    "NONCE_BYTES",
    "TEXT_PREFIX",
    "Cipher",
    "KeyInput",
    "encrypted_key_id",
    "generate_key",
    "is_encrypted_bytes",
    "is_encrypted_text",
    "key_id",
    "missing_key_error",
    "new_key_file",
    "parse_key",
    "read_key_file",
    "resolve_key",
    "reveal_bytes",
    "reveal_text",
]
