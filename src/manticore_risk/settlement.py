"""Settling the ledger from the order book's events.

``Settlement.on_event(event_type, data)`` is the handler a book's event manager calls. It reacts to:

* ``ORDER_ADDED``: the order is in the book (``release_unplaced`` no longer applies); note its expiry.
* ``TRADE_EXECUTED``: the buyer pays ``notional + its fee`` out of its order's hold and receives the base
  quantity; the seller gives the base quantity out of its hold and receives ``notional - its fee``; the
  fee account receives ``maker_fee + taker_fee`` (a negative maker fee is a rebate it pays). Then each
  order's hold is recomputed for its open quantity and the surplus returns to available (a buy filled
  below its limit gets the price improvement back); an order with nothing open is finished.
* ``ORDER_MODIFIED`` (reasons ``user`` and ``self_trade_prevention``): the hold is recomputed for the
  order's open quantity at its current price; a larger hold takes the difference from available.
* ``ORDER_TRIGGERED``: the stop is no longer waiting.
* ``ORDER_CANCELLED`` (any reason), ``ORDER_EXPIRED``, ``BOOK_CLEARED``: the rest of the hold is
  released and the order forgotten.

Everything else is ignored after one dict lookup. An event of a book that is not registered, about an
order that is not tracked, or delivered a second time (same book, sequence not above the last one
applied) changes nothing, except a trade with an untracked side: it is still settled, from that
user's available balance, so that money stays conserved, and reported as an error.

When settlement breaks the ledger's contract (a payment larger than the order's hold, an untracked
order in a trade, a modify whose larger hold was not available) the ledger is still updated exactly
(money is conserved; an available balance may then be negative) and :class:`RiskError` is raised
after the event has been applied: the book reports it as an ERROR event and logs it. This does not
happen when every order went through ``check_order``/``check_modify`` and ``reserve``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from manticore_orderbook import (
    BookClearedPayload,
    EventType,
    OrderModifiedPayload,
    OrderPayload,
    OrderTriggeredPayload,
    TradePayload,
)

from .amounts import EXACT, ZERO, add, amount_str, mul, sub, to_decimal
from .errors import RiskError
from .ledger import Ledger, UserId
from .markets import Market
from .tracking import OrderRegistry, TrackedOrder, required_hold

__all__ = ["Settlement"]

# Each handler takes the payload shape of the event types it is registered for (see
# manticore_orderbook.payloads); ``on_event`` is the one place a plain payload dict meets that type.
Handler = Callable[[Market, Any], None]


class Settlement:
    """Applies book events to the ledger and the order registry (see the module docstring)."""

    __slots__ = ("_handlers", "_problems", "ledger", "markets", "registry")

    def __init__(self, markets: dict[str, Market], registry: OrderRegistry, ledger: Ledger) -> None:
        self.markets = markets
        self.registry = registry
        self.ledger = ledger
        self._problems: list[str] = []
        self._handlers: dict[object, Handler] = {
            EventType.ORDER_ADDED: self._added,
            EventType.TRADE_EXECUTED: self._trade,
            EventType.ORDER_MODIFIED: self._modified,
            EventType.ORDER_TRIGGERED: self._triggered,
            EventType.ORDER_CANCELLED: self._ended,
            EventType.ORDER_EXPIRED: self._ended,
            EventType.BOOK_CLEARED: self._cleared,
        }

    def on_event(self, event_type: object, data: dict[str, Any]) -> None:
        """Apply one event (see the module docstring); raises :class:`RiskError` after applying an event
        that broke the ledger's contract."""
        handler = self._handlers.get(event_type)
        if handler is None:
            return
        symbol = data.get("symbol")
        market = self.markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            return
        sequence = data.get("sequence")
        if isinstance(sequence, int):
            if sequence <= market.last_sequence:
                return  # delivered twice (e.g. two subscriptions on one manager): applied once
            market.last_sequence = sequence
        handler(market, data)
        if self._problems:
            problems = "; ".join(self._problems)
            self._problems.clear()
            raise RiskError(f"{market.symbol} event {sequence}: {problems}")

    # ------------------------------------------------------------------ order lifecycle

    def _order(self, market: Market, order_id: object) -> TrackedOrder | None:
        order = self.registry.by_id.get(order_id) if isinstance(order_id, str) else None
        if order is None or order.symbol != market.symbol:
            return None
        return order

    def _added(self, market: Market, data: OrderPayload) -> None:
        order = self._order(market, data.get("order_id"))
        if order is None:
            return
        order.seen = True
        expiry = data.get("expiry_time")
        if expiry is not None and expiry != order.expiry:
            order.expiry = float(expiry)
            self.registry.note_expiry(order)

    def _triggered(self, market: Market, data: OrderTriggeredPayload) -> None:
        order = self._order(market, data.get("order_id"))
        if order is not None:
            order.pending = False

    def _ended(self, market: Market, data: OrderPayload) -> None:
        order = self._order(market, data.get("order_id"))
        if order is not None:
            self.finish(order)

    def _cleared(self, market: Market, data: BookClearedPayload) -> None:
        for order_id in data.get("order_ids", ()):
            order = self._order(market, order_id)
            if order is not None:
                self.finish(order)

    def _modified(self, market: Market, data: OrderModifiedPayload) -> None:
        if data.get("reason") == "trailing_stop":
            return  # only the stop price moved; holds do not depend on it
        order = self._order(market, data.get("order_id"))
        if order is None:
            return
        if not order.market_buy:
            price = data.get("price")
            order.price = None if price is None else to_decimal(price)
        order.quantity = to_decimal(data["quantity"])
        order.open = to_decimal(data["remaining_quantity"])
        expiry = data.get("expiry_time")
        if expiry is not None and expiry != order.expiry:
            order.expiry = float(expiry)
            self.registry.note_expiry(order)
        self.rehold(order)

    def finish(self, order: TrackedOrder) -> None:
        """Release what is left of ``order``'s hold and forget the order."""
        if order.hold:
            self.ledger.release(order.user_id, order.asset, order.hold)
            order.hold = ZERO
        self.registry.remove(order)

    def rehold(self, order: TrackedOrder) -> None:
        """Make ``order``'s hold equal to what its open quantity needs now (finish it if nothing is open)."""
        if not order.open:
            self.finish(order)
            return
        need = required_hold(order)
        change = sub(need, order.hold)
        if not change:
            return
        if change > 0:
            available = self.ledger.available(order.user_id, order.asset)
            if available < change:
                self._problems.append(
                    f"order {order.order_id!r} needs {amount_str(change)} more {order.asset} held but user "
                    f"{order.user_id!r} has {amount_str(available)} available (modified without a check?)"
                )
            self.ledger.hold(order.user_id, order.asset, change)
        else:
            self.ledger.release(order.user_id, order.asset, sub(order.hold, need))
        order.hold = need

    # ------------------------------------------------------------------ trades

    def _trade(self, market: Market, data: TradePayload) -> None:
        price = to_decimal(data["price"])
        quantity = to_decimal(data["quantity"])
        notional = mul(price, quantity)
        maker_fee = to_decimal(data["maker_fee"])
        taker_fee = to_decimal(data["taker_fee"])
        buy_id = data["buy_order_id"]
        buyer_is_maker = buy_id == data["maker_order_id"]
        # An order without a user (sent to the book without risk) has no hold either: _pay settles its
        # side against the outside of the ledger and reports it; None never becomes a ledger account.
        maker_user = data["maker_user_id"]
        taker_user = data["taker_user_id"]
        if buyer_is_maker:
            buyer_fee, seller_fee = maker_fee, taker_fee
            buyer_user, seller_user = maker_user, taker_user
        else:
            buyer_fee, seller_fee = taker_fee, maker_fee
            buyer_user, seller_user = taker_user, maker_user
        buy = self._order(market, buy_id)
        sell = self._order(market, data["sell_order_id"])
        ledger = self.ledger
        # Buyer: pays notional + fee in quote, receives the base quantity.
        buyer = self._pay(buy, buyer_user, market.quote, add(notional, buyer_fee), quantity, buy_id)
        self._credit(buyer, market.base, quantity)
        # Seller: gives the base quantity, receives notional - fee in quote.
        seller = self._pay(sell, seller_user, market.base, quantity, quantity, data["sell_order_id"])
        self._credit(seller, market.quote, sub(notional, seller_fee))
        ledger.collect_fee(market.quote, add(maker_fee, taker_fee))
        if buy is not None:
            self.rehold(buy)
        if sell is not None:
            self.rehold(sell)

    def _credit(self, user: UserId | None, asset: str, amount: Decimal) -> None:
        """Pay ``amount`` of ``asset`` into ``user``'s available balance; with no user (an order that
        bypassed risk without a user id) it leaves the ledger, counted like a withdrawal."""
        if user is None:
            self.ledger.external(asset, EXACT.minus(amount))
        else:
            self.ledger.credit(user, asset, amount)

    def _pay(
        self,
        order: TrackedOrder | None,
        user: UserId | None,
        asset: str,
        amount: Decimal,
        filled: Decimal,
        order_id: object,
    ) -> UserId | None:
        """Take ``amount`` of ``asset`` for a fill of ``filled`` from ``order``'s hold; return the user
        (None for an untracked order without a valid user id: the amount then comes from outside the
        ledger, counted like a deposit, and the trade is reported)."""
        ledger = self.ledger
        if order is None:
            if user is None or isinstance(user, bool) or not isinstance(user, (str, int)):
                self._problems.append(
                    f"order {order_id!r} without a user traded without a hold; its side of the trade "
                    "was settled against the outside of the ledger"
                )
                ledger.external(asset, amount)
                return None
            self._problems.append(f"order {order_id!r} of user {user!r} traded without a hold")
            ledger.spend_available(user, asset, amount)
            return user
        from_hold = amount if amount <= order.hold else order.hold
        if from_hold:
            ledger.spend_held(order.user_id, asset, from_hold)
            order.hold = sub(order.hold, from_hold)
        if from_hold != amount:
            self._problems.append(
                f"order {order.order_id!r} paid {amount_str(amount)} {asset} "
                f"but only {amount_str(from_hold)} was held for it"
            )
            ledger.spend_available(order.user_id, asset, sub(amount, from_hold))
        order.open = sub(order.open, filled)
        return order.user_id
