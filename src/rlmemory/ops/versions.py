"""Numbered versions of an agent's learned state: checkpoint, list, diff and rollback.

A version is a snapshot of everything an agent has learned — its Q-table, its policy
parameters and its numeric arrays (bandit statistics) — compressed with zstandard and
kept in the store under a number that grows by one per agent (1, 2, 3, …). Versions
are taken on request (:func:`checkpoint`), every N updates (:class:`AutoCheckpoint`)
and automatically before anything destructive: :func:`rollback` first saves the
current state, then writes the old state back and records it as a new version, so
history is never rewritten.

Each version also records the id of the newest decision stored when it was taken
(its *decision watermark*); :func:`rlmemory.ops.history.relearn` replays the decisions
after it.

>>> before = AgentState(q_table={"greeting": {"search": 0.2}})
>>> after = AgentState(q_table={"greeting": {"search": 0.9}})
>>> change = diff_states(before, after).q_changes[0]
>>> change.state, change.action, round(change.delta, 2)
('greeting', 'search', 0.7)
>>> AgentState.from_payload(after.to_payload()) == after
True

With a store:

>>> import tempfile, os
>>> from rlmemory.store import open_store
>>> with open_store(os.path.join(tempfile.mkdtemp(), "memory.db")) as store:
...     store.save_q_values("router", {"greeting": {"search": 0.2}})
...     first = checkpoint(store, "router", "before training")
...     store.save_q_values("router", {"greeting": {"search": 0.9}})
...     outcome = rollback(store, "router", first)
...     notes = [info.note for info in list_versions(store, "router")]
...     store.get_q_table("router")
{'greeting': {'search': 0.2}}
>>> notes
['before training', 'auto: before rollback to version 1', 'rollback to version 1']
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlmemory.ops.compression import compress_json, decompress_json
from rlmemory.store._validation import check_agent_name
from rlmemory.store.base import MemoryStore, QTable

PAYLOAD_FORMAT = 1


# ------------------------------------------------------------------------- state
@dataclass(frozen=True, eq=False)
class AgentState:
    """What an agent has learned, as stored: any of the three kinds may be absent.

    ``decision_watermark`` is the id of the newest decision of the agent when the state
    was captured (0 when it had none).
    """

    q_table: QTable | None = None
    policy_params: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    decision_watermark: int = 0
    #: The linear learners' steps not yet in their snapshot (``arrays``): ``(key, values)``.
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgentState):
            return NotImplemented
        return (
            self.q_table == other.q_table
            and self.policy_params == other.policy_params
            and self.decision_watermark == other.decision_watermark
            and [key for key, _ in self.steps] == [key for key, _ in other.steps]
            and all(
                np.array_equal(mine, theirs)
                for (_, mine), (_, theirs) in zip(self.steps, other.steps, strict=True)
            )
            and self.arrays.keys() == other.arrays.keys()
            and all(
                self.arrays[key].dtype == other.arrays[key].dtype
                and np.array_equal(self.arrays[key], other.arrays[key])
                for key in self.arrays
            )
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def is_empty(self) -> bool:
        """Whether nothing at all was learned."""
        return (
            not self.q_table and self.policy_params is None and not self.arrays and not self.steps
        )

    def to_payload(self, level: int = 3) -> bytes:
        """Compressed JSON bytes; arrays keep dtype, shape and exact values."""
        return compress_json(
            {
                "format": PAYLOAD_FORMAT,
                "q_table": self.q_table,
                "policy_params": self.policy_params,
                "arrays": {key: _encode_array(value) for key, value in self.arrays.items()},
                "decision_watermark": self.decision_watermark,
                "steps": [[key, _encode_array(values)] for key, values in self.steps],
            },
            level,
            "agent state",
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> AgentState:
        """Inverse of :meth:`to_payload`; an unknown format is a ``ValueError``."""
        document = decompress_json(payload)
        if not isinstance(document, dict) or document.get("format") != PAYLOAD_FORMAT:
            found = document.get("format") if isinstance(document, dict) else None
            raise ValueError(
                f"version payload has format {found!r}; this rlmemory reads {PAYLOAD_FORMAT}"
            )
        return cls(
            q_table=document["q_table"],
            policy_params=document["policy_params"],
            arrays={key: _decode_array(value) for key, value in document["arrays"].items()},
            decision_watermark=int(document.get("decision_watermark") or 0),
            steps=[(key, _decode_array(values)) for key, values in document.get("steps", [])],
        )


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    little_endian = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": base64.b64encode(little_endian.tobytes()).decode("ascii"),
    }


def _decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    dtype = np.dtype(encoded["dtype"]).newbyteorder("<")
    flat = np.frombuffer(base64.b64decode(encoded["data"]), dtype=dtype)
    return flat.astype(dtype.newbyteorder("=")).reshape(encoded["shape"])


def newest_decision_id(store: MemoryStore, agent_name: str) -> int:
    """The id of the newest stored decision of ``agent_name``, or 0 when there is none."""
    newest = store.get_agent_decisions(agent_name, limit=1)
    return int(newest[0]["id"]) if newest else 0


def capture_state(store: MemoryStore, agent_name: str) -> AgentState:
    """Read everything ``agent_name`` has learned from ``store``."""
    check_agent_name(agent_name)
    return AgentState(
        q_table=store.get_q_table(agent_name),
        policy_params=store.get_policy_params(agent_name),
        arrays=store.get_arrays(agent_name),
        decision_watermark=newest_decision_id(store, agent_name),
        steps=[(step.key, step.values) for step in store.get_learner_steps(agent_name)],
    )


def apply_state(store: MemoryStore, agent_name: str, state: AgentState) -> None:
    """Make ``state`` the stored learned state of ``agent_name``, in one transaction.

    What the state lacks is cleared: a Q-table becomes empty, policy parameters are
    deleted, arrays not in the state are deleted. Learners that hold the agent in
    memory must :meth:`~rlmemory.learners.base.RoutingLearner.reload` afterwards.
    """
    check_agent_name(agent_name)
    with store.transaction():
        store.lock_learner(agent_name)  # a learner's update cannot land half-way through
        if state.q_table is not None or store.get_q_table(agent_name) is not None:
            store.save_q_table(agent_name, state.q_table or {})
        if state.policy_params is not None:
            store.save_policy_params(agent_name, state.policy_params)
        elif store.get_policy_params(agent_name) is not None:
            store.delete_policy_params(agent_name)
        store.delete_arrays(agent_name)
        if state.arrays:
            store.save_arrays(agent_name, state.arrays)
        # Re-appended steps get new ids, all after the snapshot watermark in ``arrays``.
        store.delete_learner_steps(agent_name)
        if state.steps:
            store.append_learner_steps(agent_name, state.steps)


# ---------------------------------------------------------------------- versions
@dataclass(frozen=True)
class VersionInfo:
    """One version as listed: number, note, creation time and payload size in bytes."""

    agent_name: str
    version: int
    note: str
    created: float
    size: int


@dataclass(frozen=True)
class Version(VersionInfo):
    """One version with its decoded state."""

    state: AgentState = field(default_factory=AgentState)


def checkpoint(store: MemoryStore, agent_name: str, note: str = "") -> int:
    """Save the current learned state of ``agent_name`` as a new version; return its number.

    Capture and save happen in one transaction, so the version is the state at one
    instant even while learners write.
    """
    check_agent_name(agent_name)
    if not isinstance(note, str):
        raise TypeError(f"note must be a str, not {type(note).__name__}")
    with store.transaction():
        store.lock_learner(agent_name)  # the state of one instant, not half an update
        state = capture_state(store, agent_name)
        return store.save_version(agent_name, state.to_payload(), note)


def list_versions(store: MemoryStore, agent_name: str) -> list[VersionInfo]:
    """Every version of ``agent_name``, oldest first."""
    check_agent_name(agent_name)
    return [_info(agent_name, row) for row in store.list_versions(agent_name)]


def get_version(store: MemoryStore, agent_name: str, version: int) -> Version:
    """One version with its state; an unknown number is a ``LookupError`` naming it."""
    check_agent_name(agent_name)
    row = store.get_version(agent_name, _check_version(version))
    info = _info(agent_name, row)
    return Version(**vars(info), state=AgentState.from_payload(row["payload"]))


def _info(agent_name: str, row: Mapping[str, Any]) -> VersionInfo:
    return VersionInfo(
        agent_name=agent_name,
        version=int(row["version"]),
        note=row["note"] or "",
        created=float(row["created"]),
        size=int(row["size"]),
    )


def _check_version(version: object, field_name: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"{field_name} must be an int, not {type(version).__name__}")
    if version <= 0:
        raise ValueError(f"{field_name} must be a positive integer, got {version}")
    return version


@dataclass(frozen=True)
class RollbackOutcome:
    """What a rollback did: the version saved before it, the version restored, the new one."""

    agent_name: str
    saved_before: int
    restored: int
    new_version: int


def rollback(store: MemoryStore, agent_name: str, version: int) -> RollbackOutcome:
    """Write the state of ``version`` back, keeping every version.

    In one transaction: the current state is saved as a version ("before rollback to
    N"), the old state is written back, and it is saved again as the newest version
    ("rollback to N"). Running learners must ``reload()`` to see the change.
    """
    target = get_version(store, agent_name, version)
    with store.transaction():
        store.lock_learner(agent_name)
        saved_before = checkpoint(store, agent_name, f"auto: before rollback to version {version}")
        apply_state(store, agent_name, target.state)
        new_version = checkpoint(store, agent_name, f"rollback to version {version}")
    return RollbackOutcome(agent_name, saved_before, version, new_version)


# -------------------------------------------------------------------------- diff
@dataclass(frozen=True)
class ValueChange:
    """One Q-value that differs; ``before``/``after`` is None when the entry is absent."""

    state: str
    action: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float:
        """``after - before``, absent entries counting as 0."""
        return (self.after or 0.0) - (self.before or 0.0)


@dataclass(frozen=True)
class ArrayChange:
    """One array or parameter that differs.

    ``status`` is ``added``, ``removed`` or ``changed``; ``max_abs_change`` and
    ``changed_entries`` are given when both sides are numeric arrays of one shape.
    """

    key: str
    status: str
    max_abs_change: float | None = None
    changed_entries: int | None = None
    shape_before: tuple[int, ...] | None = None
    shape_after: tuple[int, ...] | None = None


@dataclass(frozen=True)
class StateDiff:
    """How two learned states differ; the biggest changes come first."""

    q_changes: list[ValueChange]
    policy_changes: list[ArrayChange]
    array_changes: list[ArrayChange]

    @property
    def is_empty(self) -> bool:
        """Whether the two states are equal."""
        return not (self.q_changes or self.policy_changes or self.array_changes)

    @property
    def changed_states(self) -> list[str]:
        """The Q-table states with at least one changed action, sorted."""
        return sorted({change.state for change in self.q_changes})

    def summary(self) -> dict[str, Any]:
        """Counts and the largest absolute change of each kind."""
        return {
            "q_values_changed": len(self.q_changes),
            "q_states_changed": len(self.changed_states),
            "q_max_abs_change": max((abs(c.delta) for c in self.q_changes), default=0.0),
            "policy_params_changed": len(self.policy_changes),
            "arrays_changed": len(self.array_changes),
            "arrays_max_abs_change": max(
                (c.max_abs_change or 0.0 for c in self.array_changes), default=0.0
            ),
        }


def diff_states(before: AgentState, after: AgentState) -> StateDiff:
    """Compare two states entry by entry.

    >>> old = AgentState(q_table={"s": {"a": 1.0, "b": 2.0}})
    >>> new = AgentState(q_table={"s": {"a": 1.5}, "t": {"a": 0.0}})
    >>> [(c.state, c.action, c.before, c.after) for c in diff_states(old, new).q_changes]
    [('s', 'b', 2.0, None), ('s', 'a', 1.0, 1.5), ('t', 'a', None, 0.0)]
    """
    return StateDiff(
        q_changes=_diff_q_tables(before.q_table or {}, after.q_table or {}),
        policy_changes=_diff_arrays(
            dict(_flatten(before.policy_params or {})), dict(_flatten(after.policy_params or {}))
        ),
        array_changes=_diff_arrays(before.arrays, after.arrays),
    )


def diff(store: MemoryStore, agent_name: str, first: int, second: int | None) -> StateDiff:
    """How version ``second`` (or the current state, when None) differs from ``first``."""
    before = get_version(store, agent_name, first).state
    if second is None:
        after = capture_state(store, agent_name)
    else:
        after = get_version(store, agent_name, second).state
    return diff_states(before, after)


def _diff_q_tables(before: QTable, after: QTable) -> list[ValueChange]:
    changes = []
    for state in before.keys() | after.keys():
        old_actions, new_actions = before.get(state, {}), after.get(state, {})
        for action in old_actions.keys() | new_actions.keys():
            old_value, new_value = old_actions.get(action), new_actions.get(action)
            if old_value != new_value:
                changes.append(ValueChange(state, action, old_value, new_value))
    changes.sort(key=lambda change: (-abs(change.delta), change.state, change.action))
    return changes


def _flatten(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _as_numeric(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "fiub" else None
    if isinstance(value, str | bytes) or value is None:
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return array if array.dtype.kind in "fiub" else None


def _diff_arrays(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[ArrayChange]:
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            shape = _shape(before[key])
            changes.append(ArrayChange(key, "removed", shape_before=shape))
            continue
        if key not in before:
            changes.append(ArrayChange(key, "added", shape_after=_shape(after[key])))
            continue
        old, new = _as_numeric(before[key]), _as_numeric(after[key])
        if old is None or new is None or old.shape != new.shape:
            if _same(before[key], after[key]):
                continue
            changes.append(
                ArrayChange(
                    key, "changed", shape_before=_shape(before[key]), shape_after=_shape(after[key])
                )
            )
            continue
        difference = np.abs(new.astype(np.float64) - old.astype(np.float64))
        changed = int(np.count_nonzero(difference))
        if changed:
            changes.append(
                ArrayChange(
                    key,
                    "changed",
                    max_abs_change=float(difference.max()),
                    changed_entries=changed,
                    shape_before=old.shape,
                    shape_after=new.shape,
                )
            )
    changes.sort(key=lambda change: -(change.max_abs_change or 0.0))
    return changes


def _shape(value: Any) -> tuple[int, ...] | None:
    numeric = _as_numeric(value)
    return None if numeric is None else tuple(numeric.shape)


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return bool(np.array_equal(np.asarray(first), np.asarray(second)))
    return bool(first == second)


# ------------------------------------------------------------ periodic snapshots
class AutoCheckpoint:
    """Take a version of an agent every ``every`` learning updates.

    Learners or the coordinator call :meth:`maybe_checkpoint` after each update; it
    returns the new version number when one was taken, else ``None``. The count lives
    in this object (each process counts its own updates).

    >>> import tempfile, os
    >>> from rlmemory.store import open_store
    >>> with open_store(os.path.join(tempfile.mkdtemp(), "memory.db")) as store:
    ...     auto = AutoCheckpoint(store, "router", every=2)
    ...     [auto.maybe_checkpoint() for _ in range(5)]
    [None, 1, None, 2, None]
    """

    def __init__(self, store: MemoryStore, agent_name: str, every: int) -> None:
        check_agent_name(agent_name)
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.store = store
        self.agent_name = agent_name
        self.every = every
        self.pending_updates = 0
        self.last_checkpoint_time: float | None = None

    def maybe_checkpoint(self, updates: int = 1) -> int | None:
        """Count ``updates`` more updates; checkpoint when ``every`` have accumulated."""
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ValueError(f"updates must be a non-negative integer, got {updates!r}")
        self.pending_updates += updates
        if self.pending_updates < self.every:
            return None
        self.pending_updates = 0
        self.last_checkpoint_time = time.time()
        return checkpoint(self.store, self.agent_name, f"auto: every {self.every} updates")
