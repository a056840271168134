"""A versioned schema: numbered migrations applied in order, recorded in ``manticore_schema_version``.

Each migration is a function of a connection inside the migration transaction. ``upgrade`` applies
the ones the database has not seen; it is safe to call on every start-up and from several processes
(the version row is re-read inside the transaction, and DDL uses ``IF NOT EXISTS`` semantics through
``checkfirst``). Add a migration by appending a function; never edit one that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn

from . import schema

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "schema_version", "upgrade"]

_version_metadata = MetaData()
version_table = Table(
    "manticore_schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float(precision=53), nullable=False),
)


def _v1_initial(connection: Connection) -> None:
    """Markets, orders, trades and failed events."""
    schema.metadata.create_all(connection, checkfirst=True)


def _v2_user_indexes(connection: Connection) -> None:
    """Indexes for a user's order history and fills (the exchange's per-user queries)."""
    for index in (schema.orders_by_user_time, schema.trades_by_maker, schema.trades_by_taker):
        index.create(connection, checkfirst=True)


def _v3_client_order_ids(connection: Connection) -> None:
    """``client_order_id`` on orders (indexed with ``user_id``) and the two client ids on trades.

    A database created by migration 1 from today's tables already has the columns; older ones get them
    (NULL for the rows already there: those orders were placed without a separate client id)."""
    inspector = inspect(connection)
    for table, names in (
        (schema.orders, ("client_order_id",)),
        (schema.trades, ("maker_client_order_id", "taker_client_order_id")),
    ):
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for name in names:
            if name not in present:
                spec = CreateColumn(table.c[name]).compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {spec}")
    schema.orders_by_client_id.create(connection, checkfirst=True)


#: The index migration 4 drops: (user_id, symbol), whose queries ``ix_manticore_orders_user_time`` serves.
_DROPPED_USER_INDEX = "ix_manticore_orders_user"


def _v4_fewer_order_indexes(connection: Connection) -> None:
    """Two fewer index entries per written order row: drop ``ix_manticore_orders_user``, and on SQLite and
    PostgreSQL make ``ix_manticore_orders_client_id`` partial (only orders with a client order id) and
    ordered like its look-up (user_id, client_order_id, timestamp, priority).

    Every order read keeps its answer: a user's orders (of one market or all) are read newest first
    through ``ix_manticore_orders_user_time`` (user_id, timestamp), and a look-up by client order id
    compares the column with a value, which only rows in the partial index can match. MariaDB/MySQL have
    no partial indexes: there only the (user_id, symbol) index goes."""
    dialect = connection.dialect.name
    present = {index["name"] for index in inspect(connection).get_indexes(schema.orders.name)}
    if _DROPPED_USER_INDEX in present:
        table = connection.dialect.identifier_preparer.quote(schema.orders.name)
        drop = f"DROP INDEX {_DROPPED_USER_INDEX}"
        connection.exec_driver_sql(drop + (f" ON {table}" if dialect in ("mysql", "mariadb") else ""))
    client = schema.orders_by_client_id
    if dialect not in ("sqlite", "postgresql") or _is_partial(connection, str(client.name)):
        return
    if client.name in present:
        client.drop(connection)
    client.create(connection)


def _is_partial(connection: Connection, index: str) -> bool:
    """Whether the SQLite or PostgreSQL index ``index`` exists and has a WHERE clause (False on other
    databases, which have no partial indexes)."""
    if connection.dialect.name == "sqlite":
        query = text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name")
    elif connection.dialect.name != "postgresql":
        return False
    else:
        query = text(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :name"
        )
    definition = connection.execute(query, {"name": index}).scalar()
    return definition is not None and " WHERE " in str(definition).upper()


Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "markets, orders, trades, failed events", _v1_initial),
    (2, "indexes for per-user order history and fills", _v2_user_indexes),
    (3, "client order ids on orders and trades", _v3_client_order_ids),
    (4, "fewer indexes per order row", _v4_fewer_order_indexes),
]
CURRENT_VERSION = MIGRATIONS[-1][0]


def schema_version(connection: Connection) -> int:
    """The highest applied migration (0 for an empty database)."""
    if not connection.dialect.has_table(connection, version_table.name):
        return 0
    found = connection.execute(select(version_table.c.version).order_by(version_table.c.version.desc()))
    row = found.first()
    return 0 if row is None else int(row[0])


def upgrade(engine: Engine) -> int:
    """Apply every pending migration, each in its own transaction; return the resulting version."""
    with engine.begin() as connection:
        _version_metadata.create_all(connection, checkfirst=True)
    version = 0
    for number, description, migrate in MIGRATIONS:
        with engine.begin() as connection:
            version = schema_version(connection)
            if number <= version:
                continue
            migrate(connection)
            connection.execute(
                version_table.insert().values(version=number, description=description, applied_at=time.time())
            )
            version = number
    with engine.begin() as connection:
        # Bookkeeping of the write-behind writer, not of the data model (like the version table):
        # created whenever missing rather than by a numbered migration.
        schema.journal_positions.create(connection, checkfirst=True)
    return version
