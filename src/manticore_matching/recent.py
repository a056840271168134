"""The recent-orders view: finished orders kept in memory, and the client order id indexes.

Storage is written behind the journal, so right after a command it may not have the order yet; this
view answers for the last :data:`RECENT_ORDERS` finished orders (and for client order ids) until it
does. It is rebuilt by replay (every command passes through :meth:`RecentOrders.track`) and, for live
orders, from the books of a checkpoint (:meth:`RecentOrders.index_live`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from manticore_orderbook import EventType

from .commands import check_client_order_id
from .errors import InvalidCommand
from .market import Market

__all__ = ["RECENT_ORDERS", "TERMINAL", "ClientName", "RecentOrders"]

#: How many finished orders the view keeps (oldest forgotten first).
RECENT_ORDERS = 10_000
#: The statuses of an order that has ended.
TERMINAL = frozenset({"filled", "cancelled", "expired"})
#: ``(user id, client order id)``: how a user names an order.
ClientName = tuple[str, str]
_FILL_ONLY = ("fill_price", "fill_quantity", "trade_id", "is_maker", "fee")
_PROGRESS = ("filled_quantity", "remaining_quantity", "visible_quantity", "status")
#: The events about one order (every event but trades, level changes and errors).
_ORDER_EVENTS = frozenset(EventType) - {
    EventType.TRADE_EXECUTED,
    EventType.ERROR,
    EventType.PRICE_LEVEL_ADDED,
    EventType.PRICE_LEVEL_CHANGED,
    EventType.PRICE_LEVEL_REMOVED,
}
_ADDED = EventType.ORDER_ADDED
_FILLED = EventType.ORDER_FILLED


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
        base: dict[str, Any] | None = None
        fills: list[dict[str, Any]] = []
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
                    fills = []
                if filled:
                    fills.append(data)
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
            snapshot = dict(data)
            if filled:
                snapshot["status"] = "filled"
            recent[oid] = snapshot
            recent.move_to_end(oid)
            if name is not None:
                if live_names.get(name) == oid:
                    del live_names[name]
                self.recent_names[name] = oid
            if len(recent) > RECENT_ORDERS:
                _, gone = recent.popitem(last=False)
                self._forget_name(gone)
        if base is None:
            return None
        state = dict(base)
        for fill in fills:
            for key in _PROGRESS:
                state[key] = fill[key]
        for key in _FILL_ONLY:
            state.pop(key, None)
        if state.get("status") not in TERMINAL:
            _rested(state)
        return state

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
