"""Conversions between the book's dictionaries and table rows, with exact numbers.

Event payloads carry numbers in the book's ``number_format`` (floats by default). Given the market's
grid, a float is read as the grid value it stands for (the book outputs the float nearest to an exact
grid value), so ``0.1`` is stored as ``0.1`` exactly. Without a grid, floats are read through their
shortest ``repr``. Fees are recomputed exactly from price, quantity and the market's fee rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from functools import cached_property
from typing import Any

from sqlalchemy import RowMapping

from manticore_orderbook import InvalidOrderError, OrderBook
from manticore_orderbook.numbers import Grid, to_decimal
from manticore_orderbook.payloads import OrderFilledPayload, TradePayload

__all__ = [
    "Market",
    "StoredTradePayload",
    "exact",
    "fill_update",
    "order_row",
    "read_order",
    "row_to_order",
    "row_to_trade",
    "trade_row",
]


class StoredTradePayload(TradePayload, total=False):
    """A trade as storage takes it: TRADE_EXECUTED's payload, optionally with the two orders' client
    order ids (which storage keeps and the book's payload does not carry). Defined here: the book's
    :mod:`~manticore_orderbook.payloads` has no such type."""

    maker_client_order_id: str | None
    taker_client_order_id: str | None


_EXACT = Context(prec=999, rounding=ROUND_FLOOR, Emax=999999, Emin=-999999)


@dataclass(frozen=True)
class Market:
    """A market's configuration as storage keeps it (``manticore_markets``)."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)
    order_id_prefix: str | None = None

    @classmethod
    def of_book(cls, book: OrderBook) -> Market:
        return cls(
            book.symbol,
            book.tick_size,
            book.lot_size,
            *book.fee_rates,
            book.order_id_prefix,
        )

    def price_grid(self) -> Grid:
        return self._grids[0]

    def quantity_grid(self) -> Grid:
        return self._grids[1]

    @cached_property
    def _grids(self) -> tuple[Grid, Grid]:
        return (
            Grid(self.tick_size, "price", "decimal", max_units=1 << 200),
            Grid(self.lot_size, "quantity", "decimal", max_units=1 << 200),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "maker_fee_rate": self.maker_fee_rate,
            "taker_fee_rate": self.taker_fee_rate,
        }


def exact(value: object, grid: Grid | None, what: str) -> Decimal | None:
    """``value`` as an exact Decimal on ``grid`` (None stays None). Raises InvalidOrderError."""
    if value is None:
        return None
    if grid is None:
        return to_decimal(value, what)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return Decimal(0)
    if isinstance(value, (str, Decimal)) and to_decimal(value, what) == 0:
        return Decimal(0)
    return grid.to_decimal(grid.to_units(value))


def _user(value: object) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return str(value), True
    return str(value), False


def order_row(
    data: Mapping[str, Any],
    market: Market | None,
    sequence: int,
    now: float | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """A full ``manticore_orders`` row from an order dict (an order event, ``get_order``, a user dict).

    The row's ``quantity`` is the order's total: ``original_quantity`` when the dict has one (the
    shape of the book's and storage's reads, whose ``quantity`` is the open quantity), else
    ``quantity`` (the shape of order events)."""
    price_grid = None if market is None else market.price_grid()
    qty_grid = None if market is None else market.quantity_grid()
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidOrderError("an order needs a non-empty string order_id")
    side = str(data.get("side", "")).lower()
    if side not in ("buy", "sell"):
        raise InvalidOrderError(f"side must be 'buy' or 'sell', got {data.get('side')!r}")
    total = data.get("original_quantity")
    quantity = exact(data.get("quantity") if total is None else total, qty_grid, "quantity")
    if quantity is None:
        raise InvalidOrderError("an order needs a quantity")
    filled = exact(data.get("filled_quantity", 0), qty_grid, "filled_quantity") or Decimal(0)
    remaining = exact(data.get("remaining_quantity"), qty_grid, "remaining_quantity")
    if remaining is None:
        remaining = quantity - filled
    user_id, user_is_int = _user(data.get("user_id"))
    order_type = str(data.get("order_type") or ("LIMIT" if data.get("price") is not None else "MARKET"))
    trail_is_percent = bool(data.get("trail_is_percent", False))
    trail = data.get("trail_value")
    timestamp = data.get("order_timestamp", data.get("timestamp"))
    status = data.get("status") or ("partially_filled" if filled else "open")
    return {
        "symbol": symbol or data.get("symbol") or (market.symbol if market else "DEFAULT"),
        "order_id": order_id,
        "side": side,
        "price": exact(data.get("price"), price_grid, "price"),
        "quantity": quantity,
        "filled_quantity": filled,
        "remaining_quantity": remaining,
        "visible_quantity": exact(data.get("visible_quantity"), qty_grid, "visible_quantity"),
        "displayed_quantity": exact(data.get("displayed_quantity"), qty_grid, "displayed_quantity"),
        "order_type": order_type.upper(),
        "time_in_force": str(data.get("time_in_force") or "GTC").upper(),
        "expiry_time": None if data.get("expiry_time") is None else float(data["expiry_time"]),
        "user_id": user_id,
        "user_id_is_int": user_is_int,
        "timestamp": float(timestamp) if timestamp is not None else float(now or 0.0),
        "stop_price": exact(data.get("stop_price"), price_grid, "stop_price"),
        "trail_value": exact(trail, None if trail_is_percent else price_grid, "trail_value"),
        "trail_is_percent": trail_is_percent,
        "trail_reference_price": exact(
            data.get("trail_reference_price"), price_grid, "trail_reference_price"
        ),
        "self_trade_prevention": data.get("self_trade_prevention"),
        "triggered": bool(data.get("triggered", False)),
        "status": str(status),
        "cancel_reason": data.get("reason") if status == "cancelled" else None,
        "priority": int(data.get("priority") or 0),
        "last_sequence": sequence,
        "updated_at": now,
        "client_order_id": data.get("client_order_id"),
    }


def fill_update(data: OrderFilledPayload, market: Market | None, sequence: int) -> dict[str, Any]:
    """The columns an ORDER_FILLED event changes."""
    qty_grid = None if market is None else market.quantity_grid()
    return {
        "filled_quantity": exact(data["filled_quantity"], qty_grid, "filled_quantity"),
        "remaining_quantity": exact(data["remaining_quantity"], qty_grid, "remaining_quantity"),
        "visible_quantity": exact(data.get("visible_quantity"), qty_grid, "visible_quantity"),
        "priority": data.get("priority"),
        "status": data.get("status") or "partially_filled",
        "last_sequence": sequence,
    }


def trade_row(data: StoredTradePayload, market: Market | None, symbol: str | None = None) -> dict[str, Any]:
    """A ``manticore_trades`` row; fees recomputed exactly when the market is known.

    ``data`` is read as TRADE_EXECUTED's payload; the guide's ``save_trade`` passes users' dicts of
    that shape through the same function (checked at run time: a missing id, price or quantity is an
    :class:`InvalidOrderError`)."""
    price_grid = None if market is None else market.price_grid()
    qty_grid = None if market is None else market.quantity_grid()
    trade_id = data.get("trade_id")
    if not isinstance(trade_id, str) or not trade_id:
        raise InvalidOrderError("a trade needs a non-empty string trade_id")
    price = exact(data.get("price"), price_grid, "price")
    quantity = exact(data.get("quantity"), qty_grid, "quantity")
    if price is None or quantity is None:
        raise InvalidOrderError("a trade needs a price and a quantity")
    if market is not None:
        notional = _EXACT.multiply(price, quantity)
        maker_fee: Decimal | None = _EXACT.multiply(notional, market.maker_fee_rate)
        taker_fee: Decimal | None = _EXACT.multiply(notional, market.taker_fee_rate)
    else:
        maker_fee = exact(data.get("maker_fee"), None, "maker_fee")
        taker_fee = exact(data.get("taker_fee"), None, "taker_fee")
    timestamp = data.get("timestamp")
    return {
        "symbol": symbol or data.get("symbol") or (market.symbol if market else "DEFAULT"),
        "trade_id": trade_id,
        "sequence": data.get("sequence"),
        "price": price,
        "quantity": quantity,
        "maker_order_id": data.get("maker_order_id"),
        "taker_order_id": data.get("taker_order_id"),
        "maker_user_id": _user(data.get("maker_user_id"))[0],
        "taker_user_id": _user(data.get("taker_user_id"))[0],
        "taker_side": data.get("taker_side"),
        "maker_fee": maker_fee,
        "taker_fee": taker_fee,
        "timestamp": float(timestamp) if timestamp is not None else 0.0,
        "maker_client_order_id": data.get("maker_client_order_id"),
        "taker_client_order_id": data.get("taker_client_order_id"),
    }


def row_to_order(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """An order row as a dict with the row's fields (``quantity``: the total; numbers as Decimal);
    :func:`read_order` is the shape readers get."""
    user_id: Any = row["user_id"]
    if user_id is not None and row["user_id_is_int"]:
        user_id = int(user_id)
    return {
        "order_id": row["order_id"],
        "client_order_id": row["client_order_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "price": row["price"],
        "quantity": row["quantity"],
        "filled_quantity": row["filled_quantity"],
        "remaining_quantity": row["remaining_quantity"],
        "visible_quantity": row["visible_quantity"],
        "displayed_quantity": row["displayed_quantity"],
        "order_type": row["order_type"],
        "time_in_force": row["time_in_force"],
        "expiry_time": row["expiry_time"],
        "user_id": user_id,
        "timestamp": row["timestamp"],
        "stop_price": row["stop_price"],
        "trail_value": row["trail_value"],
        "trail_is_percent": bool(row["trail_is_percent"]),
        "trail_reference_price": row["trail_reference_price"],
        "self_trade_prevention": row["self_trade_prevention"],
        "triggered": bool(row["triggered"]),
        "status": row["status"],
        "cancel_reason": row["cancel_reason"],
        "priority": row["priority"],
        "last_sequence": row["last_sequence"],
    }


def row_to_trade(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """A trade row as a dict with the keys of TRADE_EXECUTED (numbers as Decimal)."""
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 (RowMapping)


def read_order(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """An order row as storage's readers get it, shaped like the book's ``get_order``: ``quantity`` is
    the open quantity (``remaining_quantity``), ``original_quantity`` the total (numbers as Decimal)."""
    order = row_to_order(row)
    result: dict[str, Any] = {}
    for key, value in order.items():
        if key == "quantity":
            result["quantity"] = order["remaining_quantity"]
            result["original_quantity"] = value
        else:
            result[key] = value
    return result
