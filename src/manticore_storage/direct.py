"""Driver SQL on a connection's own DBAPI cursor, for the writer's statements on SQLite.

``Connection.exec_driver_sql`` costs ~30,000 instructions per call in SQLAlchemy (an execution
context, a result object, the event hooks) besides the driver's work, and the writer makes five to
ten such calls per batch. :func:`direct` runs the same statements on one cursor of the connection's
DBAPI connection, inside the caller's transaction (the driver begins it before the first write, as it
does under ``exec_driver_sql``; SQLAlchemy's commit or rollback ends it). A driver error is raised as
SQLAlchemy's wrapper of it (``sqlalchemy.exc.OperationalError`` for a locked database, and so on),
exactly as ``exec_driver_sql`` raises it, so the writer's retry rules (:func:`.writer.is_transient`)
see the same exceptions. SQLAlchemy's cursor events are not fired for these statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["Run", "direct"]

#: Runs one statement of driver SQL: with a list of rows (``executemany``) or one tuple of values; returns
#: the DBAPI cursor (its ``rowcount``), or SQLAlchemy's result for ``exec_driver_sql``.
Run = Callable[[str, Any], Any]


@contextmanager
def direct(connection: Connection) -> Iterator[Run]:
    """A :data:`Run` on a cursor of ``connection``'s DBAPI connection (closed on exit)."""
    dialect = connection.dialect
    dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def run(statement: str, parameters: Any) -> Any:
        try:
            if parameters.__class__ is list:
                return cursor.executemany(statement, parameters)
            return cursor.execute(statement, parameters)
        except dbapi_error as exc:
            raise DBAPIError.instance(
                statement,
                parameters,
                exc,
                dbapi_error,
                dialect=dialect,
                ismulti=parameters.__class__ is list,
            ) from exc

    try:
        yield run
    finally:
        cursor.close()
