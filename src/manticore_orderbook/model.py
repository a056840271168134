"""The book's records: orders, price levels and trades, all in integer units.

These classes are slotted and hold integers (ticks for prices, lots for quantities); the
:class:`~manticore_orderbook.OrderBook` turns them into user numbers when it builds dictionaries.
They are exposed for type hints and advanced use; treat instances you receive as read-only.
"""

from __future__ import annotations

from decimal import Decimal

from .enums import OrderType, SelfTradePrevention, Side, TimeInForce

__all__ = ["Order", "PriceLevel", "Trade"]


class Order:
    """One live or finished order.

    Quantities are in lots: ``quantity == filled + open`` always holds (``quantity`` shrinks only by
    self-trade decrement or a modify). ``visible`` is the part shown in its price level (an iceberg's
    current slice, otherwise ``open``); ``peak`` is an iceberg's display size (0 for other orders).
    ``level`` is the price level the order rests in, or None while it is not resting. ``rank`` orders
    time priority: it is the book's event sequence number at which the order took its current place
    (its ORDER_ADDED, ORDER_TRIGGERED or priority-losing ORDER_MODIFIED, or the ORDER_FILLED that
    refilled an iceberg slice), so the lower, the earlier it reached its place in its level's queue.
    ``client_order_id`` is the name the order's owner gave it (None when none was given).
    """

    __slots__ = (
        "client_order_id",
        "expiry",
        "filled",
        "level",
        "open",
        "order_id",
        "order_type",
        "peak",
        "pending",
        "price",
        "quantity",
        "rank",
        "side",
        "stop_price",
        "stp",
        "tif",
        "timestamp",
        "trail",
        "trail_is_percent",
        "trail_ref",
        "triggered",
        "user_id",
        "visible",
    )

    def __init__(
        self,
        order_id: str,
        side: Side,
        price: int | None,
        quantity: int,
        order_type: OrderType,
        tif: TimeInForce,
        user_id: str | int | None,
        timestamp: float,
        stp: SelfTradePrevention,
    ) -> None:
        self.order_id = order_id
        self.client_order_id: str | None = None
        self.side = side
        self.price = price
        self.quantity = quantity
        self.filled = 0
        self.open = quantity
        self.visible = 0
        self.peak = 0
        self.order_type = order_type
        self.tif = tif
        self.expiry: float | None = None
        self.user_id = user_id
        self.timestamp = timestamp
        self.stp = stp
        self.stop_price: int | None = None
        self.trail: int | Decimal | None = None
        self.trail_is_percent = False
        self.trail_ref: int | None = None
        self.pending = False
        self.triggered = False
        self.level: PriceLevel | None = None
        self.rank = 0

    def copy(self) -> Order:
        """A detached copy with the same fields (not resting anywhere)."""
        clone = Order(
            self.order_id,
            self.side,
            self.price,
            self.quantity,
            self.order_type,
            self.tif,
            self.user_id,
            self.timestamp,
            self.stp,
        )
        clone.client_order_id = self.client_order_id
        clone.expiry = self.expiry
        clone.peak = self.peak
        clone.stop_price = self.stop_price
        clone.trail = self.trail
        clone.trail_is_percent = self.trail_is_percent
        clone.filled = self.filled
        clone.open = self.open
        clone.visible = self.visible
        clone.trail_ref = self.trail_ref
        clone.pending = self.pending
        clone.triggered = self.triggered
        clone.rank = self.rank
        return clone

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id!r}, {self.side.value}, price={self.price}, open={self.open}/"
            f"{self.quantity}, {self.order_type.value}/{self.tif.value})"
        )


class PriceLevel:
    """The queue of orders resting at one price on one side.

    The queue is ``orders[head:]``, in time priority: taking the front order advances ``head``
    (entries before it are spent and dropped in one slice once they are many; a plain list indexes
    and appends natively under mypyc, where every ``deque`` operation is a generic method call).
    Cancelled orders stay in the queue until they reach the front or the queue is compacted (lazy
    deletion, so a cancel is O(1)): they are recognised by ``order.level`` no longer being this
    level, and ``dead`` counts them. ``total`` is the visible quantity, ``reserve`` the hidden
    iceberg quantity and ``count`` the number of live orders. ``price_out`` is the book's output
    number for ``price`` (a float by default), kept by the book once an event has needed it, so that the
    level's events and the trades at it share one object instead of converting the price again.
    """

    __slots__ = ("count", "dead", "head", "orders", "price", "price_out", "reserve", "side", "total")

    def __init__(self, price: int, side: Side) -> None:
        self.price = price
        self.side = side
        self.orders: list[Order] = []
        self.head = 0
        self.total = 0
        self.reserve = 0
        self.count = 0
        self.dead = 0
        self.price_out: object = None

    def live_orders(self) -> list[Order]:
        """The live orders in time priority."""
        return [o for o in self.orders[self.head :] if o.level is self]

    def advance(self) -> None:
        """Take the front entry off the queue (it must have one)."""
        head = self.head + 1
        if head >= 32 and head + head > len(self.orders):  # spent entries dominate: drop them
            del self.orders[:head]
            head = 0
        self.head = head

    def clear(self) -> None:
        """Empty the queue (the level has no live order left)."""
        self.orders.clear()
        self.head = 0
        self.dead = 0

    def compact(self) -> None:
        """Drop spent and cancelled entries from the queue."""
        self.orders = [o for o in self.orders[self.head :] if o.level is self]
        self.head = 0
        self.dead = 0


class Trade:
    """One execution: ``quantity`` lots at ``price`` ticks between a resting maker and a taker."""

    __slots__ = (
        "maker_order_id",
        "maker_user_id",
        "number",
        "price",
        "quantity",
        "sequence",
        "taker_order_id",
        "taker_side",
        "taker_user_id",
        "timestamp",
    )

    def __init__(
        self,
        number: int,
        price: int,
        quantity: int,
        maker: Order,
        taker: Order,
        timestamp: float,
        sequence: int,
    ) -> None:
        self.number = number
        self.price = price
        self.quantity = quantity
        self.maker_order_id = maker.order_id
        self.maker_user_id = maker.user_id
        self.taker_order_id = taker.order_id
        self.taker_user_id = taker.user_id
        self.taker_side = taker.side
        self.timestamp = timestamp
        self.sequence = sequence
