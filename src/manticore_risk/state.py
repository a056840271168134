"""export_state / restore_state: the whole ledger as a JSON-serialisable dict, and back with validation.

The state holds balances, fees collected, net deposits, the tracked orders with their holds, and the
rate limiter's recent approvals. It does not hold markets (they are configuration and live books:
register them before restoring) nor limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .amounts import ZERO, add, amount_str, parse_number
from .ledger import Balance, Ledger, UserId
from .markets import Market
from .order_spec import ORDER_TYPES, STOP_TYPES
from .rate_limit import RateLimiter
from .tracking import OrderRegistry, TrackedOrder, required_hold

__all__ = ["FORMAT", "build_state", "export_state"]

FORMAT = "manticore_risk/1"


def export_state(ledger: Ledger, registry: OrderRegistry, limiter: RateLimiter | None) -> dict[str, Any]:
    """The state as plain JSON types: amounts are exact decimal strings, times floats."""
    accounts = [
        {
            "user_id": user_id,
            "asset": asset,
            "available": amount_str(balance.available),
            "held": amount_str(balance.held),
        }
        for user_id, assets in ledger.accounts().items()
        for asset, balance in assets.items()
    ]
    orders = [
        {
            "order_id": o.order_id,
            "symbol": o.symbol,
            "user_id": o.user_id,
            "side": "buy" if o.is_buy else "sell",
            "order_type": o.order_type,
            "price": None if o.price is None else amount_str(o.price),
            "stop_price": None if o.stop_price is None else amount_str(o.stop_price),
            "quantity": amount_str(o.quantity),
            "open_quantity": amount_str(o.open),
            "asset": o.asset,
            "hold": amount_str(o.hold),
            "margin": amount_str(o.margin),
            "expiry_time": o.expiry,
            "pending": o.pending,
            "seen": o.seen,
        }
        for o in registry.by_id.values()
    ]
    return {
        "format": FORMAT,
        "accounts": accounts,
        "fees": {asset: amount_str(amount) for asset, amount in ledger.fees.items()},
        "net_deposits": {asset: amount_str(amount) for asset, amount in ledger.net_deposits.items()},
        "orders": orders,
        "rate_limiter": [] if limiter is None else limiter.export(),
    }


def build_state(
    state: object, markets: Mapping[str, Market]
) -> tuple[Ledger, OrderRegistry, list[tuple[UserId, list[float]]]]:
    """Validate ``state`` (as :func:`export_state` returns it) and build the ledger, the registry and the
    rate limiter entries from it, without touching anything live. Raises ``ValueError`` naming the
    first problem: a malformed field, a negative balance, an order of an unregistered market or with a
    hold that is not what its open quantity needs, held balances that are not the sum of their orders'
    holds, or an asset whose balances plus fees differ from its net deposits."""
    if not isinstance(state, Mapping):
        raise ValueError("state must be a mapping like export_state() returns")
    if state.get("format") != FORMAT:
        raise ValueError(f"state format must be {FORMAT!r}, got {state.get('format')!r}")
    ledger = Ledger()
    for index, record in enumerate(_list(state, "accounts")):
        where = f"accounts[{index}]"
        rec = _mapping(record, where)
        user_id = _user_id(rec.get("user_id"), where)
        asset = _asset(rec.get("asset"), where)
        if asset in ledger.accounts().get(user_id, {}):
            raise ValueError(f"{where}: user {user_id!r} has asset {asset!r} twice")
        available = _amount(rec.get("available"), f"{where}.available", minimum=ZERO)
        held = _amount(rec.get("held"), f"{where}.held", minimum=ZERO)
        ledger.accounts().setdefault(user_id, {})[asset] = Balance(available, held)
    for name in ("fees", "net_deposits"):
        table = _mapping(state.get(name), name)
        for asset, value in table.items():
            amount = _amount(value, f"{name}[{asset!r}]", minimum=ZERO)
            if name == "fees":
                ledger.fee_pool(_asset(asset, name)).available = amount
            else:
                ledger.net_deposits[_asset(asset, name)] = amount
    registry = OrderRegistry()
    for index, record in enumerate(_list(state, "orders")):
        order = _order(_mapping(record, f"orders[{index}]"), markets, f"orders[{index}]")
        if order.order_id in registry.by_id:
            raise ValueError(f"orders[{index}]: order id {order.order_id!r} is used twice")
        registry.add(order)
    _check_holds(ledger, registry)
    _check_conservation(ledger)
    return ledger, registry, _rate_entries(state.get("rate_limiter", []))


def _order(rec: Mapping[str, Any], markets: Mapping[str, Market], where: str) -> TrackedOrder:
    order_id = rec.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise ValueError(f"{where}: order_id must be a non-empty string")
    symbol = rec.get("symbol")
    market = markets.get(symbol) if isinstance(symbol, str) else None
    if market is None:
        raise ValueError(f"{where}: market {symbol!r} is not registered")
    side = rec.get("side")
    if side not in ("buy", "sell"):
        raise ValueError(f"{where}: side must be 'buy' or 'sell'")
    is_buy = side == "buy"
    order_type = rec.get("order_type")
    if order_type not in ORDER_TYPES:
        raise ValueError(f"{where}: unknown order_type {order_type!r}")
    assert isinstance(order_type, str)
    price = _optional_price(rec.get("price"), f"{where}.price")
    stop = _optional_price(rec.get("stop_price"), f"{where}.stop_price")
    asset = rec.get("asset")
    if asset != (market.quote if is_buy else market.base):
        raise ValueError(f"{where}: a {side} in {symbol} holds {market.quote if is_buy else market.base}")
    if is_buy and price is None and order_type != "market":
        raise ValueError(f"{where}: a {order_type} buy without a price cannot be held for")
    margin = _amount(rec.get("margin"), f"{where}.margin", minimum=Decimal(1))
    quantity = _amount(rec.get("quantity"), f"{where}.quantity", minimum=ZERO)
    open_quantity = _amount(rec.get("open_quantity"), f"{where}.open_quantity", minimum=ZERO)
    if not 0 < open_quantity <= quantity:
        raise ValueError(f"{where}: open_quantity must be positive and at most quantity")
    assert isinstance(symbol, str)
    order = TrackedOrder(
        order_id,
        market,
        _user_id(rec.get("user_id"), where),
        is_buy,
        order_type,
        price,
        stop,
        quantity,
        asset,
        margin,
    )
    order.open = open_quantity
    order.hold = _amount(rec.get("hold"), f"{where}.hold", minimum=ZERO)
    expiry = rec.get("expiry_time")
    if expiry is not None:
        if isinstance(expiry, bool) or not isinstance(expiry, (int, float)) or expiry != expiry:
            raise ValueError(f"{where}: expiry_time must be a number of seconds or None")
        order.expiry = float(expiry)
    pending, seen = rec.get("pending"), rec.get("seen")
    if not isinstance(pending, bool) or not isinstance(seen, bool):
        raise ValueError(f"{where}: pending and seen must be booleans")
    if pending and order_type not in STOP_TYPES:
        raise ValueError(f"{where}: only a stop order can be pending")
    order.pending, order.seen = pending, seen
    if not order.market_buy and order.hold != required_hold(order):
        raise ValueError(
            f"{where}: hold {order.hold} is not what its open quantity needs ({required_hold(order)})"
        )
    return order


def _check_holds(ledger: Ledger, registry: OrderRegistry) -> None:
    holds: dict[tuple[UserId, str], Decimal] = {}
    for order in registry.by_id.values():
        key = (order.user_id, order.asset)
        holds[key] = add(holds.get(key, ZERO), order.hold)
    for user_id, assets in ledger.accounts().items():
        for asset, balance in assets.items():
            expected = holds.pop((user_id, asset), ZERO)
            if balance.held != expected:
                raise ValueError(
                    f"user {user_id!r} holds {balance.held} {asset} but its orders hold {expected}"
                )
    for (user_id, asset), amount in holds.items():
        if amount:
            raise ValueError(f"orders of user {user_id!r} hold {amount} {asset} but the user has no {asset}")


def _check_conservation(ledger: Ledger) -> None:
    for asset in ledger.assets():
        total, net = ledger.total(asset), ledger.net_deposits.get(asset, ZERO)
        if total != net:
            raise ValueError(
                f"{asset}: balances plus fees are {total} but deposits minus withdrawals are {net}"
            )


def _rate_entries(value: object) -> list[tuple[UserId, list[float]]]:
    if not isinstance(value, list):
        raise ValueError("rate_limiter must be a list of [user_id, [times]]")
    entries: list[tuple[UserId, list[float]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[1], list):
            raise ValueError(f"rate_limiter[{index}] must be [user_id, [times]]")
        times = item[1]
        for t in times:
            if (
                isinstance(t, bool)
                or not isinstance(t, (int, float))
                or t != t
                or t in (float("inf"), -float("inf"))
            ):
                raise ValueError(f"rate_limiter[{index}]: times must be finite numbers")
        entries.append((_user_id(item[0], f"rate_limiter[{index}]"), [float(t) for t in times]))
    return entries


# ---------------------------------------------------------------------- field parsers


def _list(state: Mapping[str, Any], key: str) -> list[Any]:
    value = state.get(key)
    if not isinstance(value, list):
        raise ValueError(f"state[{key!r}] must be a list")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping")
    return value


def _user_id(value: object, where: str) -> UserId:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{where}: user_id must be a string or an integer")
    return value


def _asset(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: asset must be a non-empty string")
    return value


def _amount(value: object, where: str, minimum: Decimal) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a decimal string")
    amount = parse_number(value, where)
    if amount < minimum:
        raise ValueError(f"{where} must be at least {minimum}, got {value!r}")
    return amount


def _optional_price(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    price = _amount(value, where, minimum=ZERO)
    if not price:
        raise ValueError(f"{where} must be positive")
    return price
