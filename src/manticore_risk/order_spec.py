"""What an order request asks for: its arguments parsed and checked for consistency.

This module knows the order book's vocabulary (sides, order types, time in force, self-trade
prevention modes, given as strings in any case or as the book's ``str`` enums) and which arguments
each order type takes. It knows nothing about money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

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

ORDER_TYPES = frozenset(
    {"limit", "market", "post_only", "stop_limit", "stop_market", "trailing_stop", "iceberg"}
)
#: Types that wait off the book for a trigger (they publish ORDER_ADDED on arrival).
STOP_TYPES = frozenset({"stop_limit", "stop_market", "trailing_stop"})
#: Types that must carry a limit price.
LIMIT_PRICED = frozenset({"limit", "post_only", "iceberg", "stop_limit"})
_TIFS = frozenset({"gtc", "ioc", "fok", "gtd"})
_STP_MODES = frozenset({"none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"})


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

    Rules (the order book's): LIMIT, POST_ONLY, ICEBERG and STOP_LIMIT need a price; MARKET and
    STOP_MARKET take none; TRAILING_STOP may have one. STOP_LIMIT and STOP_MARKET need a stop price,
    other types take none. MARKET cannot be GTD; POST_ONLY and ICEBERG cannot be IOC or FOK.
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
    limit: Decimal | None = None
    if price is not None:
        if kind in ("market", "stop_market"):
            raise ValueError(f"{kind} orders take no price")
        limit = parse_price(price)
    elif kind in LIMIT_PRICED:
        raise ValueError(f"{kind} orders need a price")
    stop: Decimal | None = None
    if kind in ("stop_limit", "stop_market"):
        if stop_price is None:
            raise ValueError(f"{kind} orders need a stop_price")
        stop = parse_price(stop_price, "stop_price")
    elif stop_price is not None:
        raise ValueError(f"stop_price is not allowed on {kind} orders")
    if kind == "market" and tif == "gtd":
        raise ValueError("market orders cannot be GTD")
    if kind in ("post_only", "iceberg") and tif in ("ioc", "fok"):
        raise ValueError(f"{kind} orders must be able to rest (GTC or GTD)")
    return OrderSpec(side_word, kind, limit, qty, stop, tif, stp)
