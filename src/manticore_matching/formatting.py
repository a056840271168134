"""How the exchange writes numbers to clients (docs/api.md, "Numbers"): one rule for REST and WebSocket.

- Prices (``price``, ``stop_price``, ``trail_reference_price``, a trail in price units) carry the
  market's tick decimals: ``"30000.00"`` on a 0.01 tick.
- Quantities (``quantity`` and every ``*_quantity``) carry the market's lot decimals: ``"0.50000"`` on a
  0.00001 lot; zero is written the same way (``"0.00000"``), also for a level that is gone.
- Money amounts (balances, fees, a percent trail) are exact decimal strings with no exponent and no
  trailing zeros: ``"15"``, ``"0.0003"``, ``"0"``.

The books already write prices and quantities this way (``number_format="str"``); these functions bring
what comes from elsewhere (storage rows, fees) to the same form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from manticore_risk.amounts import plain_digits

__all__ = ["MONEY_KEYS", "PRICE_KEYS", "QUANTITY_KEYS", "format_order", "money", "on_grid", "places"]

PRICE_KEYS = ("price", "stop_price", "trail_reference_price")
QUANTITY_KEYS = (
    "quantity",
    "original_quantity",
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "displayed_quantity",
    "fill_quantity",
    "cancelled_quantity",
    "expired_quantity",
)
MONEY_KEYS = ("fee", "maker_fee", "taker_fee")

_EXACT = Context(prec=200)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def places(step: Decimal) -> int:
    """The number of decimals of a grid step (``0.01`` -> 2, ``0.5`` -> 1, ``5`` -> 0)."""
    exponent = int(step.normalize().as_tuple().exponent)
    return -exponent if exponent < 0 else 0


def on_grid(value: object, step: Decimal) -> object:
    """``value`` written with the decimals of ``step`` (exact: no digit is dropped unless it is a
    trailing zero); a value that is not a number is returned unchanged."""
    number = _decimal(value)
    if number is None or not number.is_finite():
        return value
    wanted = places(step)
    exponent = int(number.as_tuple().exponent)
    if -exponent > wanted:  # more digits than the grid has: keep them unless they are zeros
        normal = _EXACT.normalize(number)
        wanted = max(wanted, -int(normal.as_tuple().exponent))
    return format(_EXACT.quantize(number, Decimal(1).scaleb(-wanted)), "f")


#: A decimal string in plain notation without superfluous leading zeros (what the books write, e.g. a
#: fill's ``fee``): :func:`money` only drops its trailing fractional zeros.
_PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def money(value: object) -> object:
    """An amount as an exact decimal string without exponent or trailing zeros; a value that is not a
    number is returned unchanged."""
    if type(value) is str and len(value) <= 200 and _PLAIN.fullmatch(value) is not None:
        # The books' plain strings (every fill's fee) without a Decimal: the same text.
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        return "0" if value == "0" or value == "-0" else value
    number = _decimal(value)
    if number is None or not number.is_finite():
        return value
    if not number:
        return "0"
    # A number of more digits than the context keeps takes the general way (which rounds it).
    text = plain_digits(number)
    if text is None or len(text) > 200:
        return format(_EXACT.normalize(number), "f")
    return text


def format_order(order: Mapping[str, Any], tick_size: Decimal, lot_size: Decimal) -> dict[str, Any]:
    """A copy of an order, fill or trade dict with its prices, quantities and fees written by the rule."""
    result = dict(order)
    for key in PRICE_KEYS:
        if result.get(key) is not None:
            result[key] = on_grid(result[key], tick_size)
    for key in QUANTITY_KEYS:
        if result.get(key) is not None:
            result[key] = on_grid(result[key], lot_size)
    for key in MONEY_KEYS:
        if result.get(key) is not None:
            result[key] = money(result[key])
    trail = result.get("trail_value")
    if trail is not None:
        result["trail_value"] = money(trail) if result.get("trail_is_percent") else on_grid(trail, tick_size)
    return result
