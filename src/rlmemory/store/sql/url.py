"""Which database a ``db_path`` names: a SQLite file, or PostgreSQL by URL.

The lowest module of the SQL store: it only reads the text it is given.

>>> resolve_location("memory.db").sqlite_path
'memory.db'
>>> place = resolve_location("postgresql://app:secret@db.example:5432/memory")
>>> place.location, place.dialect_name
('postgresql+psycopg://app:***@db.example:5432/memory', 'postgresql')
"""

from __future__ import annotations

import difflib
import os
from typing import NamedTuple

import sqlalchemy as sa

from rlmemory.store.locations import mask_credentials


class SqlLocation(NamedTuple):
    """A resolved ``db_path``: what to connect to and how to name it."""

    #: The SQLAlchemy URL to connect with (``postgresql+psycopg://…`` or ``sqlite:///…``).
    url: sa.URL
    #: The human-readable location: the path, or the URL with its password removed.
    location: str
    #: The SQLite database file (``:memory:`` for an in-memory one); None for PostgreSQL.
    sqlite_path: str | None

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "sqlite" if self.sqlite_path is not None else "postgresql"


def resolve_location(db_path: str | os.PathLike[str]) -> SqlLocation:
    """Resolve a file path or a database URL; an unsupported one is ``ValueError``."""
    text = os.fspath(db_path)
    if not isinstance(text, str) or not text:
        raise ValueError("db_path must be a non-empty path or URL")
    if "://" not in text:
        return SqlLocation(sa.URL.create("sqlite", database=text), text, text)
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
        return SqlLocation(sa.URL.create("sqlite", database=path), mask_credentials(text), path)
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
        return SqlLocation(url, mask_credentials(url.render_as_string(hide_password=True)), None)
    schemes = ("sqlite", "postgresql", "postgresql+psycopg", "postgres", "files")
    close = difflib.get_close_matches(url.drivername, schemes, n=1)
    hint = f"did you mean {close[0]}://? " if close else ""
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}; {hint}use a file path, "
        "sqlite:///path, postgresql+psycopg://, postgresql:// or files://"
    )


__all__ = ["SqlLocation", "resolve_location"]
