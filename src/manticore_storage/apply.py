"""Applying a run of book events to the tables in one transaction, idempotently.

Every order row remembers the sequence of the last event applied to it (``last_sequence``), and
every write is guarded by it, so replaying events that are already stored changes nothing; trades
are keyed by ``(symbol, trade_id)`` and inserted at most once; the market row's ``last_sequence``
only moves forward. Within a run, the events about one order are collapsed into one write: its last
full state (from an order event) with later fills merged in, or, without an order event in the run,
one update with the latest fill.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, and_, bindparam, case, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from manticore_orderbook import EventType
from manticore_orderbook.payloads import BookClearedPayload, OrderFilledPayload, OrderPayload

from . import schema
from .capture import (
    RECORD_CLEARED,
    RECORD_FILL,
    RECORD_ORDER,
    FillRecord,
    OrderRecord,
    Record,
    RowBuilder,
    TradeRecord,
)
from .records import Market, StoredTradePayload, exact, fill_update, order_row, trade_row

__all__ = [
    "OneOrderHeader",
    "PackedUnit",
    "Unit",
    "UnitTuple",
    "apply_units",
    "as_unit",
    "insert_ignore",
    "unit_size",
    "upsert_orders",
]

_FULL_STATE = frozenset(
    {
        EventType.ORDER_ADDED,
        EventType.ORDER_MODIFIED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_EXPIRED,
        EventType.ORDER_TRIGGERED,
    }
)
_ORDER_KEY_COLUMNS = ("symbol", "order_id")


class Unit(NamedTuple):
    """What one book command changed (or one replayed slice of a stream) and where the book stood after.

    A unit carries event dicts (``events``, from replays and the guide's path) or captured records
    (``changes``, from an attached persister: see :mod:`manticore_storage.capture`), applied in that
    order. ``last_trade_price`` is a number in the book's format, or ticks when ``price_in_ticks``.
    A tuple, so that a queue of captured units (which hold only strings and numbers) is left alone
    by the garbage collector.
    """

    symbol: str
    events: Sequence[tuple[EventType, dict[str, Any]]] = ()
    sequence: int = 0
    trade_count: int | None = None
    generated_order_count: int | None = None
    last_trade_price: object = None
    changes: tuple[Record, ...] = ()
    id_prefix: str = ""
    price_in_ticks: bool = False

    def as_events(self, market: Market | None) -> list[tuple[EventType, dict[str, Any]]]:
        """The unit as event dicts (captured records converted, which needs the market)."""
        events = list(self.events)
        if self.changes:
            if market is None:
                raise ValueError(f"captured changes of {self.symbol!r} need its market row")
            events.extend(RowBuilder(self.symbol, market, self.id_prefix).events(self.changes))
        return events


_MYSQL_DIALECTS = ("mysql", "mariadb")


#: A unit as a plain tuple, in one of two layouts. Persisters hand these out: unlike instances of a
#: tuple subclass, plain tuples of strings and numbers are untracked by the garbage collector.
#:
#: * packed: :class:`Unit`'s fields in order (``unit[1]``, the events, is a sequence);
#: * one order: ``(symbol, sequence, trade_count, generated_order_count, last_trade_ticks, id_prefix,
#:   *record)`` with a :data:`~manticore_storage.capture.RECORD_ORDER` record, for a command that
#:   touched one order without trading (``unit[1]`` is an int). One tuple per command instead of
#:   three keeps the collector's youngest generation, and so its full collections, rarer.
#:
#: Every function that takes units takes either layout or a :class:`Unit`.
UnitTuple = tuple[Any, ...]
#: The packed layout of :data:`UnitTuple` (:class:`Unit`'s fields in order).
PackedUnit = tuple[
    str,
    Sequence[tuple[EventType, dict[str, Any]]],
    int,
    "int | None",
    "int | None",
    object,
    tuple[Record, ...],
    str,
    bool,
]
#: The header of the one-order layout of :data:`UnitTuple`: ``(symbol, sequence, trade_count,
#: generated_order_count, last_trade_ticks, id_prefix)``, followed in the unit by the items of an
#: :data:`~manticore_storage.capture.OrderRecord`.
OneOrderHeader = tuple[str, int, int, int, "int | None", str]


def as_unit(unit: UnitTuple) -> Unit:
    """``unit`` as a :class:`Unit` (unchanged if it is one)."""
    if type(unit) is Unit:
        return unit
    if type(unit[1]) is int:
        return Unit(unit[0], (), unit[1], unit[2], unit[3], unit[4], (unit[6:],), unit[5], True)
    return Unit._make(unit)


def unit_size(unit: UnitTuple) -> int:
    """Events plus captured records of ``unit``: what a write-behind transaction counts."""
    if type(unit[1]) is int:
        return 1
    return len(unit[1]) + len(unit[6])


def _dialect_insert(connection: Connection, table: Any) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    if name in _MYSQL_DIALECTS:
        return mysql.insert(table)
    # StorageManager refuses other databases at construction, so this is never reached from it.
    raise ValueError(f"manticore_storage writes only to SQLite, PostgreSQL and MySQL/MariaDB, not {name}")


def upsert_orders(connection: Connection, rows: Sequence[dict[str, Any]], guarded: bool = True) -> None:
    """Insert or replace order rows; with ``guarded``, only where the stored row has an older sequence."""
    if not rows:
        return
    statement: Any = _dialect_insert(connection, schema.orders)
    columns = [c.name for c in schema.orders.columns if c.name not in _ORDER_KEY_COLUMNS]
    if connection.dialect.name in _MYSQL_DIALECTS:
        statement = statement.on_duplicate_key_update(_mysql_order_assignments(statement, columns, guarded))
    else:
        excluded = statement.excluded
        where = schema.orders.c.last_sequence < excluded.last_sequence if guarded else None
        statement = statement.on_conflict_do_update(
            index_elements=list(_ORDER_KEY_COLUMNS),
            set_={name: excluded[name] for name in columns},
            where=where,
        )
    connection.execute(statement, list(rows))


def _mysql_order_assignments(statement: Any, columns: list[str], guarded: bool) -> list[tuple[str, Any]]:
    """``ON DUPLICATE KEY UPDATE`` assignments for :func:`upsert_orders` (MySQL has no WHERE there).

    Guarded, every column becomes ``CASE WHEN last_sequence < VALUES(last_sequence) THEN VALUES(col)
    ELSE col END``. MySQL applies the assignments left to right, and a later one sees the columns the
    earlier ones set, so ``last_sequence`` (which the condition reads) is assigned last.
    """
    new = statement.inserted  # VALUES(col); MySQL 8.0.20+ renders a row alias instead
    if not guarded:
        return [(name, new[name]) for name in columns]
    orders = schema.orders.c
    newer = orders.last_sequence < new.last_sequence
    names = [name for name in columns if name != "last_sequence"] + ["last_sequence"]
    return [(name, case((newer, new[name]), else_=orders[name])) for name in names]


def insert_ignore(connection: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose primary key exists already."""
    if not rows:
        return
    statement: Any = _dialect_insert(connection, table)
    if connection.dialect.name in _MYSQL_DIALECTS:
        # A no-op assignment rather than INSERT IGNORE, which would also hide other errors (a value
        # too long, a NULL in a NOT NULL column) as warnings.
        key = next(iter(table.primary_key.columns))
        statement = statement.on_duplicate_key_update({key.name: key})
    else:
        statement = statement.on_conflict_do_nothing()
    connection.execute(statement, list(rows))


_FILL_COLUMNS = (
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "priority",
    "status",
    "last_sequence",
    "updated_at",
)

_FILL_UPDATE = (
    update(schema.orders)
    .where(
        and_(
            schema.orders.c.symbol == bindparam("b_symbol"),
            schema.orders.c.order_id == bindparam("b_order_id"),
            schema.orders.c.last_sequence < bindparam("last_sequence"),
        )
    )
    .values(
        filled_quantity=bindparam("filled_quantity"),
        remaining_quantity=bindparam("remaining_quantity"),
        visible_quantity=bindparam("visible_quantity"),
        priority=bindparam("priority"),
        status=bindparam("status"),
        last_sequence=bindparam("last_sequence"),
        updated_at=bindparam("updated_at"),
    )
)


class _Batch:
    """Collapsed writes for one segment of events (segments are split at BOOK_CLEARED)."""

    def __init__(self, market: Market | None, now: float) -> None:
        self.market = market
        self.now = now
        self.full: dict[tuple[str, str], dict[str, Any]] = {}
        self.fills: dict[tuple[str, str], dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []

    def add(self, event_type: EventType, data: dict[str, Any]) -> None:
        """Add one event; ``data`` has the payload shape of ``event_type`` (read through its type)."""
        if event_type in _FULL_STATE:
            order = cast(OrderPayload, data)
            row = order_row(order, self.market, int(order["sequence"]), self.now)
            key = (row["symbol"], row["order_id"])
            self.fills.pop(key, None)
            self.full[key] = row
        elif event_type is EventType.ORDER_FILLED:
            fill = cast(OrderFilledPayload, data)
            key = (str(fill["symbol"]), str(fill["order_id"]))
            change = fill_update(fill, self.market, int(fill["sequence"]))
            change["updated_at"] = self.now
            stored = self.full.get(key)
            if stored is not None:
                stored.update(change)
            else:
                self.fills[key] = change
        elif event_type is EventType.TRADE_EXECUTED:
            self.trades.append(trade_row(cast(StoredTradePayload, data), self.market))

    def add_record(self, builder: RowBuilder, symbol: str, record: Record) -> None:
        """Add one captured record (later than everything added so far; not RECORD_CLEARED)."""
        tag = record[0]
        if tag == RECORD_ORDER:
            row = builder.order_row(cast(OrderRecord, record), self.now)
            key = (symbol, row["order_id"])
            self.fills.pop(key, None)
            self.full[key] = row
        elif tag == RECORD_FILL:
            change = builder.fill_change(cast(FillRecord, record), self.now)
            key = (symbol, change["b_order_id"])
            stored = self.full.get(key)
            if stored is not None:
                for name in _FILL_COLUMNS:
                    stored[name] = change[name]
            else:
                self.fills[key] = change
        else:
            self.trades.append(builder.trade_row(cast(TradeRecord, record)))

    def write(self, connection: Connection) -> None:
        upsert_orders(connection, list(self.full.values()))
        if self.fills:
            params = []
            for (symbol, order_id), change in self.fills.items():
                if "b_order_id" in change:
                    params.append(change)
                else:
                    params.append({"b_symbol": symbol, "b_order_id": order_id, **change})
            connection.execute(_FILL_UPDATE, params)
        insert_ignore(connection, schema.trades, self.trades)
        self.full, self.fills, self.trades = {}, {}, []


def _clear(connection: Connection, symbol: str, sequence: int, now: float) -> None:
    connection.execute(
        update(schema.orders)
        .where(
            and_(
                schema.orders.c.symbol == symbol,
                schema.orders.c.status.in_(schema.LIVE_STATUSES),
                schema.orders.c.last_sequence < sequence,
            )
        )
        .values(status="cancelled", cancel_reason="clear", last_sequence=sequence, updated_at=now)
    )


def apply_units(connection: Connection, market: Market | None, units: Sequence[UnitTuple]) -> int:
    """Write ``units`` of one market (in stream order) inside the caller's transaction; return the
    events and records applied.

    Runs of captured units (a persister's) go through :func:`manticore_storage.batch.write_captured`:
    prebuilt statements, one ``executemany`` per table for the whole run. Units of event dicts (a
    replay of failed events) are collapsed here and written through SQLAlchemy Core statements.
    """
    from .batch import is_captured, statements_for, write_captured  # batch imports this module

    now = time.time()
    applied = 0
    start = 0
    kinds = [is_captured(unit) for unit in units]
    for i in range(1, len(units) + 1):
        if i < len(units) and kinds[i] == kinds[start]:
            continue
        run = units[start:i]
        if kinds[start]:
            applied += write_captured(connection, statements_for(connection), market, run, now)
        else:
            applied += _apply_events(connection, market, run, now)
        start = i
    return applied


def _apply_events(
    connection: Connection, market: Market | None, units: Iterable[UnitTuple], now: float
) -> int:
    batch = _Batch(market, now)
    applied = 0
    last: Unit | None = None
    builder: RowBuilder | None = None  # every unit of one call is of one market
    for packed in units:
        unit = as_unit(packed)
        for event_type, data in unit.events:
            if event_type is EventType.BOOK_CLEARED:
                cleared = cast(BookClearedPayload, data)
                batch.write(connection)
                _clear(connection, str(cleared["symbol"]), int(cleared["sequence"]), now)
            else:
                batch.add(event_type, data)
            applied += 1
        if unit.changes:
            if market is None:
                raise ValueError(f"captured changes of {unit.symbol!r} need its market row")
            if builder is None:
                builder = RowBuilder(unit.symbol, market, unit.id_prefix)
            for record in unit.changes:
                if record[0] == RECORD_CLEARED:
                    batch.write(connection)
                    _clear(connection, unit.symbol, record[1], now)
                else:
                    batch.add_record(builder, unit.symbol, record)
            applied += len(unit.changes)
        last = unit
    batch.write(connection)
    if last is not None:
        _advance_market(connection, market, last, now)
    return applied


def _advance_market(connection: Connection, market: Market | None, unit: Unit, now: float) -> None:
    values: dict[str, Any] = {"last_sequence": unit.sequence, "updated_at": now}
    if unit.trade_count is not None:
        values["trade_count"] = unit.trade_count
    if unit.generated_order_count is not None:
        values["generated_order_count"] = unit.generated_order_count
    if unit.last_trade_price is not None:
        grid = None if market is None else market.price_grid()
        if unit.price_in_ticks and grid is not None:
            assert isinstance(unit.last_trade_price, int)
            values["last_trade_price"] = grid.to_decimal(unit.last_trade_price)
        else:
            values["last_trade_price"] = exact(unit.last_trade_price, grid, "last_trade_price")
    connection.execute(
        update(schema.markets)
        .where(and_(schema.markets.c.symbol == unit.symbol, schema.markets.c.last_sequence < unit.sequence))
        .values(**values)
    )
