"""The shapes of event payloads, as ``TypedDict`` types for consumers to check their key reads.

Types (standard library, no runtime cost) and, at the end, the keys of each payload in their published
order (tuples the book builds its dict templates from once, at import): the book builds plain dicts,
and a handler keeps the
public ``(event_type, data)`` signature with ``data: dict[str, Any]``, reading it through one
``typing.cast`` to the shape of its event type. docs/events.md is the contract these types follow; every
payload has ``symbol``, ``sequence`` and ``timestamp``. Prices, quantities and fees are numbers in the
book's ``number_format`` (:data:`Number`): float by default, ``str`` or ``Decimal`` on request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, TypedDict

__all__ = [
    "ORDER_ADDED_KEYS",
    "ORDER_CANCELLED_KEYS",
    "ORDER_EXPIRED_KEYS",
    "ORDER_FILLED_KEYS",
    "ORDER_KEYS",
    "ORDER_TRIGGERED_KEYS",
    "PRICE_LEVEL_KEYS",
    "READ_ORDER_KEYS",
    "TRADE_KEYS",
    "BookClearedPayload",
    "ErrorPayload",
    "Number",
    "OrderCancelledPayload",
    "OrderExpiredPayload",
    "OrderFilledPayload",
    "OrderModifiedPayload",
    "OrderPayload",
    "OrderTriggeredPayload",
    "PriceLevelPayload",
    "TradePayload",
]

#: A price, quantity or fee in the book's number format.
Number = float | str | Decimal


class _Event(TypedDict):
    symbol: str
    sequence: int
    timestamp: float


class OrderPayload(_Event):
    """ORDER_ADDED (and the common part of every order event): the whole order after the change;
    ``quantity`` is its total, ``remaining_quantity`` its open quantity."""

    order_id: str
    client_order_id: str | None
    side: str
    price: Number | None
    quantity: Number
    filled_quantity: Number
    remaining_quantity: Number
    visible_quantity: Number
    displayed_quantity: Number | None
    order_type: str
    time_in_force: str
    expiry_time: float | None
    user_id: str | int | None
    order_timestamp: float
    stop_price: Number | None
    trail_value: Number | None
    trail_is_percent: bool
    trail_reference_price: Number | None
    self_trade_prevention: str
    triggered: bool
    status: str
    priority: int


class _ModifiedStop(TypedDict, total=False):
    old_stop_price: Number | None
    new_stop_price: Number | None


class OrderModifiedPayload(OrderPayload, _ModifiedStop):
    """ORDER_MODIFIED: ``reason`` is ``user``, ``self_trade_prevention`` or ``trailing_stop`` (which
    adds ``old_stop_price, new_stop_price``)."""

    old_price: Number | None
    new_price: Number | None
    old_quantity: Number
    new_quantity: Number
    old_expiry_time: float | None
    new_expiry_time: float | None
    priority_kept: bool
    reason: str


class OrderCancelledPayload(OrderPayload):
    """ORDER_CANCELLED: ``reason`` is ``user``, ``ioc``, ``fok``, ``post_only`` or
    ``self_trade_prevention``; ``cancelled_quantity`` what was left and is now gone."""

    reason: str
    cancelled_quantity: Number


class OrderExpiredPayload(OrderPayload):
    """ORDER_EXPIRED."""

    expired_quantity: Number


class OrderTriggeredPayload(OrderPayload):
    """ORDER_TRIGGERED: ``trigger_price`` is the last trade price."""

    trigger_price: Number


class TradePayload(_Event):
    """TRADE_EXECUTED, once per trade; ``price`` is the maker's."""

    trade_id: str
    price: Number
    quantity: Number
    maker_order_id: str
    taker_order_id: str
    maker_user_id: str | int | None
    taker_user_id: str | int | None
    buy_order_id: str
    sell_order_id: str
    taker_side: str
    maker_fee: Number
    taker_fee: Number
    maker_fee_rate: Number
    taker_fee_rate: Number


class OrderFilledPayload(_Event):
    """ORDER_FILLED, once per side of a trade (maker first)."""

    order_id: str
    client_order_id: str | None
    trade_id: str
    side: str
    price: Number | None
    quantity: Number
    fill_price: Number
    fill_quantity: Number
    filled_quantity: Number
    remaining_quantity: Number
    visible_quantity: Number
    priority: int
    is_maker: bool
    fee: Number
    user_id: str | int | None
    order_type: str
    status: str


class PriceLevelPayload(_Event):
    """PRICE_LEVEL_ADDED / CHANGED / REMOVED: the level's visible total after the change (0 removed)."""

    side: str
    price: Number
    quantity: Number
    order_count: int


class BookClearedPayload(_Event):
    """BOOK_CLEARED."""

    order_count: int
    order_ids: list[str]


class ErrorPayload(_Event):
    """ERROR: a handler failed on the event ``event_type`` / ``event_sequence``."""

    message: str
    error_type: str
    handler: str
    event_type: str
    event_sequence: int


# ------------------------------------------------------------------ key order of each payload

#: The keys of an order's dict (``export_state`` orders, the common part of order events), in order.
ORDER_KEYS: Final = (
    "order_id",
    "client_order_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "displayed_quantity",
    "order_type",
    "time_in_force",
    "expiry_time",
    "user_id",
    "timestamp",
    "stop_price",
    "trail_value",
    "trail_is_percent",
    "trail_reference_price",
    "self_trade_prevention",
    "triggered",
    "status",
    "priority",
)
_QUANTITY_AT: Final = ORDER_KEYS.index("quantity") + 1
#: An order as readers get it (``get_order``, ``get_orders``): ``quantity`` is the open quantity and
#: ``original_quantity`` the total, as the original library's readers use them.
READ_ORDER_KEYS: Final = (*ORDER_KEYS[:_QUANTITY_AT], "original_quantity", *ORDER_KEYS[_QUANTITY_AT:])
#: ORDER_ADDED, ORDER_CANCELLED, ORDER_EXPIRED, ORDER_TRIGGERED (ORDER_MODIFIED adds its own keys).
ORDER_ADDED_KEYS: Final = (*ORDER_KEYS, "order_timestamp", "sequence")
ORDER_CANCELLED_KEYS: Final = (*ORDER_KEYS, "reason", "cancelled_quantity", "order_timestamp", "sequence")
ORDER_EXPIRED_KEYS: Final = (*ORDER_KEYS, "expired_quantity", "order_timestamp", "sequence")
ORDER_TRIGGERED_KEYS: Final = (*ORDER_KEYS, "trigger_price", "order_timestamp", "sequence")
#: TRADE_EXECUTED.
TRADE_KEYS: Final = (
    "trade_id",
    "symbol",
    "price",
    "quantity",
    "maker_order_id",
    "taker_order_id",
    "maker_user_id",
    "taker_user_id",
    "buy_order_id",
    "sell_order_id",
    "taker_side",
    "maker_fee",
    "taker_fee",
    "maker_fee_rate",
    "taker_fee_rate",
    "timestamp",
    "sequence",
)
#: PRICE_LEVEL_ADDED / _CHANGED / _REMOVED.
PRICE_LEVEL_KEYS: Final = ("symbol", "timestamp", "sequence", "side", "price", "quantity", "order_count")
#: ORDER_FILLED.
ORDER_FILLED_KEYS: Final = (
    "order_id",
    "client_order_id",
    "symbol",
    "trade_id",
    "side",
    "price",
    "quantity",
    "fill_price",
    "fill_quantity",
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "priority",
    "is_maker",
    "fee",
    "user_id",
    "order_type",
    "status",
    "timestamp",
    "sequence",
)
