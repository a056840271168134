"""Binance user data events from the exchange's durable private messages.

For each durable command the exchange publishes, per user, ``order`` messages (order added, modified,
cancelled, expired), ``fill`` messages and a ``balances`` message (see :mod:`manticore_matching.feed`).
:class:`UserFeed` turns them into Binance's user data events and hands each to the user's subscriptions
(WebSocket API connections, see :mod:`.ws_api`), wrapped as ``{"subscriptionId": n, "event": {...}}``:

- ``executionReport`` per order event: ``x`` = ``NEW`` (order added), ``TRADE`` (one per fill, with
  ``l``/``L``/``Y`` the fill's quantity/price/quote, ``t`` its trade id, ``n``/``N`` its fee in the quote
  asset, ``m`` maker), ``CANCELED`` (cancelled by its owner), ``EXPIRED`` (IOC/FOK/market remainder, GTD
  expiry), ``EXPIRED_IN_MATCH`` (self-trade prevention) or ``REPLACED`` (modified). The order fields
  (``i``, ``c``, ``o``, ``f``, ``q``, ``p``, ``P``, ``F``, ``z``, ``Z``, ``X``...) are those REST returns
  for the order (:func:`.orders.binance_order`), so both surfaces agree.
- ``outboundAccountPosition`` after every balance change, with the user's assets (``f`` free = available,
  ``l`` locked = held).
- ``balanceUpdate`` before it when the change was a deposit or withdrawal (``d`` = the signed delta;
  a split deployment's account shard marks its balances messages with ``transfer``).

Times are integer milliseconds of the command's exchange time. Nothing is sent for commands that are not
durable yet: messages come from the exchange's durable listener, handed to the event loop in journal order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Protocol

from manticore_matching import Demand, Exchange

from ..jsontext import dumps_text
from .markets import BinanceMarkets
from .orders import binance_order, trade_no

__all__ = ["UserFeed", "UserSubscriber"]

log = logging.getLogger("manticore_api")

_REASON_TYPES = {"user": "CANCELED", "self_trade_prevention": "EXPIRED_IN_MATCH"}
_LIVE = frozenset({"NEW", "PARTIALLY_FILLED"})


class UserSubscriber(Protocol):
    """A connection taking encoded frames."""

    def push(self, message: dict[str, Any] | str) -> None: ...


def _ms(seconds: object) -> int:
    return round(float(str(seconds)) * 1000)


class UserFeed:
    """Routes user data events to subscriptions (call everything on the event loop).

    Args:
        exchange: the exchange to follow (an exchange listener is added now).
        markets: symbol and number formats.
        loop: returns the running event loop (None before the server started).
    """

    def __init__(
        self,
        exchange: Exchange,
        markets: BinanceMarkets,
        loop: Callable[[], asyncio.AbstractEventLoop | None],
    ) -> None:
        self._exchange = exchange
        self._markets = markets
        self._loop = loop
        self._subscriptions: dict[str, dict[tuple[int, int], UserSubscriber]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._quote: dict[str, Decimal] = {}
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._execution_no = 0
        self.events_sent = 0
        #: The private messages of subscribed users only (the exchange builds no others for this feed).
        self._demand = Demand(users=())
        #: Users about to be subscribed (:meth:`following`), by how many subscriptions are under way.
        self._arriving: dict[str, int] = {}
        exchange.add_listener(self._from_journal_thread, self._demand)

    # ------------------------------------------------------------------ subscriptions

    def follows(self, user_id: str) -> bool:
        """Whether the feed keeps ``user_id``'s balances already (:meth:`subscribe` needs none then)."""
        return user_id in self._balances

    def subscribe(
        self,
        user_id: str,
        subscriber: UserSubscriber,
        subscription_id: int,
        balances: dict[str, Any] | None = None,
    ) -> None:
        """Deliver ``user_id``'s events to ``subscriber`` wrapped with ``subscription_id``. ``balances``:
        the user's balances now (``Exchange.balances(user)["balances"]``), read here when not given."""
        self._subscriptions.setdefault(user_id, {})[(id(subscriber), subscription_id)] = subscriber
        self._follow_subscribed_users()
        if user_id not in self._balances:
            if balances is None:
                balances = self._exchange.balances(user_id)["balances"]
            self._balances[user_id] = {asset: Decimal(v["available"]) for asset, v in balances.items()}

    def unsubscribe(self, user_id: str, subscriber: UserSubscriber, subscription_id: int) -> None:
        subscriptions = self._subscriptions.get(user_id)
        if subscriptions is None:
            return
        subscriptions.pop((id(subscriber), subscription_id), None)
        if not subscriptions:
            del self._subscriptions[user_id]
            self._follow_subscribed_users()
            self._balances.pop(user_id, None)
            for order_id in [oid for oid, order in self._orders.items() if order.get("user_id") == user_id]:
                self._orders.pop(order_id, None)
                self._quote.pop(order_id, None)

    @contextlib.contextmanager
    def following(self, user_id: str) -> Iterator[None]:
        """Have the exchange build ``user_id``'s private messages from now on while the block runs:
        read the balances a new subscription starts from, then :meth:`subscribe`, inside it, so that
        no change after the read goes unseen."""
        self._arriving[user_id] = self._arriving.get(user_id, 0) + 1
        self._follow_subscribed_users()
        try:
            yield
        finally:
            left = self._arriving.pop(user_id) - 1
            if left:
                self._arriving[user_id] = left
            self._follow_subscribed_users()

    def _follow_subscribed_users(self) -> None:
        """Ask the exchange for the private messages of exactly the subscribed users and those being
        subscribed, from its next command on (called on the loop when that set may have changed)."""
        users = set(self._subscriptions).union(self._arriving)
        if users != self._demand.users:
            self._demand.users = users
            self._exchange.demand_changed()

    def _send(self, user_id: str, event: dict[str, Any]) -> None:
        subscriptions = self._subscriptions.get(user_id)
        if not subscriptions:
            return
        body = dumps_text(event)
        for (_, subscription_id), subscriber in list(subscriptions.items()):
            subscriber.push(f'{{"subscriptionId":{subscription_id},"event":{body}}}')
            self.events_sent += 1

    # ------------------------------------------------------------------ durable messages

    def _from_journal_thread(self, batch: list[dict[str, Any]]) -> None:
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, batch)

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Translate one durable command's private messages (on the loop, in journal order)."""
        if not self._subscriptions:
            return
        traded = {m["user_id"] for m in batch if m.get("type") in ("order", "fill")}
        for message in batch:
            kind = message.get("type")
            user_id = message.get("user_id")
            if not isinstance(user_id, str) or user_id not in self._subscriptions:
                continue
            try:
                if kind == "order":
                    self._on_order(user_id, message)
                elif kind == "fill":
                    self._on_fill(user_id, message)
                elif kind == "balances":
                    transfer = message.get("transfer", user_id not in traded)  # given by an account shard
                    self._on_balances(user_id, message, transfer=bool(transfer))
            except Exception:
                log.exception("binance user feed: cannot translate a %s message", kind)

    def _on_order(self, user_id: str, message: dict[str, Any]) -> None:
        order = dict(message["order"])
        event = message["event"]
        order_id = order["order_id"]
        if event == "order_triggered":
            self._orders[order_id] = order
            return
        if event == "order_added":
            execution = "NEW"
            self._quote.setdefault(order_id, Decimal(0))
        elif event == "order_cancelled":
            execution = _REASON_TYPES.get(str(order.get("reason")), "EXPIRED")
        elif event == "order_expired":
            execution = "EXPIRED"
        else:
            execution = "REPLACED"
        status_override = execution if execution in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") else None
        report = self._report(order, execution, _ms(order["timestamp"]), status=status_override)
        self._remember(order_id, order, report["X"])
        self._send(user_id, report)

    def _on_fill(self, user_id: str, fill: dict[str, Any]) -> None:
        order_id = fill["order_id"]
        order = self._orders.get(order_id)
        if order is None:
            order = self._exchange.get_order(user_id, order_id) or {}
            order = dict(order)
        for key in ("filled_quantity", "remaining_quantity", "visible_quantity", "status"):
            if key in fill:
                order[key] = fill[key]
        order.setdefault("order_id", order_id)
        order.setdefault("symbol", fill["symbol"])
        order.setdefault("side", fill["side"])
        order.setdefault("user_id", user_id)
        if fill.get("client_order_id") and not order.get("client_order_id"):
            order["client_order_id"] = fill["client_order_id"]
        native = fill["symbol"]
        # The owner's fill view (manticore_matching.feed.fill_view): this fill's price and quantity.
        price, quantity = Decimal(fill["price"]), Decimal(fill["quantity"])
        maker = fill.get("role") == "maker"
        last_quote = price * quantity
        cumulative = self._quote.get(order_id)
        if cumulative is None:  # fills before this server saw the order: REST's figure includes this one
            cumulative = Decimal(binance_order(self._markets, order).get("cummulativeQuoteQty", "0"))
        else:
            cumulative += last_quote
        self._quote[order_id] = cumulative
        when = _ms(fill["timestamp"])
        markets = self._markets
        fee = Decimal(str(fill.get("fee") or 0))
        fee_asset = fill.get("fee_asset") or markets.config(native).quote_asset
        report = self._report(order, "TRADE", when, cumulative=cumulative)
        report.update(
            {
                "l": markets.qty(native, quantity),
                "L": markets.price(native, price),
                "n": f"{fee:f}" if fee else "0",
                "N": fee_asset if fee else None,
                "t": trade_no(fill["trade_id"]),
                "m": maker,
                "Y": markets.quote(native, last_quote),
            }
        )
        self._remember(order_id, order, report["X"])
        self._send(user_id, report)

    def _remember(self, order_id: str, order: dict[str, Any], status: str) -> None:
        if status in _LIVE:
            self._orders[order_id] = order
        else:
            self._orders.pop(order_id, None)
            self._quote.pop(order_id, None)

    def _report(
        self,
        order: dict[str, Any],
        execution: str,
        when: int,
        status: str | None = None,
        cumulative: Decimal | None = None,
    ) -> dict[str, Any]:
        native = order["symbol"]
        base = binance_order(self._markets, order)
        if cumulative is None:
            cumulative = self._quote.get(order["order_id"])
        quote = (
            base.get("cummulativeQuoteQty", "0")
            if cumulative is None
            else self._markets.quote(native, cumulative)
        )
        final = status or str(base.get("status", "NEW"))
        client_id = str(base.get("clientOrderId", ""))
        self._execution_no += 1
        created = int(base.get("time") or when)
        return {
            "e": "executionReport",
            "E": when,
            "s": base.get("symbol", self._markets.binance_symbol(native)),
            "c": client_id,
            "S": base.get("side", str(order.get("side", "")).upper()),
            "o": base.get("type", "LIMIT"),
            "f": base.get("timeInForce", "GTC"),
            "q": base.get("origQty", "0"),
            "p": base.get("price", "0"),
            "P": base.get("stopPrice", "0"),
            "F": base.get("icebergQty", "0"),
            "g": -1,
            "C": client_id if execution in ("CANCELED", "REPLACED") else "",
            "x": execution,
            "X": final,
            "r": "NONE",
            "i": base.get("orderId", 0),
            "l": self._markets.qty(native, 0),
            "z": base.get("executedQty", "0"),
            "L": self._markets.price(native, 0),
            "n": "0",
            "N": None,
            "T": when,
            "t": -1,
            "I": self._execution_no,
            "w": final in _LIVE and base.get("type") != "MARKET",
            "m": False,
            "M": False,
            "O": created,
            "Z": quote,
            "Y": self._markets.quote(native, 0),
            "Q": base.get("origQuoteOrderQty", "0"),
            "W": created,
            "V": base.get("selfTradePreventionMode", "NONE"),
        }

    def _on_balances(self, user_id: str, message: dict[str, Any], transfer: bool) -> None:
        balances: dict[str, dict[str, str]] = message["balances"]
        when = round(time.time() * 1000)
        known = self._balances.setdefault(user_id, {})
        if transfer:
            for asset, value in balances.items():
                available = Decimal(value["available"])
                delta = available - known.get(asset, Decimal(0))
                if delta:
                    self._send(
                        user_id, {"e": "balanceUpdate", "E": when, "a": asset, "d": _text(delta), "T": when}
                    )
        for asset, value in balances.items():
            known[asset] = Decimal(value["available"])
        self._send(
            user_id,
            {
                "e": "outboundAccountPosition",
                "E": when,
                "u": when,
                "B": [
                    {"a": asset, "f": _text(v["available"]), "l": _text(v["held"])}
                    for asset, v in balances.items()
                ],
            },
        )


def _text(value: Decimal | str) -> str:
    """A balance as Binance writes it: at least 8 decimals (``"10.50000000"``), exact beyond."""
    number = Decimal(value)
    exponent = number.as_tuple().exponent
    places = max(8, -exponent if isinstance(exponent, int) else 8)
    return f"{number:.{places}f}"
