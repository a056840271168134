"""Pre-trade checks: approve an order or a modify, or say why not. They never change the ledger.

The checks, in the order they are applied (the first that fails is reported):

1. ``invalid``: a ``now`` that is not a finite number, a user id that is not a str or int.
2. ``unknown_market`` / ``unknown_order``; then ``invalid`` again for order arguments that are malformed
   (see :mod:`.order_spec`) or off the book's tick/lot grid.
3. ``unsupported_order``: stop-market buys and trailing-stop buys without a limit price.
4. ``max_quantity``: quantity (a modify: the new total) above the limit.
5. ``no_liquidity``: a MARKET order while the opposite side is empty.
6. ``price_band``: see :func:`band_violation`.
7. ``max_notional``: see :func:`order_notional`.
8. ``max_open_orders``: the user's live orders (all markets) already at the limit; orders that can
   neither rest nor wait for a trigger (MARKET, IOC and FOK limits, see ``manticore_orderbook.rules``)
   are not limited.
9. ``rate_limited``: the user's approved checks in the sliding window already at the limit.
10. ``insufficient_balance``: the hold (for a modify: its increase) above the available balance.

``check_modify`` applies 1, 2 (``unknown_order``), 4, 6, 7, 9 and 10 to the order as it would be after
the modify (new price, new total quantity); a modify that only lowers the quantity skips 4, 6 and 7, and
10 only asks for the increase of the hold. Only an approval changes anything: it is counted by the
rate limiter.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import NamedTuple

from manticore_orderbook import OrderType, TimeInForce, rules

from .amounts import EXACT, ZERO, add, amount_str, mul, sub
from .decisions import Decision, approved, rejected
from .holds import hold_asset, market_sweep, new_order_hold, unsupported
from .ledger import Ledger, UserId
from .limits import RiskLimits
from .liquidity import Sweep
from .markets import Market
from .order_spec import OrderSpec, parse_order, parse_price, parse_quantity
from .rate_limit import RateLimiter
from .tracking import OrderRegistry, TrackedOrder, limit_hold

__all__ = [
    "Admission",
    "PreTradeChecks",
    "band_violation",
    "check_grid",
    "check_now",
    "check_user_id",
    "order_notional",
]


def check_now(now: object) -> float:
    """``now`` as float seconds; ``ValueError`` unless it is a finite int or float."""
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"now must be a finite number of seconds, got {now!r}")
    return float(now)


def check_user_id(user_id: object) -> UserId:
    """``user_id`` if it is a str or an int (not a bool); ``ValueError`` otherwise."""
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        raise ValueError(f"user_id must be a string or an integer, got {user_id!r}")
    return user_id


def check_grid(market: Market, spec: OrderSpec) -> None:
    """``ValueError`` when a price is off the market's tick grid or the quantity off its lot grid."""
    for what, price in (("price", spec.price), ("stop_price", spec.stop_price)):
        if price is not None and not market.on_price_grid(price):
            raise ValueError(
                f"{what} {amount_str(price)} is not a multiple of the tick size {market.tick_size}"
            )
    if not market.on_lot_grid(spec.quantity):
        raise ValueError(
            f"quantity {amount_str(spec.quantity)} is not a multiple of the lot size {market.lot_size}"
        )


def band_violation(
    band: Decimal,
    reference: Decimal | None,
    order_type: str,
    is_buy: bool,
    price: Decimal | None,
    stop_price: Decimal | None,
    pending: bool,
    swept: Sweep | None,
) -> str | None:
    """Why an order breaks the price band ``band`` (a fraction), or None.

    * LIMIT, POST_ONLY, ICEBERG (and a triggered stop-limit): the limit price must lie within
      ``reference x (1 +- band)``; reference = last trade price, else mid, else no check.
    * STOP_LIMIT waiting for its trigger: the limit price must lie within ``stop_price x (1 +- band)``
      (it trades around its stop, not around today's price).
    * MARKET: the farthest price its sweep can reach must lie within the band around the reference.
    * STOP_MARKET and TRAILING_STOP: not checked (their prices follow the market when they trigger).
    """
    if order_type in ("stop_market", "trailing_stop"):
        return None
    if order_type == "stop_limit" and pending:
        centre, what = stop_price, "its stop price"
    else:
        centre, what = reference, "the reference price"
    if centre is None:
        return None
    if order_type == "market":
        if swept is None:
            return None
        worst = swept.worst_price
        if is_buy and worst > add(centre, mul(centre, band)):
            return (
                f"this market buy would sweep up to {amount_str(worst)}, "
                f"more than {band} above {what} {amount_str(centre)}"
            )
        if not is_buy and worst < sub(centre, mul(centre, band)):
            return (
                f"this market sell would sweep down to {amount_str(worst)}, "
                f"more than {band} below {what} {amount_str(centre)}"
            )
        return None
    assert price is not None
    if EXACT.abs(sub(price, centre)) > mul(centre, band):
        return f"price {amount_str(price)} is more than {band} away from {what} {amount_str(centre)}"
    return None


def order_notional(
    order_type: str,
    price: Decimal | None,
    stop_price: Decimal | None,
    quantity: Decimal,
    reference: Decimal | None,
    swept: Sweep | None,
) -> Decimal | None:
    """The notional (quote) a max_order_notional limit compares: limit price x quantity; a MARKET order's
    sweep cost (an upper bound for buys, an estimate for sells); stop price x quantity for a
    STOP_MARKET; reference price x quantity for a TRAILING_STOP without a price; None if unknown."""
    if price is not None:
        return mul(price, quantity)
    if order_type == "market":
        return None if swept is None else swept.cost
    if stop_price is not None:
        return mul(stop_price, quantity)
    return None if reference is None else mul(reference, quantity)


class Admission(NamedTuple):
    """What an approved new order holds: ``need`` of :func:`~.holds.hold_asset` for ``spec`` in
    ``market`` (checked against ``user``'s available balance at approval)."""

    user: UserId
    market: Market
    spec: OrderSpec
    need: Decimal


class PreTradeChecks:
    """The check logic over the manager's markets, orders, ledger, limits and rate limiter."""

    __slots__ = ("ledger", "limiter", "limits", "markets", "registry")

    def __init__(
        self,
        markets: dict[str, Market],
        registry: OrderRegistry,
        ledger: Ledger,
        limits: RiskLimits,
        limiter: RateLimiter | None,
    ) -> None:
        self.markets = markets
        self.registry = registry
        self.ledger = ledger
        self.limits = limits
        self.limiter = limiter

    # ------------------------------------------------------------------ new orders

    def admit(
        self,
        user_id: object,
        symbol: object,
        side: object,
        order_type: object,
        price: object,
        quantity: object,
        stop_price: object,
        now: object,
        time_in_force: object,
        self_trade_prevention: object,
    ) -> tuple[Decision, Admission | None]:
        """The decision of :meth:`manticore_risk.RiskManager.check_order` and, when approved, what the
        order must hold (the order parsed once, a market order's sweep bounded once)."""
        try:
            seconds = check_now(now)
            user = check_user_id(user_id)
            market = self.markets.get(symbol) if isinstance(symbol, str) else None
            if market is None:
                return rejected("unknown_market", f"there is no market {symbol!r}"), None
            spec = parse_order(
                side, order_type, price, quantity, stop_price, time_in_force, self_trade_prevention
            )
            check_grid(market, spec)
            decision, need = self._check_new(user, market, spec, seconds)
        except (ValueError, ArithmeticError) as exc:
            return rejected("invalid", str(exc) or type(exc).__name__), None
        if not decision["approved"]:
            return decision, None
        assert need is not None
        return decision, Admission(user, market, spec, need)

    def _check_new(
        self, user: UserId, market: Market, spec: OrderSpec, now: float
    ) -> tuple[Decision, Decimal | None]:
        """The decision on a parsed new order and, when approved, the amount it must hold."""
        reason = unsupported(spec)
        if reason is not None:
            return rejected("unsupported_order", reason), None
        limits = market.limits or self.limits
        if limits.max_order_quantity is not None and spec.quantity > limits.max_order_quantity:
            return rejected(
                "max_quantity",
                f"quantity {amount_str(spec.quantity)} is above the maximum "
                f"{limits.max_order_quantity} per order",
            ), None
        swept: Sweep | None = None
        if spec.order_type == "market":
            swept = market_sweep(self.registry, market, user, spec, now)
            if swept is None:
                side = "asks" if spec.is_buy else "bids"
                return rejected(
                    "no_liquidity", f"there are no {side} in {market.symbol} for a market order"
                ), None
        reference = market.reference()
        decision = self._market_limits(limits, spec, spec.price, spec.quantity, reference, True, swept)
        if decision is not None:
            return decision, None
        max_open = self.limits.max_open_orders
        kind = OrderType(spec.order_type.upper())
        tif = TimeInForce((spec.time_in_force or "gtc").upper())
        can_rest = rules.is_stop(kind) or rules.may_rest(kind, tif, spec.price is not None)
        if max_open is not None and can_rest and len(self.registry.of_user(user)) >= max_open:
            return rejected(
                "max_open_orders", f"you already have the maximum of {max_open} open orders"
            ), None
        decision = self._rate(user, now)
        if decision is not None:
            return decision, None
        need = new_order_hold(market, spec, swept)
        asset = hold_asset(market, spec.is_buy)
        decision = self._funds(user, asset, need, self._hold_words(spec))
        if decision is not None:
            return decision, None
        return self._approve(user, now), need

    # ------------------------------------------------------------------ modifies

    def check_modify(
        self, order_id: object, new_price: object, new_quantity: object, now: object
    ) -> Decision:
        """See :meth:`manticore_risk.RiskManager.check_modify`."""
        try:
            seconds = check_now(now)
            order = self.registry.by_id.get(order_id) if isinstance(order_id, str) else None
            if order is None:
                return rejected("unknown_order", f"order {order_id!r} is not a live order")
            market = self.markets[order.symbol]
            price = order.price
            if new_price is not None:
                if order.price is None:
                    raise ValueError(f"order {order_id!r} has no limit price to modify")
                price = parse_price(new_price, "new_price")
                if not market.on_price_grid(price):
                    raise ValueError(
                        f"new_price {amount_str(price)} is not a multiple of the tick size {market.tick_size}"
                    )
            quantity = order.quantity
            if new_quantity is not None:
                quantity = parse_quantity(new_quantity, "new_quantity")
                if not market.on_lot_grid(quantity):
                    raise ValueError(
                        f"new_quantity {amount_str(quantity)} is not a multiple of the lot size "
                        f"{market.lot_size}"
                    )
                if quantity <= order.filled:
                    raise ValueError(
                        f"new_quantity {amount_str(quantity)} must exceed the filled quantity "
                        f"{amount_str(order.filled)}"
                    )
            return self._check_modify(order, market, price, quantity, seconds)
        except (ValueError, ArithmeticError) as exc:
            return rejected("invalid", str(exc) or type(exc).__name__)

    def _check_modify(
        self, order: TrackedOrder, market: Market, price: Decimal | None, quantity: Decimal, now: float
    ) -> Decision:
        limits = market.limits or self.limits
        if price != order.price or quantity > order.quantity:  # a pure reduction only lowers the risk
            if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
                return rejected(
                    "max_quantity",
                    f"quantity {amount_str(quantity)} is above the maximum "
                    f"{limits.max_order_quantity} per order",
                )
            reference = market.reference()
            side = "buy" if order.is_buy else "sell"
            spec = OrderSpec(side, order.order_type, price, quantity, order.stop_price, None, None)
            decision = self._market_limits(limits, spec, price, quantity, reference, order.pending, None)
            if decision is not None:
                return decision
        decision = self._rate(order.user_id, now)
        if decision is not None:
            return decision
        open_after = sub(quantity, order.filled)
        if order.is_buy:
            assert price is not None  # tracked buys other than market buys have a limit price
            need = limit_hold(price, open_after, order.margin)
        else:
            need = open_after
        increase = sub(need, order.hold)
        if increase > 0:
            decision = self._funds(order.user_id, order.asset, increase, "the larger order")
            if decision is not None:
                return decision
        return self._approve(order.user_id, now)

    # ------------------------------------------------------------------ shared steps

    @staticmethod
    def _market_limits(
        limits: RiskLimits,
        spec: OrderSpec,
        price: Decimal | None,
        quantity: Decimal,
        reference: Decimal | None,
        pending: bool,
        swept: Sweep | None,
    ) -> Decision | None:
        if limits.price_band is not None:
            reason = band_violation(
                limits.price_band,
                reference,
                spec.order_type,
                spec.is_buy,
                price,
                spec.stop_price,
                pending,
                swept,
            )
            if reason is not None:
                return rejected("price_band", reason)
        if limits.max_order_notional is not None:
            notional = order_notional(spec.order_type, price, spec.stop_price, quantity, reference, swept)
            if notional is not None and notional > limits.max_order_notional:
                return rejected(
                    "max_notional",
                    f"order notional {amount_str(notional)} is above the maximum "
                    f"{limits.max_order_notional} per order",
                )
        return None

    def _rate(self, user: UserId, now: float) -> Decision | None:
        limiter = self.limiter
        if limiter is None or limiter.allows(user, now):
            return None
        wait = limiter.retry_after(user, now)
        decision = rejected(
            "rate_limited",
            f"too many orders: at most {limiter.limit} per {limiter.window:g} seconds; "
            f"try again in {wait:.3g} s",
        )
        decision["retry_after"] = wait
        decision["rate_limit"] = limiter.limit
        return decision

    def _funds(self, user: UserId, asset: str, need: Decimal, what: str) -> Decision | None:
        have = self.ledger.available(user, asset)
        if need <= have:
            return None
        return rejected(
            "insufficient_balance",
            f"insufficient {asset}: {what} needs {amount_str(need)} {asset}, "
            f"you have {amount_str(max(have, ZERO))} {asset} available",
        )

    @staticmethod
    def _hold_words(spec: OrderSpec) -> str:
        if not spec.is_buy:
            return "this sell"
        if spec.price is None:
            return "this market buy (worst-case sweep cost plus fees)"
        return "this buy (price x quantity plus the maximum fee)"

    def _approve(self, user: UserId, now: float) -> Decision:
        if self.limiter is not None:
            self.limiter.record(user, now)
        return approved()
