"""The recent-orders view: finished orders kept in memory, and the client order id indexes.

Storage is written behind the journal, so right after a command it may not have the order yet; this
view answers for the last :data:`RECENT_ORDERS` finished orders (and for client order ids) until it
does. It is rebuilt by replay (every command passes through :meth:`RecentOrders.track`) and, for live
orders, from the books of a checkpoint (:meth:`RecentOrders.index_live`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, MutableSequence
from typing import Any

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_orderbook.numbers import Grid
from manticore_orderbook.payloads import ORDER_FILLED_KEYS

from .commands import check_client_order_id
from .errors import InvalidCommand
from .market import Market

__all__ = ["RECENT_ORDERS", "TERMINAL", "ClientName", "RecentOrders", "ReplayFills"]

#: How many finished orders the view keeps (oldest forgotten first).
RECENT_ORDERS = 10_000
#: The statuses of an order that has ended.
TERMINAL = frozenset({"filled", "cancelled", "expired"})
#: ``(user id, client order id)``: how a user names an order.
ClientName = tuple[str, str]
_FILL_ONLY = ("fill_price", "fill_quantity", "trade_id", "is_maker", "fee")
#: The events about one order (every event but trades, level changes and errors).
_ORDER_EVENTS = frozenset(EventType) - {
    EventType.TRADE_EXECUTED,
    EventType.ERROR,
    EventType.PRICE_LEVEL_ADDED,
    EventType.PRICE_LEVEL_CHANGED,
    EventType.PRICE_LEVEL_REMOVED,
}
_ADDED = EventType.ORDER_ADDED
#: A payload's copy: ``dict.copy`` clones the key table in one block, where ``dict(payload)`` inserts
#: the ~20 keys one by one (measured on a book payload: ~1,000 instructions against ~8,800).
_copy = dict.copy
_FILLED = EventType.ORDER_FILLED
_TRADE = EventType.TRADE_EXECUTED
#: The events whose payload holds an order's whole state as it is from then on.
_STATE_EVENTS = frozenset({EventType.ORDER_ADDED, EventType.ORDER_MODIFIED, EventType.ORDER_TRIGGERED})
#: The events after which an order is no longer live (besides its last fill).
_END_EVENTS = frozenset({EventType.ORDER_CANCELLED, EventType.ORDER_EXPIRED})


def _rested(order: dict[str, Any]) -> None:
    """Set a live order's ``visible_quantity`` to what the book shows of it once the command is done:
    the events that carried its state (``ORDER_ADDED``, a taker's ``ORDER_FILLED``) were raised before
    it rested and say 0. A stop that has not triggered rests nowhere: 0 stays."""
    if not order.get("triggered") and (
        order.get("stop_price") is not None or order.get("trail_value") is not None
    ):
        return
    remaining = order.get("remaining_quantity")
    displayed = order.get("displayed_quantity")
    if displayed is not None and remaining is not None and displayed < remaining:
        order["visible_quantity"] = displayed
    else:
        order["visible_quantity"] = remaining


class RecentOrders:
    """Finished orders by id (``recent``, oldest first) and the client order id indexes: ``live_names``
    maps a user's name to their live order's id, ``recent_names`` to the newest recently finished
    order's id (one in ``recent``)."""

    __slots__ = ("live_names", "recent", "recent_names")

    def __init__(self) -> None:
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.live_names: dict[ClientName, str] = {}
        self.recent_names: dict[ClientName, str] = {}

    def live_client_order(self, user_id: object, client_order_id: object) -> str | None:
        """The id of ``user_id``'s live order named ``client_order_id``, or None."""
        if not isinstance(user_id, str) or not isinstance(client_order_id, str):
            return None
        return self.live_names.get((user_id, client_order_id))

    def free_client_order_id(self, user_id: str, client_order_id: object) -> str | None:
        """``client_order_id`` if it is valid and none of ``user_id``'s live orders has it (None stays
        None); InvalidCommand (code ``duplicate_client_order_id`` for a name in use) otherwise."""
        client_id = check_client_order_id(client_order_id)
        if client_id is None:
            return None
        if (user_id, client_id) in self.live_names:
            raise InvalidCommand(
                f"client_order_id {client_id!r} is already used by one of your open orders",
                "duplicate_client_order_id",
            )
        return client_id

    def track(self, events: Iterable[tuple[EventType, Any]], order_id: str | None) -> dict[str, Any] | None:
        """Take one command's events in order: remember orders that finished and the names of orders
        that went live; return ``order_id``'s state after the command (None if no event was about it).

        The state is the last non-fill event about ``order_id`` (or its first event) with the progress
        of the fills after it; it is copied once, at the end."""
        if order_id is not None and type(events) is list and len(events) == 1:
            # The most frequent command: an order that rests without trading (one ORDER_ADDED). What
            # the loop below does for it when it has no client order id, does not end, and is plain (no
            # stop, trail or display size): its state, a copy, with what it shows of itself.
            event_type, data = events[0]
            if (
                event_type is _ADDED
                and data.get("order_id") == order_id
                and data.get("client_order_id") is None
                and data.get("status") not in TERMINAL
                and data.get("stop_price") is None
                and data.get("trail_value") is None
                and data.get("displayed_quantity") is None
            ):
                state = _copy(data)
                state["visible_quantity"] = state.get("remaining_quantity")
                return state
        base: dict[str, Any] | None = None
        base_filled = False
        # The last fill of ``order_id`` after its base: each fill's progress overwrites the previous
        # one's (every fill payload has the four keys), so only the last one's is applied.
        last_fill: dict[str, Any] | None = None
        recent = self.recent
        live_names = self.live_names
        order_events = _ORDER_EVENTS
        for event_type, data in events:
            if event_type not in order_events:
                continue
            oid = data.get("order_id")
            if oid is None and "order_id" not in data:
                continue
            filled = event_type is _FILLED
            if oid == order_id:
                if base is None or not filled:
                    base = data
                    base_filled = filled
                    last_fill = None
                if filled:
                    last_fill = data
            status = data.get("status")
            client_id = data.get("client_order_id")
            if client_id is None:
                if status not in TERMINAL:
                    continue
                name = None
            else:
                name = (str(data.get("user_id")), client_id)
                if event_type is _ADDED and status not in TERMINAL:
                    live_names[name] = oid
                    continue
                if status not in TERMINAL:
                    continue
            # A finished order's last event: an order event's payload is copied (the same dict goes out
            # in the owner's ``order`` message), a fill's is kept as it is (only this view keeps it, and
            # no one changes a payload once published; a terminal fill's status is "filled").
            # The newest of the view: an id new to it goes to the end as it is stored; one it holds
            # (an order id used again) is moved there (a membership test is cheaper than the call).
            if oid in recent:
                recent.move_to_end(oid)
            recent[oid] = data if filled else _copy(data)
            if name is not None:
                if live_names.get(name) == oid:
                    del live_names[name]
                self.recent_names[name] = oid
            if len(recent) > RECENT_ORDERS:
                _, gone = recent.popitem(last=False)
                if gone.get("client_order_id") is not None:  # _forget_name's own test, without its call
                    self._forget_name(gone)
        if base is None:
            return None
        state = _copy(base)
        if last_fill is not None:  # the fill's progress: these four keys, in this order (no loop)
            state["filled_quantity"] = last_fill["filled_quantity"]
            state["remaining_quantity"] = last_fill["remaining_quantity"]
            state["visible_quantity"] = last_fill["visible_quantity"]
            state["status"] = last_fill["status"]
        if base_filled:  # only a fill's payload has the fill's own keys
            for key in _FILL_ONLY:
                state.pop(key, None)
        if state.get("status") not in TERMINAL:
            if (
                state.get("stop_price") is None
                and state.get("trail_value") is None
                and state.get("displayed_quantity") is None
            ):
                # _rested of a plain order (no stop, no trail, no display size), without its call.
                state["visible_quantity"] = state.get("remaining_quantity")
            else:
                _rested(state)
        return state

    def finished(self, order_id: str, order: dict[str, Any], name: ClientName | None) -> None:
        """Keep ``order``, the last state of the finished order ``order_id`` named ``name`` (None: no
        client order id), as the newest of the view, forgetting the oldest beyond :data:`RECENT_ORDERS`
        (:meth:`track`'s step for a finished order)."""
        recent = self.recent
        recent[order_id] = order
        recent.move_to_end(order_id)
        if name is not None:
            if self.live_names.get(name) == order_id:
                del self.live_names[name]
            self.recent_names[name] = order_id
        if len(recent) > RECENT_ORDERS:
            _, gone = recent.popitem(last=False)
            if gone.get("client_order_id") is not None:
                self._forget_name(gone)

    def _forget_name(self, order: dict[str, Any]) -> None:
        client_id = order.get("client_order_id")
        if client_id is not None:
            name = (str(order.get("user_id")), client_id)
            if self.recent_names.get(name) == order.get("order_id"):
                del self.recent_names[name]

    def index_live(self, markets: Iterable[Market]) -> None:
        """Rebuild the live client order id index from the books (after a checkpoint is loaded)."""
        self.live_names.clear()
        for market in markets:
            for order in market.book.get_orders():
                if order.get("client_order_id") is not None:
                    name = (str(order.get("user_id")), order["client_order_id"])
                    self.live_names[name] = order["order_id"]


class ReplayFills:
    """A book's ORDER_FILLED payloads in replay, built only where the recent-orders view keeps them.

    The book builds two ORDER_FILLED payloads per trade (most of a trade's cost in replay), and the
    exchange reads them only for :meth:`RecentOrders.track`: the view keeps a filled order as the
    payload of its last fill, and a command id's receipt holds its order's progress. A replayed command
    without a command id needs only the fills that finished an order, so while this object follows a
    book, the capture ``handler`` is unsubscribed from ORDER_FILLED, and :meth:`follow` adds to the
    captured events the ORDER_FILLED of every order that a trade finished, equal to the book's (the
    same keys, in the same order, the same values), right after that trade.

    A finished order's fill payload holds, besides what its trade says, the order's own fields
    (``client_order_id``, ``price``, ``quantity``, ``priority``, ``order_type``): they come from the
    payload of its last ORDER_ADDED, ORDER_MODIFIED or ORDER_TRIGGERED (``facts``, one per live order;
    the live orders of a checkpoint from the book). An iceberg's ``priority`` changes at each refill of
    its visible slice, which no such event reports: while the book holds an iceberg (``icebergs``) or
    a command places one, :meth:`exact` says the command must be captured with its fills
    (:meth:`capture_fills`), as must a command with a command id."""

    __slots__ = ("facts", "filled", "handler", "icebergs", "manager", "subscribed", "zero")

    def __init__(self, book: OrderBook, handler: Any) -> None:
        #: The payload (or the book's dict, for an order of the checkpoint) that states each live
        #: order's fields, by order id.
        self.facts: dict[str, dict[str, Any]] = {}
        #: How many live orders of the book are icebergs.
        self.icebergs = 0
        for order in book.get_orders():
            fact = dict(order)
            fact["quantity"] = order["original_quantity"]  # a reader's "quantity" is the open part
            self._learn(order["order_id"], fact)
        #: A filled order's remaining (and visible) quantity: zero in the book's quantity format.
        self.zero = Grid(book.lot_size, "quantity", "str").to_output(0)
        #: :meth:`_fill`'s template: every ORDER_FILLED key in order, the values that every finished
        #: order's fill shares set (a copy of it and a store per other key cost less than a literal).
        self.filled: dict[str, Any] = dict.fromkeys(ORDER_FILLED_KEYS)
        self.filled.update(
            symbol=book.symbol, remaining_quantity=self.zero, visible_quantity=self.zero, status="filled"
        )
        self.manager: EventManager = book.event_manager
        self.handler = handler
        self.subscribed = True
        self.capture_fills(False)

    def _learn(self, order_id: str, fact: dict[str, Any]) -> None:
        if fact.get("displayed_quantity") is not None:
            self.icebergs += 1
        self.facts[order_id] = fact

    def _forget(self, order_id: str) -> dict[str, Any] | None:
        fact = self.facts.pop(order_id, None)
        if fact is not None and fact.get("displayed_quantity") is not None:
            self.icebergs -= 1
        return fact

    def capture_fills(self, on: bool) -> None:
        """Subscribe the capture's handler to ORDER_FILLED (``on``) or not, from the next event on."""
        if on != self.subscribed:
            if on:
                self.manager.subscribe(_FILLED, self.handler)
            else:
                self.manager.unsubscribe(_FILLED, self.handler)
            self.subscribed = on

    def exact(self, record: dict[str, Any]) -> bool:
        """Whether the replay of ``record`` must capture every fill (see the class docstring)."""
        return (
            self.icebergs > 0
            or "cid" in record
            or (record["op"] == "place" and record.get("displayed_quantity") is not None)
        )

    def follow(
        self, events: list[tuple[EventType, Any]], book: OrderBook, complete: bool
    ) -> list[tuple[EventType, Any]]:
        """Take note of one replayed command's ``events`` (captured with every fill if ``complete``)
        and return them, with the ORDER_FILLED of each order a trade finished added if they were
        captured without fills; ``book`` is after the command."""
        facts = self.facts
        # From the first trade on: the index of each order's last event. A trade finished an order iff
        # it is the last event of the command about it and the order is not live afterwards: an order
        # that a trade leaves open either stays live or ends with an event of its own (the rest of an
        # IOC or a market order is cancelled).
        last: dict[str, int] | None = None
        first = 0
        for index, (event_type, data) in enumerate(events):
            if event_type is _TRADE:
                if last is None:
                    last = {}
                    first = index
                last[data["maker_order_id"]] = index
                last[data["taker_order_id"]] = index
                continue
            if event_type in _STATE_EVENTS:
                if event_type is _ADDED and data["displayed_quantity"] is not None:
                    self.icebergs += 1  # _learn, inlined: it runs for almost every record
                facts[data["order_id"]] = data
            elif event_type in _END_EVENTS or (event_type is _FILLED and data["status"] == "filled"):
                self._forget(data["order_id"])
            if last is not None:
                order_id = data.get("order_id")
                if order_id is not None:
                    last[order_id] = index
        if complete or last is None:
            return events
        result = events[:first]
        for index in range(first, len(events)):
            event = events[index]
            result.append(event)
            if event[0] is _TRADE:
                trade = event[1]
                maker = trade["maker_order_id"]
                if last[maker] == index and maker not in book:
                    result.append((_FILLED, self._fill(trade, maker, True)))
                taker = trade["taker_order_id"]
                if last[taker] == index and taker not in book:
                    result.append((_FILLED, self._fill(trade, taker, False)))
        return result

    def absorb(
        self,
        events: list[tuple[EventType, Any]],
        book: OrderBook,
        orders: RecentOrders,
        trades: MutableSequence[dict[str, Any]],
    ) -> None:
        """What a replayed command without a command id whose events were captured without fills does
        with them, in one pass: ``orders.track(self.follow(events, book, False), None)`` (its answer
        unread), then each TRADE_EXECUTED payload appended to ``trades``; the same facts, view, names
        and trades, in the same order. ``book`` is after the command."""
        facts = self.facts
        if len(events) == 1:  # the most frequent: an order added that traded nothing
            event_type, data = events[0]
            if event_type is _ADDED and "order_id" in data and data.get("status") not in TERMINAL:
                # both loops below for this one event, written out
                if data["displayed_quantity"] is not None:
                    self.icebergs += 1
                order_id = data["order_id"]
                facts[order_id] = data
                client_id = data.get("client_order_id")
                if client_id is not None:
                    orders.live_names[(str(data.get("user_id")), client_id)] = order_id
                return
        last: dict[str, int] | None = None
        for index, (event_type, data) in enumerate(events):  # follow's first loop
            if event_type is _TRADE:
                if last is None:
                    last = {}
                last[data["maker_order_id"]] = index
                last[data["taker_order_id"]] = index
                continue
            if event_type in _STATE_EVENTS:
                if event_type is _ADDED and data["displayed_quantity"] is not None:
                    self.icebergs += 1
                facts[data["order_id"]] = data
            elif event_type in _END_EVENTS or (event_type is _FILLED and data["status"] == "filled"):
                self._forget(data["order_id"])
            if last is not None:
                order_id = data.get("order_id")
                if order_id is not None:
                    last[order_id] = index
        live_names = orders.live_names
        order_events = _ORDER_EVENTS
        for index, (event_type, data) in enumerate(events):
            if event_type is _TRADE:
                trades.append(data)
                assert last is not None  # set at the first trade
                # follow's added ORDER_FILLED of each order the trade finished, each then tracked (a
                # terminal fill: the view keeps it as it is)
                maker = data["maker_order_id"]
                if last[maker] == index and maker not in book:
                    self._finished_fill(data, maker, True, orders)
                taker = data["taker_order_id"]
                if last[taker] == index and taker not in book:
                    self._finished_fill(data, taker, False, orders)
                continue
            # track's step (no order asked for)
            if event_type not in order_events:
                continue
            oid = data.get("order_id")
            if oid is None and "order_id" not in data:
                continue
            status = data.get("status")
            client_id = data.get("client_order_id")
            if client_id is None:
                if status not in TERMINAL:
                    continue
                name = None
            else:
                name = (str(data.get("user_id")), client_id)
                if event_type is _ADDED and status not in TERMINAL:
                    live_names[name] = oid
                    continue
                if status not in TERMINAL:
                    continue
            orders.finished(oid, data if event_type is _FILLED else _copy(data), name)

    def _finished_fill(
        self, trade: dict[str, Any], order_id: str, is_maker: bool, orders: RecentOrders
    ) -> None:
        """:meth:`_fill` of ``order_id``, which ``trade`` finished, kept by ``orders`` as
        :meth:`RecentOrders.track` keeps a terminal fill (as it is); the same steps and payload."""
        fill = self._fill(trade, order_id, is_maker)
        client_id = fill["client_order_id"]
        orders.finished(order_id, fill, None if client_id is None else (str(fill["user_id"]), client_id))

    def _fill(self, trade: dict[str, Any], order_id: str, is_maker: bool) -> dict[str, Any]:
        """The ORDER_FILLED payload of the trade ``trade`` that filled ``order_id`` completely, as the
        book builds it (keys in ``ORDER_FILLED_KEYS`` order)."""
        fact = self._forget(order_id)
        if fact is None:
            raise KeyError(f"replay: no state known for the filled order {order_id!r}")
        quantity = fact["quantity"]
        fill = _copy(self.filled)  # symbol, remaining and visible quantity (zero) and status set
        fill["order_id"] = order_id
        fill["client_order_id"] = fact["client_order_id"]
        fill["trade_id"] = trade["trade_id"]
        if is_maker:
            fill["side"] = "sell" if trade["taker_side"] == "buy" else "buy"
            fill["price"] = trade["price"]  # a maker rests at the trade's price
        else:
            fill["side"] = trade["taker_side"]
            fill["price"] = fact["price"]
        fill["quantity"] = quantity
        fill["fill_price"] = trade["price"]
        fill["fill_quantity"] = trade["quantity"]
        fill["filled_quantity"] = quantity
        fill["priority"] = fact["priority"]
        fill["is_maker"] = is_maker
        fill["fee"] = trade["maker_fee"] if is_maker else trade["taker_fee"]
        fill["user_id"] = fact["user_id"]
        fill["order_type"] = fact["order_type"]
        fill["timestamp"] = trade["timestamp"]
        fill["sequence"] = trade["sequence"] + (1 if is_maker else 2)
        return fill
