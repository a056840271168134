"""Turning the ``engine_or_url`` argument of ``AuthManager`` into an engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from .errors import AuthConfigError

__all__ = ["open_engine"]


def open_engine(engine_or_url: Engine | URL | str) -> tuple[Engine, bool]:
    """Return ``(engine, owned)``: a given engine as is (not owned), or a new one for a URL (owned).

    A new SQLite engine may be used from several threads, waits up to 30 s for a lock, and a file
    database runs in WAL mode; ``sqlite://`` (in memory) keeps one shared connection.

    Raises:
        AuthConfigError: the argument is neither an engine nor a usable URL.
    """
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    if not isinstance(engine_or_url, (str, URL)):
        raise AuthConfigError("engine_or_url must be a SQLAlchemy Engine or a database URL")
    try:
        url = make_url(engine_or_url)
    except Exception as exc:
        raise AuthConfigError(f"not a database URL: {type(exc).__name__}") from None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    is_sqlite = url.get_backend_name() == "sqlite"
    in_memory = is_sqlite and url.database in (None, "", ":memory:")
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if in_memory:
            kwargs["poolclass"] = StaticPool
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
        raise AuthConfigError(
            f"cannot open {url.get_backend_name()!r} database: {type(exc).__name__}"
        ) from None
    if is_sqlite and not in_memory:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine, True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
