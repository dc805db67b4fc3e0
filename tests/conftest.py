"""Shared pytest fixtures: a real store of every backend, opened as often as a test needs.

Every test that takes ``store`` or ``make_store`` runs once per backend:

* ``sqlite``     -- a SQLite file ``memory.db`` in the test's ``tmp_path``;
* ``postgresql`` -- a fresh database with no data on the server named by the environment
  variable ``RLMEMORY_TEST_POSTGRES_URL`` (``postgresql+psycopg://user:pw@host:port/db``;
  the role needs CREATEDB). Each test gets its own ``rlm_<random>`` database, created
  before the test and dropped (``WITH (FORCE)``) after it;
* ``files``      -- a folder ``memory/`` in ``tmp_path`` (``files://`` location).

The ``postgresql`` parameter carries the ``postgres`` marker, so ``-m "not postgres"``
deselects it. Without a reachable server those tests are skipped -- except when the
environment has ``CI=true``, where they fail: CI never silently skips PostgreSQL.

Fixtures
--------
``backend``
    The backend name of the current parametrisation: ``"sqlite"``, ``"postgresql"`` or
    ``"files"``.
``make_store``
    A :class:`StoreFactory`. ``make_store()`` opens (another) store object on the test's
    one location; ``make_store.location`` is the location string to hand to a child
    process, which opens it with ``rlmemory.store.open_store(location)``.
    ``make_store.sqlite_path`` is the database file for the SQLite backend (None
    otherwise). Stores it opened are closed after the test.
``store``
    ``make_store()``: one open store, empty, of the current backend.
``sql_backend`` / ``make_sql_store`` / ``sql_store``
    The same, over the SQL backends only (``sqlite``, ``postgresql``), for tests of
    behaviour only ``MemoryDatabase`` has (plain SQL reads, migrations).
``postgres_server_url``
    Session-wide: the checked server URL (skip/fail as above when unusable).
``postgres_database_url``
    A fresh, truly empty database on that server, as a ``postgresql+psycopg://`` URL
    (for tests of schema creation and migrations).
``postgres_store_url``
    A fresh database holding an empty store's schema and no data, copied from a
    template the store initialised once per session; this is what ``make_store`` uses
    for ``postgresql``, because copying is several times faster than creating the
    schema in every test.
``subprocess_env``
    An environment for child Python processes in which ``import rlmemory`` finds the
    same package as this test run (``PYTHONPATH`` prepended), and the PostgreSQL URL.

Example::

    def test_reward_survives_reopening(make_store):
        with make_store() as first:
            first.save_agent_reward("router", 1.0, {})
        with make_store() as second:
            assert second.get_agent_rewards("router")[0]["reward"] == 1.0
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmemory.store import open_store
from rlmemory.testing.storage import StoreFactory as SuiteStoreFactory

POSTGRES_URL_ENV = "RLMEMORY_TEST_POSTGRES_URL"

ALL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "files"]
SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def running_in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL tests cannot run: {reason}"
    if running_in_ci():
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run, not skip)", pytrace=False)
    pytest.skip(message)


def _psycopg_url(url: Any) -> str:
    """A URL psycopg accepts (``postgresql://``), password kept."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class _PostgresServer:
    """An autocommit connection to the test server, used to create and drop databases."""

    def __init__(self, url_text: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        self.url = make_url(url_text)
        self.connection = psycopg.connect(
            _psycopg_url(self.url), autocommit=True, connect_timeout=5
        )

    def create_database(self, template: str | None = None) -> str:
        name = f"rlm_{uuid.uuid4().hex[:16]}"
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.connection.execute(f'CREATE DATABASE "{name}"{suffix}')
        return name

    def disconnect_everyone_from(self, name: str) -> None:
        """End sessions left on ``name`` (a database used as template must have none)."""
        self.connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    def drop_database(self, name: str) -> None:
        self.connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url_for(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_PostgresServer]:
    url_text = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url_text:
        _unavailable(f"{POSTGRES_URL_ENV} is not set (run the tests with scripts/test)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    try:
        server = _PostgresServer(url_text)
    except Exception as error:
        _unavailable(f"cannot connect to the server in {POSTGRES_URL_ENV}: {error}")
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_server_url(_postgres_server: _PostgresServer) -> str:
    """The URL of the test PostgreSQL server (skips, or fails under CI, when unusable)."""
    return _postgres_server.url.render_as_string(hide_password=False)


@pytest.fixture
def postgres_database_url(_postgres_server: _PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    name = _postgres_server.create_database()
    yield _postgres_server.url_for(name)
    _postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def _postgres_store_template(_postgres_server: _PostgresServer) -> Iterator[str]:
    """A database holding an empty store's schema, copied for each test (fast set-up)."""
    name = _postgres_server.create_database()
    open_store(_postgres_server.url_for(name)).close()
    _postgres_server.disconnect_everyone_from(name)
    yield name
    _postgres_server.drop_database(name)


@pytest.fixture
def postgres_store_url(
    _postgres_server: _PostgresServer, _postgres_store_template: str
) -> Iterator[str]:
    """A fresh database that already holds an empty store's schema and no data; dropped after.

    Copying a template that the store initialised once per session is several times
    faster than letting every test create the schema. The schema creation itself is
    still exercised (by the template, and by ``postgres_database_url`` users).
    """
    name = _postgres_server.create_database(template=_postgres_store_template)
    yield _postgres_server.url_for(name)
    _postgres_server.drop_database(name)


class StoreFactory(SuiteStoreFactory):
    """The store suite's factory, opening with ``open_store``, named by its backend."""

    def __init__(self, backend: str, location: str, sqlite_path: Path | None = None) -> None:
        super().__init__(open_store, location, backend)
        self.backend = backend
        self.sqlite_path = sqlite_path


def _factory_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if backend == "sqlite":
        path = tmp_path / "memory.db"
        return StoreFactory(backend, str(path), sqlite_path=path)
    if backend == "files":
        return StoreFactory(backend, "files://" + str(tmp_path / "memory"))
    if backend == "postgresql":
        return StoreFactory(backend, request.getfixturevalue("postgres_store_url"))
    raise ValueError(f"unknown backend {backend!r}")


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Backend name of this parametrisation: sqlite, postgresql or files."""
    return request.param


@pytest.fixture
def make_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """Factory opening stores on this test's fresh location, once per backend."""
    factory = _factory_for(backend, request, tmp_path)
    yield factory
    factory.close_all()


@pytest.fixture
def store(make_store: StoreFactory) -> Any:
    """One open, empty store of the current backend."""
    return make_store()


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request: pytest.FixtureRequest) -> str:
    """Backend name over the SQL backends only: sqlite or postgresql."""
    return request.param


@pytest.fixture
def make_sql_store(
    sql_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """Like ``make_store``, over sqlite and postgresql only."""
    factory = _factory_for(sql_backend, request, tmp_path)
    yield factory
    factory.close_all()


@pytest.fixture
def sql_store(make_sql_store: StoreFactory) -> Any:
    """One open, empty ``MemoryDatabase`` (SQLite file or PostgreSQL database)."""
    return make_sql_store()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child interpreters that must import this very rlmemory."""
    import rlmemory

    package_root = str(Path(rlmemory.__file__).resolve().parent.parent)
    env = dict(os.environ)
    existing = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = package_root + (os.pathsep + existing if existing else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env
