"""The event contract (issue section 5, DESIGN.md 3.3): keys, sequence, causal order, failures, laziness."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from manticore_orderbook import EventManager, EventType, OrderBook

from .support import COMMON_KEYS, REQUIRED_KEYS, TERMINAL_EVENTS, FakeClock, Recorder, dec, make_book


def every_event_scenario(book: OrderBook, clock: FakeClock) -> None:
    """Commands that between them make the book publish every event type except ERROR."""
    book.add_order("buy", 10, 2, order_id="bid", user_id="alice")  # ORDER_ADDED, PRICE_LEVEL_ADDED
    book.add_order("buy", 10, 1, order_id="bid2", user_id="carol")  # PRICE_LEVEL_CHANGED
    book.add_order("sell", 10, 1, order_id="ask", user_id="bob")  # TRADE_EXECUTED, ORDER_FILLED
    book.modify_order("bid", new_quantity=1.5)  # ORDER_MODIFIED
    book.add_order("buy", 5, 1, order_id="gtd", expiry_time=clock.now + 1)
    book.add_order("buy", None, 1, order_id="stop", stop_price=11)
    book.cancel_order("bid2")  # ORDER_CANCELLED
    book.add_order("sell", 11, 1, order_id="s11")
    book.add_order("buy", 11, 1, order_id="b11")  # trade at 11: ORDER_TRIGGERED; PRICE_LEVEL_REMOVED
    clock.advance(5)
    book.clean_expired_orders()  # ORDER_EXPIRED
    book.clear()  # BOOK_CLEARED


def test_every_event_type_is_published_by_some_scenario() -> None:
    book, rec, clock = make_book()

    def failing(event_type: EventType, data: dict[str, Any]) -> None:
        if event_type is EventType.BOOK_CLEARED:
            raise RuntimeError("storage is down")

    book.event_manager.subscribe(EventType.BOOK_CLEARED, failing)
    every_event_scenario(book, clock)
    assert set(rec.types()) == set(EventType)


def test_every_event_carries_symbol_timestamp_sequence_and_its_keys() -> None:
    book, rec, clock = make_book(symbol="ETH/USD")
    book.event_manager.subscribe(EventType.ORDER_ADDED, lambda e, d: 1 / 0)
    every_event_scenario(book, clock)
    assert rec.events
    for event_type, data in rec.events:
        missing = (COMMON_KEYS | REQUIRED_KEYS[event_type]) - data.keys()
        assert not missing, f"{event_type.name} lacks {sorted(missing)}"
        assert data["symbol"] == "ETH/USD"
        assert isinstance(data["timestamp"], (int, float))


def test_sequence_rises_by_exactly_one_per_event() -> None:
    book, rec, clock = make_book()
    every_event_scenario(book, clock)
    sequences = [d["sequence"] for _, d in rec.events]
    assert sequences == list(range(1, len(sequences) + 1))
    assert book.sequence == sequences[-1]
    assert book.get_snapshot()["sequence"] == book.sequence


def test_two_books_on_one_manager_number_their_events_separately() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe_all(recorder)
    btc = OrderBook("BTC/USD", event_manager=manager)
    eth = OrderBook("ETH/USD", event_manager=manager)
    btc.add_order("buy", 1, 1)
    eth.add_order("buy", 1, 1)
    btc.add_order("buy", 2, 1)
    by_symbol: dict[str, list[int]] = {}
    for _, data in recorder.events:
        by_symbol.setdefault(data["symbol"], []).append(data["sequence"])
    assert by_symbol["BTC/USD"] == list(range(1, len(by_symbol["BTC/USD"]) + 1))
    assert by_symbol["ETH/USD"] == list(range(1, len(by_symbol["ETH/USD"]) + 1))


def test_event_timestamps_come_from_the_injected_clock() -> None:
    book, rec, clock = make_book(clock=FakeClock(5_000.0))
    book.add_order("buy", 10, 1, order_id="a")
    clock.advance(7)
    start = len(rec.events)
    book.add_order("sell", 10, 1, order_id="b")
    assert {d["timestamp"] for _, d in rec.since(start)} == {5_007.0}


def test_now_reads_the_injected_clock_and_changes_nothing() -> None:
    book, rec, clock = make_book(clock=FakeClock(5_000.0))
    book.add_order("buy", 10, 1, order_id="a", expiry_time=5_001.0)
    assert book.now() == 5_000.0
    clock.advance(7)
    assert book.now() == 5_007.0
    # Reading the clock is not a command: the passed expiry waits for the next one.
    assert "a" in book and len(rec.events) == 2 and book.sequence == 2
    book.clean_expired_orders()
    assert "a" not in book


def test_event_timestamp_is_when_the_event_happened() -> None:
    """Cancellations, expiries, triggers and modifications are stamped with their own time."""
    book, rec, clock = make_book(clock=FakeClock(100.0))
    book.add_order("buy", 10, 5, order_id="a")
    book.add_order("buy", 9, 1, order_id="g", expiry_time=150.0)
    book.add_order("buy", None, 1, order_id="stop", stop_price=12)
    clock.now = 200.0
    start = len(rec.events)
    book.modify_order("a", new_quantity=4)
    book.cancel_order("a")
    book.clean_expired_orders()
    book.add_order("sell", 12, 1)
    book.add_order("buy", 12, 1)
    stamps = {(e.name, d["timestamp"]) for e, d in rec.since(start)}
    assert all(stamp == 200.0 for _, stamp in stamps), sorted(stamps)


# ---------------------------------------------------------------------------- causal order


def test_causal_order_of_a_crossing_limit() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="m1")
    book.add_order("sell", 11, 1, order_id="m2")
    start = len(rec.events)
    book.add_order("buy", 11, 3, order_id="t")
    events = rec.since(start)
    types = [e for e, _ in events]
    assert types[0] is EventType.ORDER_ADDED and events[0][1]["order_id"] == "t"
    trade_positions = [i for i, e in enumerate(types) if e is EventType.TRADE_EXECUTED]
    assert len(trade_positions) == 2
    for i in trade_positions:
        trade = events[i][1]
        maker_fill, taker_fill = events[i + 1], events[i + 2]
        assert (
            maker_fill[0] is EventType.ORDER_FILLED and maker_fill[1]["order_id"] == trade["maker_order_id"]
        )
        assert (
            taker_fill[0] is EventType.ORDER_FILLED and taker_fill[1]["order_id"] == trade["taker_order_id"]
        )
        assert maker_fill[1]["is_maker"] is True and taker_fill[1]["is_maker"] is False
        assert maker_fill[1]["trade_id"] == taker_fill[1]["trade_id"] == trade["trade_id"]
    # the remainder rests: its level appears after the trades
    assert types[-1] is EventType.PRICE_LEVEL_ADDED
    assert events[-1][1]["side"] == "buy" and dec(events[-1][1]["quantity"]) == 1


def test_ioc_cancellation_comes_after_its_fills() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="m")
    start = len(rec.events)
    book.add_order("buy", 10, 5, order_id="ioc", time_in_force="IOC")
    types = [e for e, _ in rec.since(start)]
    assert types.index(EventType.ORDER_ADDED) < types.index(EventType.TRADE_EXECUTED)
    assert types.index(EventType.TRADE_EXECUTED) < types.index(EventType.ORDER_CANCELLED)
    assert types[-1] is EventType.ORDER_CANCELLED or types.index(EventType.ORDER_CANCELLED) > max(
        i for i, e in enumerate(types) if e is EventType.ORDER_FILLED
    )


def test_expiries_are_reported_before_anything_the_command_trades() -> None:
    book, rec, clock = make_book()
    book.add_order("sell", 10, 1, order_id="gtd", expiry_time=clock.now + 1)
    book.add_order("sell", 11, 1, order_id="gtc")
    clock.advance(2)
    start = len(rec.events)
    book.add_order("buy", 11, 1, order_id="t")
    types = [e for e, _ in rec.since(start)]
    assert types.index(EventType.ORDER_EXPIRED) < types.index(EventType.TRADE_EXECUTED)
    assert [d["maker_order_id"] for d in rec.of(EventType.TRADE_EXECUTED)] == ["gtc"]


def test_fills_report_cumulative_filled_and_remaining_quantity() -> None:
    book, rec, _ = make_book(maker_fee_rate="0.01", number_format="decimal")
    book.add_order("sell", 10, 5, order_id="m", user_id="mm")
    book.add_order("buy", 10, 2, order_id="t1", user_id="u1")
    book.add_order("buy", 10, 3, order_id="t2", user_id="u2")
    fills = [d for d in rec.of(EventType.ORDER_FILLED) if d["order_id"] == "m"]
    assert [(d["fill_quantity"], d["filled_quantity"], d["remaining_quantity"]) for d in fills] == [
        (Decimal(2), Decimal(2), Decimal(3)),
        (Decimal(3), Decimal(5), Decimal(0)),
    ]
    assert [d["fill_price"] for d in fills] == [Decimal(10), Decimal(10)]
    assert [d["fee"] for d in fills] == [Decimal("0.2"), Decimal("0.3")]
    assert [d["user_id"] for d in fills] == ["mm", "mm"]


def test_trade_executed_is_published_exactly_once_per_trade() -> None:
    book, rec, _ = make_book()
    for i in range(3):
        book.add_order("sell", 10 + i, 1)
    book.add_order("buy", None, 3)
    trade_ids = [d["trade_id"] for d in rec.of(EventType.TRADE_EXECUTED)]
    assert len(trade_ids) == len(set(trade_ids)) == 3
    assert [t["trade_id"] for t in book.get_trade_history()] == trade_ids[::-1]


def test_price_level_events_describe_the_level_after_the_change() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    book.add_order("buy", 10, 2, order_id="b")
    book.cancel_order("a")
    book.cancel_order("b")
    levels = [
        (e, d["side"], dec(d["price"]), dec(d["quantity"]), d["order_count"])
        for e, d in rec.events
        if "order_count" in d and e.name.startswith("PRICE_LEVEL")
    ]
    assert levels == [
        (EventType.PRICE_LEVEL_ADDED, "buy", Decimal(10), Decimal(1), 1),
        (EventType.PRICE_LEVEL_CHANGED, "buy", Decimal(10), Decimal(3), 2),
        (EventType.PRICE_LEVEL_CHANGED, "buy", Decimal(10), Decimal(2), 1),
        (EventType.PRICE_LEVEL_REMOVED, "buy", Decimal(10), Decimal(0), 0),
    ]


def test_terminal_events_do_not_call_the_order_open() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 5, order_id="c")
    book.add_order("sell", 10, 2)
    book.cancel_order("c")
    book.add_order("buy", 9, 1, order_id="g", expiry_time=clock.now + 1)
    clock.advance(2)
    book.clean_expired_orders()
    book.add_order("buy", 9, 1, order_id="ioc", time_in_force="IOC")
    for event_type, data in rec.events:
        if event_type in TERMINAL_EVENTS and "status" in data:
            assert data["status"] not in ("open", "partially_filled", "pending"), (event_type.name, data)


# ---------------------------------------------------------------------------- handlers


def test_book_handlers_run_in_subscription_order() -> None:
    book, _, _ = make_book()
    calls: list[str] = []
    book.event_manager.subscribe(EventType.ORDER_ADDED, lambda e, d: calls.append("one"))
    book.event_manager.subscribe(EventType.ORDER_ADDED, lambda e, d: calls.append("two"))
    book.event_manager.subscribe_all(lambda e, d: calls.append("all") if e is EventType.ORDER_ADDED else None)
    book.add_order("buy", 10, 1)
    assert calls == ["one", "two", "all"]


def test_handler_that_raises_is_reported_and_nothing_else_is_affected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    book, rec, _ = make_book()
    after: list[EventType] = []

    def broken(event_type: EventType, data: dict[str, Any]) -> None:
        raise RuntimeError("database unavailable")

    book.event_manager.subscribe(EventType.TRADE_EXECUTED, broken)
    book.event_manager.subscribe_all(lambda e, d: after.append(e))
    book.add_order("sell", 10, 1, order_id="m")
    with caplog.at_level(logging.ERROR, logger="manticore_orderbook"):
        taker = book.add_order("buy", 10, 3, order_id="t")
    assert taker == "t"
    assert EventType.TRADE_EXECUTED in after  # the later handler still got the event
    errors = rec.of(EventType.ERROR)
    assert len(errors) == 1
    assert "database unavailable" in str(errors[0])
    assert any("database unavailable" in (r.getMessage() + str(r.exc_info)) for r in caplog.records)
    book.check_invariants()
    order = book.get_order("t")
    assert order is not None and dec(order["remaining_quantity"]) == 2
    sequences = [d["sequence"] for _, d in rec.events]
    assert sequences == list(range(1, len(sequences) + 1))
    book.add_order("sell", 10, 2)  # the book keeps working
    assert book.get_order("t") is None


def test_error_handler_that_raises_does_not_loop() -> None:
    book, rec, _ = make_book()

    def broken(event_type: EventType, data: dict[str, Any]) -> None:
        raise RuntimeError("always")

    book.event_manager.subscribe_all(broken)
    book.add_order("buy", 10, 1)
    assert rec.types().count(EventType.ERROR) == 2  # one for ORDER_ADDED, one for PRICE_LEVEL_ADDED
    book.check_invariants()


def test_handler_may_call_back_into_the_book() -> None:
    book, rec, _ = make_book()

    def hedge(event_type: EventType, data: dict[str, Any]) -> None:
        if data["taker_order_id"] == "t":
            book.add_order("buy", 5, 1, order_id="hedge")

    book.event_manager.subscribe(EventType.TRADE_EXECUTED, hedge)
    book.add_order("sell", 10, 1)
    book.add_order("buy", 10, 1, order_id="t")
    assert book.get_order("hedge") is not None
    sequences = [d["sequence"] for _, d in rec.events]
    assert sequences == list(range(1, len(sequences) + 1))


def test_a_lone_handler_that_calls_back_gets_the_nested_events_after_the_current_ones() -> None:
    """One handler per event type (delivered without iterating the handler tuple): the events its
    callback queues come after those of the command that triggered it, every sequence once, in order."""
    book = OrderBook("X", clock=FakeClock(), tick_size="1", lot_size="1")
    seen: list[tuple[EventType, int, str | None]] = []

    def hedge(event_type: EventType, data: dict[str, Any]) -> None:
        seen.append((event_type, data["sequence"], data.get("order_id")))
        if event_type is EventType.TRADE_EXECUTED and data["taker_order_id"] == "t":
            book.add_order("buy", 5, 1, order_id="hedge")

    book.event_manager.subscribe_all(hedge)
    book.add_order("sell", 10, 1, order_id="m")
    book.add_order("buy", 10, 1, order_id="t")
    assert [sequence for _, sequence, _ in seen] == list(range(1, book.sequence + 1))
    hedge_added = next(i for i, (_, _, order_id) in enumerate(seen) if order_id == "hedge")
    assert [event_type for event_type, _, _ in seen[hedge_added:]] == [
        EventType.ORDER_ADDED,
        EventType.PRICE_LEVEL_ADDED,
    ]
    taker_events = {
        event_type for event_type, _, _ in seen[:hedge_added] if event_type is not EventType.ORDER_ADDED
    }
    assert taker_events >= {EventType.TRADE_EXECUTED, EventType.ORDER_FILLED, EventType.PRICE_LEVEL_REMOVED}
    assert book.get_order("hedge") is not None


def test_a_lone_handler_that_raises_is_logged_and_reported_to_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    book = OrderBook("X", clock=FakeClock(), tick_size="1", lot_size="1")
    seen: list[tuple[EventType, dict[str, Any]]] = []

    def picky(event_type: EventType, data: dict[str, Any]) -> None:
        seen.append((event_type, data))
        if event_type is EventType.ORDER_ADDED:
            raise RuntimeError("no adds")

    book.event_manager.subscribe_all(picky)
    with caplog.at_level(logging.ERROR, logger="manticore_orderbook"):
        book.add_order("buy", 10, 1, order_id="a")
    assert [event_type for event_type, _ in seen] == [
        EventType.ORDER_ADDED,
        EventType.PRICE_LEVEL_ADDED,
        EventType.ERROR,
    ]
    error = seen[-1][1]
    assert error["event_type"] == "order_added" and error["event_sequence"] == 1
    assert "no adds" in error["message"] and error["sequence"] == 3
    assert any("no adds" in (r.getMessage() + str(r.exc_info)) for r in caplog.records)
    assert book.get_order("a") is not None


# ---------------------------------------------------------------------------- laziness


PAYLOAD_BUILDERS = ("_order_dict", "_trade_dict")


def busy_scenario(book: OrderBook, clock: FakeClock) -> None:
    book.add_order("sell", 10, 5, order_id="m", user_id="a")
    book.add_order("sell", 11, 5, order_id="m2", displayed_quantity=1)
    book.add_order("buy", 10, 2, order_id="t", user_id="b")
    book.add_order("buy", None, 1, order_id="stop", stop_price=11)
    book.add_order("buy", None, 3)
    book.modify_order("m", new_quantity=2)
    book.cancel_order("m")
    book.add_order("buy", 8, 1, expiry_time=clock.now + 1)
    book.add_order("buy", 9, 1, order_id="fok", time_in_force="FOK")
    book.add_order("sell", 7, 1, order_type="POST_ONLY")
    book.batch_add_orders([{"side": "sell", "price": 12, "quantity": 1}])
    clock.advance(2)
    book.clean_expired_orders()
    book.clear()


@pytest.mark.pure_only
def test_payloads_are_not_built_without_subscribers(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    book = OrderBook("X", clock=clock, tick_size="0.01", lot_size="0.001")
    calls: list[str] = []
    for name in (*PAYLOAD_BUILDERS, "_fill_dict", "_level_dict"):
        if name in PAYLOAD_BUILDERS:
            assert hasattr(book, name), f"OrderBook.{name} is gone; update this test"
        if hasattr(book, name):

            def spy(*args: Any, _name: str = name, **kwargs: Any) -> dict[str, Any]:
                calls.append(_name)
                return {}

            # On the class: a book's attributes are slots, and its methods cannot be shadowed per instance.
            monkeypatch.setattr(OrderBook, name, spy)
    busy_scenario(book, clock)
    assert calls == []
    assert book.sequence > 0  # events were still numbered


@pytest.mark.pure_only
def test_only_the_subscribed_payloads_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    book = OrderBook("X", clock=clock, tick_size="0.01", lot_size="0.001")
    recorder = Recorder()
    book.event_manager.subscribe(EventType.TRADE_EXECUTED, recorder)
    order_dicts: list[object] = []
    original = OrderBook._order_dict

    def spy(self: OrderBook, order: Any, *args: Any) -> dict[str, Any]:
        order_dicts.append(order)
        return original(self, order, *args)

    monkeypatch.setattr(OrderBook, "_order_dict", spy)  # on the class, as above
    busy_scenario(book, clock)
    assert recorder.events
    assert order_dicts == []


def test_sequence_is_the_same_with_and_without_subscribers() -> None:
    quiet_clock, loud_clock = FakeClock(), FakeClock()
    quiet = OrderBook("X", clock=quiet_clock, tick_size="0.01", lot_size="0.001")
    loud, _, _ = make_book(symbol="X", clock=loud_clock)
    busy_scenario(quiet, quiet_clock)
    busy_scenario(loud, loud_clock)
    assert quiet.sequence == loud.sequence
