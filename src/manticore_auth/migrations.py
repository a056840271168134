"""The auth schema's numbered migrations, recorded in ``manticore_auth_schema_version``.

Independent of manticore_storage's own version table, so auth can share a database with storage or live
in its own. ``upgrade`` is safe on every start-up and from several processes at once: each migration runs
in its own transaction, the version is re-read inside it, tables are created with ``checkfirst``, and a
process that loses the race to another re-reads the version instead of failing. Add a migration by
appending to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from sqlalchemy import Column, Connection, Engine, Float, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError

from . import schema

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "schema_version", "upgrade", "version_table"]

_version_metadata = MetaData()
version_table = Table(
    "manticore_auth_schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float(precision=53), nullable=False),
)


def _v1_initial(connection: Connection) -> None:
    """Users, API keys and sessions."""
    schema.metadata.create_all(connection, checkfirst=True)


Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "users, api keys, sessions", _v1_initial),
]
CURRENT_VERSION = MIGRATIONS[-1][0]


def schema_version(connection: Connection) -> int:
    """The highest applied auth migration (0 when none has been applied)."""
    if not connection.dialect.has_table(connection, version_table.name):
        return 0
    row = connection.execute(select(version_table.c.version).order_by(version_table.c.version.desc())).first()
    return 0 if row is None else int(row[0])


def upgrade(engine: Engine, *, attempts: int = 5) -> int:
    """Apply every pending migration, each in its own transaction; return the resulting version.

    A migration that fails while another process runs the same one is retried (up to ``attempts``
    times, with a short pause) after re-reading the version: the other process's work is then seen and
    skipped. Raises the database's error if a migration still fails.
    """
    _retrying(attempts, functools.partial(_create_version_table, engine))
    version = 0
    for number, description, migrate in MIGRATIONS:
        version = _retrying(attempts, functools.partial(_apply, engine, number, description, migrate))
    return version


def _create_version_table(engine: Engine) -> int:
    with engine.begin() as connection:
        _version_metadata.create_all(connection, checkfirst=True)
    return 0


def _apply(engine: Engine, number: int, description: str, migrate: Migration) -> int:
    with engine.begin() as connection:
        version = schema_version(connection)
        if number <= version:
            return version
        migrate(connection)
        connection.execute(
            version_table.insert().values(version=number, description=description, applied_at=time.time())
        )
        return number


def _retrying(attempts: int, step: Callable[[], int]) -> int:
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
