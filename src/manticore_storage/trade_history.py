"""Trade history queries of the Binance-compatible surface, over a storage engine.

Shared by the embedded surface (which reads its own storage) and a shard leader answering a gateway's
surface (``manticore_cluster.server``), so both answer from the same SQL. Rows are plain dicts of JSON
values (numbers as the database returns them, Decimal for prices and quantities).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from . import schema

__all__ = ["TRADE_ROW", "stored_trades", "trade_rows"]

#: The columns of :func:`trade_rows`, in order.
TRADE_ROW = (
    "symbol",
    "price",
    "quantity",
    "taker_side",
    "timestamp",
    "sequence",
    "trade_id",
    "maker_order_id",
    "taker_order_id",
)


def stored_trades(
    engine: Engine,
    symbol: str,
    from_trade_id: str | None,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Trades of ``symbol``, oldest first (book sequence): from the trade ``from_trade_id`` on (none if
    it is not stored), and/or within ``[start_ms, end_ms]`` (milliseconds); at most ``limit``. Each:
    ``trade_id, price, quantity, taker_side, timestamp``."""
    table = schema.trades
    statement = select(
        table.c.trade_id, table.c.price, table.c.quantity, table.c.taker_side, table.c.timestamp
    ).where(table.c.symbol == symbol)
    with engine.connect() as connection:
        if from_trade_id is not None:
            sequence = connection.execute(
                select(table.c.sequence).where(table.c.symbol == symbol, table.c.trade_id == from_trade_id)
            ).scalar()
            if sequence is None:
                return []
            statement = statement.where(table.c.sequence >= sequence)
        if start_ms is not None:
            statement = statement.where(table.c.timestamp >= start_ms / 1000)
        if end_ms is not None:
            statement = statement.where(table.c.timestamp < (end_ms + 1) / 1000)
        statement = statement.order_by(table.c.sequence).limit(limit)
        return [dict(row) for row in connection.execute(statement).mappings()]


def trade_rows(engine: Engine, offset: int, limit: int) -> list[list[Any]]:
    """One page of every stored trade, ordered by symbol, book sequence, time and trade id: rows of
    :data:`TRADE_ROW` from the ``offset``-th on, at most ``limit`` (a short page is the last)."""
    table = schema.trades
    statement = (
        select(*(table.c[name] for name in TRADE_ROW))
        .order_by(table.c.symbol, table.c.sequence, table.c.timestamp, table.c.trade_id)
        .offset(offset)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [list(row) for row in connection.execute(statement)]
