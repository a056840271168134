"""What an order request asks for: its arguments parsed and checked for consistency.

This module reads the order book's vocabulary (sides, order types, time in force, self-trade
prevention modes, given as strings in any case or as the book's ``str`` enums); which arguments each
order type takes is :mod:`manticore_orderbook.rules`'. It knows nothing about money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from manticore_orderbook import OrderType, SelfTradePrevention, TimeInForce, rules

from .amounts import parse_number

__all__ = [
    "LIMIT_PRICED",
    "ORDER_TYPES",
    "STOP_TYPES",
    "OrderSpec",
    "parse_order",
    "parse_price",
    "parse_quantity",
    "word",
]

#: Order type names as risk spells them (lower case), from the order book's rules.
ORDER_TYPES = frozenset(kind.value.lower() for kind in OrderType)
#: Types that wait off the book for a trigger (they publish ORDER_ADDED on arrival).
STOP_TYPES = frozenset(kind.value.lower() for kind in OrderType if rules.is_stop(kind))
#: Types that must carry a limit price.
LIMIT_PRICED = frozenset(
    kind.value.lower() for kind, rule in rules.RULES.items() if rule.price == rules.REQUIRED
)
_STP_MODES = frozenset(mode.value for mode in SelfTradePrevention)
_TIFS = frozenset(tif.value.lower() for tif in TimeInForce)


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A parsed order request. ``side`` is ``"buy"``/``"sell"``, ``order_type`` one of
    :data:`ORDER_TYPES`, prices and quantity exact Decimals (quote per base, base units), ``time_in_force``
    and ``self_trade_prevention`` lower-case or None (None: GTC / the book's default mode)."""

    side: str
    order_type: str
    price: Decimal | None
    quantity: Decimal
    stop_price: Decimal | None
    time_in_force: str | None
    self_trade_prevention: str | None

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"


def word(value: object) -> str | None:
    """A string or ``str`` enum member, stripped and lower-cased; None for anything else."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value.strip().lower()
    return None


def parse_price(value: object, what: str = "price") -> Decimal:
    """A positive finite price (Decimal, int, str or float); ``ValueError`` otherwise."""
    price = parse_number(value, what)
    if price <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return price


def parse_quantity(value: object, what: str = "quantity") -> Decimal:
    """A positive finite quantity (Decimal, int, str or float); ``ValueError`` otherwise."""
    return parse_price(value, what)


def parse_order(
    side: object,
    order_type: object,
    price: object,
    quantity: object,
    stop_price: object,
    time_in_force: object = None,
    self_trade_prevention: object = None,
) -> OrderSpec:
    """Parse and cross-check an order request; raise ``ValueError`` with a clear message when invalid.

    The rules are the order book's (:func:`manticore_orderbook.rules.check_fields`): which types need,
    allow or refuse a price and a stop price, and which time in force each may have. Risk does not see
    the trail, display size or expiry, so it takes them as given where the type needs them.
    """
    side_word = word(side)
    if side_word not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    kind = word(order_type)
    if kind not in ORDER_TYPES:
        raise ValueError(
            f"unknown order type {order_type!r}; expected one of: {', '.join(sorted(ORDER_TYPES))}"
        )
    tif = None if time_in_force is None else word(time_in_force)
    if time_in_force is not None and tif not in _TIFS:
        raise ValueError(f"unknown time in force {time_in_force!r}")
    stp = None if self_trade_prevention is None else word(self_trade_prevention)
    if self_trade_prevention is not None and stp not in _STP_MODES:
        raise ValueError(f"unknown self-trade prevention mode {self_trade_prevention!r}")
    qty = parse_quantity(quantity)
    book_type = OrderType(kind.upper())
    book_tif = TimeInForce.GTC if tif is None else TimeInForce(tif.upper())
    book_rule = rules.RULES[book_type]
    rules.check_fields(
        book_type,
        book_tif,
        has_price=price is not None,
        has_stop=stop_price is not None,
        has_trail=book_rule.trail_value == rules.REQUIRED,
        has_displayed=book_rule.displayed_quantity == rules.REQUIRED,
        has_expiry=book_tif is TimeInForce.GTD,
    )
    limit = None if price is None else parse_price(price)
    stop = None if stop_price is None else parse_price(stop_price, "stop_price")
    return OrderSpec(side_word, kind, limit, qty, stop, tif, stp)
