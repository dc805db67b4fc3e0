"""Checks shared by every backend's settings methods (namespaced JSON documents).

Settings are small named documents that services keep beside the learned state: the
settings of a learning loop, the hashes of API keys. A setting is addressed by a
``namespace`` (``"loops"``, ``"api_keys"`` …) and a ``key`` inside it, both non-empty
strings of at most :data:`MAX_NAME_LENGTH` characters, and holds a JSON object.

>>> check_setting_name("loops", "namespace")
'loops'
>>> check_setting_name("", "key")
Traceback (most recent call last):
ValueError: key must be a non-empty string of at most 200 characters, got ''
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlmemory.store._validation import check_mapping, to_json

#: Longest namespace or key accepted.
MAX_NAME_LENGTH = 200


def check_setting_name(value: object, field: str) -> str:
    """Return ``value`` if it is a usable namespace or key, else ``ValueError``/``TypeError``."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if not value or len(value) > MAX_NAME_LENGTH or "\x00" in value:
        raise ValueError(
            f"{field} must be a non-empty string of at most {MAX_NAME_LENGTH} characters, "
            f"got {value[:60]!r}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} must be valid Unicode text (no lone surrogates)") from None
    return value


def encode_setting(value: object) -> str:
    """The JSON text stored for a setting's document (a mapping of JSON values)."""
    document = check_mapping(value, "value", " (a JSON object)")
    return to_json(dict(document), "value")


def decode_setting(text: str | bytes) -> dict[str, Any]:
    """The document of a stored setting (``ValueError`` when it is not a JSON object)."""
    document = json.loads(text)
    if not isinstance(document, Mapping):
        raise ValueError("a stored setting is not a JSON object")
    return dict(document)
