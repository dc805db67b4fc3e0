"""MemoryDatabase: the SQL store, on a SQLite file by default or PostgreSQL by URL.

One implementation for both databases. SQLAlchemy 2 Core defines the schema, runs the
migrations and builds the reads; every statement then runs on one held DBAPI
connection (sqlite3 or psycopg), so that a learning step's writes cost about what a
bare driver upsert costs, and so that every method called inside
:meth:`MemoryDatabase.transaction` shares that transaction.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "memory.db")
>>> with MemoryDatabase(path) as db:
...     db.save_q_values("router", {"greeting": {"chat_agent": 0.5}})
...     db.save_q_values("router", {"code": {"coding_agent": 1.0}})
...     db.get_q_table("router")
{'code': {'coding_agent': 1.0}, 'greeting': {'chat_agent': 0.5}}
>>> import sqlite3, json
>>> json.loads(sqlite3.connect(path).execute(
...     "SELECT q_table FROM q_tables WHERE agent_name = ?", ("router",)).fetchone()[0])
{'code': {'coding_agent': 1.0}, 'greeting': {'chat_agent': 0.5}}
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, StaticPool

from rlmemory.errors import (
    CorruptStoreError,
    EncryptionKeyError,
    SchemaVersionError,
    StoreBusyError,
    StoreError,
    TransactionAbortedError,
    UnknownDecisionError,
    UnknownInteractionError,
)
from rlmemory.store._feature_cache import (
    check_featurizer_name,
    check_keep,
    check_text_keys,
    check_vectors,
    decode_vector,
)
from rlmemory.store._steps import LearnerStep, check_step_id, check_steps, decode_values
from rlmemory.store._validation import (
    check_agent_name,
    check_arrays,
    check_decision_labels,
    check_features,
    check_finite,
    check_id,
    check_ids,
    check_integer,
    check_limit,
    check_mapping,
    check_names,
    check_propensity,
    check_q_table,
    check_reward_row,
    check_state,
    check_text,
    to_json,
)
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore, QTable, Row
from rlmemory.store.locations import mask_credentials
from rlmemory.store.sql import schema
from rlmemory.store.sql.dialect import (
    classify_error,
    driver_sql_for,
    is_driver_error,
    postgres_session_options,
)
from rlmemory.store.sql.maintenance import SqlOperations
from rlmemory.store.sql.settings import SqlSettings

T = TypeVar("T")

_STORED_ARRAY_DTYPES = {"float64": "<f8", "int64": "<i8"}


def _text(value: object, field: str) -> str:
    return check_text(value, field)  # type: ignore[return-value]


def _resolve_location(db_path: str | os.PathLike[str]) -> tuple[sa.URL, str, str | None]:
    """The SQLAlchemy URL, the human-readable location and the SQLite file path (or None)."""
    text = os.fspath(db_path)
    if not isinstance(text, str) or not text:
        raise ValueError("db_path must be a non-empty path or URL")
    if "://" not in text:
        return sa.URL.create("sqlite", database=text), text, text
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError as error:
        raise ValueError(
            mask_credentials(f"db_path {text!r} is not a valid database URL: {error}")
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise ValueError(f"unsupported SQLite driver in {url.drivername!r}; use sqlite:///path")
        path = url.database or ":memory:"
        return sa.URL.create("sqlite", database=path), mask_credentials(text), path
    if backend in ("postgresql", "postgres"):
        # postgres:// (Heroku's and libpq's spelling) is PostgreSQL too; SQLAlchemy has
        # no dialect of that name, so ask for the driver only of postgresql+DRIVER URLs.
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        elif url.get_driver_name() != "psycopg":
            driver = url.get_driver_name()
            raise ValueError(
                f"unsupported PostgreSQL driver {driver!r}; use postgresql+psycopg:// "
                "or postgresql://"
            )
        return url, mask_credentials(url.render_as_string(hide_password=True)), None
    schemes = ("sqlite", "postgresql", "postgresql+psycopg", "postgres", "files")
    close = difflib.get_close_matches(url.drivername, schemes, n=1)
    hint = f"did you mean {close[0]}://? " if close else ""
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}; {hint}use a file path, "
        "sqlite:///path, postgresql+psycopg://, postgresql:// or files://"
    )


class MemoryDatabase(SqlSettings, SqlOperations, MemoryStore):
    """The seed's ``MemoryDatabase``: every rlmemory table in one SQL database.

    ``db_path`` is a file path or ``sqlite:///path`` (SQLite, WAL mode), or
    ``postgresql+psycopg://user:password@host:port/dbname`` (``postgresql://`` works
    too). ``busy_timeout`` is how many seconds a write waits for other processes'
    locks before :class:`rlmemory.errors.StoreBusyError`; ``sqlite_cache_mb`` sizes
    SQLite's page cache for this connection; ``sqlite_wal_autocheckpoint`` is how many
    WAL pages a commit may leave before it copies them back into the database file
    (SQLite's own default is 1,000; ours is 4,000, see ``docs/store-sql.md``).

    ``encryption_key`` (raw bytes, urlsafe base64 text, or a ``Path`` to a key file;
    else ``$RLMEMORY_KEY``, ``key_file``, ``$RLMEMORY_KEY_FILE``) turns on AES-GCM
    encryption of request, response and feedback texts, and with ``encrypt_payloads``
    of version payloads too (:mod:`rlmemory.store.crypto`). The store records its key's
    id; opening it with another key is an :class:`rlmemory.errors.EncryptionKeyError`.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "agent_memory.db",
        *,
        busy_timeout: float = 60.0,
        sqlite_cache_mb: int = 64,
        sqlite_wal_autocheckpoint: int = 4000,
        encryption_key: Any = None,
        key_file: str | os.PathLike[str] | None = None,
        encrypt_payloads: bool = False,
    ) -> None:
        busy_timeout = check_finite(busy_timeout, "busy_timeout")
        if busy_timeout <= 0:
            raise ValueError(f"busy_timeout must be positive, got {busy_timeout}")
        self._url, self.location, self._sqlite_path = _resolve_location(db_path)
        from rlmemory.store.crypto import Cipher, resolve_key

        raw_key = resolve_key(encryption_key, key_file=key_file)
        self._cipher = None if raw_key is None else Cipher(raw_key, location=self.location)
        self._encrypt_payloads = bool(encrypt_payloads)
        self._store_key_id: str | None = None
        self._busy_timeout = busy_timeout
        self._sqlite_cache_kb = check_limit(sqlite_cache_mb, "sqlite_cache_mb") * 1024
        self._wal_autocheckpoint = check_limit(
            sqlite_wal_autocheckpoint, "sqlite_wal_autocheckpoint"
        )
        self._dialect_name = "sqlite" if self._sqlite_path is not None else "postgresql"
        self._sql = driver_sql_for(self._dialect_name)
        self._lock = threading.RLock()
        self._depth = 0
        self._savepoints = 0
        # The driver error that made the open transaction unusable, if one did.
        self._transaction_lost: BaseException | None = None
        self._closed = False
        self._registered_q_agents: set[str] = set()
        self._queries: dict[str, tuple[str, Any]] = {}
        self._engine = self._create_engine()
        try:
            self._version = self._with_retry(self._prepare_schema)
            self._with_retry(self._connect)
            self._check_key()
        except BaseException:
            self._engine.dispose()
            raise

    # ------------------------------------------------------------------ opening
    def _create_engine(self) -> sa.Engine:
        if self._sqlite_path is None:
            return sa.create_engine(
                self._url, poolclass=NullPool, connect_args=self._postgres_connect_args()
            )
        memory = self._sqlite_path == ":memory:"
        engine = sa.create_engine(
            self._url,
            poolclass=StaticPool if memory else NullPool,
            connect_args={"check_same_thread": False},
        )
        timeout_ms = int(self._busy_timeout * 1000)
        cache_kb = self._sqlite_cache_kb
        wal_autocheckpoint = self._wal_autocheckpoint

        @sa.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Driver autocommit: transactions are begun explicitly (BEGIN IMMEDIATE).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA cache_size = -{cache_kb}")
            # One learning step writes ~12 pages (decision, interaction, reward, Q-value
            # and their indexes); at SQLite's default of 1,000 pages every ~85th request
            # pays a ~4 ms checkpoint, which is the p99. At 4,000 pages one request in
            # ~330 pays ~20 ms instead: the same total, out of the p99.
            cursor.execute(f"PRAGMA wal_autocheckpoint = {wal_autocheckpoint}")
            cursor.close()

        return engine

    def _postgres_connect_args(self) -> dict[str, Any]:
        """Session settings that bound every wait by ``busy_timeout`` (see sql_dialect)."""
        options = postgres_session_options(self._busy_timeout)
        given = self._url.query.get("options")
        if given:
            options = f"{given} {options}"  # the URL's own options come first; ours win
        connect_args: dict[str, Any] = {"options": options}
        if "connect_timeout" not in self._url.query:
            # An unreachable host must not hang a call for the OS's TCP timeout.
            connect_args["connect_timeout"] = max(2, math.ceil(self._busy_timeout))
        return connect_args

    def _prepare_schema(self) -> int:
        with self._engine.connect() as connection:
            version = schema.read_schema_version(connection)
            complete = version == SCHEMA_VERSION and not schema.missing_tables(connection)
            connection.rollback()
            if complete:
                return SCHEMA_VERSION
            if version is not None and version > SCHEMA_VERSION:
                raise SchemaVersionError(self.location, version, SCHEMA_VERSION)
            # Create or upgrade under the write lock; another process may have done it
            # meanwhile, so look again once the lock is held.
            if self._dialect_name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(2024112501)")
            version = schema.read_schema_version(connection)
            if version is None:
                schema.create_schema(connection)
                version = SCHEMA_VERSION
            elif version > SCHEMA_VERSION:
                raise SchemaVersionError(self.location, version, SCHEMA_VERSION)
            elif version < SCHEMA_VERSION:
                version = schema.migrate(connection, version)
            else:
                schema.metadata.create_all(connection)  # tables added to this version
            connection.commit()
            return version

    def _connect(self) -> None:
        self._pool_connection = self._engine.raw_connection()
        self._dbapi = self._pool_connection.driver_connection
        if self._dialect_name == "postgresql":
            self._dbapi.autocommit = True
        self._cursor = self._dbapi.cursor()
        self._pid = os.getpid()

    def _check_key(self) -> None:
        """Refuse a key other than the store's; record the key of a store getting one."""
        meta = schema.rlmemory_meta.c
        cipher = self._cipher

        def work(cursor: Any) -> str | None:
            rows = self._execute(
                cursor,
                "key_id",
                lambda: sa.select(meta.value).where(meta.key == "encryption_key_id"),
            ).fetchall()
            recorded = rows[0][0] if rows else None
            if cipher is not None and recorded is None:
                self._execute(
                    cursor,
                    "record_key_id",
                    lambda: sa.insert(schema.rlmemory_meta).values(
                        key="encryption_key_id", value=sa.bindparam("value")
                    ),
                    value=cipher.key_id,
                )
                return cipher.key_id
            return recorded

        self._store_key_id = self._run(work, write=cipher is not None)
        if cipher is not None and self._store_key_id != cipher.key_id:
            raise EncryptionKeyError(
                f"{self.location} was written with key {self._store_key_id}, not with the key "
                f"given ({cipher.key_id}); give the store's key",
                self.location,
            )

    def _live_cursor(self) -> Any:
        if self._closed:
            raise StoreError(f"{self.location}: the store is closed", self.location)
        if os.getpid() != self._pid:
            # A forked child must not use its parent's connection: open its own.
            _abandon_inherited(self._pool_connection, self._cursor, self._dbapi)
            self._engine.dispose(close=False)
            self._depth = 0
            self._connect()
        return self._cursor

    # -------------------------------------------------------------- transactions
    def _with_retry(
        self, attempt: Callable[[], T], *, retry: bool = True, idempotent: bool = False
    ) -> T:
        """Run ``attempt``, retrying with backoff while another process holds the lock.

        Driver errors that mean a corrupt or unreachable store become StoreError
        subclasses naming the location; with ``retry`` False nothing is retried (inside
        an open transaction a retry could not repeat the statements before it). A lost
        PostgreSQL connection is reopened; an ``idempotent`` attempt (a read) is then
        repeated once, a write is not (it may have been committed before the loss).
        """
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.001
        reopened = False
        while True:
            try:
                return attempt()
            except Exception as error:
                if isinstance(error, StoreError) or not is_driver_error(error):
                    raise  # already typed, or a caller's own error (validation, lookups)
                kind = classify_error(error)
                if kind == "unavailable" and self._can_reopen():
                    try:
                        self._reopen()
                    except Exception as reopen_error:
                        raise self._unavailable(reopen_error) from reopen_error
                    if idempotent and not reopened:
                        reopened = True
                        continue
                if kind == "corrupt":
                    raise CorruptStoreError(
                        f"{self.location} is not a readable SQLite database "
                        f"(corrupt or not a database): {getattr(error, 'orig', error)}",
                        self.location,
                    ) from error
                if kind == "unavailable":
                    raise self._unavailable(error) from error
                if kind is None:
                    raise StoreError(
                        f"{self.location} refused the operation: {_driver_message(error)}",
                        self.location,
                    ) from error
                if not retry or time.monotonic() + delay > deadline:
                    raise self._busy(error) from error
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.05)

    def _unavailable(self, error: BaseException) -> StoreError:
        return StoreError(f"cannot use {self.location}: {_driver_message(error)}", self.location)

    def _busy(self, error: BaseException) -> StoreBusyError:
        if classify_error(error) == "retry":
            return StoreBusyError(
                f"{self.location}: the transaction lost a race with another process "
                f"(deadlock or serialization failure) and was not applied; run it again: "
                f"{_driver_message(error)}",
                self.location,
            )
        return StoreBusyError(
            f"{self.location} stayed locked by another process for more than "
            f"{self._busy_timeout:g} s (busy_timeout)",
            self.location,
        )

    def _rollback(self) -> None:
        self._registered_q_agents.clear()
        with contextlib.suppress(Exception):
            self._cursor.execute("ROLLBACK")

    def _can_reopen(self) -> bool:
        """Whether a lost connection may be replaced: PostgreSQL, open, no transaction."""
        return (
            self._dialect_name == "postgresql"
            and not self._closed
            and self._depth == 0
            and hasattr(self, "_cursor")
        )

    def _reopen(self) -> None:
        """Replace a held connection the server dropped (restart, idle timeout, kill)."""
        if getattr(self._pool_connection, "is_valid", False):  # not invalidated already
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                self._pool_connection.invalidate()
        self._connect()

    def _begin(self, statement: str) -> Any:
        """Start a transaction on the held connection and return its cursor.

        Nothing has been sent when BEGIN fails, so a connection found dead here is
        reopened and BEGIN tried again, for writes too.
        """
        try:
            self._cursor.execute(statement)
        except Exception as error:
            if classify_error(error) != "unavailable" or not self._can_reopen():
                raise
            self._reopen()
            self._cursor.execute(statement)
        return self._cursor

    def _run(self, work: Callable[[Any], T], *, write: bool = True, atomic: bool = True) -> T:
        """Run ``work(cursor)`` in its own transaction, or in the caller's open one."""
        with self._lock:
            self._live_cursor()
            if self._depth:
                return self._in_transaction(work)
            if not atomic:
                return self._with_retry(lambda: work(self._cursor), idempotent=not write)
            begin = self._sql.begin_write if write else self._sql.begin_read

            def attempt() -> T:
                cursor = self._begin(begin)
                try:
                    result = work(cursor)
                    cursor.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                return result

            return self._with_retry(attempt, idempotent=not write)

    def _in_transaction(self, work: Callable[[Any], T]) -> T:
        """Run one store call inside the open transaction.

        A call that fails because of the database (a lock timeout, a lost connection, a
        value the server refuses) raises a typed :class:`StoreError` and fails the
        whole transaction: PostgreSQL has already aborted it, and would turn the COMMIT
        into a silent ROLLBACK. Later calls in the block raise at once, and the block
        raises :class:`TransactionAbortedError` when it ends, even if the caller
        swallowed the error. Argument errors (``ValueError``, ``TypeError``,
        ``LookupError``) are found before anything is sent and leave the transaction
        usable. (A savepoint per call would keep the transaction usable instead, but
        doubles the round trips of a learning step on PostgreSQL: see
        ``docs/reliability.md``.)
        """
        if self._transaction_lost is not None:
            raise self._lost_transaction_error()
        try:
            return self._with_retry(lambda: work(self._cursor), retry=False)
        except StoreError as error:
            cause = error.__cause__
            if self._transaction_lost is None and cause is not None and is_driver_error(cause):
                self._transaction_lost = cause
            raise

    def _sql_script(self, cursor: Any, *statements: str) -> None:
        """Run parameterless statements; in one round trip where the driver allows it."""
        if self._dialect_name == "postgresql":
            cursor.execute("; ".join(statements))
        else:
            for statement in statements:
                cursor.execute(statement)

    def _lost_transaction_error(self) -> TransactionAbortedError:
        error = self._transaction_lost
        cause = _driver_message(error) if error is not None else "unknown cause"
        return TransactionAbortedError(
            f"{self.location}: a call inside this transaction failed ({cause}), so the "
            "transaction was rolled back and nothing in it was stored",
            self.location,
        )

    def _commit(self, cursor: Any) -> None:
        """COMMIT the open transaction; a failure is a typed error, never silent."""
        if self._transaction_lost is not None:
            raise self._lost_transaction_error()
        if self._dialect_name == "postgresql" and self._dbapi.info.transaction_status == 3:
            # INERROR: a statement failed and was swallowed outside the store's calls.
            raise TransactionAbortedError(
                f"{self.location}: the transaction was aborted by the server, so it was "
                "rolled back and nothing in it was stored",
                self.location,
            )
        try:
            cursor.execute("COMMIT")
        except Exception as error:
            if classify_error(error) == "unavailable":
                raise self._unavailable(error) from error
            raise StoreError(
                f"{self.location}: COMMIT failed and nothing in the transaction was stored: "
                f"{_driver_message(error)}",
                self.location,
            ) from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction; nested blocks are savepoints inside it.

        >>> import os, tempfile
        >>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
        >>> try:
        ...     with db.transaction():
        ...         _ = db.save_agent_reward("router", 1.0, {"speed": 1.0})
        ...         raise RuntimeError("the step failed")
        ... except RuntimeError:
        ...     pass
        >>> db.get_agent_rewards("router")
        []
        >>> db.close()
        """
        with self._lock:
            cursor = self._live_cursor()
            if self._depth == 0:
                cursor = self._with_retry(lambda: self._begin(self._sql.begin_write))
                self._depth = 1
                self._transaction_lost = None
                try:
                    yield
                    self._commit(cursor)
                except BaseException:
                    self._rollback()
                    raise
                finally:
                    self._depth = 0
                    self._transaction_lost = None
                return
            if self._transaction_lost is not None:
                raise self._lost_transaction_error()
            self._savepoints += 1
            name = f"rlmemory_{self._savepoints}"
            self._with_retry(lambda: cursor.execute(f"SAVEPOINT {name}"), retry=False)
            self._depth += 1
            try:
                yield
            except BaseException:
                self._end_savepoint(cursor, f"ROLLBACK TO SAVEPOINT {name}", name)
                self._registered_q_agents.clear()
                raise
            else:
                self._end_savepoint(cursor, None, name)
            finally:
                self._depth -= 1

    def _end_savepoint(self, cursor: Any, rollback: str | None, name: str) -> None:
        """Roll back (when ``rollback`` is given) and release a block's savepoint.

        If the server cannot, the transaction is lost: it is marked so and the error
        is raised typed (the caller's own exception, if any, is chained to it).
        """
        statements = ([rollback] if rollback else []) + [f"RELEASE SAVEPOINT {name}"]
        try:
            self._sql_script(cursor, *statements)
        except Exception as error:
            self._transaction_lost = error
            raise self._lost_transaction_error() from error

    # ------------------------------------------------------------ cold queries
    def _query(self, name: str, build: Callable[[], sa.Executable]) -> tuple[str, Any]:
        """Compile a Core statement once for this dialect; return its text and compiled form."""
        cached = self._queries.get(name)
        if cached is None:
            compiled = build().compile(dialect=self._engine.dialect)
            cached = self._queries[name] = (str(compiled), compiled)
        return cached

    def _execute(
        self, cursor: Any, name: str, build: Callable[[], sa.Executable], **params: Any
    ) -> Any:
        text, compiled = self._query(name, build)
        bound = compiled.construct_params(params)
        if compiled.positional:
            cursor.execute(text, tuple(bound[key] for key in compiled.positiontup))
        else:
            cursor.execute(text, bound)
        return cursor

    # ------------------------------------------------------------ JSON decoding
    def _corrupt(self, agent_name: str, where: str, problem: str) -> CorruptStoreError:
        return CorruptStoreError(
            f"{self.location}: stored data of agent {agent_name!r} is corrupt ({where}): {problem}",
            self.location,
        )

    def _load_json(self, text: Any, agent_name: str, where: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as error:
            raise self._corrupt(agent_name, where, f"invalid JSON: {error}") from None

    # ------------------------------------------------------------------ Q-learning
    def save_q_table(self, agent_name: str, q_table: Mapping[str, Mapping[str, float]]) -> None:
        agent_name = check_agent_name(agent_name)
        entries = self._q_entries(check_q_table(q_table))
        sql = self._sql

        def work(cursor: Any) -> None:
            now = time.time()
            cursor.execute(sql.touch_q_agent, (agent_name, now))
            cursor.execute(sql.delete_q_values, (agent_name,))
            if entries:
                cursor.executemany(
                    sql.upsert_q_value, [(agent_name, s, a, v, now) for s, a, v in entries]
                )

        self._run(work)
        self._registered_q_agents.add(agent_name)

    @staticmethod
    def _q_entries(table: QTable) -> list[tuple[str, str, float]]:
        entries = []
        for state, actions in table.items():
            for action, value in actions.items():
                entries.append((state, action, value))
        # A fixed order keeps concurrent multi-row upserts from deadlocking on PostgreSQL.
        entries.sort()
        return entries

    def save_q_values(self, agent_name: str, changed: Mapping[str, Mapping[str, float]]) -> None:
        agent_name = check_agent_name(agent_name)
        entries = self._q_entries(check_q_table(changed, "changed"))
        sql = self._sql
        register = agent_name not in self._registered_q_agents

        def work(cursor: Any) -> None:
            now = time.time()
            if register:
                cursor.execute(sql.register_q_agent, (agent_name, now))
            if len(entries) == 1:
                state, action, value = entries[0]
                cursor.execute(sql.upsert_q_value, (agent_name, state, action, value, now))
            elif entries:
                cursor.executemany(
                    sql.upsert_q_value, [(agent_name, s, a, v, now) for s, a, v in entries]
                )

        self._run(work)
        self._registered_q_agents.add(agent_name)

    def get_q_values(self, agent_name: str, state: str) -> dict[str, float]:
        agent_name = check_agent_name(agent_name)
        state = check_state(state)
        statement = self._sql.select_q_state

        def work(cursor: Any) -> dict[str, float]:
            cursor.execute(statement, (agent_name, state))
            values = {}
            for action, value in cursor.fetchall():
                if value.__class__ is not float:
                    value = self._q_value(value, agent_name, state, action)
                values[action] = value
            return values

        # One statement on the primary key: autocommit outside a transaction.
        return self._run(work, write=False, atomic=False)

    def lock_learner(self, agent_name: str) -> None:
        agent_name = check_agent_name(agent_name)
        statement = self._sql.lock_learner
        if not statement:
            return  # SQLite: BEGIN IMMEDIATE already excludes every other writer
        with self._lock:
            if self._depth:
                self._run(lambda cursor: cursor.execute(statement, (agent_name,)))

    def get_q_table(self, agent_name: str) -> QTable | None:
        agent_name = check_agent_name(agent_name)

        def work(cursor: Any) -> QTable | None:
            registered = self._execute(
                cursor,
                "q_agent",
                lambda: sa.select(schema.q_agents.c.id).where(
                    schema.q_agents.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall()
            table = self._read_q_rows(cursor, agent_name)
            if table or registered:
                return table
            problem = self._execute(
                cursor,
                "q_unmigrated",
                lambda: sa.select(schema.q_tables_unmigrated.c.problem).where(
                    schema.q_tables_unmigrated.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall()
            if problem:
                raise self._corrupt(
                    agent_name, "q_tables_unmigrated, kept from the seed's q_tables", problem[0][0]
                )
            return None

        return self._run(work, write=False)

    def _read_q_rows(self, cursor: Any, agent_name: str) -> QTable:
        if self._dialect_name == "postgresql":
            # A server-side cursor: the rows arrive in chunks instead of all at once.
            with contextlib.closing(self._dbapi.cursor(name="rlmemory_q_rows")) as rows:
                return self._collect_q_rows(rows, agent_name)
        return self._collect_q_rows(cursor, agent_name)

    def _collect_q_rows(self, cursor: Any, agent_name: str) -> QTable:
        self._execute(
            cursor,
            "q_rows",
            lambda: (
                sa.select(
                    schema.q_values.c.state, schema.q_values.c.action, schema.q_values.c.value
                )
                .where(schema.q_values.c.agent_name == sa.bindparam("agent"))
                .order_by(schema.q_values.c.state)
            ),
            agent=agent_name,
        )
        table: QTable = {}
        action_names: dict[str, str] = {}  # one str object per action name, not per row
        current_state = None
        actions: dict[str, float] = {}
        while chunk := cursor.fetchmany(50_000):
            for state, action, value in chunk:
                if state != current_state:
                    current_state = state
                    actions = table.setdefault(state, {})
                if value.__class__ is not float:
                    value = self._q_value(value, agent_name, state, action)
                actions[action_names.setdefault(action, action)] = value
        return table

    def _q_value(self, value: Any, agent_name: str, state: str, action: str) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise self._corrupt(
            agent_name, f"q_values state={state!r} action={action!r}", f"value {value!r}"
        )

    # ------------------------------------------------------------- policy gradient
    def save_policy_params(self, agent_name: str, policy_params: Mapping[str, Any]) -> None:
        agent_name = check_agent_name(agent_name)
        check_mapping(policy_params, "policy_params")
        text = to_json(policy_params, "policy_params")
        self._run(
            lambda cursor: cursor.execute(
                self._sql.upsert_policy_params, (agent_name, text, time.time())
            )
        )

    def get_policy_params(self, agent_name: str) -> dict[str, Any] | None:
        agent_name = check_agent_name(agent_name)
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "policy",
                lambda: sa.select(schema.policy_params.c.policy_params).where(
                    schema.policy_params.c.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall(),
            write=False,
            atomic=False,
        )
        if not rows:
            return None
        return self._load_json(rows[0][0], agent_name, "policy_params.policy_params")

    # --------------------------------------------------------------- numeric arrays
    def save_arrays(self, agent_name: str, arrays: Mapping[str, np.ndarray]) -> None:
        agent_name = check_agent_name(agent_name)
        records = []
        for key, array in check_arrays(arrays):
            dtype_name = str(array.dtype)
            data = np.ascontiguousarray(array, dtype=_STORED_ARRAY_DTYPES[dtype_name]).tobytes()
            records.append((key, dtype_name, json.dumps(list(array.shape)), data))
        if not records:
            return
        sql = self._sql

        def work(cursor: Any) -> None:
            now = time.time()
            rows = [
                (agent_name, key, dtype, shape, data, now) for key, dtype, shape, data in records
            ]
            if len(rows) == 1:
                cursor.execute(sql.upsert_array, rows[0])
            else:
                cursor.executemany(sql.upsert_array, rows)

        self._run(work)

    def get_arrays(
        self, agent_name: str, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        agent_name = check_agent_name(agent_name)
        if keys is not None:
            return self._get_named_arrays(agent_name, sorted(check_names(keys, "keys")))
        wanted = None
        arrays = schema.learner_arrays.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "arrays",
                lambda: (
                    sa.select(arrays.key, arrays.dtype, arrays.shape, arrays.data)
                    .where(arrays.agent_name == sa.bindparam("agent"))
                    .order_by(arrays.key)
                ),
                agent=agent_name,
            ).fetchall(),
            write=False,
            atomic=False,
        )
        result = {}
        for key, dtype_name, shape_text, data in rows:
            if wanted is None or key in wanted:
                result[key] = self._decode_array(agent_name, key, dtype_name, shape_text, data)
        return result

    def _get_named_arrays(self, agent_name: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The arrays of these keys, one primary-key lookup each (learners read one or two
        small arrays per update; reading every array of the agent would cost O(d²))."""
        statement = self._sql.select_array

        def work(cursor: Any) -> list[tuple[str, Any]]:
            found = []
            for key in keys:
                cursor.execute(statement, (agent_name, key))
                found.extend((key, row) for row in cursor.fetchall())
            return found

        rows = self._run(work, write=False, atomic=len(keys) > 1)
        return {
            key: self._decode_array(agent_name, key, dtype_name, shape_text, data)
            for key, (dtype_name, shape_text, data) in rows
        }

    def _decode_array(
        self, agent_name: str, key: str, dtype_name: str, shape_text: str, data: Any
    ) -> np.ndarray:
        where = f"learner_arrays key={key!r}"
        shape = self._load_json(shape_text, agent_name, where)
        stored_dtype = _STORED_ARRAY_DTYPES.get(dtype_name)
        if stored_dtype is None or not isinstance(shape, list):
            raise self._corrupt(agent_name, where, f"dtype {dtype_name!r}, shape {shape_text!r}")
        data = bytes(data)
        if len(data) != 8 * math.prod(shape):
            raise self._corrupt(agent_name, where, f"{len(data)} bytes for shape {shape}")
        return np.frombuffer(data, dtype=stored_dtype).reshape(shape).astype(dtype_name)

    def delete_arrays(self, agent_name: str, keys: Sequence[str] | None = None) -> int:
        agent_name = check_agent_name(agent_name)
        arrays = schema.learner_arrays.c
        if keys is None:

            def work(cursor: Any) -> int:
                return self._execute(
                    cursor,
                    "delete_all_arrays",
                    lambda: sa.delete(schema.learner_arrays).where(
                        arrays.agent_name == sa.bindparam("agent")
                    ),
                    agent=agent_name,
                ).rowcount

            return self._run(work)
        names = sorted(check_names(keys, "keys"))

        def delete_named(cursor: Any) -> int:
            deleted = 0
            for key in names:
                deleted += self._execute(
                    cursor,
                    "delete_array",
                    lambda: sa.delete(schema.learner_arrays).where(
                        arrays.agent_name == sa.bindparam("agent"),
                        arrays.key == sa.bindparam("key"),
                    ),
                    agent=agent_name,
                    key=key,
                ).rowcount
            return deleted

        return self._run(delete_named)

    # ---------------------------------------------------------------- learner steps
    def append_learner_steps(
        self, agent_name: str, steps: Sequence[tuple[str, np.ndarray]]
    ) -> list[int]:
        agent_name = check_agent_name(agent_name)
        checked = check_steps(steps)
        if not checked:
            return []
        statement = self._sql.insert_learner_step

        def work(cursor: Any) -> list[int]:
            now = time.time()
            return [
                self._returned_id(cursor, statement, (agent_name, key, data, now))
                for key, data in checked
            ]

        return self._run(work)

    def get_learner_steps(self, agent_name: str, after_id: int = 0) -> list[LearnerStep]:
        agent_name = check_agent_name(agent_name)
        after_id = check_step_id(after_id, "after_id")
        statement = self._sql.select_learner_steps

        def work(cursor: Any) -> list[Any]:
            cursor.execute(statement, (agent_name, after_id))
            return cursor.fetchall()

        rows = self._run(work, write=False, atomic=False)
        where = f"{self.location}: learner_steps of agent {agent_name!r}"
        return [
            LearnerStep(int(row_id), key, decode_values(data, where)) for row_id, key, data in rows
        ]

    def delete_learner_steps(self, agent_name: str, through_id: int | None = None) -> int:
        agent_name = check_agent_name(agent_name)
        steps = schema.learner_steps.c
        if through_id is None:
            return self._run(
                lambda cursor: (
                    self._execute(
                        cursor,
                        "delete_all_learner_steps",
                        lambda: sa.delete(schema.learner_steps).where(
                            steps.agent_name == sa.bindparam("agent")
                        ),
                        agent=agent_name,
                    ).rowcount
                )
            )
        through_id = check_step_id(through_id, "through_id")
        return self._run(
            lambda cursor: (
                self._execute(
                    cursor,
                    "delete_learner_steps",
                    lambda: sa.delete(schema.learner_steps).where(
                        steps.agent_name == sa.bindparam("agent"),
                        steps.id <= sa.bindparam("through"),
                    ),
                    agent=agent_name,
                    through=through_id,
                ).rowcount
            )
        )

    # ---------------------------------------------------------------- feature cache
    def save_feature_vectors(self, featurizer: str, vectors: Mapping[str, np.ndarray]) -> None:
        featurizer = check_featurizer_name(featurizer)
        checked = check_vectors(vectors)
        if not checked:
            return
        cache = schema.feature_cache

        def work(cursor: Any) -> None:
            now = time.time()
            for key, vector in checked:
                self._execute(
                    cursor,
                    "feature_cache_insert",
                    lambda: self._insert_ignoring_duplicates(cache),
                    featurizer=featurizer,
                    text_sha256=key,
                    vector=vector.astype("<f8").tobytes(),
                    created=now,
                )

        self._run(work)

    def _insert_ignoring_duplicates(self, table: sa.Table) -> sa.Executable:
        """INSERT ... ON CONFLICT DO NOTHING in this store's dialect, all columns as parameters."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if self._dialect_name == "postgresql" else sqlite.insert
        values = {column.name: sa.bindparam(column.name) for column in table.columns}
        return insert(table).values(values).on_conflict_do_nothing()

    def get_feature_vectors(self, featurizer: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        featurizer = check_featurizer_name(featurizer)
        wanted = check_text_keys(keys)
        cache = schema.feature_cache.c

        def read(cursor: Any) -> list[Any]:
            rows = []
            for key in wanted:
                rows.extend(
                    self._execute(
                        cursor,
                        "feature_cache_get",
                        lambda: sa.select(cache.text_sha256, cache.vector).where(
                            cache.featurizer == sa.bindparam("featurizer"),
                            cache.text_sha256 == sa.bindparam("key"),
                        ),
                        featurizer=featurizer,
                        key=key,
                    ).fetchall()
                )
            return rows

        rows = self._run(read, write=False, atomic=False)
        return {key: decode_vector(data) for key, data in rows}

    def count_feature_vectors(self, featurizer: str) -> int:
        featurizer = check_featurizer_name(featurizer)
        cache = schema.feature_cache.c
        return int(
            self._run(
                lambda cursor: self._execute(
                    cursor,
                    "feature_cache_count",
                    lambda: sa.select(sa.func.count()).where(
                        cache.featurizer == sa.bindparam("featurizer")
                    ),
                    featurizer=featurizer,
                ).fetchone()[0],
                write=False,
                atomic=False,
            )
        )

    def prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        featurizer = check_featurizer_name(featurizer)
        keep = check_keep(keep)
        cache = schema.feature_cache.c

        def work(cursor: Any) -> int:
            doomed = [
                row[0]
                for row in self._execute(
                    cursor,
                    "feature_cache_oldest",
                    lambda: (
                        sa.select(cache.text_sha256)
                        .where(cache.featurizer == sa.bindparam("featurizer"))
                        .order_by(cache.created.desc(), cache.text_sha256.desc())
                        .offset(sa.bindparam("keep"))
                    ),
                    featurizer=featurizer,
                    keep=keep,
                ).fetchall()
            ]
            for key in doomed:
                self._execute(
                    cursor,
                    "feature_cache_delete",
                    lambda: sa.delete(schema.feature_cache).where(
                        cache.featurizer == sa.bindparam("featurizer"),
                        cache.text_sha256 == sa.bindparam("key"),
                    ),
                    featurizer=featurizer,
                    key=key,
                )
            return len(doomed)

        return self._run(work)

    # ---------------------------------------------------------------------- rewards
    def save_agent_reward(
        self,
        agent_name: str,
        reward: float,
        reward_components: Mapping[str, Any],
        decision_id: int | None = None,
    ) -> int:
        agent_name, reward, components, decision_id = check_reward_row(
            agent_name, reward, reward_components, decision_id
        )
        values = (agent_name, reward, components, time.time(), decision_id)
        statement = (
            self._sql.insert_reward if decision_id is None else self._sql.insert_decision_reward
        )
        return self._run(lambda cursor: self._returned_id(cursor, statement, values, decision_id))

    @staticmethod
    def _returned_id(
        cursor: Any, statement: str, values: tuple[Any, ...], decision_id: int | None = None
    ) -> int:
        """Run an INSERT ... RETURNING id; no row back means the decision does not exist."""
        cursor.execute(statement, values)
        rows = cursor.fetchall()
        if not rows:
            raise UnknownDecisionError(decision_id)
        ((row_id,),) = rows
        return int(row_id)

    def get_agent_rewards(self, agent_name: str, limit: int = 10) -> list[Row]:
        agent_name = check_agent_name(agent_name)
        limit = check_limit(limit)
        rewards = schema.agent_rewards.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "rewards",
                lambda: (
                    sa.select(
                        rewards.id,
                        rewards.reward,
                        rewards.reward_components,
                        rewards.decision_id,
                        rewards.timestamp,
                    )
                    .where(rewards.agent_name == sa.bindparam("agent"))
                    .order_by(rewards.id.desc())
                    .limit(sa.bindparam("limit"))
                ),
                agent=agent_name,
                limit=limit,
            ).fetchall(),
            write=False,
            atomic=False,
        )
        return [self._reward_row(row_id, agent_name, *rest) for row_id, *rest in rows]

    def _reward_row(
        self,
        row_id: int,
        agent_name: str,
        reward: float,
        components: str,
        decision_id: int | None,
        timestamp: float,
    ) -> Row:
        return {
            "id": row_id,
            "agent_name": agent_name,
            "reward": reward,
            "reward_components": self._load_json(
                components, agent_name, f"agent_rewards id={row_id}"
            ),
            "decision_id": decision_id,
            "timestamp": timestamp,
        }

    # ----------------------------------------------------------------- interactions
    def save_agent_interaction(
        self,
        agent_name: str,
        request: str,
        response: str,
        feedback: str | None = None,
        decision_id: int | None = None,
    ) -> int:
        agent_name = check_agent_name(agent_name)
        request = self._seal_text(_text(request, "request"))
        response = self._seal_text(_text(response, "response"))
        if feedback is not None:
            feedback = self._seal_text(_text(feedback, "feedback"))
        statement = self._sql.insert_interaction
        if decision_id is not None:
            decision_id = check_id(decision_id, "decision_id")
            statement = self._sql.insert_decision_interaction
        values = (agent_name, request, response, feedback, time.time(), decision_id)
        return self._run(lambda cursor: self._returned_id(cursor, statement, values, decision_id))

    _INTERACTION_COLUMNS = (
        "id",
        "agent_name",
        "request",
        "response",
        "feedback",
        "decision_id",
        "learned_feedback",
        "timestamp",
    )

    @staticmethod
    def _interaction_columns() -> list[sa.Column]:
        table = schema.agent_interactions.c
        return [table[name] for name in MemoryDatabase._INTERACTION_COLUMNS]

    def _interaction_row(self, row: Sequence[Any]) -> Row:
        record = dict(zip(MemoryDatabase._INTERACTION_COLUMNS, row, strict=True))
        learned = record.pop("learned_feedback")
        record["feedback_learned"] = (
            record["feedback"] is not None and learned == record["feedback"]
        )
        for column in ("request", "response", "feedback"):
            record[column] = self._open_text(record[column])
        return record

    def _interactions(
        self, name: str, build: Callable[[], sa.Executable], **params: Any
    ) -> list[Row]:
        rows = self._run(
            lambda cursor: self._execute(cursor, name, build, **params).fetchall(),
            write=False,
            atomic=False,
        )
        return [self._interaction_row(row) for row in rows]

    def get_agent_interactions(self, agent_name: str, limit: int = 10) -> list[Row]:
        agent_name = check_agent_name(agent_name)
        limit = check_limit(limit)
        table = schema.agent_interactions.c
        return self._interactions(
            "interactions",
            lambda: (
                sa.select(*self._interaction_columns())
                .where(table.agent_name == sa.bindparam("agent"))
                .order_by(table.id.desc())
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def get_agent_interaction(self, interaction_id: int) -> Row:
        interaction_id = check_id(interaction_id, "interaction_id")
        table = schema.agent_interactions.c
        rows = self._interactions(
            "interaction",
            lambda: sa.select(*self._interaction_columns()).where(
                table.id == sa.bindparam("row_id")
            ),
            row_id=interaction_id,
        )
        if not rows:
            raise UnknownInteractionError(interaction_id)
        return rows[0]

    def find_agent_interaction(self, agent_name: str, request: str, response: str) -> Row | None:
        agent_name = check_agent_name(agent_name)
        request = _text(request, "request")
        response = _text(response, "response")
        table = schema.agent_interactions.c
        if self._cipher is not None or self._store_key_id is not None:
            return self._find_encrypted_interaction(agent_name, request, response)
        rows = self._interactions(
            "find_interaction",
            lambda: (
                sa.select(*self._interaction_columns())
                .where(
                    table.agent_name == sa.bindparam("agent"),
                    table.request == sa.bindparam("request"),
                    table.response == sa.bindparam("response"),
                )
                .order_by(table.id.desc())
                .limit(1)
            ),
            agent=agent_name,
            request=request,
            response=response,
        )
        return rows[0] if rows else None

    def set_interaction_feedback(self, interaction_id: int, feedback: str) -> None:
        interaction_id = check_id(interaction_id, "interaction_id")
        feedback = self._seal_text(_text(feedback, "feedback"))
        table = schema.agent_interactions

        def work(cursor: Any) -> None:
            updated = self._execute(
                cursor,
                "set_feedback",
                lambda: (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values(feedback=sa.bindparam("feedback"), learned_feedback=None)
                ),
                row_id=interaction_id,
                feedback=feedback,
            ).rowcount
            if updated != 1:
                raise UnknownInteractionError(interaction_id)

        self._run(work)

    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Row]:
        agent_name = check_agent_name(agent_name)
        limit = check_limit(limit)
        table = schema.agent_interactions.c
        return self._interactions(
            "unlearned",
            lambda: (
                sa.select(*self._interaction_columns())
                .where(
                    table.agent_name == sa.bindparam("agent"),
                    table.feedback.is_not(None),
                    sa.or_(
                        table.learned_feedback.is_(None), table.learned_feedback != table.feedback
                    ),
                )
                .order_by(table.id)
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def mark_feedback_learned(self, interaction_ids: Sequence[int]) -> None:
        ids = check_ids(interaction_ids, "interaction_ids")
        if not ids:
            return
        statement = self._sql.mark_feedback_learned

        def work(cursor: Any) -> None:
            for row_id in ids:
                cursor.execute(statement, (row_id,))
                if cursor.rowcount != 1:
                    raise UnknownInteractionError(row_id)

        if self._depth:
            with self.transaction():  # a savepoint: an unknown id undoes this call only
                self._run(work)
        else:
            self._run(work)

    # -------------------------------------------------------------------- decisions
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
        agent_name = check_agent_name(agent_name)
        state, selected_action = check_decision_labels(state, selected_action)
        check_mapping(q_values, "q_values")
        q_values_json = to_json(q_values, "q_values")
        reward_json = to_json(reward, "reward")
        propensity = check_propensity(propensity)
        checked_features = check_features(features)
        features_json = None if checked_features is None else to_json(checked_features, "features")
        values = (
            agent_name,
            state,
            selected_action,
            q_values_json,
            reward_json,
            time.time(),
            propensity,
            features_json,
            agent_name,
        )
        return self._run(
            lambda cursor: self._returned_id(cursor, self._sql.insert_decision, values)
        )

    _DECISION_COLUMNS = (
        "id",
        "agent_name",
        "state",
        "selected_action",
        "q_values",
        "reward",
        "propensity",
        "features",
        "timestamp",
        "version",
    )

    @staticmethod
    def _decision_columns() -> list[sa.Column]:
        table = schema.agent_decisions.c
        return [table[name] for name in MemoryDatabase._DECISION_COLUMNS]

    def _decision_row(self, row: Sequence[Any]) -> Row:
        record = dict(zip(self._DECISION_COLUMNS, row, strict=True))
        agent_name, row_id = record["agent_name"], record["id"]
        for column in ("q_values", "reward", "features"):
            if column != "features" or record[column] is not None:
                record[column] = self._load_json(
                    record[column], agent_name, f"agent_decisions id={row_id} {column}"
                )
        return record

    def _decisions(self, name: str, build: Callable[[], sa.Executable], **params: Any) -> list[Row]:
        rows = self._run(
            lambda cursor: self._execute(cursor, name, build, **params).fetchall(),
            write=False,
            atomic=False,
        )
        return [self._decision_row(row) for row in rows]

    def get_agent_decisions(self, agent_name: str, limit: int = 10) -> list[Row]:
        agent_name = check_agent_name(agent_name)
        limit = check_limit(limit)
        table = schema.agent_decisions.c
        return self._decisions(
            "decisions",
            lambda: (
                sa.select(*self._decision_columns())
                .where(table.agent_name == sa.bindparam("agent"))
                .order_by(table.id.desc())
                .limit(sa.bindparam("limit"))
            ),
            agent=agent_name,
            limit=limit,
        )

    def get_agent_decision(self, decision_id: int) -> Row:
        decision_id = check_id(decision_id, "decision_id")
        table = schema.agent_decisions.c
        rows = self._decisions(
            "decision",
            lambda: sa.select(*self._decision_columns()).where(table.id == sa.bindparam("row_id")),
            row_id=decision_id,
        )
        if not rows:
            raise UnknownDecisionError(decision_id)
        return rows[0]

    def iter_agent_decisions(
        self, agent_name: str, after_id: int = 0, batch_size: int = 1000
    ) -> Iterator[Row]:
        agent_name = check_agent_name(agent_name)
        after_id = check_integer(after_id, "after_id", minimum=0)
        batch_size = check_limit(batch_size, "batch_size")
        table = schema.agent_decisions.c
        return self._iter_decisions(agent_name, after_id, batch_size, table)

    def _iter_decisions(
        self, agent_name: str, after_id: int, batch_size: int, table: Any
    ) -> Iterator[Row]:
        while True:
            batch = self._decisions(
                "decisions_after",
                lambda: (
                    sa.select(*self._decision_columns())
                    .where(
                        table.agent_name == sa.bindparam("agent"), table.id > sa.bindparam("after")
                    )
                    .order_by(table.id)
                    .limit(sa.bindparam("limit"))
                ),
                agent=agent_name,
                after=after_id,
                limit=batch_size,
            )
            yield from batch
            if len(batch) < batch_size:
                return
            after_id = batch[-1]["id"]

    def set_decision_reward(self, decision_id: int, reward: Any) -> None:
        decision_id = check_id(decision_id, "decision_id")
        reward_json = to_json(reward, "reward")
        statement = self._sql.update_decision_reward

        def work(cursor: Any) -> None:
            cursor.execute(statement, (reward_json, decision_id))
            if cursor.rowcount != 1:
                raise UnknownDecisionError(decision_id)

        self._run(work)

    # ------------------------------------------------------------------- inspection
    def list_agents(self) -> list[str]:
        def build() -> sa.Executable:
            # History tables are counted in agent_summary: reading it avoids scanning them.
            counted = {schema.agent_rewards, schema.agent_interactions, schema.agent_decisions}
            names = [
                sa.select(table.c.agent_name)
                for table in schema.AGENT_TABLES
                if table not in counted and table is not schema.q_values
            ]
            summary = schema.agent_summary.c
            names.append(
                sa.select(summary.agent_name).where(
                    summary.decisions + summary.interactions + summary.rewards > 0
                )
            )
            names.append(sa.select(schema.q_tables_unmigrated.c.agent_name))
            return sa.union(*names)

        rows = self._run(
            lambda cursor: self._execute(cursor, "agents", build).fetchall(), write=False
        )
        return sorted(name for (name,) in rows)

    def agent_stats(self, agent_name: str) -> Row:
        agent_name = check_agent_name(agent_name)

        def work(cursor: Any) -> Row:
            # Counters kept by triggers (sql_schema.summary_trigger_sql): O(1) per agent.
            decisions, interactions, rewards, reward_sum = self._summary(cursor, agent_name)
            return {
                "decisions": decisions,
                "interactions": interactions,
                "rewards": rewards,
                "mean_reward": reward_sum / rewards if rewards else None,
                "last_update": self._last_update(cursor, agent_name),
            }

        return self._run(work, write=False)

    def _summary(self, cursor: Any, agent_name: str) -> tuple[int, int, int, float]:
        summary = schema.agent_summary.c
        rows = self._execute(
            cursor,
            "summary",
            lambda: sa.select(
                summary.decisions, summary.interactions, summary.rewards, summary.reward_sum
            ).where(summary.agent_name == sa.bindparam("agent")),
            agent=agent_name,
        ).fetchall()
        if not rows:
            return 0, 0, 0, 0.0
        decisions, interactions, rewards, reward_sum = rows[0]
        return int(decisions), int(interactions), int(rewards), float(reward_sum)

    def _last_update(self, cursor: Any, agent_name: str) -> float | None:
        def build() -> sa.Executable:
            # The newest history row's time is kept in agent_summary by the triggers.
            summary = schema.agent_summary.c
            parts = [
                sa.select(summary.last_history.label("stamp")).where(
                    summary.agent_name == sa.bindparam("agent")
                )
            ]
            for table in (
                schema.q_agents,
                schema.q_values,
                schema.policy_params,
                schema.learner_arrays,
                schema.learner_steps,
            ):
                parts.append(
                    sa.select(sa.func.max(table.c.last_updated).label("stamp")).where(
                        table.c.agent_name == sa.bindparam("agent")
                    )
                )
            union = sa.union_all(*parts).subquery()
            return sa.select(sa.func.max(union.c.stamp))

        (stamp,) = self._execute(cursor, "last_update", build, agent=agent_name).fetchone()
        return None if stamp is None else float(stamp)

    def count_agent_decisions(self, agent_name: str) -> int:
        agent_name = check_agent_name(agent_name)
        summary = schema.agent_summary.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "count_decisions",
                lambda: sa.select(summary.decisions).where(
                    summary.agent_name == sa.bindparam("agent")
                ),
                agent=agent_name,
            ).fetchall(),
            write=False,
            atomic=False,
        )
        return int(rows[0][0]) if rows else 0

    # -------------------------------------------------------------------- lifecycle
    @property
    def schema_version(self) -> int:
        meta = schema.rlmemory_meta.c
        rows = self._run(
            lambda cursor: self._execute(
                cursor,
                "schema_version",
                lambda: sa.select(meta.value).where(meta.key == "schema_version"),
            ).fetchall(),
            write=False,
            atomic=False,
        )
        return int(rows[0][0]) if rows else self._version

    def close(self) -> None:
        """Close the held connection and dispose of the engine. Idempotent.

        >>> import os, tempfile
        >>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
        >>> db.close(); db.close()
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._depth:
                self._rollback()
                self._depth = 0
            if os.getpid() == self._pid:
                with contextlib.suppress(Exception):
                    self._cursor.close()
                with contextlib.suppress(Exception):
                    self._pool_connection.close()
                self._engine.dispose()
            else:
                self._engine.dispose(close=False)

    def __enter__(self) -> MemoryDatabase:
        return self

    def __repr__(self) -> str:
        return f"MemoryDatabase({self.location!r})"


#: Connections a forked child inherited; kept referenced so they are never finalized
#: (closing them in the child would end the parent's PostgreSQL session).
_INHERITED_CONNECTIONS: list[Any] = []


def _abandon_inherited(*objects: Any) -> None:
    """Make a forked child's copies of its parent's connection harmless and keep them."""
    for candidate in objects:
        pgconn = getattr(candidate, "pgconn", None)
        if pgconn is not None:
            with contextlib.suppress(Exception):
                # Point the child's copy of the socket at /dev/null: whatever a finalizer
                # sends (Terminate, ROLLBACK) must not reach the parent's server session.
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, pgconn.socket)
                os.close(devnull)
    _INHERITED_CONNECTIONS.extend(objects)


def _driver_message(error: BaseException) -> str:
    """The driver's own message of ``error``, on one line (no SQL, no parameters)."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line}" if first_line else type(original).__name__


def _reraise(error: BaseException) -> Any:
    raise error


# TRANSITION (issue 11): the class still overrides the public methods; it implements the
# hooks of MemoryStore next, and this line goes.
MemoryDatabase.__abstractmethods__ = frozenset()
