"""The shapes of event payloads, as ``TypedDict`` types for consumers to check their key reads.

Types only (standard library, no runtime cost): the book builds plain dicts, and a handler keeps the
public ``(event_type, data)`` signature with ``data: dict[str, Any]``, reading it through one
``typing.cast`` to the shape of its event type. docs/events.md is the contract these types follow; every
payload has ``symbol``, ``sequence`` and ``timestamp``. Prices, quantities and fees are numbers in the
book's ``number_format`` (:data:`Number`): float by default, ``str`` or ``Decimal`` on request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

__all__ = [
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
