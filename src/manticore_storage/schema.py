"""The tables, in SQLAlchemy Core, and the exact decimal column type they use.

Prices, quantities and fees are :class:`ExactDecimal` columns: ``NUMERIC`` on PostgreSQL,
``DECIMAL(65, 30)`` on MySQL/MariaDB and decimal text on SQLite (whose NUMERIC affinity would turn
``"0.1"`` into a binary float). Timestamps are seconds since the epoch as double precision, like the
book's clock. Sequences and priorities are 64-bit integers.

Ids, symbols and user ids are :class:`Identifier` columns: plain ``VARCHAR`` on SQLite and PostgreSQL;
on MySQL/MariaDB ``VARCHAR`` in utf8mb4 with a binary, no-pad collation, so that ``"a"``, ``"A"`` and
``"a "`` stay three different ids as they are in the book (the servers' default collations compare
case-insensitively and ignore trailing spaces). The tables are InnoDB in utf8mb4 there.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "LIVE_STATUSES",
    "ExactDecimal",
    "Identifier",
    "failed_events",
    "journal_positions",
    "markets",
    "metadata",
    "orders",
    "trades",
]

#: Order statuses that mean "still in the book" (resting or a stop waiting for its trigger).
LIVE_STATUSES = ("open", "partially_filled", "pending")


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal stored without rounding on every backend; Python values are :class:`Decimal`."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.NUMERIC(asdecimal=True))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DECIMAL(precision=65, scale=30, asdecimal=True))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
        if dialect.name == "postgresql":
            return dec
        if dialect.name in ("mysql", "mariadb"):
            _check_mysql_decimal(dec)
            return dec
        return format(dec, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        dec = value if isinstance(value, Decimal) else Decimal(value)
        if dialect.name in ("mysql", "mariadb"):
            dec = _strip_zeros(dec)
        return dec


#: Wide enough for any DECIMAL(65, 30) value: normalize / quantize never round with it.
_WIDE = Context(prec=100)
_MYSQL_SCALE = Decimal(1).scaleb(-30)


def _strip_zeros(value: Decimal) -> Decimal:
    """``1.500000`` -> ``1.5`` without scientific notation for integers (``100`` stays ``100``)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=_WIDE)
    return value.normalize(_WIDE)


def _check_mysql_decimal(value: Decimal) -> None:
    """Refuse what DECIMAL(65, 30) cannot hold exactly (MySQL would round the fraction silently)."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be stored in a DECIMAL column")
    if value and value.adjusted() >= 35:
        raise ValueError(f"{value} has more than 35 integer digits, too many for DECIMAL(65, 30)")
    if int(value.as_tuple().exponent) < -30 and value.quantize(_MYSQL_SCALE, context=_WIDE) != value:
        raise ValueError(f"{value} has more than 30 decimal places, too many for DECIMAL(65, 30)")


def _binary_collation(dialect: Dialect) -> str:
    """A case-sensitive collation that does not ignore trailing spaces, on MariaDB or MySQL."""
    if getattr(dialect, "is_mariadb", False) or dialect.name == "mariadb":
        return "utf8mb4_nopad_bin"
    version = getattr(dialect, "server_version_info", None)
    if version is not None and tuple(version[:1]) >= (8,):
        return "utf8mb4_0900_bin"
    return "utf8mb4_bin"  # MySQL 5.7: case-sensitive, but trailing spaces are ignored


class Identifier(TypeDecorator[str]):
    """An id or name compared exactly: ``VARCHAR(length)``, binary and no-pad on MySQL/MariaDB."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, charset="utf8mb4", collation=_binary_collation(dialect))
            )
        return dialect.type_descriptor(String(self.length))


#: InnoDB in utf8mb4 on MySQL/MariaDB (the SQLAlchemy dialects read their own prefixes); ignored elsewhere.
_MYSQL_TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
}


metadata = MetaData()

markets = Table(
    "manticore_markets",
    metadata,
    Column("symbol", Identifier(64), primary_key=True),
    Column("tick_size", ExactDecimal(), nullable=False),
    Column("lot_size", ExactDecimal(), nullable=False),
    Column("maker_fee_rate", ExactDecimal(), nullable=False),
    Column("taker_fee_rate", ExactDecimal(), nullable=False),
    Column("order_id_prefix", String(64), nullable=True),
    # Where the persisted event stream stands: restore continues the book from here.
    Column("last_sequence", BigInteger, nullable=False, default=0),
    Column("last_trade_price", ExactDecimal(), nullable=True),
    Column("trade_count", BigInteger, nullable=False, default=0),
    Column("generated_order_count", BigInteger, nullable=False, default=0),
    Column("updated_at", Float(precision=53), nullable=True),
    **_MYSQL_TABLE,
)

orders = Table(
    "manticore_orders",
    metadata,
    Column("symbol", Identifier(64), primary_key=True),
    Column("order_id", Identifier(128), primary_key=True),
    Column("side", String(4), nullable=False),
    Column("price", ExactDecimal(), nullable=True),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("filled_quantity", ExactDecimal(), nullable=False),
    Column("remaining_quantity", ExactDecimal(), nullable=False),
    Column("visible_quantity", ExactDecimal(), nullable=True),
    Column("displayed_quantity", ExactDecimal(), nullable=True),
    Column("order_type", String(16), nullable=False),
    Column("time_in_force", String(4), nullable=False),
    Column("expiry_time", Float(precision=53), nullable=True),
    Column("user_id", Identifier(128), nullable=True),
    Column("user_id_is_int", Boolean, nullable=False, default=False),
    Column("timestamp", Float(precision=53), nullable=False),
    Column("stop_price", ExactDecimal(), nullable=True),
    Column("trail_value", ExactDecimal(), nullable=True),
    Column("trail_is_percent", Boolean, nullable=False, default=False),
    Column("trail_reference_price", ExactDecimal(), nullable=True),
    Column("self_trade_prevention", String(16), nullable=True),
    Column("triggered", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False),
    Column("cancel_reason", String(32), nullable=True),
    # Time priority: the book's sequence number at which the order took its place in its queue.
    Column("priority", BigInteger, nullable=False, default=0),
    # Sequence of the last event applied to this row (0 for rows written by the guide's methods).
    Column("last_sequence", BigInteger, nullable=False, default=0),
    Column("updated_at", Float(precision=53), nullable=True),
    # Added by migration 3: the owner's own name for the order (unique among a user's live orders).
    Column("client_order_id", Identifier(64), nullable=True),
    **_MYSQL_TABLE,
)
Index("ix_manticore_orders_live", orders.c.symbol, orders.c.status, orders.c.priority)
# Migration 1 also made ``ix_manticore_orders_user`` (user_id, symbol); migration 4 drops it: a user's
# orders (of one market or all, newest first) are read through ``ix_manticore_orders_user_time``.

trades = Table(
    "manticore_trades",
    metadata,
    Column("symbol", Identifier(64), primary_key=True),
    Column("trade_id", Identifier(160), primary_key=True),
    Column("sequence", BigInteger, nullable=True),
    Column("price", ExactDecimal(), nullable=False),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("maker_order_id", Identifier(128), nullable=True),
    Column("taker_order_id", Identifier(128), nullable=True),
    Column("maker_user_id", Identifier(128), nullable=True),
    Column("taker_user_id", Identifier(128), nullable=True),
    Column("taker_side", String(4), nullable=True),
    Column("maker_fee", ExactDecimal(), nullable=True),
    Column("taker_fee", ExactDecimal(), nullable=True),
    Column("timestamp", Float(precision=53), nullable=False),
    # Added by migration 3: the client order ids of the two orders.
    Column("maker_client_order_id", Identifier(64), nullable=True),
    Column("taker_client_order_id", Identifier(64), nullable=True),
    **_MYSQL_TABLE,
)
Index("ix_manticore_trades_sequence", trades.c.symbol, trades.c.sequence)
# Added by migration 2 (per-user history and fills).
orders_by_user_time = Index("ix_manticore_orders_user_time", orders.c.user_id, orders.c.timestamp)
trades_by_maker = Index("ix_manticore_trades_maker_user", trades.c.maker_user_id, trades.c.timestamp)
trades_by_taker = Index("ix_manticore_trades_taker_user", trades.c.taker_user_id, trades.c.timestamp)
# Added by migration 3 (an order by its owner's client order id). Since migration 4 (SQLite and
# PostgreSQL) it is partial: only the orders that have a client order id have an entry (the look-up
# compares the column with a value, which implies it is not NULL), and it ends with the look-up's
# ORDER BY columns, so that SQLite's planner takes it without statistics (it took
# ix_manticore_orders_user_time and read all of the user's orders). MariaDB/MySQL have no partial
# indexes: there every order has an entry (and a database made before migration 4 keeps migration 3's
# (user_id, client_order_id)).
orders_by_client_id = Index(
    "ix_manticore_orders_client_id",
    orders.c.user_id,
    orders.c.client_order_id,
    orders.c.timestamp,
    orders.c.priority,
    sqlite_where=orders.c.client_order_id.isnot(None),
    postgresql_where=orders.c.client_order_id.isnot(None),
)

failed_events = Table(
    "manticore_failed_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("symbol", Identifier(64), nullable=True),
    Column("sequence", BigInteger, nullable=True),
    Column("event_type", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON, numbers as decimal strings
    Column("error", Text, nullable=False),
    Column("created_at", Float(precision=53), nullable=False),
    Column("replayed_at", Float(precision=53), nullable=True),
    UniqueConstraint("symbol", "sequence", "event_type", name="uq_manticore_failed_event"),
    **_MYSQL_TABLE,
)

# Added by migration 4: how far a journaling writer's units are committed (see
# ``StorageManager.submit_journal_position``). One row per journal (``name``), updated in the same
# transaction as the rows of the commands up to ``position``; ``stamp`` identifies the command at that
# position (its clock reading), so that a journal of another history is not mistaken for this one.
journal_positions = Table(
    "manticore_journal_positions",
    metadata,
    Column("name", Identifier(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("stamp", Float(precision=53), nullable=True),
    Column("updated_at", Float(precision=53), nullable=True),
    **_MYSQL_TABLE,
)
