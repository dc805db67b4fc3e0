"""The storage contract: what every rlmemory backend stores, returns and raises.

:class:`MemoryStore` is the one protocol. ``MemoryDatabase`` (SQLite or PostgreSQL
through SQLAlchemy) and ``FileBackedMemoryDatabase`` (JSON files) implement it, and one
conformance suite (``tests/store``) runs against each of them.

The method names of the seed document are kept exactly (``save_q_table``,
``get_q_table``, ``save_policy_params``, ``get_policy_params``, ``save_agent_reward``,
``get_agent_rewards``, ``save_agent_interaction``, ``get_agent_interactions``,
``save_agent_decision``, ``get_agent_decisions``). The rest is what the learning loop
needs and the seed lacked: incremental Q-value writes, numeric arrays for linear
learners, feedback bookkeeping, decisions by id, and transactions.

Contract common to every method:

* Every write is atomic and durable when the call returns (or, inside
  :meth:`MemoryStore.transaction`, when the outermost block exits without error).
* Arguments are validated before anything is written, by the checks every backend
  shares (:mod:`rlmemory.store._validation`), so every backend gives the same error:
  a wrong type is ``TypeError`` and a wrong value ``ValueError``, both naming the
  argument; an unknown id is ``LookupError``
  (:class:`rlmemory.errors.UnknownDecisionError`,
  :class:`rlmemory.errors.UnknownInteractionError`). Nothing stored changes on error.
  The limits, the same on every backend (``docs/reliability.md``):

  - agent names, action names and array keys: non-empty, at most 512 UTF-8 bytes;
    state keys at most 1,536 bytes (so PostgreSQL's index limit is never reached);
  - no text holds NUL or an unpaired surrogate;
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.store._validation import check_agent_name, check_state

QTable = dict[str, dict[str, float]]
Row = dict[str, Any]

#: The history tables that pruning and export know, by their short names.
HISTORY_TABLES = ("rewards", "interactions", "decisions")

#: Schema version written by this rlmemory. Stores written by a newer version are refused.
SCHEMA_VERSION = 5


class MemoryStore(abc.ABC):
    """Where an agent system's learned state and history live.

    Use as a context manager, or call :meth:`close` when done.
    """

    #: Human-readable location: a path, or a URL with its password removed.
    location: str

    # ----------------------------------------------------------------- Q-learning
    @abc.abstractmethod
    def save_q_table(self, agent_name: str, q_table: Mapping[str, Mapping[str, float]]) -> None:
        """Replace the whole stored Q-table of ``agent_name`` with ``q_table``.

        ``q_table`` maps state -> action -> value. States with no actions are dropped.
        This is the seed's API; learners use :meth:`save_q_values` instead, whose cost
        does not grow with the table.
        """

    @abc.abstractmethod
    def get_q_table(self, agent_name: str) -> QTable | None:
        """Return the stored Q-table of ``agent_name``, or ``None`` if none was saved.

        A Q-table saved empty is returned as ``{}``.
        """

    @abc.abstractmethod
    def save_q_values(self, agent_name: str, changed: Mapping[str, Mapping[str, float]]) -> None:
        """Merge ``changed`` (the Q-table's shape, only changed entries) into the stored table.

        Entries not named in ``changed`` keep their stored values, including entries
        written meanwhile by other processes. Atomic; the cost depends on the size of
        ``changed`` only.
        """

    def get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        """Return the stored values of one state of ``agent_name`` (action -> value).

        ``{}`` when nothing is stored for ``state`` (or for the agent). Cheap — one
        indexed lookup — so learners can re-read the state they are about to update
        inside :meth:`transaction` instead of trusting a copy loaded at start-up.
        This fallback reads the whole table; the shipped stores override it.
        """
        check_state(state)
        return dict((self.get_q_table(agent_name) or {}).get(state, {}))

    def lock_learner(self, agent_name: str) -> None:
        """Inside :meth:`transaction`: keep other processes from changing the learned state
        of ``agent_name`` until the transaction ends.

        A learner calls it before re-reading the values it is about to update, so that
        the read-modify-write of two processes cannot interleave (no lost update).
        Stores whose write transactions already exclude each other (SQLite's ``BEGIN
        IMMEDIATE``, the file store's folder lock) need do nothing; this default does
        nothing. Outside a transaction it has no lasting effect.
        """
        check_agent_name(agent_name)

    # ------------------------------------------------------------ policy gradient
    @abc.abstractmethod
    def save_policy_params(self, agent_name: str, policy_params: Mapping[str, Any]) -> None:
        """Replace the stored policy parameters (any JSON-encodable mapping)."""

    @abc.abstractmethod
    def get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        """Return the stored policy parameters, or ``None`` if none were saved."""

    # ------------------------------------------------------------- numeric arrays
    @abc.abstractmethod
    def save_arrays(self, agent_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Upsert named numeric arrays (float64 or int64, any shape) for ``agent_name``.

        Keys not named keep their stored arrays. Used by linear learners to persist
        only the statistics that one update changed. Values must be numpy arrays (or
        scalars) of real numbers: floats of up to 64 bits are stored as float64,
        integers as int64; other dtypes and lists are ``TypeError``. Arrays with NaN or
        infinite entries are ``ValueError``; arrays round-trip exactly (dtype, shape,
        values).
        """

    @abc.abstractmethod
    def get_arrays(
        self, agent_name: str, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Return the stored arrays of ``agent_name`` (all, or those in ``keys`` that exist)."""

    @abc.abstractmethod
    def delete_arrays(self, agent_name: str, keys: Sequence[str] | None = None) -> int:
        """Delete the named arrays (all when ``keys`` is None); return how many were deleted."""

    # ------------------------------------------------------------- learner steps
    @abc.abstractmethod
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

    @abc.abstractmethod
    def get_learner_steps(self, agent_name: str, after_id: int = 0) -> list[Any]:
        """The stored steps of ``agent_name`` with an id greater than ``after_id``, oldest
        first, as :class:`rlmemory.store._steps.LearnerStep` ``(id, key, values)``."""

    @abc.abstractmethod
    def delete_learner_steps(self, agent_name: str, through_id: int | None = None) -> int:
        """Delete the steps with an id up to ``through_id`` (all when None); return how many."""

    # -------------------------------------------------------------- feature cache
    @abc.abstractmethod
    def save_feature_vectors(self, featurizer: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Cache vectors computed by ``featurizer``, keyed by the SHA-256 hex of their text.

        A key already cached keeps its vector (a featuriser maps one text to one vector)
        and its age. Keys that are not 64 lower-case hex digits, empty or non-1-D
        vectors and NaN or infinite entries are ``ValueError``; nothing is written then.
        The cache is not learned state: backups, exports and versions leave it out.
        """

    @abc.abstractmethod
    def get_feature_vectors(self, featurizer: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached float64 vectors of ``featurizer`` for those of ``keys`` that are cached.

        Costs O(len(keys)), whatever the size of the cache.
        """

    @abc.abstractmethod
    def count_feature_vectors(self, featurizer: str) -> int:
        """How many vectors of ``featurizer`` are cached."""

    @abc.abstractmethod
    def prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        """Delete all but the ``keep`` most recently cached vectors of ``featurizer``.

        Returns how many were deleted. Ties in age are broken by key.
        """

    # -------------------------------------------------------------------- rewards
    @abc.abstractmethod
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

    @abc.abstractmethod
    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest rewards first. Each row: ``id``, ``agent_name``, ``reward``,
        ``reward_components`` (dict), ``decision_id`` (or None), ``timestamp``."""

    # --------------------------------------------------------------- interactions
    @abc.abstractmethod
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

    @abc.abstractmethod
    def get_agent_interactions(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest interactions first. Each row: ``id``, ``agent_name``, ``request``,
        ``response``, ``feedback`` (or None), ``decision_id`` (or None),
        ``feedback_learned`` (bool), ``timestamp``."""

    @abc.abstractmethod
    def get_agent_interaction(self, interaction_id: int) -> Row:
        """Return one interaction by id (same keys as in the history), or raise
        :class:`rlmemory.errors.UnknownInteractionError`."""

    @abc.abstractmethod
    def find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        """Return the newest interaction of ``agent_name`` with exactly this request and
        response, or ``None``."""

    @abc.abstractmethod
    def set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        """Store ``feedback`` on an interaction and mark it not yet learned."""

    @abc.abstractmethod
    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Oldest first: interactions of ``agent_name`` that have feedback (not None) not
        yet marked learned, however the feedback was written (by this API, another
        process, or plain SQL into the seed's ``feedback`` column)."""

    @abc.abstractmethod
    def mark_feedback_learned(self, interaction_ids: Sequence[int]) -> None:
        """Mark these interactions' current feedback as learned."""

    # ------------------------------------------------------------------ decisions
    @abc.abstractmethod
    def save_agent_decision(
        self,
        agent_name: str,
        state: str,
        selected_action: str,
        q_values: Mapping[str, Any],
        reward: Any,
        *,
        propensity: float | None = None,
        features: Sequence[float] | None = None,
    ) -> int:
        """Append a decision; return its id.

        ``state`` is the state key; ``q_values`` the action values, scores or
        probabilities seen at decision time; ``reward`` any JSON value (``None`` while
        the reward is pending). ``propensity`` is the probability with which
        ``selected_action`` was chosen, in (0, 1]; ``features`` the context vector (a
        list, tuple or numpy array of finite numbers; a generator is ``TypeError``).
        """

    @abc.abstractmethod
    def get_agent_decisions(self, agent_name: str, limit: int = 10) -> list[Row]:
        """Newest decisions first. Each row: ``id``, ``agent_name``, ``state``,
        ``selected_action``, ``q_values`` (dict), ``reward`` (decoded JSON),
        ``propensity`` (or None), ``features`` (list of float or None), ``timestamp``,
        ``version`` (the agent's newest version when the decision was stored, or None)."""

    @abc.abstractmethod
    def get_agent_decision(self, decision_id: int) -> Row:
        """Return one decision by id, or raise :class:`rlmemory.errors.UnknownDecisionError`.

        An id beyond a signed 64-bit integer (``2**70``) is ``ValueError`` naming
        ``decision_id`` on every backend, before any query.
        """

    @abc.abstractmethod
    def iter_agent_decisions(
        self, agent_name: str, after_id: int = 0, batch_size: int = 1000
    ) -> Iterator[Row]:
        """Oldest first: every decision of ``agent_name`` with id > ``after_id``."""

    @abc.abstractmethod
    def set_decision_reward(self, decision_id: int, reward: Any) -> None:
        """Replace the ``reward`` JSON of a decision (delayed rewards)."""

    # ---------------------------------------------------------------- inspection
    @abc.abstractmethod
    def list_agents(self) -> list[str]:
        """Every agent name with anything stored, sorted."""

    @abc.abstractmethod
    def agent_stats(self, agent_name: str) -> Row:
        """Counts for one agent: ``decisions``, ``interactions``, ``rewards``,
        ``mean_reward`` (or None), ``last_update`` (timestamp or None)."""

    @abc.abstractmethod
    def count_agent_decisions(self, agent_name: str) -> int:
        """How many decisions ``agent_name`` has stored."""

    # ------------------------------------------------------------------ versions
    @abc.abstractmethod
    def save_version(self, agent_name: str, payload: bytes, note: str = "") -> int:
        """Store a snapshot ``payload`` (opaque bytes) as the agent's next version number.

        Numbers start at 1 and grow by one per agent, also across processes. Returns
        the number. :mod:`rlmemory.ops.versions` builds the payloads.
        """

    @abc.abstractmethod
    def list_versions(self, agent_name: str) -> list[Row]:
        """Oldest first: ``version``, ``note``, ``created`` (timestamp), ``size`` (bytes)."""

    @abc.abstractmethod
    def get_version(self, agent_name: str, version: int) -> Row:
        """One version with its ``payload`` (bytes); an unknown one is ``LookupError``."""

    @abc.abstractmethod
    def delete_versions(self, agent_name: str, versions: Sequence[int]) -> int:
        """Delete these versions of the agent; return how many existed."""

    # ------------------------------------------------- deleting and correcting
    @abc.abstractmethod
    def delete_policy_params(self, agent_name: str) -> bool:
        """Delete the agent's policy parameters; return whether there were any."""

    @abc.abstractmethod
    def delete_q_states(self, agent_name: str, states: Sequence[str]) -> int:
        """Delete every entry of these Q-table states; return how many entries went."""

    @abc.abstractmethod
    def q_state_stats(self, agent_name: str) -> list[Row]:
        """Per Q-table state: ``state``, ``actions`` (entries), ``last_updated`` (newest
        write to any of its entries) and ``visits`` (stored decisions in that state)."""

    @abc.abstractmethod
    def get_agent_reward(self, reward_id: int) -> Row:
        """One reward by id (same keys as in the history), or ``LookupError``."""

    @abc.abstractmethod
    def update_agent_reward(
        self,
        reward_id: int,
        reward: float,
        reward_components: Mapping[str, Any] | None = None,
    ) -> None:
        """Correct a stored reward (and its components, when given)."""

    @abc.abstractmethod
    def delete_agent_reward(self, reward_id: int) -> None:
        """Delete one reward; an unknown id is ``LookupError``."""

    @abc.abstractmethod
    def update_agent_interaction(
        self, interaction_id: int, *, request: str | None = None, response: str | None = None
    ) -> None:
        """Correct the request and/or response text of an interaction."""

    @abc.abstractmethod
    def delete_agent_interaction(self, interaction_id: int) -> None:
        """Delete one interaction; an unknown id is
        :class:`rlmemory.errors.UnknownInteractionError`."""

    @abc.abstractmethod
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

    # ------------------------------------------------------------------ settings
    @abc.abstractmethod
    def save_setting(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        """Store the JSON object ``value`` as setting ``key`` of ``namespace``, replacing it.

        Settings are small documents kept beside the learned state, shared by every
        process that opens the store: the settings of a service's learning loops, the
        hashes of its API keys. ``namespace`` and ``key`` are non-empty strings of at
        most 200 characters; a value JSON cannot encode is ``TypeError``, NaN or
        infinity ``ValueError``. Atomic; joins an enclosing :meth:`transaction`.
        """

    @abc.abstractmethod
    def get_setting(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The stored setting ``key`` of ``namespace``, or ``None`` when there is none."""

    @abc.abstractmethod
    def list_settings(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every setting of ``namespace`` (key -> value), keys sorted; ``{}`` when none."""

    @abc.abstractmethod
    def delete_setting(self, namespace: str, key: str) -> bool:
        """Delete setting ``key`` of ``namespace``; return whether it existed."""

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

    @abc.abstractmethod
    def load_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows as :meth:`snapshot` gives them (ids kept); return how many."""

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
        :mod:`rlmemory.store.sql_scrub`); the SQL store therefore refuses to run it
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

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
