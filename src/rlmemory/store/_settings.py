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

from rlmemory.store._validation import (
    MAX_SETTING_NAME_LENGTH,
    check_mapping,
    check_setting_name,
    to_json,
)

#: Longest namespace or key accepted.
MAX_NAME_LENGTH = MAX_SETTING_NAME_LENGTH


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


# check_setting_name lives with the other argument checks (restored rows use it too).
__all__ = ["MAX_NAME_LENGTH", "check_setting_name", "decode_setting", "encode_setting"]
