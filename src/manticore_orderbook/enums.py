"""Enumerations of the public API and the tolerant parsers that turn user input into them.

Every place that takes a side, order type, time in force or self-trade-prevention mode accepts the enum
member or its string value in any letter case (``"buy"``, ``"BUY"``, ``Side.BUY``).
"""

from __future__ import annotations

from enum import Enum
from typing import Final, TypeVar

from .errors import InvalidOrderError

__all__ = ["EventType", "OrderType", "SelfTradePrevention", "Side", "TimeInForce"]


class Side(str, Enum):
    """Which side of the book an order is on."""

    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    """How an order enters and behaves in the book (see docs/orderbook.md)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    POST_ONLY = "POST_ONLY"
    STOP_LIMIT = "STOP_LIMIT"
    STOP_MARKET = "STOP_MARKET"
    TRAILING_STOP = "TRAILING_STOP"
    ICEBERG = "ICEBERG"


class TimeInForce(str, Enum):
    """How long an order may rest: until cancelled, not at all, all-or-nothing, or until a time."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class SelfTradePrevention(str, Enum):
    """What happens when an incoming order would trade against a resting order of the same user.

    The incoming (taker) order's mode decides. ``CANCEL_NEWEST`` cancels the taker's remainder,
    ``CANCEL_OLDEST`` cancels the resting order and goes on matching, ``CANCEL_BOTH`` cancels both, and
    ``DECREMENT`` reduces both by the smaller open quantity without a trade.
    """

    NONE = "none"
    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"


class EventType(str, Enum):
    """Every event a book publishes. The declaration order is the index used internally."""

    ORDER_ADDED = "order_added"
    ORDER_MODIFIED = "order_modified"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_FILLED = "order_filled"
    ORDER_EXPIRED = "order_expired"
    ORDER_TRIGGERED = "order_triggered"
    TRADE_EXECUTED = "trade_executed"
    PRICE_LEVEL_ADDED = "price_level_added"
    PRICE_LEVEL_CHANGED = "price_level_changed"
    PRICE_LEVEL_REMOVED = "price_level_removed"
    BOOK_CLEARED = "book_cleared"
    ERROR = "error"


# Members as module constants, defined once for the book's modules (book.py, restore.py): reading an
# Enum class attribute costs ~150 ns (EnumType's metaclass machinery), a module constant does not.
BUY: Final = Side.BUY
SELL: Final = Side.SELL
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
POST_ONLY: Final = OrderType.POST_ONLY
STOP_LIMIT: Final = OrderType.STOP_LIMIT
STOP_MARKET: Final = OrderType.STOP_MARKET
TRAILING_STOP: Final = OrderType.TRAILING_STOP
ICEBERG: Final = OrderType.ICEBERG
GTC: Final = TimeInForce.GTC
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
GTD: Final = TimeInForce.GTD
STP_NONE: Final = SelfTradePrevention.NONE
STP_NEWEST: Final = SelfTradePrevention.CANCEL_NEWEST
STP_OLDEST: Final = SelfTradePrevention.CANCEL_OLDEST
STP_BOTH: Final = SelfTradePrevention.CANCEL_BOTH
STP_DECREMENT: Final = SelfTradePrevention.DECREMENT


_E = TypeVar("_E", bound=Enum)


def _lookup_table(enum_cls: type[_E]) -> dict[str, _E]:
    table: dict[str, _E] = {}
    for member in enum_cls:
        for spelling in (member.name, str(member.value)):
            table[spelling] = member
            table[spelling.lower()] = member
            table[spelling.upper()] = member
    return table


_SIDES = _lookup_table(Side)
_ORDER_TYPES = _lookup_table(OrderType)
_TIFS = _lookup_table(TimeInForce)
_STP = _lookup_table(SelfTradePrevention)
_EVENTS = _lookup_table(EventType)


def _parse(value: object, enum_cls: type[_E], table: dict[str, _E], what: str) -> _E:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        member = table.get(value)
        if member is None:
            member = table.get(value.strip().lower())
        if member is not None:
            return member
        choices = ", ".join(str(m.value) for m in enum_cls)
        raise InvalidOrderError(f"unknown {what} {value!r}; expected one of: {choices}")
    raise InvalidOrderError(f"{what} must be a string or {enum_cls.__name__}, not {type(value).__name__}")


def parse_side(value: object) -> Side:
    """Return the :class:`Side` named by ``value``; raise :class:`InvalidOrderError` otherwise."""
    return _parse(value, Side, _SIDES, "side")


def parse_order_type(value: object) -> OrderType:
    """Return the :class:`OrderType` named by ``value``; raise :class:`InvalidOrderError` otherwise."""
    return _parse(value, OrderType, _ORDER_TYPES, "order type")


def parse_time_in_force(value: object) -> TimeInForce:
    """Return the :class:`TimeInForce` named by ``value``; raise :class:`InvalidOrderError` otherwise."""
    return _parse(value, TimeInForce, _TIFS, "time in force")


def parse_stp(value: object) -> SelfTradePrevention:
    """Return the :class:`SelfTradePrevention` mode named by ``value``; raise otherwise."""
    return _parse(value, SelfTradePrevention, _STP, "self-trade prevention mode")


def parse_event_type(value: object) -> EventType:
    """Return the :class:`EventType` named by ``value``; raise :class:`InvalidOrderError` otherwise."""
    return _parse(value, EventType, _EVENTS, "event type")
