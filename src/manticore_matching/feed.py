"""What the outside world is told about one command: market data and private updates.

:class:`CommandCapture` collects the events a book publishes during one command; :func:`messages` turns
them into the messages that streams deliver:

- ``{"type": "book", "symbol", "first_sequence", "last_sequence", "timestamp", "bids", "asks"}``: the
  levels the command changed, each ``{"price", "quantity", "order_count"}`` with the level's new visible
  total (zero on the grid, ``"0.00000"`` on a 0.00001 lot, when it is gone). Sequences are the book's
  event sequences; a command's diff covers every sequence it used, so consecutive diffs of one symbol
  are contiguous and a gap means a lost message. Applying the diffs with ``first_sequence == last + 1``
  to a snapshot at sequence ``last`` keeps it equal to the book.
- ``{"type": "trade", "symbol", "trade_id", "price", "quantity", "taker_side", "timestamp", "sequence"}``.
- private ones carry ``user_id`` (the owner, whom they are routed to): ``{"type": "order", "user_id",
  "event", "order"}`` for each event about one of the user's orders (the whole order, with its
  ``client_order_id``), and for each fill of one of the user's orders ``{"type": "fill", "user_id",
  ...}`` with the keys of :func:`fill_view` plus the order's progress after it (``status``,
  ``filled_quantity``, ``remaining_quantity``). A fill never names the counterparty (neither its user nor
  its order).

Prices and quantities are exact decimal strings with the market's grid decimals (books run with
``number_format="str"``); a fill's ``fee`` is an amount without trailing zeros (see :mod:`.formatting`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Container
from typing import Any

from manticore_orderbook import (
    EventManager,
    EventType,
    OrderFilledPayload,
)

from .demand import Wanted
from .formatting import money

__all__ = [
    "CORE_EVENTS",
    "FILL_KEYS",
    "FILL_RECORD",
    "TRADE_RECORD",
    "MESSAGE_ONLY_EVENTS",
    "CommandCapture",
    "command_messages",
    "fee_text",
    "fill_record",
    "fill_view",
    "messages",
    "trade_record",
    "users_of",
]

_LEVEL_EVENTS = frozenset(
    {EventType.PRICE_LEVEL_ADDED, EventType.PRICE_LEVEL_CHANGED, EventType.PRICE_LEVEL_REMOVED}
)
_ORDER_EVENTS = frozenset(
    {
        EventType.ORDER_ADDED,
        EventType.ORDER_MODIFIED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_EXPIRED,
        EventType.ORDER_TRIGGERED,
    }
)
_TRADE = EventType.TRADE_EXECUTED
_FILLED = EventType.ORDER_FILLED
#: The keys of one fill as its owner sees it (``Exchange.fills`` and the private ``fill`` frames).
FILL_KEYS = (
    "trade_id",
    "symbol",
    "order_id",
    "client_order_id",
    "side",
    "role",
    "price",
    "quantity",
    "fee",
    "fee_asset",
    "timestamp",
)


#: A fill record (what a fill listener reads: :meth:`~.release.Listeners.add_fill_listener`): these
#: values of the order's ORDER_FILLED payload, in this order: ``(user_id, order_id, trade_id, price,
#: quantity, fee)`` (this fill's price and quantity; the fee as the book writes it: :func:`fee_text` is
#: the fill message's). A tuple made by one C call: no message dict, no key stored.
FILL_RECORD = ("user_id", "order_id", "trade_id", "fill_price", "fill_quantity", "fee")
#: A trade record (what a trade listener reads: :meth:`~.release.Listeners.add_trade_listener`): these
#: values of the TRADE_EXECUTED payload (a trade message's, but its ``type``), in this order:
#: ``(symbol, price, quantity, timestamp, taker_side, sequence, trade_id)``.
TRADE_RECORD = ("symbol", "price", "quantity", "timestamp", "taker_side", "sequence", "trade_id")
#: A fill payload's :data:`FILL_RECORD` tuple.
fill_record = operator.itemgetter(*FILL_RECORD)
#: A trade payload's :data:`TRADE_RECORD` tuple.
trade_record = operator.itemgetter(*TRADE_RECORD)


def fee_text(fee: object) -> object:
    """A fill's fee as its ``fill`` message has it: :func:`~.formatting.money` of the book's fee, where
    a fee that is a string is plain fixed-point text (``format(Decimal, "f")``): its trailing zeros
    cut without ``money``'s check of the text (what :func:`messages` writes). A value that is not a
    number is returned unchanged (as ``money`` does)."""
    if isinstance(fee, str) and fee.__class__ is str:
        text = fee
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return money(fee)


def fill_view(data: OrderFilledPayload, fee_asset: str | None) -> dict[str, Any]:
    """One side of a trade as the owner of that side's order sees it, from the order's ORDER_FILLED data:
    ``trade_id, symbol, order_id, client_order_id, side, role`` (``maker``/``taker``), ``price`` and
    ``quantity`` (of this fill), ``fee`` (paid in ``fee_asset``, the market's quote asset; negative is a
    rebate), ``timestamp``."""
    return {
        "trade_id": data["trade_id"],
        "symbol": data["symbol"],
        "order_id": data["order_id"],
        "client_order_id": data.get("client_order_id"),
        "side": data["side"],
        "role": "maker" if data["is_maker"] else "taker",
        "price": data["fill_price"],
        "quantity": data["fill_quantity"],
        "fee": data["fee"],
        "fee_asset": fee_asset,
        "timestamp": data["timestamp"],
    }


#: A fill message's and a trade message's keys in their order, ``type`` set: a message is a copy with
#: the values stored. Copying a dict of string keys copies its key table in one block; a dict display
#: inserts (hashes and probes) each key again.
_FILL_TEMPLATE: dict[str, Any] = dict.fromkeys(("type", "user_id", *FILL_KEYS))
_FILL_TEMPLATE.update(type="fill", status=None, filled_quantity=None, remaining_quantity=None)
_TRADE_TEMPLATE: dict[str, Any] = dict.fromkeys(
    ("type", "symbol", "trade_id", "price", "quantity", "taker_side", "timestamp", "sequence")
)
_TRADE_TEMPLATE["type"] = "trade"

_NO_USER = _LEVEL_EVENTS | {EventType.BOOK_CLEARED}
_USER_KEYS = ("user_id", "maker_user_id", "taker_user_id")


def users_of(events: list[tuple[EventType, Any]]) -> list[str]:
    """The users whose balances a command's events may have changed, in the order the events first
    name them (``user_id``, then ``maker_user_id``, then ``taker_user_id`` of each event)."""
    users: dict[str, None] = {}
    for event_type, data in events:
        if event_type is _TRADE:
            for key in _USER_KEYS:
                user = data.get(key)
                if isinstance(user, str):
                    users[user] = None
        elif event_type not in _NO_USER:
            # Only a trade's payload names a maker and a taker; every other payload one user at most.
            user = data.get("user_id")
            if isinstance(user, str):
                users[user] = None
    return list(users)


#: What the exchange itself reads from a command's events (its recent-orders view, recent trades):
#: every event type but the price level events and ERROR, which only stream messages need.
CORE_EVENTS: tuple[EventType, ...] = tuple(
    event_type
    for event_type in EventType
    if event_type not in _LEVEL_EVENTS and event_type is not EventType.ERROR
)
#: What a capture adds while stream messages are built (:meth:`CommandCapture.listen`).
MESSAGE_ONLY_EVENTS: tuple[EventType, ...] = tuple(
    event_type for event_type in EventType if event_type not in CORE_EVENTS
)


class CommandCapture:
    """The events of the command in progress, in sequence order (a book's handler).

    A capture subscribes to :data:`CORE_EVENTS`, and to every event type while :attr:`complete`
    (:meth:`listen`): only a complete capture may be turned into stream messages (:func:`messages`
    counts its events as the command's sequences). Without the price level events the book builds no
    payload for them (nobody else subscribes to them), which is most of what an order costs it."""

    __slots__ = ("complete", "events", "handler")

    def __init__(self) -> None:
        self.events: list[tuple[EventType, dict[str, Any]]] = []
        self.complete = False
        #: What is subscribed: the bound method :meth:`record`, made once. The book calls it for every
        #: event; a bound method is called directly, where calling the instance (``__call__``) goes
        #: through a type slot that looks the method up and packs the arguments in a tuple every time.
        self.handler = self.record

    def attach(self, manager: EventManager, complete: bool) -> None:
        """Subscribe to ``manager``'s :data:`CORE_EVENTS`, and to all event types if ``complete``."""
        for event_type in CORE_EVENTS:
            manager.subscribe(event_type, self.handler)
        self.complete = False
        self.listen(manager, complete)

    def listen(self, manager: EventManager, complete: bool) -> None:
        """Capture every event type (``complete``) or only :data:`CORE_EVENTS` from the next event on
        (call between commands)."""
        if complete == self.complete:
            return
        for event_type in MESSAGE_ONLY_EVENTS:
            if complete:
                manager.subscribe(event_type, self.handler)
            else:
                manager.unsubscribe(event_type, self.handler)
        self.complete = complete

    def record(self, event_type: EventType, data: dict[str, Any]) -> None:
        """The book's handler: keep one event of the command in progress."""
        self.events.append((event_type, data))

    __call__ = record

    def take(self) -> list[tuple[EventType, dict[str, Any]]]:
        """The captured events; the capture starts empty again."""
        events = self.events
        self.events = []
        return events


def messages(
    symbol: str,
    first_sequence: int,
    last_sequence: int,
    timestamp: float,
    events: list[tuple[EventType, Any]],
    fee_asset: str | None = None,
    *,
    book: bool = True,
    trades: bool = True,
    users: Container[str] | None = None,
    fills: bool = False,
) -> list[dict[str, Any]]:
    """The stream messages of one command on ``symbol`` that used sequences ``first..last``; fees are in
    ``fee_asset`` (the market's quote asset).

    Only the ones asked for, in the same order: the ``book`` diff (its sequences count ``events``, so
    they must be every event of the command), the ``trades``, and the private messages of ``users``
    (None: everyone's) plus, with ``fills``, every user's fill messages.

    The events are a book's, as it publishes them (``number_format="str"``): every ORDER_FILLED payload
    has all its keys, and a fee that is a string is plain fixed-point text as ``format(Decimal, "f")``
    writes it (the fill message's fee is :func:`~.formatting.money` of it, taken here without
    ``money``'s check of the text; a fee of another type goes through ``money``)."""
    return _messages(
        symbol, first_sequence, last_sequence, timestamp, events, fee_asset, book, trades, users, fills
    )


def _messages(
    symbol: str,
    first_sequence: int,
    last_sequence: int,
    timestamp: float,
    events: list[tuple[EventType, Any]],
    fee_asset: str | None,
    book: bool,
    trades: bool,
    users: Container[str] | None,
    fills: bool,
) -> list[dict[str, Any]]:
    """:func:`messages` with positional arguments (what :func:`command_messages` calls)."""
    result: list[dict[str, Any]] = []
    if last_sequence < first_sequence:
        return result
    # The book diff's levels by price, one dict per side: a level changed twice keeps its first place.
    bids: dict[object, dict[str, Any]] = {}
    asks: dict[object, dict[str, Any]] = {}
    private: list[dict[str, Any]] = []
    every_fill = fills or users is None
    orders = users is None or bool(users)  # whether any order message may be wanted
    for event_type, data in events:
        if event_type is _FILLED:
            owner = data["user_id"]
            if owner is not None and (every_fill or owner in users):  # type: ignore[operator]
                # fill_view's keys in its order, written out; the fee as money() writes it.
                fee = data["fee"]
                if fee.__class__ is str:
                    if "." in fee:
                        fee = fee.rstrip("0").rstrip(".")
                    if fee == "-0":
                        fee = "0"
                else:
                    fee = money(fee)
                message = _FILL_TEMPLATE.copy()
                message["user_id"] = owner
                message["trade_id"] = data["trade_id"]
                message["symbol"] = data["symbol"]
                message["order_id"] = data["order_id"]
                message["client_order_id"] = data["client_order_id"]
                message["side"] = data["side"]
                message["role"] = "maker" if data["is_maker"] else "taker"
                message["price"] = data["fill_price"]
                message["quantity"] = data["fill_quantity"]
                message["fee"] = fee
                message["fee_asset"] = fee_asset
                message["timestamp"] = data["timestamp"]
                message["status"] = data["status"]
                message["filled_quantity"] = data["filled_quantity"]
                message["remaining_quantity"] = data["remaining_quantity"]
                private.append(message)
        elif event_type in _LEVEL_EVENTS:
            if book:
                price = data["price"]
                side = data["side"]
                if side == "buy":
                    bids[price] = {
                        "price": price,
                        "quantity": data["quantity"],
                        "order_count": data["order_count"],
                    }
                elif side == "sell":
                    asks[price] = {
                        "price": price,
                        "quantity": data["quantity"],
                        "order_count": data["order_count"],
                    }
        elif event_type is _TRADE:
            if trades:
                message = _TRADE_TEMPLATE.copy()
                message["symbol"] = data["symbol"]
                message["trade_id"] = data["trade_id"]
                message["price"] = data["price"]
                message["quantity"] = data["quantity"]
                message["taker_side"] = data["taker_side"]
                message["timestamp"] = data["timestamp"]
                message["sequence"] = data["sequence"]
                result.append(message)
        elif orders and event_type in _ORDER_EVENTS:
            owner = data.get("user_id")
            if owner is not None and (users is None or owner in users):
                private.append({"type": "order", "user_id": owner, "event": event_type.value, "order": data})
    if book:  # the diff comes first
        result.insert(
            0,
            {
                "type": "book",
                "symbol": symbol,
                "first_sequence": first_sequence,
                "last_sequence": last_sequence,
                "timestamp": timestamp,
                "bids": list(bids.values()) if bids else [],
                "asks": list(asks.values()) if asks else [],
            },
        )
    if private:
        result.extend(private)
    return result


def command_messages(
    wanted: Wanted,
    symbol: str,
    fee_asset: str | None,
    complete: bool,
    sequence: int,
    timestamp: float,
    events: list[tuple[EventType, Any]],
    balances: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """What the stream listeners read (``wanted``) of one command's messages on ``symbol``: its book
    diff if the capture was ``complete`` (every event: only then may the events be counted as its
    sequences, up to ``sequence``), its trades, the private messages, and a ``balances`` message for
    each wanted user that its events name (``balances(user)``, read now). (The fill and trade records
    of :data:`FILL_RECORD` / :data:`TRADE_RECORD` are made by the exchange's commit, not here.)"""
    users = wanted.users
    wanted_trades = wanted.trades
    trades = wanted_trades is None or symbol in wanted_trades  # wanted.trade(symbol), inlined
    if not (complete or trades or wanted.fills or users is None or users):
        return []
    batch = _messages(
        symbol,
        sequence - len(events) + 1,
        sequence,
        timestamp,
        events,
        fee_asset,
        complete,
        trades,
        users,
        wanted.fills,
    )
    if users is None or users:
        batch.extend(
            {"type": "balances", "user_id": user, "balances": balances(user)}
            for user in users_of(events)
            if users is None or user in users
        )
    return batch
