"""Reads of orders and fills: the live book first, then the recent-orders view, then storage.

Storage trails the journal by the write-behind delay (normally milliseconds), so an order is looked up
in its book while it is live, in :class:`~manticore_matching.recent.RecentOrders` for a while after it
ended, and in storage after that. Every answer has the API's order shape (:func:`rest_order`). The
caller holds the exchange's lock while the in-memory parts are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from manticore_orderbook import rules
from manticore_storage import StorageManager

from .commands import ORDER_ID
from .config import MarketConfig
from .formatting import format_order
from .market import Market, find_live
from .recent import RecentOrders

__all__ = [
    "config_of",
    "fills",
    "get_order",
    "get_order_by_client_id",
    "jsonable",
    "open_orders",
    "order_history",
    "rest_order",
]

Markets = dict[str, Market]


def get_order(
    markets: Markets, recent: RecentOrders, storage: StorageManager, user_id: str | None, order_id: object
) -> dict[str, Any] | None:
    """See :meth:`manticore_matching.Exchange.get_order`."""
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        return None
    found = find_live(markets, order_id)
    order: dict[str, Any] | None
    if found is not None:
        order = rest_order({"symbol": found[0].config.symbol, **found[1]}, found[0].config)
    elif order_id in recent.recent:
        order = dict(recent.recent[order_id])
    else:
        stored = storage.get_order(order_id)
        order = None if stored is None else rest_order(stored, config_of(markets, stored))
    if order is None or (user_id is not None and order.get("user_id") != user_id):
        return None
    return order


def get_order_by_client_id(
    markets: Markets, recent: RecentOrders, storage: StorageManager, user_id: object, client_order_id: object
) -> dict[str, Any] | None:
    """See :meth:`manticore_matching.Exchange.get_order_by_client_id`."""
    if not isinstance(user_id, str) or not isinstance(client_order_id, str):
        return None
    if not rules.CLIENT_ORDER_ID_PATTERN.fullmatch(client_order_id):
        return None
    order_id = recent.live_client_order(user_id, client_order_id)
    if order_id is None:
        order_id = recent.recent_names.get((user_id, client_order_id))
    if order_id is not None:
        found = get_order(markets, recent, storage, user_id, order_id)
        if found is not None and found.get("client_order_id") == client_order_id:
            return found
    stored = storage.get_order_by_client_id(user_id, client_order_id)
    return None if stored is None else jsonable(stored)


def open_orders(markets: Iterable[Market], user_id: str) -> list[dict[str, Any]]:
    """The user's live orders in ``markets``, per market in book order."""
    result = []
    for market in markets:
        for order in market.book.get_orders(user_id=user_id):
            result.append(rest_order({"symbol": market.config.symbol, **order}, market.config))
    return result


def order_history(
    markets: Markets, storage: StorageManager, user_id: str, symbol: str | None, limit: int
) -> list[dict[str, Any]]:
    """See :meth:`manticore_matching.Exchange.order_history`."""
    return [
        rest_order(order, config_of(markets, order)) for order in storage.get_orders(user_id, symbol, limit)
    ]


def fills(
    markets: Markets, storage: StorageManager, user_id: str, symbol: str | None, limit: int
) -> list[dict[str, Any]]:
    """See :meth:`manticore_matching.Exchange.fills`."""
    result: list[dict[str, Any]] = []
    for trade in storage.get_trades(symbol, limit, user_id):
        market = markets.get(trade["symbol"])
        fee_asset = None if market is None else market.config.quote_asset
        taker_side = trade["taker_side"]
        for role in ("taker", "maker"):
            if trade[f"{role}_user_id"] != user_id:
                continue
            side = taker_side if role == "taker" else ("sell" if taker_side == "buy" else "buy")
            fill = {
                "trade_id": trade["trade_id"],
                "symbol": trade["symbol"],
                "order_id": trade[f"{role}_order_id"],
                "client_order_id": trade.get(f"{role}_client_order_id"),
                "side": side,
                "role": role,
                "price": trade["price"],
                "quantity": trade["quantity"],
                "fee": trade[f"{role}_fee"],
                "fee_asset": fee_asset,
                "timestamp": trade["timestamp"],
            }
            result.append(rest_order(fill, None if market is None else market.config))
    return result[: max(0, limit)]


def config_of(markets: Markets, record: dict[str, Any]) -> MarketConfig | None:
    """The configuration of the market a stored order or trade belongs to (None if unknown)."""
    symbol = record.get("symbol")
    market = markets.get(symbol) if isinstance(symbol, str) else None
    return None if market is None else market.config


def rest_order(order: dict[str, Any], config: MarketConfig | None) -> dict[str, Any]:
    """The API's order (or trade) shape from a book or storage read: ``quantity`` is the total, as in
    the order events and the place answer (the reads give the open quantity there, the total as
    ``original_quantity``); ``remaining_quantity`` is the open quantity. Numbers are written by the
    rule of :mod:`.formatting` (grid decimals for prices and quantities, amounts trimmed)."""
    order = dict(order)
    total = order.pop("original_quantity", None)
    if total is not None:
        order["quantity"] = total
    if config is not None:
        order = format_order(order, config.tick_size, config.lot_size)
    return jsonable(order)


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with Decimal values as strings."""
    return {key: (str(value) if isinstance(value, Decimal) else value) for key, value in data.items()}
