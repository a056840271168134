"""The order rules: the one place that says what each order type and time in force allows.

The book validates new orders with these rules, risk parses order requests with them and the exchange
normalises its commands with them; nobody restates them. Standard library only.

Per order type (see :data:`RULES`):

================  ========  ==========  ===========  ==================  ==============  =====  =====
type              price     stop_price  trail_value  displayed_quantity  time in force   waits  rests
================  ========  ==========  ===========  ==================  ==============  =====  =====
LIMIT             required  refused     refused      (makes an ICEBERG)  any             no     yes
MARKET            refused   refused     refused      refused             GTC, IOC, FOK   no     no
POST_ONLY         required  refused     refused      refused             GTC, GTD        no     yes
STOP_LIMIT        required  required    refused      refused             any             yes    yes
STOP_MARKET       refused   required    refused      refused             any             yes    no
TRAILING_STOP     optional  refused     required     refused             any             yes    with a price
ICEBERG           required  refused     refused      required            GTC, GTD        no     yes
================  ========  ==========  ===========  ==================  ==============  =====  =====

* *waits*: the order is held off the book until a trade reaches its stop (a trailing stop's stop follows
  the market by ``trail_value``, in price units or, with ``trail_is_percent``, in percent), then it
  enters as a limit order at its price, or as a market order when it has none.
* *rests*: what is left after matching may stay in the book (unless the time in force is IOC or FOK).
* GTD needs an ``expiry_time`` and only GTD takes one.
* A trailing stop's optional price is its *protection limit*: once triggered it trades no worse than it.
  A buy whose stop can turn it into a market order (STOP_MARKET, or TRAILING_STOP without a price) has no
  bounded cost, so an exchange that holds funds before an order enters refuses it
  (:func:`unbounded_buy_reason`); sells are always bounded (they hold their quantity).
* ``client_order_id``: 1 to 64 characters of ``A-Z a-z 0-9 _ . : -`` (:func:`check_client_order_id`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from .enums import OrderType, TimeInForce
from .errors import InvalidOrderError

__all__ = [
    "ALL_TIME_IN_FORCE",
    "CLIENT_ORDER_ID_PATTERN",
    "FORBIDDEN",
    "OPTIONAL",
    "REQUIRED",
    "RULES",
    "TypeRule",
    "check_client_order_id",
    "check_display_size",
    "check_fields",
    "check_trail_percent",
    "infer_order_type",
    "is_stop",
    "may_rest",
    "unbounded_buy_reason",
]

REQUIRED: Final = "required"
OPTIONAL: Final = "optional"
FORBIDDEN: Final = "forbidden"

ALL_TIME_IN_FORCE: Final = frozenset(TimeInForce)
_ANY: Final = ALL_TIME_IN_FORCE
_RESTING_TIF: Final = frozenset({TimeInForce.GTC, TimeInForce.GTD})
_NOT_GTD: Final = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})

#: ``client_order_id``: what a client may use to name its own order.
CLIENT_ORDER_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


class TypeRule:
    """What one order type needs (``price``, ``stop_price``, ``trail_value``, ``displayed_quantity``:
    each :data:`REQUIRED`, :data:`OPTIONAL` or :data:`FORBIDDEN`), which time in force it may have, whether
    it waits for a trigger and whether it can rest in the book."""

    __slots__ = (
        "displayed_quantity",
        "price",
        "rests",
        "stop_price",
        "time_in_force",
        "trail_value",
        "waits",
    )

    def __init__(
        self,
        price: str,
        stop_price: str,
        trail_value: str,
        displayed_quantity: str,
        time_in_force: frozenset[TimeInForce],
        waits: bool,
        rests: bool,
    ) -> None:
        self.price = price
        self.stop_price = stop_price
        self.trail_value = trail_value
        self.displayed_quantity = displayed_quantity
        self.time_in_force = time_in_force
        self.waits = waits
        self.rests = rests


#: The rule of every order type. LIMIT's displayed_quantity is OPTIONAL: giving one makes it an ICEBERG.
RULES: Final[dict[OrderType, TypeRule]] = {
    OrderType.LIMIT: TypeRule(REQUIRED, FORBIDDEN, FORBIDDEN, OPTIONAL, _ANY, False, True),
    OrderType.MARKET: TypeRule(FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, _NOT_GTD, False, False),
    OrderType.POST_ONLY: TypeRule(REQUIRED, FORBIDDEN, FORBIDDEN, FORBIDDEN, _RESTING_TIF, False, True),
    OrderType.STOP_LIMIT: TypeRule(REQUIRED, REQUIRED, FORBIDDEN, FORBIDDEN, _ANY, True, True),
    OrderType.STOP_MARKET: TypeRule(FORBIDDEN, REQUIRED, FORBIDDEN, FORBIDDEN, _ANY, True, False),
    OrderType.TRAILING_STOP: TypeRule(OPTIONAL, FORBIDDEN, REQUIRED, FORBIDDEN, _ANY, True, True),
    OrderType.ICEBERG: TypeRule(REQUIRED, FORBIDDEN, FORBIDDEN, REQUIRED, _RESTING_TIF, False, True),
}

_STOPS: Final = frozenset(kind for kind, rule in RULES.items() if rule.waits)
_PHRASE: Final = {
    OrderType.POST_ONLY: "post-only orders",
    OrderType.ICEBERG: "iceberg orders",
    OrderType.MARKET: "market orders",
    OrderType.TRAILING_STOP: "trailing stops",
}


def infer_order_type(has_price: bool, has_stop: bool, has_trail: bool, has_displayed: bool) -> OrderType:
    """The type of an order given without one: a trail makes a trailing stop, a stop price a stop (limit
    with a price, market without), a display size an iceberg, otherwise limit or market by the price."""
    if has_trail:
        return OrderType.TRAILING_STOP
    if has_stop:
        return OrderType.STOP_LIMIT if has_price else OrderType.STOP_MARKET
    if has_displayed:
        return OrderType.ICEBERG
    return OrderType.LIMIT if has_price else OrderType.MARKET


def check_fields(
    kind: OrderType,
    tif: TimeInForce,
    *,
    has_price: bool,
    has_stop: bool,
    has_trail: bool,
    has_displayed: bool,
    has_expiry: bool,
) -> OrderType:
    """Check which fields an order of type ``kind`` and time in force ``tif`` was given; return its type
    (a LIMIT order with a display size is an ICEBERG).

    Raises :class:`~manticore_orderbook.InvalidOrderError` (a ``ValueError``) naming the first rule broken,
    in this order: expiry for GTD only, price, time in force, display size, stop price, trail value.
    """
    if tif is TimeInForce.GTD:
        if not has_expiry:
            raise InvalidOrderError("GTD orders need an expiry_time")
    elif has_expiry:
        raise InvalidOrderError(f"expiry_time is only allowed with GTD, not {tif.value}")
    if kind is OrderType.LIMIT and has_displayed:
        kind = OrderType.ICEBERG
    rule = RULES[kind]
    if rule.price == REQUIRED:
        if not has_price:
            raise InvalidOrderError(f"{kind.value} orders need a price")
    elif rule.price == FORBIDDEN and has_price:
        raise InvalidOrderError(f"{kind.value} orders take no price (use a LIMIT order)")
    if tif not in rule.time_in_force:
        if kind is OrderType.MARKET:
            raise InvalidOrderError("market orders cannot be GTD")
        raise InvalidOrderError(f"{_PHRASE.get(kind, kind.value)} must be able to rest (GTC or GTD)")
    _check_field(kind, rule.displayed_quantity, has_displayed, "displayed_quantity")
    _check_field(kind, rule.stop_price, has_stop, "stop_price")
    _check_field(kind, rule.trail_value, has_trail, "trail_value")
    return kind


def _check_field(kind: OrderType, rule: str, given: bool, name: str) -> None:
    if given:
        if rule == FORBIDDEN:
            raise InvalidOrderError(f"{name} is not allowed on {kind.value} orders")
    elif rule == REQUIRED:
        raise InvalidOrderError(f"{_PHRASE.get(kind, kind.value + ' orders')} need a {name}")


def check_display_size(displayed: int | Decimal, quantity: int | Decimal) -> None:
    """An iceberg's display size must not exceed its quantity (both in the same unit)."""
    if displayed > quantity:
        raise InvalidOrderError("displayed_quantity must not exceed quantity")


def check_trail_percent(percent: Decimal) -> None:
    """A percentage trail must lie strictly between 0 and 100."""
    if not 0 < percent < 100:
        raise InvalidOrderError("a percentage trail_value must be between 0 and 100")


def is_stop(kind: OrderType) -> bool:
    """Whether orders of ``kind`` wait off the book for a trigger."""
    return kind in _STOPS


def may_rest(kind: OrderType, tif: TimeInForce, has_price: bool) -> bool:
    """Whether what is left of such an order after matching (or after its trigger) can rest in the book."""
    if tif is TimeInForce.IOC or tif is TimeInForce.FOK or not has_price:
        return False
    return RULES[kind].rests


def unbounded_buy_reason(kind: OrderType, is_buy: bool, has_price: bool) -> str | None:
    """Why a buy of this kind has no cost bound before it triggers (None when it has one).

    A STOP_MARKET buy, and a TRAILING_STOP buy without a protection limit price, become market buys at
    an unknown future price; whoever must hold their funds up front cannot."""
    if not is_buy or has_price:
        return None
    if kind is OrderType.STOP_MARKET:
        return (
            "stop-market buys are not supported: their cost cannot be bounded before they trigger "
            "(use a stop-limit buy)"
        )
    if kind is OrderType.TRAILING_STOP:
        return (
            "trailing-stop buys need a limit price: their cost cannot be bounded before they trigger "
            "(give the trailing stop a price, the most it may pay once triggered)"
        )
    return None


def check_client_order_id(value: object) -> str:
    """``value`` if it is a valid client order id (1-64 characters of ``A-Z a-z 0-9 _ . : -``)."""
    if not isinstance(value, str) or CLIENT_ORDER_ID_PATTERN.fullmatch(value) is None:
        raise InvalidOrderError("client_order_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    return value
