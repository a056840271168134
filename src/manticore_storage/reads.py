"""The stored orders and trades, read back: the query side of :class:`~manticore_storage.StorageManager`.

Every read opens its own connection from the manager's engine; numbers come back as Decimal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from . import schema
from .errors import StorageError
from .records import read_order, row_to_order, row_to_trade

__all__ = ["StorageReads", "live_orders", "row_limit"]


class StorageReads:
    """Order and trade queries over ``engine`` (a base of ``StorageManager``, which sets ``engine``)."""

    engine: Engine

    def _find(self, connection: Connection, order_id: object, symbol: object) -> Any:
        if not isinstance(order_id, str):
            raise StorageError("order_id must be a string")
        query = select(schema.orders).where(schema.orders.c.order_id == order_id)
        if symbol is not None:
            query = query.where(schema.orders.c.symbol == symbol)
        rows = connection.execute(query).mappings().all()
        if len(rows) > 1:
            live = [row for row in rows if row["status"] in schema.LIVE_STATUSES]
            if len(live) != 1:
                raise StorageError(f"order id {order_id!r} exists in several markets: pass symbol=")
            return live[0]
        return rows[0] if rows else None

    def get_order(self, order_id: str, symbol: str | None = None) -> dict[str, Any] | None:
        """The stored order as a dict (keys of the book's ``get_order`` plus ``cancel_reason`` and
        ``last_sequence``; numbers as Decimal), or None.

        As in the book's ``get_order``: ``quantity`` is the quantity still open (0 once the order is
        filled, cancelled or expired), ``original_quantity`` the total and ``filled_quantity`` what
        traded."""
        with self.engine.connect() as connection:
            row = self._find(connection, order_id, symbol)
        return None if row is None else read_order(row)

    def get_order_by_client_id(self, user_id: str | int, client_order_id: str) -> dict[str, Any] | None:
        """The newest stored order (by arrival) that ``user_id`` named ``client_order_id``, as
        :meth:`get_order` shows it, or None. Another user's orders are never returned."""
        if not isinstance(client_order_id, str):
            raise StorageError("client_order_id must be a string")
        orders = schema.orders
        query = (
            select(orders)
            .where(orders.c.user_id == str(user_id), orders.c.client_order_id == client_order_id)
            .order_by(orders.c.timestamp.desc(), orders.c.priority.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else row_to_order(row)

    def get_active_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Live stored orders (open, partially filled, untriggered stops) in time priority, shaped as
        :meth:`get_order`.

        Made for the guide's restart loop: ``quantity`` is the quantity still open (what to add back),
        while ``original_quantity`` and ``filled_quantity`` keep the history. :meth:`restore` rebuilds
        a book exactly, including priority, iceberg reserves and stops; prefer it.
        """
        with self.engine.connect() as connection:
            rows = connection.execute(live_orders(symbol)).mappings().all()
        return [read_order(row) for row in rows]

    def get_orders(
        self, user_id: str | None = None, symbol: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Stored orders of every status (as :meth:`get_order` shows them), newest first (by arrival).

        Filter by ``user_id`` and/or ``symbol``; at most ``limit`` (1..10000) rows."""
        orders = schema.orders
        query = select(orders)
        if user_id is not None:
            query = query.where(orders.c.user_id == str(user_id))
        if symbol is not None:
            query = query.where(orders.c.symbol == symbol)
        query = query.order_by(orders.c.timestamp.desc(), orders.c.priority.desc()).limit(row_limit(limit))
        with self.engine.connect() as connection:
            return [read_order(row) for row in connection.execute(query).mappings()]

    def get_trades(
        self, symbol: str | None = None, limit: int = 100, user_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored trades, newest first; with ``user_id`` only those where the user was maker or taker."""
        query = select(schema.trades)
        if symbol is not None:
            query = query.where(schema.trades.c.symbol == symbol)
        if user_id is not None:
            query = query.where(
                (schema.trades.c.maker_user_id == str(user_id))
                | (schema.trades.c.taker_user_id == str(user_id))
            )
        query = query.order_by(schema.trades.c.timestamp.desc(), schema.trades.c.sequence.desc()).limit(
            row_limit(limit)
        )
        with self.engine.connect() as connection:
            return [row_to_trade(row) for row in connection.execute(query).mappings()]


def live_orders(symbol: str | None) -> Select[Any]:
    """Live orders (of ``symbol``, or of every market) in time priority."""
    query = select(schema.orders).where(schema.orders.c.status.in_(schema.LIVE_STATUSES))
    if symbol is not None:
        query = query.where(schema.orders.c.symbol == symbol)
    return query.order_by(schema.orders.c.priority, schema.orders.c.timestamp)


def row_limit(value: object) -> int:
    """``value`` if it is an integer row limit from 1 to 10000; StorageError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise StorageError("limit must be an integer from 1 to 10000")
    return value
