"""One exchange per database: a lock held in the database server (or beside the SQLite file).

Two exchanges writing one database would interleave their orders (each numbers its own ``MC-<n>``
ids from 1) and corrupt both read models. The data-directory lock cannot see this when the two
servers have different data directories and the same ``--database-url``, so the exchange also takes
this lock on its storage database when it opens, and holds it until it closes:

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection kept open for the
  purpose; advisory locks are per database.
* MySQL/MariaDB: ``GET_LOCK`` with a name that includes the database (such locks are per server).
* SQLite: an exclusive ``flock`` on ``<database file>.owner`` (a file in the data directory for the
  default database, which the data-directory lock already covers; a shared path otherwise).

Each lock dies with its holder (the server ends the session, the kernel drops the ``flock``), so a
process killed with ``kill -9`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from .errors import StorageError

__all__ = ["DatabaseInUse", "DatabaseOwner"]

_NAME = "manticore-exchange-owner"
_ADVISORY_KEY = zlib.crc32(_NAME.encode())  # a fixed key, the same in every Manticore process


class DatabaseInUse(StorageError):
    """Another exchange already writes this database."""


class DatabaseOwner:
    """A held ownership lock on one storage database; :meth:`acquire` takes it, :meth:`release`
    gives it back (idempotent)."""

    def __init__(
        self,
        connection: Connection | None = None,
        unlock: tuple[str, dict[str, object]] | None = None,
        descriptor: int | None = None,
    ) -> None:
        self._connection = connection
        self._unlock = unlock
        self._descriptor = descriptor

    @classmethod
    def acquire(cls, engine: Engine, shown_url: str) -> DatabaseOwner:
        """Lock ``engine``'s database for this process; never waits.

        Raises:
            DatabaseInUse: another exchange holds it (``shown_url``, the URL without password, names
                it in the message).
        """
        dialect = engine.dialect.name
        if dialect == "sqlite":
            return cls._acquire_sqlite(engine, shown_url)
        if dialect == "postgresql":
            lock = "SELECT pg_try_advisory_lock(:key)"
            unlock = "SELECT pg_advisory_unlock(:key)"
            parameters: dict[str, object] = {"key": _ADVISORY_KEY}
        else:
            lock = "SELECT GET_LOCK(:name, 0)"
            unlock = "SELECT RELEASE_LOCK(:name)"
            parameters = {"name": f"{_NAME}:{engine.url.database or ''}"[:64]}
        connection = engine.connect()
        try:
            taken = bool(connection.execute(text(lock), parameters).scalar())
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            raise DatabaseInUse(_in_use(shown_url))
        return cls(connection=connection, unlock=(unlock, parameters))

    @classmethod
    def _acquire_sqlite(cls, engine: Engine, shown_url: str) -> DatabaseOwner:
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return cls()  # private to this process
        path = Path(database).resolve()
        descriptor = os.open(f"{path}.owner", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise DatabaseInUse(_in_use(shown_url)) from None
        except BaseException:
            os.close(descriptor)
            raise
        return cls(descriptor=descriptor)

    def release(self) -> None:
        """Give the lock back: unlock and close the session that holds it, or drop the ``flock``.

        When this returns, another exchange can take the lock at once.
        """
        connection, self._connection = self._connection, None
        unlock, self._unlock = self._unlock, None
        descriptor, self._descriptor = self._descriptor, None
        if connection is not None:
            with contextlib.suppress(Exception):
                # The database server ends a closed session only when it notices the closed
                # socket, some time after close() returned: unlocking first frees the lock now.
                if unlock is not None:
                    statement, parameters = unlock
                    connection.execute(text(statement), parameters)
                    connection.commit()
            with contextlib.suppress(Exception):
                # A connection merely returned to the pool would keep the session (and any lock
                # the unlock above failed to free): end it.
                connection.invalidate()
                connection.close()
        if descriptor is not None:
            os.close(descriptor)


def _in_use(shown_url: str) -> str:
    return (
        f"the database {shown_url} is in use by another Manticore exchange (another server with the "
        f"same --database-url?); one exchange per database: stop the other one, or use another database"
    )
