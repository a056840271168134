"""How much a new or modified order must hold, and in which asset.

* A sell holds its open quantity of the base asset.
* A buy with a limit price (LIMIT, POST_ONLY, ICEBERG, STOP_LIMIT, a TRAILING_STOP with a price)
  holds ``price x quantity x margin`` of the quote asset, margin = ``1 + max(maker, taker, 0)``.
* A MARKET buy holds ``sweep cost x margin``, the sweep bounded from the book at check time.
* STOP_MARKET buys and TRAILING_STOP buys without a price cannot be bounded: unsupported (the rule is
  :func:`manticore_orderbook.rules.unbounded_buy_reason`; a trailing-stop buy takes a protection limit
  price instead, and holds like any limit buy).
"""

from __future__ import annotations

from decimal import Decimal

from manticore_orderbook import OrderType, rules

from .amounts import ZERO, add, mul
from .ledger import UserId
from .liquidity import Sweep, sweep
from .markets import Market
from .order_spec import OrderSpec
from .tracking import OrderRegistry, limit_hold

__all__ = [
    "Unsupported",
    "excluded_liquidity",
    "hold_asset",
    "limit_hold",
    "market_sweep",
    "new_order_hold",
    "unsupported",
]


class Unsupported(ValueError):
    """An order whose hold cannot be bounded."""


def unsupported(spec: OrderSpec) -> str | None:
    """Why ``spec`` cannot be held for, or None when it can."""
    return rules.unbounded_buy_reason(OrderType(spec.order_type.upper()), spec.is_buy, spec.price is not None)


def hold_asset(market: Market, is_buy: bool) -> str:
    """Buys hold the quote asset, sells the base asset."""
    return market.quote if is_buy else market.base


def excluded_liquidity(
    registry: OrderRegistry,
    market: Market,
    user_id: UserId,
    buy: bool,
    stp_mode: str,
    now: float | None,
) -> dict[Decimal, Decimal]:
    """Resting quantity per price on the side a market order of ``user_id`` would take from, which may be
    gone when it matches: the user's own orders when its self-trade prevention mode is
    ``cancel_oldest`` (the book cancels them and the order goes deeper), and tracked GTD orders whose
    expiry is at or before ``now`` (the book expires them first)."""
    excluded: dict[Decimal, Decimal] = {}
    counted: set[str] = set()

    def leave_out(order_id: str, price: Decimal | None, quantity: Decimal) -> None:
        if price is not None and order_id not in counted:
            counted.add(order_id)
            excluded[price] = add(excluded.get(price, ZERO), quantity)

    symbol = market.symbol
    if stp_mode == "cancel_oldest":
        for order in registry.of_user(user_id).values():
            if order.symbol == symbol and order.is_buy is not buy and not order.pending:
                leave_out(order.order_id, order.price, order.open)
    if now is not None:
        for order in registry.expiring(symbol, now):
            if order.is_buy is not buy and not order.pending:
                leave_out(order.order_id, order.price, order.open)
    return excluded


def market_sweep(
    registry: OrderRegistry,
    market: Market,
    user_id: UserId,
    spec: OrderSpec,
    now: float | None,
) -> Sweep | None:
    """The bounded sweep of a MARKET order (None when the opposite side is empty).

    Orders expire at the book's clock: the horizon is the later of ``now`` and the book's clock reading
    (``book.now()``), so a caller that passes no ``now`` is still safe with an injected
    book clock."""
    book = market.book
    mode = spec.self_trade_prevention or book.default_stp.value
    horizon = now
    book_now = float(book.now())
    horizon = book_now if now is None else max(now, book_now)
    excluded = excluded_liquidity(registry, market, user_id, spec.is_buy, mode, horizon)
    return sweep(book, spec.is_buy, spec.quantity, excluded)


def new_order_hold(market: Market, spec: OrderSpec, swept: Sweep | None) -> Decimal:
    """The amount of :func:`hold_asset` a new order holds. Raises :class:`Unsupported` for orders that
    cannot be bounded. A market buy against an empty side holds 0 (the book cancels it)."""
    reason = unsupported(spec)
    if reason is not None:
        raise Unsupported(reason)
    if not spec.is_buy:
        return spec.quantity
    if spec.price is not None:
        return limit_hold(spec.price, spec.quantity, market.margin)
    return ZERO if swept is None else mul(swept.cost, market.margin)
