"""Database URLs and engines: which URLs storage accepts, and an engine configured per database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .errors import StorageError

__all__ = [
    "EXPECTED_URLS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "WAL_SYNC_WAIT_MS",
    "first_line",
    "open_engine",
    "parse_url",
    "shown_url",
]

#: What a connection string looks like, for error messages.
EXPECTED_URLS = (
    "Expected a SQLAlchemy URL: sqlite:///path/to/file.db, postgresql+psycopg://user@host/db "
    "or mysql+pymysql://user@host/db (mariadb+pymysql:// too)"
)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
# How long an SQLite statement waits for a lock held by another connection.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long syncing the write-ahead log to the database file waits for readers on older snapshots.
WAL_SYNC_WAIT_MS = 2_000
_DRIVERS = {
    "sqlite": ("pysqlite",),
    "postgresql": ("psycopg",),
    "mysql": ("pymysql",),
    "mariadb": ("pymysql",),
}


def parse_url(connection_string: object) -> URL:
    """The URL of a connection string this manager can use; StorageError naming the expected forms
    for anything else (not a string, unparsable, an unknown database or driver)."""
    if isinstance(connection_string, URL):
        url = connection_string
    elif not isinstance(connection_string, str):
        raise StorageError(
            f"connection_string must be a string, not {type(connection_string).__name__}. {EXPECTED_URLS}"
        )
    else:
        try:
            url = make_url(connection_string)
        except (ArgumentError, ValueError) as exc:
            shown = connection_string if len(connection_string) <= 80 else connection_string[:77] + "..."
            raise StorageError(f"not a database URL: {shown!r}. {EXPECTED_URLS}") from exc
    backend = url.get_backend_name()
    drivers = _DRIVERS.get(backend)
    if drivers is None:
        raise StorageError(f"unsupported database {backend!r} in {shown_url(url)}. {EXPECTED_URLS}")
    if url.get_driver_name() not in drivers:
        raise StorageError(
            f"unsupported driver {url.drivername!r} in {shown_url(url)}: use {backend}+{drivers[0]}://. "
            + EXPECTED_URLS
        )
    return url


def shown_url(url: URL) -> str:
    """``url`` for a message, its password hidden."""
    return url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name if it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def open_engine(url: URL, *, sqlite_synchronous: str = "NORMAL", echo: bool = False) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with ``sqlite_synchronous`` and a busy timeout,
    MySQL/MariaDB with :func:`_mysql_options`; StorageError for a bad setting or an unusable URL.
    Nothing is connected yet."""
    if not isinstance(sqlite_synchronous, str) or sqlite_synchronous.upper() not in _SYNCHRONOUS:
        raise StorageError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
    dialect = url.get_backend_name()
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
    if dialect == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif dialect in ("mysql", "mariadb"):
        kwargs.update(_mysql_options(url.query))
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError, TypeError) as exc:
        raise StorageError(f"cannot use {shown_url(url)}: {exc}. {EXPECTED_URLS}") from exc
    if dialect == "sqlite":
        _configure_sqlite(engine, sqlite_synchronous.upper())
    return engine


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def _mysql_options(query: Mapping[str, object]) -> dict[str, Any]:
    """Engine options for MySQL/MariaDB: PostgreSQL's isolation level, strict SQL, utf8mb4.

    READ COMMITTED (the servers default to REPEATABLE READ) is what the code is written for and
    avoids InnoDB's gap locks, which make concurrent upserts deadlock. The strict SQL mode makes a
    value too long for its column an error, never a silently truncated id. Options given in the
    URL's query string win.
    """
    connect_args = {"charset": "utf8mb4", "sql_mode": "TRADITIONAL"}
    return {
        "isolation_level": "READ COMMITTED",
        "connect_args": {key: value for key, value in connect_args.items() if key not in query},
    }
