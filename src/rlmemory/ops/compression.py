"""Transparent zstandard compression of binary and JSON payloads.

A compressed payload starts with :data:`MAGIC` (``b"RLMZ\\x01"``), which no JSON text
and no encrypted payload starts with, so readers tell compressed from plain values
without a flag column and decoding is transparent: :func:`decompress_bytes` returns
plain bytes unchanged. Texts stored in TEXT columns use a printable prefix instead
(:data:`TEXT_PREFIX`), and are compressed only when that makes them shorter.

>>> blob = compress_json({"state": {"search": 0.5}})
>>> blob[:5]
b'RLMZ\\x01'
>>> decompress_json(blob)
{'state': {'search': 0.5}}
>>> decompress_json(b'{"plain": true}')
{'plain': True}
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rlmemory.store._validation import to_json

if TYPE_CHECKING:
    import zstandard

MAGIC = b"RLMZ\x01"
TEXT_PREFIX = "rlm:zstd:v1:"
DEFAULT_LEVEL = 3
#: Refuse to inflate a payload beyond this size (a corrupt or hostile frame).
MAX_DECOMPRESSED_BYTES = 4 * 1024**3

_local = threading.local()


def _zstd() -> ModuleType:
    """The ``zstandard`` module, imported on first use."""
    try:
        import zstandard
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "compression needs the 'zstandard' package (a dependency of rlmemory): "
            "pip install zstandard"
        ) from error
    return zstandard


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # zstandard contexts are not thread-safe; one per thread and level is cheap to keep.
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("compressors", {})
    if level not in cache:
        cache[level] = _zstd().ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "decompressor"):
        _local.decompressor = _zstd().ZstdDecompressor()
    decompressor: zstandard.ZstdDecompressor = _local.decompressor
    return decompressor


def is_compressed(payload: object) -> bool:
    """Whether ``payload`` (bytes or text) was written by this module.

    >>> is_compressed(b"{}"), is_compressed(compress_bytes(b"{}"))
    (False, True)
    """
    if isinstance(payload, str):
        return payload.startswith(TEXT_PREFIX)
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload[: len(MAGIC)]) == MAGIC
    return False


def compress_bytes(data: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """Compress ``data`` with zstandard and put :data:`MAGIC` in front.

    ``level`` is zstandard's (1 fast … 19 small; negative levels are faster still).

    >>> len(compress_bytes(b"a" * 10_000)) < 100
    True
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"compress_bytes needs bytes, not {type(data).__name__}")
    if not isinstance(level, int) or isinstance(level, bool) or not -7 <= level <= 22:
        raise ValueError(f"level must be an int from -7 to 22, got {level!r}")
    return MAGIC + _compressor(level).compress(bytes(data))


def decompress_bytes(payload: bytes) -> bytes:
    """Inverse of :func:`compress_bytes`; bytes without :data:`MAGIC` come back unchanged.

    A damaged frame is a ``ValueError`` (stores turn it into a
    :class:`~rlmemory.errors.CorruptStoreError` naming their location).

    >>> decompress_bytes(compress_bytes(b"q-table"))
    b'q-table'
    >>> decompress_bytes(b"RLMZ\\x01garbage")
    Traceback (most recent call last):
    ValueError: compressed payload is damaged: ...
    """
    data = bytes(payload)
    if not data.startswith(MAGIC):
        return data
    zstandard = _zstd()
    frame = data[len(MAGIC) :]
    try:
        size: int = zstandard.frame_content_size(frame)
        if size > MAX_DECOMPRESSED_BYTES:
            raise ValueError(f"compressed payload claims {size} bytes, over the limit")
        if size >= 0:
            return _decompressor().decompress(frame)
        return _decompressor().decompressobj().decompress(frame)
    except zstandard.ZstdError as error:
        raise ValueError(f"compressed payload is damaged: {error}") from None


def compress_json(payload: Any, level: int = DEFAULT_LEVEL, field: str = "payload") -> bytes:
    """Encode ``payload`` as compact JSON (NaN refused) and compress it."""
    return compress_bytes(to_json(payload, field).encode("utf-8"), level)


def decompress_json(payload: bytes) -> Any:
    """Decode JSON from a compressed or a plain UTF-8 payload."""
    try:
        return json.loads(decompress_bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"payload is not JSON: {error}") from None


def pack_text(text: str, threshold: int = 4096, level: int = DEFAULT_LEVEL) -> str:
    """Compress a long text for a TEXT column, if that makes it shorter.

    Texts shorter than ``threshold`` bytes, or that do not shrink, are returned as they
    are, so small JSON stays readable with plain SQL.

    >>> pack_text('{"a":1}')
    '{"a":1}'
    >>> packed = pack_text("[" + "0.5," * 5000 + "0.5]")
    >>> packed.startswith(TEXT_PREFIX), len(packed) < 200
    (True, True)
    >>> unpack_text(packed) == "[" + "0.5," * 5000 + "0.5]"
    True
    """
    if not isinstance(text, str):
        raise TypeError(f"pack_text needs a str, not {type(text).__name__}")
    encoded = text.encode("utf-8")
    if len(encoded) < threshold:
        return text
    squeezed = compress_bytes(encoded, level)[len(MAGIC) :]
    packed = TEXT_PREFIX + base64.b64encode(squeezed).decode("ascii")
    return packed if len(packed) < len(text) else text


def unpack_text(text: str) -> str:
    """Inverse of :func:`pack_text`; texts without :data:`TEXT_PREFIX` come back unchanged."""
    if not isinstance(text, str) or not text.startswith(TEXT_PREFIX):
        return text
    try:
        frame = base64.b64decode(text[len(TEXT_PREFIX) :].encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("compressed text is damaged: not base64") from None
    return decompress_bytes(MAGIC + frame).decode("utf-8")
