"""Command arguments: validation, normalisation and the journal records the exchange writes.

Every function here is pure: it reads the caller's arguments (and a market's configuration), raises
:class:`~manticore_matching.errors.InvalidCommand` for anything malformed, and returns the exact,
JSON-ready form the journal records (decimal strings on the market's grid, upper-case time in force,
lower-case sides and types). The exchange applies a record the same way live and in replay, so a record
is the whole command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from manticore_orderbook import InvalidOrderError, OrderType, SelfTradePrevention, TimeInForce, rules

from .config import MarketConfig
from .errors import InvalidCommand

__all__ = [
    "GENERATED_PREFIX",
    "ORDER_ID",
    "PLAIN_LIMIT_ARGS",
    "SIDES",
    "TEXT_MEMO",
    "Receipt",
    "check_client_order_id",
    "check_user_id",
    "decimal_arg",
    "legacy_client_id",
    "modify_args",
    "modify_record",
    "on_grid",
    "order_args",
    "place_record",
    "receipt",
    "risk_args",
    "text",
    "transfer_args",
]

#: The shape of an order id the exchange looks up (anything else is never found).
ORDER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: Exchange-assigned order ids are ``MC-<n>``, ``n`` rising by one per accepted order.
GENERATED_PREFIX = "MC-"
_ASSET = re.compile(r"^[A-Z0-9]{1,16}$")
_SIDES = frozenset({"buy", "sell"})
#: The sides an order takes, as the records write them.
SIDES = _SIDES
#: How many price (and quantity) strings a market remembers the record's text of
#: (:attr:`~.market.Market.prices`).
TEXT_MEMO = 4096
_ORDER_TYPES = frozenset(kind.value.lower() for kind in OrderType)
_TIME_IN_FORCE = frozenset(tif.value for tif in TimeInForce)
_STP = frozenset(mode.value for mode in SelfTradePrevention)
_MAX_EXPONENT = 24  # numbers beyond 10**24 or below 10**-24 are never a price or a quantity


@dataclass(frozen=True)
class Receipt:
    """The result of an accepted command.

    ``position`` is the command's journal position: the command is acknowledged once
    ``exchange.wait_durable(position)`` returns True. ``order`` is the order as the command left it
    (``status`` open, partially_filled, filled, cancelled, pending for an untriggered stop), for order
    commands."""

    position: int
    order_id: str | None = None
    order: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)


_new_object = object.__new__
#: Sets an instance's ``__dict__`` (the frozen dataclass's own ``__setattr__`` refuses every name): the
#: fields in one dict display instead of a keyword dictionary merged into the instance's.
_set_fields = Receipt.__dict__["__dict__"].__set__
#: ``set_receipt_fields(receipt, fields)``: what :func:`receipt` sets, for a caller that writes it out.
set_receipt_fields = _set_fields


def receipt(position: int, order_id: str | None = None, order: dict[str, Any] | None = None) -> Receipt:
    """``Receipt(position, order_id, order)``, made without the dataclass's ``__init__`` (a frozen
    dataclass sets each field through ``object.__setattr__``): the exchange makes one per command.
    The result is equal to the constructor's in every way (same fields, ``result`` a new empty dict)."""
    made: Receipt = _new_object(Receipt)
    _set_fields(made, {"position": position, "order_id": order_id, "order": order, "result": {}})
    return made


def decimal_arg(value: object, what: str, *, optional: bool = False) -> Decimal | None:
    """A finite, positive Decimal from int, float, str or Decimal; InvalidCommand otherwise (None stays
    None if ``optional``). A float is read as it prints (``0.1`` is ``Decimal("0.1")``)."""
    if type(value) is str and len(value) <= 64:  # the usual case (JSON strings): the checks below
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise InvalidCommand(f"{what} must be a decimal number, not {value[:32]!r}") from None
    else:
        if value is None:
            if optional:
                return None
            raise InvalidCommand(f"{what} is required")
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise InvalidCommand(f"{what} must be a decimal number")
        if isinstance(value, str) and len(value) > 64:
            raise InvalidCommand(f"{what} is too long")
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise InvalidCommand(f"{what} must be a decimal number, not {str(value)[:32]!r}") from None
    if not number.is_finite():
        raise InvalidCommand(f"{what} must be finite")
    if number <= 0:
        raise InvalidCommand(f"{what} must be positive")
    if not -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        raise InvalidCommand(f"{what} is out of range")
    return number


def on_grid(value: Decimal | None, step: Decimal, what: str) -> None:
    """InvalidCommand unless ``value`` (None passes) is a multiple of ``step``."""
    if value is None:
        return
    try:
        is_multiple = value % step == 0
    except InvalidOperation:
        is_multiple = False
    if not is_multiple:
        raise InvalidCommand(f"{what} {value} is not a multiple of {step}")


def _choice(value: object, allowed: frozenset[str], what: str, upper: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidCommand(f"{what} must be a string")
    word = value.upper() if upper else value.lower()
    if word not in allowed:
        raise InvalidCommand(f"{what} must be one of {', '.join(sorted(allowed))}")
    return word


def text(value: Decimal | None) -> str | None:
    """The record's form of an optional decimal: its string, or None."""
    return None if value is None else str(value)


def _seconds(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidCommand(f"{what} must be a number of seconds since the epoch")
    return float(value)


def check_user_id(user_id: object) -> str:
    """``user_id`` if it is a non-empty string; InvalidCommand otherwise."""
    if not isinstance(user_id, str) or not user_id:
        raise InvalidCommand("user_id must be a non-empty string")
    return user_id


def check_client_order_id(client_order_id: object) -> str | None:
    """A valid client order id (the rule of :func:`manticore_orderbook.rules.check_client_order_id`),
    None for None; InvalidCommand otherwise."""
    if client_order_id is None:
        return None
    try:
        return rules.check_client_order_id(client_order_id)
    except InvalidOrderError as exc:
        raise InvalidCommand(str(exc)) from None


#: What :func:`order_args` returns for a plain GTC limit order, its four varying values (``symbol``,
#: ``side``, ``price``, ``quantity``) None; the exchange's plain ``place`` record is built on it too.
PLAIN_LIMIT_ARGS: Final[dict[str, Any]] = {
    "symbol": None,
    "side": None,
    "order_type": "limit",
    "price": None,
    "quantity": None,
    "time_in_force": "GTC",
    "expiry_time": None,
    "stop_price": None,
    "displayed_quantity": None,
    "trail_value": None,
    "trail_is_percent": False,
    "self_trade_prevention": None,
}


def order_args(
    config: MarketConfig,
    side: object,
    quantity: object,
    price: object,
    order_type: object,
    time_in_force: object,
    expiry_time: object,
    stop_price: object,
    displayed_quantity: object,
    trail_value: object,
    trail_is_percent: object,
    self_trade_prevention: object,
) -> dict[str, Any]:
    """Validate and normalise order arguments into the ``place`` record's exact, JSON-ready form:
    ``symbol, side, order_type, price, quantity, time_in_force, expiry_time, stop_price,
    displayed_quantity, trail_value, trail_is_percent, self_trade_prevention``.

    Which fields each order type and time in force take is :mod:`manticore_orderbook.rules`; this
    adds the exchange's own checks (exact decimals on the market's grid, a finite expiry)."""
    if (
        price is not None
        and type(side) is str
        and side in _SIDES
        and type(order_type) is str
        and order_type == "limit"
        and time_in_force is None
        and expiry_time is None
        and stop_price is None
        and displayed_quantity is None
        and trail_value is None
        and trail_is_percent is False
        and self_trade_prevention is None
    ):
        # A plain GTC limit order (the common case): the general path below with every field it does
        # not have left out; it gives the same record and raises the same errors.
        price_value = decimal_arg(price, "price")
        quantity_value = decimal_arg(quantity, "quantity")
        assert price_value is not None and quantity_value is not None
        on_grid(price_value, config.tick_size, "price")
        on_grid(quantity_value, config.lot_size, "quantity")
        return {
            **PLAIN_LIMIT_ARGS,
            "symbol": config.symbol,
            "side": side,
            "price": str(price_value),
            "quantity": str(quantity_value),
        }
    side_text = _choice(side, _SIDES, "side")
    kind_text = _choice(order_type if order_type is not None else "limit", _ORDER_TYPES, "order_type")
    price_value = decimal_arg(price, "price", optional=True)
    quantity_value = decimal_arg(quantity, "quantity")
    assert quantity_value is not None
    stop_value = decimal_arg(stop_price, "stop_price", optional=True)
    displayed = decimal_arg(displayed_quantity, "displayed_quantity", optional=True)
    trail = decimal_arg(trail_value, "trail_value", optional=True)
    if not isinstance(trail_is_percent, bool):
        raise InvalidCommand("trail_is_percent must be a boolean")
    tif = _choice(
        time_in_force if time_in_force is not None else "GTC", _TIME_IN_FORCE, "time_in_force", True
    )
    expiry = _seconds(expiry_time, "expiry_time")
    if expiry is not None and (expiry != expiry or expiry in (float("inf"), float("-inf"))):
        raise InvalidCommand("expiry_time must be finite")
    try:
        kind = rules.check_fields(
            OrderType(kind_text.upper()),
            TimeInForce(tif),
            has_price=price_value is not None,
            has_stop=stop_value is not None,
            has_trail=trail is not None,
            has_displayed=displayed is not None,
            has_expiry=expiry is not None,
        )
        if displayed is not None:
            rules.check_display_size(displayed, quantity_value)
        if trail is not None and trail_is_percent:
            rules.check_trail_percent(trail)
    except InvalidOrderError as exc:
        raise InvalidCommand(str(exc)) from None
    stp = None
    if self_trade_prevention is not None:
        stp = _choice(self_trade_prevention, _STP, "self_trade_prevention")
    on_grid(price_value, config.tick_size, "price")
    on_grid(stop_value, config.tick_size, "stop_price")
    on_grid(quantity_value, config.lot_size, "quantity")
    on_grid(displayed, config.lot_size, "displayed_quantity")
    if not trail_is_percent:
        on_grid(trail, config.tick_size, "trail_value")
    return {
        "symbol": config.symbol,
        "side": side_text,
        "order_type": kind.value.lower(),
        "price": text(price_value),
        "quantity": str(quantity_value),
        "time_in_force": tif,
        "expiry_time": expiry,
        "stop_price": text(stop_value),
        "displayed_quantity": text(displayed),
        "trail_value": text(trail),
        "trail_is_percent": trail_is_percent,
        "self_trade_prevention": stp,
    }


def place_record(
    now: float, order_id: str, client_order_id: str | None, user_id: str, args: dict[str, Any]
) -> dict[str, Any]:
    """The ``place`` record of an order: its clock reading ``ts``, both ids, its user and the
    normalised arguments of :func:`order_args`."""
    return {
        "op": "place",
        "ts": now,
        "order_id": order_id,
        "client_order_id": client_order_id,
        "user_id": user_id,
        **args,
    }


def risk_args(record: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``RiskManager.check_and_reserve`` / ``reserve`` for a ``place`` record
    (its decimal strings as they are: ``str`` of the validated Decimals, which risk reads exactly, a
    plain one in integer units without a Decimal; its clock reading as ``now``)."""
    return {
        "user_id": record["user_id"],
        "symbol": record["symbol"],
        "side": record["side"],
        "order_type": record["order_type"],
        "price": record["price"],
        "quantity": record["quantity"],
        "stop_price": record["stop_price"],
        "time_in_force": record["time_in_force"],
        "self_trade_prevention": record["self_trade_prevention"],
        "now": record["ts"],
    }


def modify_args(
    config: MarketConfig, new_price: object, new_quantity: object, new_expiry_time: object
) -> tuple[Decimal | None, Decimal | None, float | None]:
    """A modify's new price and total quantity (exact, on the market's grid) and expiry; InvalidCommand
    for a malformed one or when all three are None."""
    price = decimal_arg(new_price, "new_price", optional=True)
    quantity = decimal_arg(new_quantity, "new_quantity", optional=True)
    on_grid(price, config.tick_size, "new_price")
    on_grid(quantity, config.lot_size, "new_quantity")
    expiry = _seconds(new_expiry_time, "new_expiry_time")
    if price is None and quantity is None and expiry is None:
        raise InvalidCommand("nothing to modify: give new_price, new_quantity or new_expiry_time")
    return price, quantity, expiry


def modify_record(
    now: float,
    symbol: str,
    order_id: str,
    price: Decimal | None,
    quantity: Decimal | None,
    expiry: float | None,
) -> dict[str, Any]:
    """The ``modify`` record of :func:`modify_args`' result."""
    return {
        "op": "modify",
        "ts": now,
        "symbol": symbol,
        "order_id": order_id,
        "new_price": text(price),
        "new_quantity": text(quantity),
        "new_expiry_time": expiry,
    }


def transfer_args(user_id: object, asset: object, amount: object) -> tuple[str, str, Decimal]:
    """A deposit's or withdrawal's user, asset (1-16 upper-case letters or digits) and positive amount."""
    user = check_user_id(user_id)
    if not isinstance(asset, str) or not _ASSET.match(asset):
        raise InvalidCommand("asset must be 1-16 upper-case letters or digits")
    value = decimal_arg(amount, "amount")
    assert value is not None
    return user, asset, value


def legacy_client_id(order_id: str) -> str | None:
    """The client order id of an order journaled before the exchange always assigned ``MC-<n>``: a
    client-given order id was the client's name for the order, and it stays its order id too."""
    return None if order_id.startswith(GENERATED_PREFIX) else order_id
