"""The storage contract: what every rlmemory backend stores, returns and raises.

:class:`MemoryStore` is the one protocol. ``MemoryDatabase`` (SQLite or PostgreSQL
through SQLAlchemy) and ``FileBackedMemoryDatabase`` (JSON files) implement it, and one
conformance suite, :class:`rlmemory.testing.storage.StoreConformance`, runs against each
of them (a third backend subclasses it to know when it is done).

The method names of the seed document are kept exactly (``save_q_table``,
``get_q_table``, ``save_policy_params``, ``get_policy_params``, ``save_agent_reward``,
``get_agent_rewards``, ``save_agent_interaction``, ``get_agent_interactions``,
``save_agent_decision``, ``get_agent_decisions``). The rest is what the learning loop
needs and the seed lacked: incremental Q-value writes, numeric arrays for linear
learners, feedback bookkeeping, decisions by id, and transactions.

Contract common to every method:

* Every write is atomic and durable when the call returns (or, inside
  :meth:`MemoryStore.transaction`, when the outermost block exits without error).
* Arguments are validated before anything is written, once, by the public methods of
  :class:`MemoryStore` itself (with the checks of :mod:`rlmemory.store._validation`);
  they then call the backend's hook of the same name with a leading underscore
  (``save_q_table`` -> ``_save_q_table``) with the checked, normalised values. A
  backend implements the hooks and never re-checks, so every backend gives the same error:
  a wrong type is ``TypeError`` and a wrong value ``ValueError``, both naming the
  argument; an unknown id is ``LookupError``
  (:class:`rlmemory.errors.UnknownDecisionError`,
  :class:`rlmemory.errors.UnknownInteractionError`). Nothing stored changes on error.
  The limits, the same on every backend (``docs/reliability.md``):

  - agent names, action names and array keys: non-empty, at most 512 UTF-8 bytes;
    state keys at most 1,536 bytes (so PostgreSQL's index limit is never reached);
  - no text holds NUL or an unpaired surrogate;
  - interaction texts (request, response, feedback) do not start with ``rlm:enc:v1:``,
    the mark of an encrypted text (``ValueError``);
  - ids, limits and counts fit a signed 64-bit integer (``limit`` > 0), version
    numbers PostgreSQL's ``INTEGER``;
  - rewards, propensities, features, Q-values and array entries are finite (an int
    too large for a float, such as ``10**400``, is not);
  - JSON payloads nest at most 32 levels, without NaN or infinity;
  - ``features``, ``keys``, ``states``, ``versions`` and ``interaction_ids`` are a
    list, tuple, set or numpy array, never a generator (``TypeError``).
* Problems with the store itself (corrupt file, newer schema, a database that is down,
  any error of the database driver) raise :class:`rlmemory.errors.StoreError`
  subclasses naming the path or URL (password removed), never a raw driver error; one
  agent's corrupt data never makes another agent's data unreadable. A lock held by
  another process for longer than the store's busy timeout is
  :class:`rlmemory.errors.StoreBusyError` on every backend.
* Texts round-trip byte-exact; timestamps are float seconds since the epoch.
* Histories (``get_*`` with ``limit``) return newest first; ties in timestamp are
  broken by id, so the order is the order of insertion.
* A store object may be shared by threads; several processes may open the same
  store at once. Incremental writes to different keys from different processes all
  survive, and appended rows are never lost. A learner that updates a stored value
  from its current one does it inside :meth:`MemoryStore.transaction`, after
  :meth:`MemoryStore.lock_learner`, re-reading with :meth:`MemoryStore.get_q_values` or
  :meth:`MemoryStore.get_arrays`: then updates of one key by several processes all count.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from rlmemory.store._feature_cache import (
    check_featurizer_name,
    check_keep,
    check_text_keys,
    check_vectors,
)
from rlmemory.store._operations import check_prune_arguments
from rlmemory.store._settings import check_setting_name, encode_setting
from rlmemory.store._steps import check_step_id, check_steps
from rlmemory.store._validation import (
    check_agent_name,
    check_arrays,
    check_decision_labels,
    check_features,
    check_finite,
    check_id,
    check_ids,
    check_integer,
    check_interaction_text,
    check_limit,
    check_mapping,
    check_names,
    check_propensity,
    check_q_table,
    check_reward_row,
    check_state,
    check_states,
    check_text,
    check_version_number,
    check_version_numbers,
    checked_backup_rows,
    to_json,
)
from rlmemory.store.rows import HISTORY_TABLES, QTable, Row

#: Schema version written by this rlmemory. Stores written by a newer version are refused.
SCHEMA_VERSION = 5

__all__ = ["HISTORY_TABLES", "SCHEMA_VERSION", "MemoryStore", "QTable", "Row"]


def _required_text(value: object, field: str) -> str:
    """``value`` if it is a storable str (see :func:`check_text`)."""
    text = check_text(value, field)
    assert text is not None  # check_text returns None only when optional
    return text


def _sealable_required(value: object, field: str) -> str:
    text = check_interaction_text(value, field)
    assert text is not None  # only an optional text may be None
    return text


def _optional_names(keys: object, field: str) -> list[str] | None:
    return None if keys is None else check_names(keys, field)


class MemoryStore(abc.ABC):
    """Where an agent system's learned state and history live.

    Use as a context manager, or call :meth:`close` when done.

    Every public method checks its arguments (raising ``TypeError``/``ValueError``
    naming the argument) and then calls the hook of the same name with a leading
    underscore, which the backend implements: ``save_q_table`` checks and calls
    ``_save_q_table``. A hook receives checked, normalised values (documented on each
    hook) and never re-checks them; that is how every backend rejects the same
    arguments with the same errors. A new backend subclasses :class:`MemoryStore`,
    implements every abstract hook and the abstract public methods that take no
    arguments to check (:meth:`transaction`, :meth:`snapshot`, …), and passes
    :class:`rlmemory.testing.storage.StoreConformance`.
    """

    #: Human-readable location: a path, or a URL with its password removed.
    location: str

    # ----------------------------------------------------------------- Q-learning
    def save_q_table(self, agent_name: str, q_table: Mapping[str, Mapping[str, float]]) -> None:
        """Replace the whole stored Q-table of ``agent_name`` with ``q_table``.

        ``q_table`` maps state -> action -> value. States with no actions are dropped.
        This is the seed's API; learners use :meth:`save_q_values` instead, whose cost
        does not grow with the table.
        """
        self._save_q_table(check_agent_name(agent_name), check_q_table(q_table))

    @abc.abstractmethod
    def _save_q_table(self, agent_name: str, q_table: QTable) -> None:
        """Replace the table with ``q_table`` (a plain dict, finite floats, no empty state)."""

    def get_q_table(self, agent_name: str) -> QTable | None:
        """Return the stored Q-table of ``agent_name``, or ``None`` if none was saved.

        A Q-table saved empty is returned as ``{}``.
        """
        return self._get_q_table(check_agent_name(agent_name))

    @abc.abstractmethod
    def _get_q_table(self, agent_name: str) -> QTable | None:
        """The stored table of a checked agent name."""

    def save_q_values(self, agent_name: str, changed: Mapping[str, Mapping[str, float]]) -> None:
        """Merge ``changed`` (the Q-table's shape, only changed entries) into the stored table.

        Entries not named in ``changed`` keep their stored values, including entries
        written meanwhile by other processes. Atomic; the cost depends on the size of
        ``changed`` only.
        """
        self._save_q_values(check_agent_name(agent_name), check_q_table(changed, "changed"))

    @abc.abstractmethod
    def _save_q_values(self, agent_name: str, changed: QTable) -> None:
        """Merge checked entries (possibly ``{}``: then only register the agent, or nothing)."""

    def get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        """Return the stored values of one state of ``agent_name`` (action -> value).

        ``{}`` when nothing is stored for ``state`` (or for the agent). Cheap — one
        indexed lookup — so learners can re-read the state they are about to update
        inside :meth:`transaction` instead of trusting a copy loaded at start-up.
        """
        return self._get_q_values(check_agent_name(agent_name), check_state(state))

    def _get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        """One state's values. This fallback reads the whole table; the shipped stores
        override it with an indexed lookup."""
        return dict((self._get_q_table(agent_name) or {}).get(state, {}))

    def lock_learner(self, agent_name: str) -> None:
        """Inside :meth:`transaction`: keep other processes from changing the learned state
        of ``agent_name`` until the transaction ends.

        A learner calls it before re-reading the values it is about to update, so that
        the read-modify-write of two processes cannot interleave (no lost update).
        Stores whose write transactions already exclude each other (SQLite's ``BEGIN
        IMMEDIATE``, the file store's folder lock) need do nothing. Outside a
        transaction it has no lasting effect.
        """
        self._lock_learner(check_agent_name(agent_name))

    def _lock_learner(self, agent_name: str) -> None:  # noqa: B027 - a no-op by default
        """Take the per-agent learner lock; this default does nothing (see above)."""

    # ------------------------------------------------------------ policy gradient
    def save_policy_params(self, agent_name: str, policy_params: Mapping[str, Any]) -> None:
        """Replace the stored policy parameters (any JSON-encodable mapping)."""
        agent_name = check_agent_name(agent_name)
        check_mapping(policy_params, "policy_params")
        self._save_policy_params(agent_name, to_json(dict(policy_params), "policy_params"))

    @abc.abstractmethod
    def _save_policy_params(self, agent_name: str, policy_json: str) -> None:
        """Store the parameters, given as checked compact JSON text of an object."""

    def get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        """Return the stored policy parameters, or ``None`` if none were saved."""
        return self._get_policy_params(check_agent_name(agent_name))

    @abc.abstractmethod
    def _get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        """The stored parameters of a checked agent name."""

    # ------------------------------------------------------------- numeric arrays
    def save_arrays(self, agent_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Upsert named numeric arrays (float64 or int64, any shape) for ``agent_name``.

        Keys not named keep their stored arrays. Used by linear learners to persist
        only the statistics that one update changed. Values must be numpy arrays (or
        scalars) of real numbers: floats of up to 64 bits are stored as float64,
        integers as int64; other dtypes and lists are ``TypeError``. Arrays with NaN or
        infinite entries are ``ValueError``; arrays round-trip exactly (dtype, shape,
        values).
        """
        agent_name = check_agent_name(agent_name)
        checked = check_arrays(arrays)
        if checked:
            self._save_arrays(agent_name, checked)

    @abc.abstractmethod
    def _save_arrays(self, agent_name: str, arrays: list[tuple[str, np.ndarray]]) -> None:
        """Upsert at least one ``(key, array)``: sorted by key, float64 or int64, finite."""

    def get_arrays(
        self, agent_name: str, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Return the stored arrays of ``agent_name`` (all, or those in ``keys`` that exist)."""
        agent_name = check_agent_name(agent_name)
        return self._get_arrays(agent_name, _optional_names(keys, "keys"))

    @abc.abstractmethod
    def _get_arrays(self, agent_name: str, keys: list[str] | None) -> dict[str, np.ndarray]:
        """The arrays named by ``keys`` (distinct checked names), or all when None."""

    def delete_arrays(self, agent_name: str, keys: Sequence[str] | None = None) -> int:
        """Delete the named arrays (all when ``keys`` is None); return how many were deleted."""
        agent_name = check_agent_name(agent_name)
        return self._delete_arrays(agent_name, _optional_names(keys, "keys"))

    @abc.abstractmethod
    def _delete_arrays(self, agent_name: str, keys: list[str] | None) -> int:
        """Delete the arrays named by ``keys`` (distinct checked names), or all when None."""

    # ------------------------------------------------------------- learner steps
    def append_learner_steps(
        self, agent_name: str, steps: Sequence[tuple[str, np.ndarray]]
    ) -> list[int]:
        """Append ``(key, values)`` steps for ``agent_name``; return their ids, in order.

        A step is what one learner update learned, small next to the statistics it
        changes (``values`` a 1-D vector of finite numbers, kept as float64 bit for bit;
        ``key`` a name: non-empty, at most 512 UTF-8 bytes). Ids increase in append
        order and are never reused, even after :meth:`delete_learner_steps`, so a
        learner can keep "every step up to id ``n`` is in my snapshot" as a watermark.
        Appended by several processes, none is lost; inside :meth:`transaction` after
        :meth:`lock_learner`, the ids of one agent's steps are in the order the
        transactions committed.
        """
        agent_name = check_agent_name(agent_name)
        checked = check_steps(steps)
        return self._append_learner_steps(agent_name, checked) if checked else []

    @abc.abstractmethod
    def _append_learner_steps(self, agent_name: str, steps: list[tuple[str, bytes]]) -> list[int]:
        """Append at least one step: ``(key, float64 values as little-endian bytes)``."""

    def get_learner_steps(self, agent_name: str, after_id: int = 0) -> list[Any]:
        """The stored steps of ``agent_name`` with an id greater than ``after_id``, oldest
        first, as :class:`rlmemory.store._steps.LearnerStep` ``(id, key, values)``."""
        agent_name = check_agent_name(agent_name)
        return self._get_learner_steps(agent_name, check_step_id(after_id, "after_id"))

    @abc.abstractmethod
    def _get_learner_steps(self, agent_name: str, after_id: int) -> list[Any]:
        """Steps with an id greater than ``after_id`` (a checked int >= 0), oldest first."""

    def delete_learner_steps(self, agent_name: str, through_id: int | None = None) -> int:
        """Delete the steps with an id up to ``through_id`` (all when None); return how many."""
        agent_name = check_agent_name(agent_name)
        if through_id is not None:
            through_id = check_step_id(through_id, "through_id")
        return self._delete_learner_steps(agent_name, through_id)

    @abc.abstractmethod
    def _delete_learner_steps(self, agent_name: str, through_id: int | None) -> int:
        """Delete steps with an id <= ``through_id`` (a checked int >= 0), or all."""

    # -------------------------------------------------------------- feature cache
    def save_feature_vectors(self, featurizer: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Cache vectors computed by ``featurizer``, keyed by the SHA-256 hex of their text.

        A key already cached keeps its vector (a featuriser maps one text to one vector)
        and its age. Keys that are not 64 lower-case hex digits, empty or non-1-D
        vectors and NaN or infinite entries are ``ValueError``; nothing is written then.
        The cache is not learned state: backups, exports and versions leave it out.
        """
        featurizer = check_featurizer_name(featurizer)
        checked = check_vectors(vectors)
        if checked:
            self._save_feature_vectors(featurizer, checked)

    @abc.abstractmethod
    def _save_feature_vectors(self, featurizer: str, vectors: list[tuple[str, np.ndarray]]) -> None:
        """Cache at least one ``(key, float64 1-D finite vector)``, sorted by key."""

    def get_feature_vectors(self, featurizer: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached float64 vectors of ``featurizer`` for those of ``keys`` that are cached.

        Costs O(len(keys)), whatever the size of the cache.
        """
        featurizer = check_featurizer_name(featurizer)
        checked = check_text_keys(keys)
        return self._get_feature_vectors(featurizer, checked) if checked else {}

    @abc.abstractmethod
    def _get_feature_vectors(self, featurizer: str, keys: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors for some of ``keys`` (at least one, distinct, sorted, checked)."""

    def count_feature_vectors(self, featurizer: str) -> int:
        """How many vectors of ``featurizer`` are cached."""
        return self._count_feature_vectors(check_featurizer_name(featurizer))

    @abc.abstractmethod
    def _count_feature_vectors(self, featurizer: str) -> int:
        """How many vectors of a checked featuriser name are cached."""

    def prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        """Delete all but the ``keep`` most recently cached vectors of ``featurizer``.

        Returns how many were deleted. Ties in age are broken by key.
        """
        featurizer = check_featurizer_name(featurizer)
        return self._prune_feature_vectors(featurizer, check_keep(keep))

    @abc.abstractmethod
    def _prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        """Keep the ``keep`` (a checked int >= 0) newest vectors; return how many went."""

    # -------------------------------------------------------------------- rewards
    def save_agent_reward(
        self,
        agent_name: str,
        reward: float,
        reward_components: Mapping[str, Any],
        decision_id: int | None = None,
    ) -> int:
        """Append a reward with its components; return the new row's id.

        A ``decision_id`` that names no stored decision is
        :class:`rlmemory.errors.UnknownDecisionError` and nothing is written.
        """
        return self._save_agent_reward(
            *check_reward_row(agent_name, reward, reward_components, decision_id)
        )

    @abc.abstractmethod
    def _save_agent_reward(
        self, agent_name: str, reward: float, components_json: str, decision_id: int | None
    ) -> int:
        """Append a reward (a finite float; components as checked JSON text of an object)."""

    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest rewards first. Each row: ``id``, ``agent_name``, ``reward``,
        ``reward_components`` (dict), ``decision_id`` (or None), ``timestamp``."""
        agent_name = check_agent_name(agent_name)
        return self._get_agent_rewards(agent_name, check_limit(limit))

    @abc.abstractmethod
    def _get_agent_rewards(self, agent_name: str, limit: int) -> list[Row]:
        """At most ``limit`` (a checked positive int) rewards, newest first."""

    # --------------------------------------------------------------- interactions
    def save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None = None,
        decision_id: int | None = None,
    ) -> int:
        """Append an interaction; return its id.

        A ``decision_id`` that names no stored decision is
        :class:`rlmemory.errors.UnknownDecisionError` and nothing is written.
        """
        agent_name = check_agent_name(agent_name)
        request = _sealable_required(request, "request")
        response = _sealable_required(response, "response")
        feedback = check_interaction_text(feedback, "feedback", optional=True)
        if decision_id is not None:
            decision_id = check_id(decision_id, "decision_id")
        return self._save_agent_interaction(agent_name, request, response, feedback, decision_id)

    @abc.abstractmethod
    def _save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None,
        decision_id: int | None,
    ) -> int:
        """Append an interaction of checked storable texts."""

    def get_agent_interactions(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest interactions first. Each row: ``id``, ``agent_name``, ``request``,
        ``response``, ``feedback`` (or None), ``decision_id`` (or None),
        ``feedback_learned`` (bool), ``timestamp``."""
        agent_name = check_agent_name(agent_name)
        return self._get_agent_interactions(agent_name, check_limit(limit))

    @abc.abstractmethod
    def _get_agent_interactions(self, agent_name: str, limit: int) -> list[Row]:
        """At most ``limit`` (a checked positive int) interactions, newest first."""

    def get_agent_interaction(self, interaction_id: int) -> Row:
        """Return one interaction by id (same keys as in the history), or raise
        :class:`rlmemory.errors.UnknownInteractionError`."""
        return self._get_agent_interaction(check_id(interaction_id, "interaction_id"))

    @abc.abstractmethod
    def _get_agent_interaction(self, interaction_id: int) -> Row:
        """One interaction by a checked id."""

    def find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        """Return the newest interaction of ``agent_name`` with exactly this request and
        response, or ``None``."""
        agent_name = check_agent_name(agent_name)
        request = _required_text(request, "request")
        response = _required_text(response, "response")
        return self._find_agent_interaction(agent_name, request, response)

    @abc.abstractmethod
    def _find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        """The newest interaction with these (checked) texts, or None."""

    def set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        """Store ``feedback`` on an interaction and mark it not yet learned."""
        interaction_id = check_id(interaction_id, "interaction_id")
        self._set_interaction_feedback(interaction_id, _sealable_required(feedback, "feedback"))

    @abc.abstractmethod
    def _set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        """Store checked feedback text on a checked interaction id."""

    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Oldest first: interactions of ``agent_name`` that have feedback (not None) not
        yet marked learned, however the feedback was written (by this API, another
        process, or plain SQL into the seed's ``feedback`` column)."""
        agent_name = check_agent_name(agent_name)
        return self._get_unlearned_feedback(agent_name, check_limit(limit))

    @abc.abstractmethod
    def _get_unlearned_feedback(self, agent_name: str, limit: int) -> list[Row]:
        """At most ``limit`` (a checked positive int) unlearned interactions, oldest first."""

    def mark_feedback_learned(self, interaction_ids: Sequence[int]) -> None:
        """Mark these interactions' current feedback as learned."""
        checked = check_ids(interaction_ids, "interaction_ids")
        if checked:
            self._mark_feedback_learned(checked)

    @abc.abstractmethod
    def _mark_feedback_learned(self, interaction_ids: list[int]) -> None:
        """Mark at least one interaction (distinct checked ids, sorted); all or none."""

    # ------------------------------------------------------------------ decisions
    def save_agent_decision(
        self,
        agent_name: str,
        state: str,
        selected_action: str,
        q_values: Mapping[str, Any],
        reward: Any,
        *,
        propensity: float | None = None,
        features: Sequence[float] | np.ndarray | None = None,
    ) -> int:
        """Append a decision; return its id.

        ``state`` is the state key; ``q_values`` the action values, scores or
        probabilities seen at decision time; ``reward`` any JSON value (``None`` while
        the reward is pending). ``propensity`` is the probability with which
        ``selected_action`` was chosen, in (0, 1]; ``features`` the context vector (a
        list, tuple or numpy array of finite numbers; a generator is ``TypeError``).
        """
        agent_name = check_agent_name(agent_name)
        state, selected_action = check_decision_labels(state, selected_action)
        check_mapping(q_values, "q_values")
        q_values_json = to_json(dict(q_values), "q_values")
        reward_json = to_json(reward, "reward")
        propensity = check_propensity(propensity)
        checked_features = check_features(features)
        features_json = None if checked_features is None else to_json(checked_features, "features")
        return self._save_agent_decision(
            agent_name,
            state,
            selected_action,
            q_values_json,
            reward_json,
            propensity,
            features_json,
        )

    @abc.abstractmethod
    def _save_agent_decision(
        self,
        agent_name: str,
        state: str,
        selected_action: str,
        q_values_json: str,
        reward_json: str,
        propensity: float | None,
        features_json: str | None,
    ) -> int:
        """Append a decision; JSON payloads as checked compact JSON text. The backend
        records the agent's newest version number with it."""

    def get_agent_decisions(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest decisions first. Each row: ``id``, ``agent_name``, ``state``,
        ``selected_action``, ``q_values`` (dict), ``reward`` (decoded JSON),
        ``propensity`` (or None), ``features`` (list of float or None), ``timestamp``,
        ``version`` (the agent's newest version when the decision was stored, or None)."""
        agent_name = check_agent_name(agent_name)
        return self._get_agent_decisions(agent_name, check_limit(limit))

    @abc.abstractmethod
    def _get_agent_decisions(self, agent_name: str, limit: int) -> list[Row]:
        """At most ``limit`` (a checked positive int) decisions, newest first."""

    def get_agent_decision(self, decision_id: int) -> Row:
        """Return one decision by id, or raise :class:`rlmemory.errors.UnknownDecisionError`.

        An id beyond a signed 64-bit integer (``2**70``) is ``ValueError`` naming
        ``decision_id`` on every backend, before any query.
        """
        return self._get_agent_decision(check_id(decision_id, "decision_id"))

    @abc.abstractmethod
    def _get_agent_decision(self, decision_id: int) -> Row:
        """One decision by a checked id."""

    def iter_agent_decisions(
        self, agent_name: str, after_id: int = 0, batch_size: int = 1000
    ) -> Iterator[Row]:
        """Oldest first: every decision of ``agent_name`` with id > ``after_id``."""
        agent_name = check_agent_name(agent_name)
        after_id = check_integer(after_id, "after_id", minimum=0)
        batch_size = check_limit(batch_size, "batch_size")
        return self._iter_agent_decisions(agent_name, after_id, batch_size)

    @abc.abstractmethod
    def _iter_agent_decisions(
        self, agent_name: str, after_id: int, batch_size: int
    ) -> Iterator[Row]:
        """Decisions with id > ``after_id`` oldest first, read ``batch_size`` at a time."""

    def set_decision_reward(self, decision_id: int, reward: Any) -> None:
        """Replace the ``reward`` JSON of a decision (delayed rewards)."""
        decision_id = check_id(decision_id, "decision_id")
        self._set_decision_reward(decision_id, to_json(reward, "reward"))

    @abc.abstractmethod
    def _set_decision_reward(self, decision_id: int, reward_json: str) -> None:
        """Store checked reward JSON text on a checked decision id."""

    # ---------------------------------------------------------------- inspection
    @abc.abstractmethod
    def list_agents(self) -> list[str]:
        """Every agent name with anything stored, sorted."""

    def agent_stats(self, agent_name: str) -> Row:
        """Counts for one agent: ``decisions``, ``interactions``, ``rewards``,
        ``mean_reward`` (or None), ``last_update`` (timestamp or None)."""
        return self._agent_stats(check_agent_name(agent_name))

    @abc.abstractmethod
    def _agent_stats(self, agent_name: str) -> Row:
        """The counts of a checked agent name."""

    def count_agent_decisions(self, agent_name: str) -> int:
        """How many decisions ``agent_name`` has stored."""
        return self._count_agent_decisions(check_agent_name(agent_name))

    @abc.abstractmethod
    def _count_agent_decisions(self, agent_name: str) -> int:
        """How many decisions a checked agent name has stored."""

    # ------------------------------------------------------------------ versions
    def save_version(
        self, agent_name: str, payload: bytes | bytearray | memoryview, note: str = ""
    ) -> int:
        """Store a snapshot ``payload`` (opaque bytes) as the agent's next version number.

        Numbers start at 1 and grow by one per agent, also across processes. Returns
        the number. :mod:`rlmemory.ops.versions` builds the payloads.
        """
        agent_name = check_agent_name(agent_name)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        note = _required_text(note, "note")
        return self._save_version(agent_name, bytes(payload), note)

    @abc.abstractmethod
    def _save_version(self, agent_name: str, payload: bytes, note: str) -> int:
        """Store ``payload`` as the next version of a checked agent name; return its number."""

    def list_versions(self, agent_name: str) -> list[Row]:
        """Oldest first: ``version``, ``note``, ``created`` (timestamp), ``size`` (bytes)."""
        return self._list_versions(check_agent_name(agent_name))

    @abc.abstractmethod
    def _list_versions(self, agent_name: str) -> list[Row]:
        """The versions of a checked agent name, oldest first."""

    def get_version(self, agent_name: str, version: int) -> Row:
        """One version with its ``payload`` (bytes); an unknown one is ``LookupError``."""
        agent_name = check_agent_name(agent_name)
        return self._get_version(agent_name, check_version_number(version))

    @abc.abstractmethod
    def _get_version(self, agent_name: str, version: int) -> Row:
        """One version (a checked number) with its payload, or ``LookupError``."""

    def delete_versions(self, agent_name: str, versions: Sequence[int]) -> int:
        """Delete these versions of the agent; return how many existed."""
        agent_name = check_agent_name(agent_name)
        checked = check_version_numbers(versions)
        return self._delete_versions(agent_name, checked) if checked else 0

    @abc.abstractmethod
    def _delete_versions(self, agent_name: str, versions: list[int]) -> int:
        """Delete at least one version (distinct checked numbers, sorted)."""

    # ------------------------------------------------- deleting and correcting
    def delete_policy_params(self, agent_name: str) -> bool:
        """Delete the agent's policy parameters; return whether there were any."""
        return self._delete_policy_params(check_agent_name(agent_name))

    @abc.abstractmethod
    def _delete_policy_params(self, agent_name: str) -> bool:
        """Delete the parameters of a checked agent name."""

    def delete_q_states(self, agent_name: str, states: Collection[str]) -> int:
        """Delete every entry of these Q-table states; return how many entries went."""
        agent_name = check_agent_name(agent_name)
        checked = check_states(states)
        return self._delete_q_states(agent_name, checked) if checked else 0

    @abc.abstractmethod
    def _delete_q_states(self, agent_name: str, states: list[str]) -> int:
        """Delete the entries of at least one state (distinct checked states, sorted)."""

    def q_state_stats(self, agent_name: str) -> list[Row]:
        """Per Q-table state: ``state``, ``actions`` (entries), ``last_updated`` (newest
        write to any of its entries) and ``visits`` (stored decisions in that state)."""
        return self._q_state_stats(check_agent_name(agent_name))

    @abc.abstractmethod
    def _q_state_stats(self, agent_name: str) -> list[Row]:
        """The per-state summary of a checked agent name."""

    def get_agent_reward(self, reward_id: int) -> Row:
        """One reward by id (same keys as in the history), or ``LookupError``."""
        return self._get_agent_reward(check_id(reward_id, "reward_id"))

    @abc.abstractmethod
    def _get_agent_reward(self, reward_id: int) -> Row:
        """One reward by a checked id."""

    def update_agent_reward(
        self,
        reward_id: int,
        reward: float,
        reward_components: Mapping[str, Any] | None = None,
    ) -> None:
        """Correct a stored reward (and its components, when given)."""
        reward_id = check_id(reward_id, "reward_id")
        value = check_finite(reward, "reward")
        components_json = None
        if reward_components is not None:
            check_mapping(reward_components, "reward_components")
            components_json = to_json(dict(reward_components), "reward_components")
        self._update_agent_reward(reward_id, value, components_json)

    @abc.abstractmethod
    def _update_agent_reward(
        self, reward_id: int, reward: float, components_json: str | None
    ) -> None:
        """Correct a reward; components as checked JSON text, or None to keep them."""

    def delete_agent_reward(self, reward_id: int) -> None:
        """Delete one reward; an unknown id is ``LookupError``."""
        self._delete_agent_reward(check_id(reward_id, "reward_id"))

    @abc.abstractmethod
    def _delete_agent_reward(self, reward_id: int) -> None:
        """Delete one reward by a checked id."""

    def update_agent_interaction(
        self, interaction_id: int, *, request: str | None = None, response: str | None = None
    ) -> None:
        """Correct the request and/or response text of an interaction."""
        interaction_id = check_id(interaction_id, "interaction_id")
        request = check_interaction_text(request, "request", optional=True)
        response = check_interaction_text(response, "response", optional=True)
        if request is None and response is None:
            raise ValueError("give request and/or response to update")
        self._update_agent_interaction(interaction_id, request, response)

    @abc.abstractmethod
    def _update_agent_interaction(
        self, interaction_id: int, request: str | None, response: str | None
    ) -> None:
        """Correct the given (checked, at least one not None) texts of an interaction."""

    def delete_agent_interaction(self, interaction_id: int) -> None:
        """Delete one interaction; an unknown id is
        :class:`rlmemory.errors.UnknownInteractionError`."""
        self._delete_agent_interaction(check_id(interaction_id, "interaction_id"))

    @abc.abstractmethod
    def _delete_agent_interaction(self, interaction_id: int) -> None:
        """Delete one interaction by a checked id."""

    def prune_history(
        self,
        agent_name: str,
        table: str,
        *,
        older_than: float | None = None,
        keep_newest: int | None = None,
        dry_run: bool = False,
    ) -> Row:
        """Delete the agent's rows of ``table`` (one of :data:`HISTORY_TABLES`) older than
        the timestamp ``older_than`` or not among the ``keep_newest`` newest; with
        ``dry_run`` only count them. Returns ``rows``, ``first_id``, ``last_id``,
        ``oldest``, ``newest`` of the rows concerned (None when there are none)."""
        agent_name = check_agent_name(agent_name)
        older_than = check_prune_arguments(table, older_than, keep_newest)
        return self._prune_history(agent_name, table, older_than, keep_newest, bool(dry_run))

    @abc.abstractmethod
    def _prune_history(
        self,
        agent_name: str,
        table: str,
        older_than: float | None,
        keep_newest: int | None,
        dry_run: bool,
    ) -> Row:
        """Prune checked bounds (both may be None: then nothing is concerned)."""

    # ------------------------------------------------------------------ settings
    def save_setting(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        """Store the JSON object ``value`` as setting ``key`` of ``namespace``, replacing it.

        Settings are small documents kept beside the learned state, shared by every
        process that opens the store: the settings of a service's learning loops, the
        hashes of its API keys. ``namespace`` and ``key`` are non-empty strings of at
        most 200 characters; a value JSON cannot encode is ``TypeError``, NaN or
        infinity ``ValueError``. Atomic; joins an enclosing :meth:`transaction`.
        """
        namespace = check_setting_name(namespace, "namespace")
        key = check_setting_name(key, "key")
        self._save_setting(namespace, key, encode_setting(value))

    @abc.abstractmethod
    def _save_setting(self, namespace: str, key: str, value_json: str) -> None:
        """Store a setting given as checked JSON text of an object."""

    def get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The stored setting ``key`` of ``namespace``, or ``None`` when there is none."""
        namespace = check_setting_name(namespace, "namespace")
        return self._get_setting(namespace, check_setting_name(key, "key"))

    @abc.abstractmethod
    def _get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        """One setting of checked names, or None."""

    def list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every setting of ``namespace`` (key -> value), keys sorted; ``{}`` when none."""
        return self._list_settings(check_setting_name(namespace, "namespace"))

    @abc.abstractmethod
    def _list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every setting of a checked namespace, keys sorted."""

    def delete_setting(self, namespace: str, key: str) -> bool:
        """Delete setting ``key`` of ``namespace``; return whether it existed."""
        namespace = check_setting_name(namespace, "namespace")
        return self._delete_setting(namespace, check_setting_name(key, "key"))

    @abc.abstractmethod
    def _delete_setting(self, namespace: str, key: str) -> bool:
        """Delete one setting of checked names; return whether it existed."""

    # ------------------------------------------------------ backup and restore
    @abc.abstractmethod
    def backup_tables(self) -> tuple[str, ...]:
        """The names of the tables :meth:`snapshot` reads and :meth:`load_rows` fills,
        in an order in which loading them works. The same on every backend."""

    @abc.abstractmethod
    def snapshot(self) -> contextlib.AbstractContextManager[Callable[[str], Iterator[Row]]]:
        """A consistent read snapshot of the whole store while writers keep going.

        Yields ``read_table(name)`` giving every row of one of :meth:`backup_tables` as
        stored (ids kept, encrypted values still encrypted, bytes as bytes). Every
        backend produces the same columns for the same table, so rows move between
        backends.
        """

    def load_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows as :meth:`snapshot` gives them (ids kept); return how many.

        ``table`` must be one of :meth:`backup_tables` (``ValueError``); each row is
        checked against today's rules as it is read, and a row that breaks them is
        ``ValueError`` naming the table and row (nothing of the call is stored).
        """
        if not isinstance(table, str):
            raise TypeError(f"table must be a str, not {type(table).__name__}")
        if table not in self.backup_tables():
            raise ValueError(
                f"table must be one of {', '.join(self.backup_tables())}; got {table!r}"
            )
        return self._load_rows(table, checked_backup_rows(table, rows))

    @abc.abstractmethod
    def _load_rows(self, table: str, rows: Iterator[Mapping[str, Any]]) -> int:
        """Insert checked rows of a known table, all or none; return how many."""

    @abc.abstractmethod
    def clear_data(self, *, keep_versions: bool = False, keep_settings: bool = False) -> None:
        """Delete every row of every agent and every setting (:meth:`save_setting`);
        the versions stay with ``keep_versions``, the settings with ``keep_settings``."""

    @abc.abstractmethod
    def reencrypt(self, cipher: Any) -> tuple[int, int]:
        """Re-encrypt every encrypted value with ``cipher`` (an
        :class:`rlmemory.store.crypto.Cipher` holding the old key among its previous keys)
        and encrypt plain texts of the encrypted columns; record its key as the store's.
        Then rewrite the storage so no old plaintext or old-key ciphertext stays in the
        store's live files (SQLite ``VACUUM``, PostgreSQL ``VACUUM FULL``; see
        :mod:`rlmemory.store.sql.scrub`); the SQL store therefore refuses to run it
        inside a transaction (``ValueError``). Returns (rows changed, values written)."""

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, for SQLite stores; None otherwise."""
        return None

    @property
    def encryption_key_id(self) -> str | None:
        """The id of the key this store encrypts with (None when it does not encrypt)."""
        return None

    # -------------------------------------------------------------- transactions
    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group writes: all of them are stored when the block exits normally, none if
        it raises. Nested blocks join the outermost one. Other threads using the same
        store object wait until the block ends.

        A call in the block that fails on its arguments (``ValueError``, ``TypeError``,
        ``LookupError``) writes nothing and leaves the block usable. A call that fails
        on the store itself (a :class:`rlmemory.errors.StoreError`: a lock timeout, a
        lost connection, an I/O error) fails the transaction: later calls in the block
        raise :class:`rlmemory.errors.TransactionAbortedError`, and so does the end of
        the block, even if the caller caught the first error; nothing of it is stored.
        A transaction is never lost without an exception."""

    # ----------------------------------------------------------------- lifecycle
    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version recorded in the store."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and locks. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
