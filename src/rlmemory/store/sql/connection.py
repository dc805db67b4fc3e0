"""The SQL store's connection: engine, held connection, transactions, retries, errors.

:class:`SqlConnection` is the lowest layer of :class:`rlmemory.store.sql.MemoryDatabase`.
SQLAlchemy 2 Core creates the engine, runs the migrations and compiles the cold
queries; every statement then runs on one held DBAPI connection (sqlite3 or psycopg),
so that a learning step's writes cost about what a bare driver upsert costs, and so
that every call made inside :meth:`SqlConnection.transaction` shares that transaction.

The layers above only call :meth:`SqlConnection._run` (one call's statements, in their
own transaction or in the caller's), :meth:`SqlConnection._execute` (a Core statement
compiled once) and the driver statements of ``_sql``
(:mod:`rlmemory.store.sql.dialect`). A driver error never leaves this module raw: it
becomes a :class:`rlmemory.errors.StoreError` naming the location.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.pool import NullPool, StaticPool

from rlmemory.errors import (
    CorruptStoreError,
    NotAStoreError,
    StoreBusyError,
    StoreError,
    TransactionAbortedError,
)
from rlmemory.store._validation import check_finite, check_limit
from rlmemory.store.sql import schema
from rlmemory.store.sql.dialect import (
    classify_error,
    driver_sql_for,
    is_driver_error,
    postgres_session_options,
)
from rlmemory.store.sql.migrations import prepare_schema
from rlmemory.store.sql.url import resolve_location

T = TypeVar("T")

#: Builds a Core statement (called once per store: the compiled form is kept).
Statement = Callable[[], sa.ClauseElement]


def matching(table: sa.Table, *columns: str) -> sa.ColumnElement[bool]:
    """``column = :column AND …``: a WHERE clause naming rows of ``table`` by parameters
    named like their columns."""
    return sa.and_(*(table.c[name] == sa.bindparam(name) for name in columns))


class SqlConnection:
    """One SQL database held open: a path or URL, a connection, its transactions.

    ``busy_timeout`` is how many seconds a write waits for other processes' locks before
    :class:`rlmemory.errors.StoreBusyError`; ``sqlite_cache_mb`` sizes SQLite's page
    cache for this connection; ``sqlite_wal_autocheckpoint`` is how many WAL pages a
    commit may leave before it copies them back into the database file. Opening creates
    or upgrades the schema (:func:`rlmemory.store.sql.migrations.prepare_schema`).
    """

    #: Human-readable location: the path, or the URL with its password removed.
    location: str
    # The held connection (set by _connect): SQLAlchemy's pool proxy, the driver's
    # connection inside it (sqlite3 or psycopg) and the one cursor every call uses.
    _pool_connection: Any
    _dbapi: Any
    _cursor: Any

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        busy_timeout: float,
        sqlite_cache_mb: int,
        sqlite_wal_autocheckpoint: int,
        create: bool,
    ) -> None:
        busy_timeout = check_finite(busy_timeout, "busy_timeout")
        if busy_timeout <= 0:
            raise ValueError(f"busy_timeout must be positive, got {busy_timeout}")
        place = resolve_location(db_path)
        self._url = place.url
        self.location = place.location
        self._sqlite_path = place.sqlite_path
        self._dialect_name = place.dialect_name
        self._busy_timeout = busy_timeout
        self._sqlite_cache_kb = check_limit(sqlite_cache_mb, "sqlite_cache_mb") * 1024
        self._wal_autocheckpoint = check_limit(
            sqlite_wal_autocheckpoint, "sqlite_wal_autocheckpoint"
        )
        self._sql = driver_sql_for(self._dialect_name)
        self._lock = threading.RLock()
        self._depth = 0
        self._savepoints = 0
        # The driver error that made the open transaction unusable, if one did.
        self._transaction_lost: BaseException | None = None
        self._closed = False
        #: (table, key) of rows known to exist, committed or in the open transaction;
        #: forgotten whenever a transaction or a savepoint rolls back.
        self._known_rows: set[tuple[str, str]] = set()
        self._queries: dict[str, tuple[str, Any]] = {}
        if not create and self._sqlite_path is not None and _empty_or_missing(self._sqlite_path):
            # Checked before the engine exists: connecting would create (or format) the file.
            raise NotAStoreError(f"no store at {self._sqlite_path}", self.location)
        self._engine = self._create_engine()
        try:
            self._version = self._with_retry(
                lambda: prepare_schema(self._engine, self.location, create=create)
            )
            self._with_retry(self._connect)
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
        """Session settings that bound every wait by ``busy_timeout`` (see the dialect)."""
        options = postgres_session_options(self._busy_timeout)
        given = self._url.query.get("options")
        if given:
            options = f"{given} {options}"  # the URL's own options come first; ours win
        connect_args: dict[str, Any] = {"options": options}
        if "connect_timeout" not in self._url.query:
            # An unreachable host must not hang a call for the OS's TCP timeout.
            connect_args["connect_timeout"] = max(2, math.ceil(self._busy_timeout))
        return connect_args

    def _connect(self) -> None:
        self._pool_connection = self._engine.raw_connection()
        self._dbapi = self._pool_connection.driver_connection
        if self._dialect_name == "postgresql":
            self._dbapi.autocommit = True
        self._cursor = self._dbapi.cursor()
        self._pid = os.getpid()

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

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL or an in-memory database."""
        if self._sqlite_path is None or self._sqlite_path == ":memory:":
            return None
        return Path(self._sqlite_path)

    # ------------------------------------------------------------ driver errors
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

    # -------------------------------------------------------------- one call
    def _run(self, work: Callable[[Any], T], *, write: bool = True, atomic: bool = True) -> T:
        """Run ``work(cursor)`` in its own transaction, or in the caller's open one.

        ``write`` False begins a read transaction (and lets a lost connection be
        reopened and the read repeated); ``atomic`` False runs a single statement in
        autocommit instead of a transaction of its own.
        """
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

    def _run_undoable(self, work: Callable[[Any], T]) -> T:
        """Like :meth:`_run`; inside a transaction, in a savepoint, so that an error of
        ``work`` (an unknown id found half-way) undoes this call only."""
        if self._depth:
            with self.transaction():
                return self._run(work)
        return self._run(work)

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

    def _rollback(self) -> None:
        self._known_rows.clear()
        with contextlib.suppress(Exception):
            self._cursor.execute("ROLLBACK")

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

    def _lost_transaction_error(self) -> TransactionAbortedError:
        error = self._transaction_lost
        cause = _driver_message(error) if error is not None else "unknown cause"
        return TransactionAbortedError(
            f"{self.location}: a call inside this transaction failed ({cause}), so the "
            "transaction was rolled back and nothing in it was stored",
            self.location,
        )

    def _sql_script(self, cursor: Any, *statements: str) -> None:
        """Run parameterless statements; in one round trip where the driver allows it."""
        if self._dialect_name == "postgresql":
            cursor.execute("; ".join(statements))
        else:
            for statement in statements:
                cursor.execute(statement)

    # -------------------------------------------------------------- transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction; nested blocks are savepoints inside it.

        See :meth:`rlmemory.store.base.MemoryStore.transaction` for what a failed call
        does to the block.
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
                self._known_rows.clear()
                raise
            else:
                self._end_savepoint(cursor, None, name)
            finally:
                self._depth -= 1

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

    @contextlib.contextmanager
    def _read_snapshot(self) -> Iterator[Any]:
        """A consistent read of the whole database; yields the cursor to read with.

        Inside the caller's transaction, that transaction is the snapshot. Otherwise a
        read-only one is begun and rolled back at the end. Other threads using this
        store object wait until the block ends; other processes keep writing.
        """
        with self._lock:
            cursor = self._live_cursor()
            if self._depth:
                yield cursor
                return
            begin = (
                "BEGIN"
                if self._dialect_name == "sqlite"
                else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            )
            self._with_retry(lambda: cursor.execute(begin))
            self._depth = 1
            self._transaction_lost = None
            try:
                if self._dialect_name != "sqlite":
                    # A read-only snapshot blocks no writer: it may idle while the caller
                    # writes the archive, longer than busy_timeout allows a writer to idle.
                    cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                # Both take the snapshot at the transaction's first read, not at BEGIN (nor
                # at SET): read now, so the snapshot is the moment the block was entered.
                cursor.execute("SELECT count(*) FROM rlmemory_meta").fetchall()
                yield cursor
            finally:
                self._depth = 0
                self._transaction_lost = None
                self._rollback()

    @contextlib.contextmanager
    def _outside_transaction(self, purpose: str) -> Iterator[Any]:
        """Hold the store for work that cannot run in a transaction (``VACUUM``); yields
        the autocommit cursor. Inside a transaction it is ``ValueError`` naming
        ``purpose``."""
        with self._lock:
            if self._depth:
                raise ValueError(f"{purpose}; call it outside a transaction")
            yield self._live_cursor()

    # ------------------------------------------------------------ cold queries
    def _query(self, name: str, build: Statement) -> tuple[str, Any]:
        """Compile a Core statement once for this dialect; return its text and compiled form."""
        cached = self._queries.get(name)
        if cached is None:
            compiled = build().compile(dialect=self._engine.dialect)
            cached = self._queries[name] = (str(compiled), compiled)
        return cached

    def _read(
        self, name: str, build: Statement, *, atomic: bool = False, **params: Any
    ) -> list[Any]:
        """The rows of one read statement, compiled once as ``name``.

        Run in autocommit, or with ``atomic`` in a read transaction of its own; inside
        the caller's open transaction, in that.
        """
        return self._run(
            lambda cursor: list(self._execute(cursor, name, build, **params).fetchall()),
            write=False,
            atomic=atomic,
        )

    def _write(self, name: str, build: Statement, **params: Any) -> int:
        """Run one write statement (compiled once as ``name``) in its own transaction, or
        the caller's; return how many rows it changed."""
        return self._run(lambda cursor: int(self._execute(cursor, name, build, **params).rowcount))

    def _execute(self, cursor: Any, name: str, build: Statement, **params: Any) -> Any:
        """Run the statement ``build`` makes (compiled once, cached as ``name``) with
        ``params`` on ``cursor``; return the cursor, to fetch from."""
        text, compiled = self._query(name, build)
        bound = compiled.construct_params(params)
        if compiled.positional:
            cursor.execute(text, tuple(bound[key] for key in compiled.positiontup))
        else:
            cursor.execute(text, bound)
        return cursor

    # -------------------------------------------------------------------- lifecycle
    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        meta = schema.rlmemory_meta.c
        rows = self._read(
            "schema_version", lambda: sa.select(meta.value).where(meta.key == "schema_version")
        )
        return int(rows[0][0]) if rows else self._version

    def close(self) -> None:
        """Close the held connection and dispose of the engine. Idempotent."""
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


__all__ = ["SqlConnection", "Statement", "matching"]


def _empty_or_missing(path: str) -> bool:
    """Whether the SQLite file ``path`` is missing or has no bytes (":memory:": missing)."""
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return True
