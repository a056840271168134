"""``RecentOrders.track`` keeps what a simple model of the recent-orders view keeps, over the events of
random exchange streams: the order state it returns (keys in order, values, types), the finished orders
in order with their keys in order, and the client order id indexes."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching.recent import RECENT_ORDERS, TERMINAL, RecentOrders
from manticore_orderbook import EventType
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange

_NOT_ABOUT_ONE_ORDER = (
    EventType.TRADE_EXECUTED,
    EventType.ERROR,
    EventType.PRICE_LEVEL_ADDED,
    EventType.PRICE_LEVEL_CHANGED,
    EventType.PRICE_LEVEL_REMOVED,
)


class Model:
    """The view's contract, written the plain way: every finished order is a copy of its last event
    (a fill's status "filled"); the state of the command's order is its last non-fill event (or first
    event) with the progress of the fills after it, without the fill's own keys, rested if live."""

    def __init__(self) -> None:
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.live_names: dict[tuple[str, str], str] = {}
        self.recent_names: dict[tuple[str, str], str] = {}

    def track(self, events: list[tuple[EventType, Any]], order_id: str | None) -> dict[str, Any] | None:
        state: dict[str, Any] | None = None
        for event_type, data in events:
            if event_type in _NOT_ABOUT_ONE_ORDER or "order_id" not in data:
                continue
            oid = data["order_id"]
            filled = event_type is EventType.ORDER_FILLED
            if oid == order_id:
                if state is None or not filled:
                    state = dict(data)
                    for key in ("fill_price", "fill_quantity", "trade_id", "is_maker", "fee"):
                        state.pop(key, None)
                else:
                    for key in ("filled_quantity", "remaining_quantity", "visible_quantity", "status"):
                        state[key] = data[key]
            client_id = data.get("client_order_id")
            name = None if client_id is None else (str(data.get("user_id")), client_id)
            if data.get("status") not in TERMINAL:
                if name is not None and event_type is EventType.ORDER_ADDED:
                    self.live_names[name] = oid
                continue
            snapshot = dict(data)
            if filled:
                snapshot["status"] = "filled"
            self.recent[oid] = snapshot
            self.recent.move_to_end(oid)
            if name is not None:
                if self.live_names.get(name) == oid:
                    del self.live_names[name]
                self.recent_names[name] = oid
            if len(self.recent) > RECENT_ORDERS:
                _, gone = self.recent.popitem(last=False)
                if gone.get("client_order_id") is not None:
                    gone_name = (str(gone.get("user_id")), gone["client_order_id"])
                    if self.recent_names.get(gone_name) == gone["order_id"]:
                        del self.recent_names[gone_name]
        if state is not None and state.get("status") not in TERMINAL:
            live_stop = not state.get("triggered") and (
                state.get("stop_price") is not None or state.get("trail_value") is not None
            )
            if not live_stop:
                remaining, displayed = state.get("remaining_quantity"), state.get("displayed_quantity")
                if displayed is not None and remaining is not None and displayed < remaining:
                    state["visible_quantity"] = displayed
                else:
                    state["visible_quantity"] = remaining
        return state


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [_shape(item) for item in value]
    return (type(value).__name__, value)


def _recorded(directory: Path, seed: int) -> list[tuple[list[tuple[EventType, Any]], str | None]]:
    """Every ``track`` call of a random stream (the events and the order id asked for)."""
    calls: list[tuple[list[tuple[EventType, Any]], str | None]] = []
    original = RecentOrders.track

    def record(
        self: RecentOrders, events: list[tuple[EventType, Any]], order_id: str | None
    ) -> dict[str, Any] | None:
        calls.append((list(events), order_id))
        return original(self, events, order_id)

    clock = Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RecentOrders, "track", record)
        with new_exchange(directory, clock, checkpoint_every=0) as exchange:
            exchange.add_listener(lambda batch: None)
            for command in make_stream(seed, 150):
                apply(exchange, clock, command)
    return calls


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), small=st.booleans())
def test_track_keeps_what_the_model_keeps(
    tmp_path_factory: pytest.TempPathFactory, seed: int, small: bool
) -> None:
    calls = _recorded(tmp_path_factory.mktemp("track"), seed)
    assert any(event_type is EventType.ORDER_FILLED for events, _ in calls for event_type, _ in events)
    with pytest.MonkeyPatch.context() as patch:
        if small:  # the oldest finished orders are forgotten
            patch.setattr("manticore_matching.recent.RECENT_ORDERS", 5)
            patch.setattr(f"{__name__}.RECENT_ORDERS", 5)
        view, model = RecentOrders(), Model()
        for events, order_id in calls:
            for about in {order_id, *(data.get("order_id") for _, data in events)}:
                assert _shape(view.track(events, about)) == _shape(model.track(events, about))
        assert _shape(list(view.recent.items())) == _shape(list(model.recent.items()))
        assert view.live_names == model.live_names
        assert view.recent_names == model.recent_names
