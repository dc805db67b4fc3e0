"""Export and import of a loop's learned model: one versioned JSON file with a checksum.

The file holds the loop's settings and its learned state as
:class:`rlmemory.ops.versions.AgentState` payload (compressed, base64), with the SHA-256
of that payload. Importing checks format, checksum and that the loop's learner can use
the statistics, then writes them as a new version (the state before is kept as a version
too), so an import is undone with an ordinary rollback. Imported into a loop that does
not exist yet, the model brings its settings; into an existing loop, the loop's learner
must be able to use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from rlmemory.ops.versions import AgentState, apply_state, capture_state, checkpoint
from rlmemory.service.loops import (
    LOOPS_NAMESPACE,
    Loop,
    LoopRegistry,
    RequestError,
    learned_actions,
)
from rlmemory.service.settings import LoopSettings, SettingsError, settings_from_request

MODEL_FORMAT = "rlmemory-model"
MODEL_FORMAT_VERSION = 1


def export_model(registry: LoopRegistry, loop: str) -> dict[str, Any]:
    """The model file of ``loop`` (a JSON-able dict)."""
    settings = registry.get(loop).settings
    payload = capture_state(registry.store, loop).to_payload()
    return {
        "format": MODEL_FORMAT,
        "formatVersion": MODEL_FORMAT_VERSION,
        "loop": loop,
        "exported": time.time(),
        "learner": settings.learner,
        "featureDimension": settings.dimension,
        "settings": settings.to_api(),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "state": base64.b64encode(payload).decode("ascii"),
    }


def import_model(registry: LoopRegistry, loop: str, model: Mapping[str, Any]) -> int:
    """Make ``model`` the learned state of ``loop``; return the new version's number.

    A file of another format or version, a wrong checksum, or statistics the loop's
    learner cannot use are :class:`RequestError` and nothing changes.
    """
    if not isinstance(model, Mapping) or model.get("format") != MODEL_FORMAT:
        raise RequestError("format", f"is not an {MODEL_FORMAT} file")
    if model.get("formatVersion") != MODEL_FORMAT_VERSION:
        raise RequestError(
            "formatVersion",
            f"{model.get('formatVersion')!r} is not supported (this rlmemory reads "
            f"{MODEL_FORMAT_VERSION})",
        )
    try:
        payload = base64.b64decode(str(model.get("state", "")), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("state", "is not base64") from None
    if hashlib.sha256(payload).hexdigest() != model.get("sha256"):
        raise RequestError("sha256", "does not match the state: the file is damaged")
    try:
        state = AgentState.from_payload(payload)
    except (ValueError, TypeError) as error:
        raise RequestError("state", f"cannot be read: {error}") from None
    store = registry.store
    with store.transaction():
        settings = registry.settings_of(loop)
        if settings is None:  # a new loop takes the settings the model was learned with
            settings = _settings_of_model(model)
            store.save_setting(LOOPS_NAMESPACE, loop, settings.to_document())
        target = Loop(store, loop, settings)
        checkpoint(store, loop, "auto: before model import")
        apply_state(store, loop, state)
        try:
            target.build_learner(learned_actions(store, loop) or ["probe"])
        except ValueError as error:
            raise RequestError("state", f"does not fit loop {loop!r}: {error}") from None
        version = checkpoint(store, loop, f"model import ({model.get('loop')!r})")
    registry.get(loop)._forget_learners()
    return version


def _settings_of_model(model: Mapping[str, Any]) -> LoopSettings:
    recorded = model.get("settings")
    if not isinstance(recorded, Mapping):
        raise RequestError("settings", "must be the object of loop settings the file was made with")
    try:
        return settings_from_request(recorded)
    except SettingsError as error:
        raise RequestError(f"settings.{error.field}", str(error).split(": ", 1)[-1]) from None
