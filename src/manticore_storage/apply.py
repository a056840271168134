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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from manticore_orderbook import EventType

from . import schema
from .records import Market, exact, fill_update, order_row, trade_row

__all__ = ["Unit", "apply_units", "insert_ignore", "upsert_orders"]

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


@dataclass(slots=True)
class Unit:
    """The events of one book command (or one replayed slice of a stream) and where the book stood after."""

    symbol: str
    events: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)
    sequence: int = 0
    trade_count: int | None = None
    generated_order_count: int | None = None
    last_trade_price: object = None


def _dialect_insert(connection: Connection, table: Any) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    # StorageManager refuses other databases at construction, so this is never reached from it.
    raise ValueError(f"manticore_storage writes only to SQLite and PostgreSQL, not {name}")


def upsert_orders(connection: Connection, rows: Sequence[dict[str, Any]], guarded: bool = True) -> None:
    """Insert or replace order rows; with ``guarded``, only where the stored row has an older sequence."""
    if not rows:
        return
    statement: Any = _dialect_insert(connection, schema.orders)
    excluded = statement.excluded
    columns = [c.name for c in schema.orders.columns if c.name not in _ORDER_KEY_COLUMNS]
    where = schema.orders.c.last_sequence < excluded.last_sequence if guarded else None
    statement = statement.on_conflict_do_update(
        index_elements=list(_ORDER_KEY_COLUMNS),
        set_={name: excluded[name] for name in columns},
        where=where,
    )
    connection.execute(statement, list(rows))


def insert_ignore(connection: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose primary key exists already."""
    if rows:
        connection.execute(_dialect_insert(connection, table).on_conflict_do_nothing(), list(rows))


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
        sequence = int(data["sequence"])
        if event_type in _FULL_STATE:
            row = order_row(data, self.market, sequence, self.now)
            key = (row["symbol"], row["order_id"])
            self.fills.pop(key, None)
            self.full[key] = row
        elif event_type is EventType.ORDER_FILLED:
            key = (str(data["symbol"]), str(data["order_id"]))
            change = fill_update(data, self.market, sequence)
            change["updated_at"] = self.now
            stored = self.full.get(key)
            if stored is not None:
                stored.update(change)
            else:
                self.fills[key] = change
        elif event_type is EventType.TRADE_EXECUTED:
            self.trades.append(trade_row(data, self.market))

    def write(self, connection: Connection) -> None:
        upsert_orders(connection, list(self.full.values()))
        if self.fills:
            params = []
            for (symbol, order_id), change in self.fills.items():
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


def apply_units(connection: Connection, market: Market | None, units: Iterable[Unit]) -> int:
    """Write ``units`` (in stream order) inside the caller's transaction; return the events applied."""
    now = time.time()
    batch = _Batch(market, now)
    applied = 0
    last: Unit | None = None
    for unit in units:
        for event_type, data in unit.events:
            if event_type is EventType.BOOK_CLEARED:
                batch.write(connection)
                _clear(connection, str(data["symbol"]), int(data["sequence"]), now)
            else:
                batch.add(event_type, data)
            applied += 1
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
        values["last_trade_price"] = exact(unit.last_trade_price, grid, "last_trade_price")
    connection.execute(
        update(schema.markets)
        .where(and_(schema.markets.c.symbol == unit.symbol, schema.markets.c.last_sequence < unit.sequence))
        .values(**values)
    )
