"""Order types and time in force (issue section 3): GTC, IOC, FOK, GTD, POST_ONLY, stops, icebergs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from manticore_orderbook import EventType, OrderBook, OrderType, TimeInForce

from .support import (
    FakeClock,
    Recorder,
    cancelled_quantity,
    dec,
    levels,
    make_book,
    order_of,
    state_of,
    trades_of,
)

# ---------------------------------------------------------------------------- GTC / IOC


def test_gtc_order_rests_until_cancelled() -> None:
    book, _, clock = make_book()
    book.add_order("buy", 10, 1, order_id="gtc", time_in_force="GTC")
    clock.advance(10**6)
    book.add_order("sell", 20, 1)
    assert book.get_order("gtc") is not None


def test_ioc_trades_what_it_can_and_cancels_the_rest() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="ask")
    book.add_order("buy", 10, 3, order_id="ioc", time_in_force="IOC")
    assert trades_of(rec) == [("ask", "ioc", Decimal(10), Decimal(1))]
    cancelled = rec.of(EventType.ORDER_CANCELLED)
    assert [c["order_id"] for c in cancelled] == ["ioc"]
    assert cancelled_quantity(cancelled[0]) == 2
    assert book.get_order("ioc") is None
    assert book.get_snapshot()["bids"] == []


def test_ioc_that_cannot_trade_never_rests() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="ioc", time_in_force="ioc")
    assert book.get_order("ioc") is None
    assert book.get_snapshot()["bids"] == []
    assert rec.of(EventType.ORDER_CANCELLED)[0]["order_id"] == "ioc"


# ---------------------------------------------------------------------------- FOK


def test_fok_fills_completely_across_levels() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="a1")
    book.add_order("sell", 11, 2, order_id="a2")
    book.add_order("buy", 11, 3, order_id="fok", time_in_force="FOK")
    assert [t[0] for t in trades_of(rec)] == ["a1", "a2"]
    assert book.get_snapshot()["asks"] == []
    assert book.get_order("fok") is None
    assert not rec.of(EventType.ORDER_CANCELLED)


def test_fok_that_cannot_fill_completely_does_nothing_but_report_its_cancellation() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="a1")
    book.add_order("sell", 12, 5, order_id="beyond_limit")
    before = book.get_snapshot()
    start = len(rec.events)
    book.add_order("buy", 11, 2, order_id="fok", time_in_force="FOK")
    events = rec.since(start)
    assert [e for e, _ in events] == [EventType.ORDER_CANCELLED]
    assert events[0][1]["order_id"] == "fok"
    assert cancelled_quantity(events[0][1]) == 2
    after = book.get_snapshot()
    assert after["bids"] == before["bids"]
    assert after["asks"] == before["asks"]
    assert book.get_trade_history() == []


def test_fok_on_an_empty_book_is_cancelled() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", None, 1, order_id="fok", time_in_force="FOK")
    assert rec.types() == [EventType.ORDER_CANCELLED]


def test_fok_counts_iceberg_reserve_as_available() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 10, order_id="ice", displayed_quantity=2)
    book.add_order("buy", 10, 9, order_id="fok", time_in_force="FOK")
    assert sum(t[3] for t in trades_of(rec)) == 9
    ice = book.get_order("ice")
    assert ice is not None
    assert ice["remaining_quantity"] == 1


# ---------------------------------------------------------------------------- GTD


def test_gtd_order_rests_until_its_expiry() -> None:
    book, rec, clock = make_book()
    book.add_order("sell", 10, 1, order_id="gtd", time_in_force="GTD", expiry_time=clock.now + 60)
    clock.advance(59.9)
    book.add_order("buy", 10, 1, order_id="taker")
    assert trades_of(rec) == [("gtd", "taker", Decimal(10), Decimal(1))]


def test_expired_gtd_never_trades_and_is_expired_by_the_next_command() -> None:
    book, rec, clock = make_book()
    book.add_order("sell", 10, 1, order_id="gtd", expiry_time=clock.now + 60)
    clock.advance(60.5)
    start = len(rec.events)
    book.add_order("buy", 10, 1, order_id="taker")
    events = rec.since(start)
    assert trades_of(rec) == []
    expired = [d for e, d in events if e is EventType.ORDER_EXPIRED]
    assert [d["order_id"] for d in expired] == ["gtd"]
    assert book.get_order("gtd") is None
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]
    assert book.get_snapshot()["asks"] == []


def test_expired_gtd_is_removed_by_clean_expired_orders() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 1, order_id="g1", expiry_time=clock.now + 1)
    book.add_order("buy", 11, 1, order_id="g2", expiry_time=clock.now + 2)
    book.add_order("buy", 12, 1, order_id="g3", expiry_time=clock.now + 100)
    clock.advance(5)
    assert book.clean_expired_orders() == 2
    assert sorted(d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)) == ["g1", "g2"]
    assert [o["order_id"] for o in book.get_orders()] == ["g3"]
    assert book.clean_expired_orders() == 0
    assert len(rec.of(EventType.ORDER_EXPIRED)) == 2


def test_cancel_of_another_order_expires_due_orders_first() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 1, order_id="gtd", expiry_time=clock.now + 1)
    book.add_order("buy", 9, 1, order_id="gtc")
    clock.advance(2)
    assert book.cancel_order("gtc") is True
    assert [d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)] == ["gtd"]
    assert len(book) == 0


def test_cancel_of_an_expired_gtd_returns_false() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 1, order_id="gtd", expiry_time=clock.now + 1)
    clock.advance(2)
    assert book.cancel_order("gtd") is False
    assert [d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)] == ["gtd"]
    assert not rec.of(EventType.ORDER_CANCELLED)


def test_expiry_time_alone_makes_an_order_gtd() -> None:
    book, _, clock = make_book()
    order_id = book.add_order("buy", 10, 1, expiry_time=clock.now + 5)
    order = book.get_order(order_id)
    assert order is not None
    assert order["time_in_force"] == "GTD"
    assert order["expiry_time"] == clock.now + 5


def test_expired_gtd_stop_never_triggers() -> None:
    book, rec, clock = make_book()
    book.add_order(
        "buy",
        None,
        1,
        order_id="stop",
        order_type="STOP_MARKET",
        stop_price=10,
        time_in_force="GTD",
        expiry_time=clock.now + 1,
    )
    book.add_order("sell", 10, 1)
    book.add_order("sell", 11, 1)
    clock.advance(2)
    book.add_order("buy", 10, 1)
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert [d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)] == ["stop"]


# ---------------------------------------------------------------------------- POST_ONLY


def test_post_only_rests_when_it_does_not_cross() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 11, 1)
    book.add_order("buy", 10, 1, order_id="po", order_type="POST_ONLY")
    assert book.get_order("po") is not None
    assert not rec.of(EventType.ORDER_CANCELLED)


@pytest.mark.parametrize("price", [11, 12])
def test_post_only_that_would_cross_is_cancelled_and_nothing_trades(price: int) -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 11, 1, order_id="ask")
    before = book.get_snapshot()
    book.add_order("buy", price, 1, order_id="po", order_type="post_only")
    assert trades_of(rec) == []
    cancelled = rec.of(EventType.ORDER_CANCELLED)
    assert [c["order_id"] for c in cancelled] == ["po"]
    assert cancelled[0]["reason"]
    after = book.get_snapshot()
    assert (after["bids"], after["asks"]) == (before["bids"], before["asks"])


# ---------------------------------------------------------------------------- stops


def make_market(book_args: dict[str, Any] | None = None) -> tuple[OrderBook, Recorder, FakeClock]:
    """A book with liquidity on both sides and a last trade at 100."""
    book, rec, clock = make_book(**(book_args or {}))
    for price in (90, 95, 99):
        book.add_order("buy", price, 10, user_id="mm")
    for price in (101, 105, 110):
        book.add_order("sell", price, 10, user_id="mm")
    book.add_order("sell", 100, 1, user_id="mm")
    book.add_order("buy", 100, 1, user_id="mm")
    assert book.last_trade_price == 100
    rec.clear()
    return book, rec, clock


def test_stop_is_held_off_the_book() -> None:
    book, rec, _ = make_market()
    before = book.get_snapshot()
    book.add_order("buy", 120, 1, order_id="stop", order_type="STOP_LIMIT", stop_price=104)
    after = book.get_snapshot()
    assert (after["bids"], after["asks"]) == (before["bids"], before["asks"])
    assert [e for e, _ in rec.events] == [EventType.ORDER_ADDED]


def test_buy_stop_triggers_when_the_last_trade_reaches_it_from_below() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=105)
    book.add_order("buy", None, 10)  # trades at 101: below the stop
    assert not rec.of(EventType.ORDER_TRIGGERED)
    book.add_order("buy", 105, 1)  # trades at 105: reaches the stop
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]
    assert trades_of(rec)[-1][1] == "stop"


def test_buy_stop_does_not_trigger_on_falling_prices() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=102)
    book.add_order("sell", None, 25)  # trades at 99, 95, 90: far below the buy stop
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert book.get_order("stop") is not None


def test_sell_stop_triggers_when_the_last_trade_reaches_it_from_above() -> None:
    book, rec, _ = make_market()
    book.add_order("sell", 94, 5, order_id="stop", order_type="STOP_LIMIT", stop_price=95)
    book.add_order("sell", None, 10)  # trades at 99
    assert not rec.of(EventType.ORDER_TRIGGERED)
    book.add_order("sell", 95, 1)  # trades at 95 == stop
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]
    assert ("stop", Decimal(95)) in [(t[1], t[2]) for t in trades_of(rec)]


@pytest.mark.parametrize("batched", [False, True])
def test_a_stop_placed_after_a_sweep_is_checked_against_the_last_trade_only(batched: bool) -> None:
    """A sweep made while no stop waits is not kept for stops that come later, in a later command or
    later in the same batch: the new buy stop at 96 sees the last price 90, not the sweep's high 99."""
    book, rec, _ = make_market()
    stop = {"side": "buy", "price": None, "quantity": 1, "order_id": "stop", "order_type": "STOP_MARKET"}
    if batched:
        book.batch_add_orders([{"side": "sell", "price": None, "quantity": 25}, {**stop, "stop_price": 96}])
    else:
        book.add_order("sell", None, 25)  # trades at 99, 95, 90 while no stop waits
        book.add_order(**stop, stop_price=96)
    assert [d["price"] for d in rec.of(EventType.TRADE_EXECUTED)] == [99, 95, 90]
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert book.get_order("stop") is not None
    book.add_order("sell", 100, 1)
    book.add_order("buy", 100, 1)  # trades at 100: now the stop triggers
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]


def test_sell_stop_does_not_trigger_on_rising_prices() -> None:
    book, rec, _ = make_market()
    book.add_order("sell", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=98)
    book.add_order("buy", None, 25)  # trades at 101, 105, 110
    assert not rec.of(EventType.ORDER_TRIGGERED)


def test_triggered_stop_limit_rests_at_its_limit_when_it_cannot_trade() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", 102, 3, order_id="stop", stop_price=101)  # inferred STOP_LIMIT
    assert order_of(book, "stop")["order_type"] == "STOP_LIMIT"
    book.add_order("buy", 101, 10)  # clears the 101 level, last = 101
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]
    assert levels(book, "bids")[0] == (Decimal(102), Decimal(3), 1)
    assert levels(book, "asks")[0][0] == Decimal(105)


def test_trigger_is_reported_before_the_stops_trades() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 2, order_id="stop", stop_price=101)  # inferred STOP_MARKET
    book.add_order("buy", 101, 1, order_id="spark")
    types = rec.types()
    trigger = types.index(EventType.ORDER_TRIGGERED)
    stop_trades = [
        i
        for i, (e, d) in enumerate(rec.events)
        if e is EventType.TRADE_EXECUTED and d["taker_order_id"] == "stop"
    ]
    assert stop_trades and trigger < stop_trades[0]


def test_stop_can_be_cancelled_before_it_triggers() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=105)
    assert book.cancel_order("stop") is True
    book.add_order("buy", None, 30)
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert book.cancel_order("stop") is False


def test_stop_whose_condition_already_holds_triggers_at_once() -> None:
    book, rec, _ = make_market()
    book.add_order("sell", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=100)
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]
    assert trades_of(rec) == [(trades_of(rec)[0][0], "stop", Decimal(99), Decimal(1))]


def test_stops_cascade_and_trigger_in_arrival_order() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 10, order_id="s1", order_type="STOP_MARKET", stop_price=101)
    book.add_order("buy", None, 1, order_id="s2", order_type="STOP_MARKET", stop_price=101)
    book.add_order("buy", None, 1, order_id="s3", order_type="STOP_MARKET", stop_price=105)
    book.add_order("buy", 101, 1, order_id="spark")  # last 101: s1 then s2; s1 sweeps to 105: s3
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["s1", "s2", "s3"]


def test_stop_triggered_by_an_intermediate_trade_of_a_sweep() -> None:
    """A sweep that prints through the stop triggers it, even if its last print is elsewhere."""
    book, rec, _ = make_market()
    book.add_order("sell", None, 1, order_id="stop", order_type="STOP_MARKET", stop_price=99)
    book.add_order("sell", None, 12)  # prints 99 then 95
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["stop"]


# ---------------------------------------------------------------------------- trailing stops


def test_sell_trailing_stop_follows_rising_prices_and_triggers_on_the_pullback() -> None:
    book, rec, _ = make_market()
    book.add_order("sell", None, 1, order_id="trail", order_type="TRAILING_STOP", trail_value=5)
    assert dec(order_of(book, "trail")["stop_price"]) == 95
    book.add_order("buy", None, 20)  # prints 101 then 105: reference 105, stop 100
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert dec(order_of(book, "trail")["stop_price"]) == 100
    book.add_order("buy", 100, 5)
    book.add_order("sell", 100, 5)  # prints 100: at the stop
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["trail"]


def test_sell_trailing_stop_does_not_move_down_with_falling_prices() -> None:
    book, _, _ = make_market()
    book.add_order("sell", None, 1, order_id="trail", order_type="TRAILING_STOP", trail_value=20)
    book.add_order("sell", None, 10)  # prints 99: stop stays at 80
    assert dec(order_of(book, "trail")["stop_price"]) == 80


def test_buy_trailing_stop_with_percentage_distance() -> None:
    book, rec, _ = make_market()
    book.add_order("buy", None, 1, order_id="trail", trail_value=10, trail_is_percent=True)
    assert order_of(book, "trail")["order_type"] == "TRAILING_STOP"
    assert dec(order_of(book, "trail")["stop_price"]) == 110
    book.add_order("sell", None, 15)  # prints 99 then 95: reference 95, stop 104.5
    assert dec(order_of(book, "trail")["stop_price"]) == Decimal("104.5")
    assert not rec.of(EventType.ORDER_TRIGGERED)
    book.add_order("buy", 105, 1)  # prints 101: below 104.5, nothing
    assert not rec.of(EventType.ORDER_TRIGGERED)
    book.add_order("buy", 105, 10)  # prints 105: above 104.5
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["trail"]


def test_trailing_stop_triggered_by_an_intermediate_trade_of_a_sweep() -> None:
    """Stop at 105 (reference 110, distance 5); a buy sweep prints 104 then 110: 104 reaches the stop."""
    book, rec, _ = make_book(tick_size="1", lot_size="1")
    book.add_order("sell", 110, 1)
    book.add_order("buy", 110, 1)  # last 110
    book.add_order("buy", 50, 10)  # bids for the stop to sell into
    book.add_order("sell", None, 1, order_id="trail", order_type="TRAILING_STOP", trail_value=5)
    assert dec(order_of(book, "trail")["stop_price"]) == 105
    book.add_order("sell", 104, 1)
    book.add_order("sell", 110, 1)
    book.add_order("buy", None, 2)  # prints 104 (<= stop 105), then 110
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["trail"]


def test_trailing_stop_with_limit_price_rests_as_limit_after_triggering() -> None:
    book, rec, _ = make_market()
    book.add_order("sell", 120, 1, order_id="trail", order_type="TRAILING_STOP", trail_value=1)
    book.add_order("sell", 99, 1)  # prints 99 <= stop 99
    assert [d["order_id"] for d in rec.of(EventType.ORDER_TRIGGERED)] == ["trail"]
    assert levels(book, "asks")[0] == (Decimal(101), Decimal(10), 1)
    assert (Decimal(120), Decimal(1), 1) in levels(book, "asks")


def test_trailing_stop_needs_a_distance() -> None:
    book, _, _ = make_book()
    before = state_of(book)
    with pytest.raises(ValueError):
        book.add_order("sell", None, 1, order_type="TRAILING_STOP")
    assert state_of(book) == before


# ---------------------------------------------------------------------------- icebergs


def test_iceberg_shows_only_its_displayed_quantity() -> None:
    book, _, _ = make_book()
    book.add_order("sell", 10, 10, order_id="ice", order_type=OrderType.ICEBERG, displayed_quantity=2)
    assert levels(book, "asks") == [(Decimal(10), Decimal(2), 1)]
    order = book.get_order("ice")
    assert order is not None
    assert dec(order["visible_quantity"]) == 2
    assert dec(order["remaining_quantity"]) == 10


def test_iceberg_refills_from_reserve_and_goes_to_the_back_of_the_queue() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 6, order_id="ice", displayed_quantity=2)
    book.add_order("sell", 10, 3, order_id="plain")
    book.add_order("buy", 10, 2, order_id="t1")  # eats the visible slice
    assert trades_of(rec) == [("ice", "t1", Decimal(10), Decimal(2))]
    assert levels(book, "asks") == [(Decimal(10), Decimal(5), 2)]
    book.add_order("buy", 10, 4, order_id="t2")  # plain first (ice went to the back), then ice
    assert trades_of(rec)[1:] == [
        ("plain", "t2", Decimal(10), Decimal(3)),
        ("ice", "t2", Decimal(10), Decimal(1)),
    ]


def test_iceberg_reserve_is_never_lost_and_fills_its_full_quantity() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 10, order_id="ice", displayed_quantity=3)
    for _ in range(10):
        book.add_order("buy", 10, 1)
    assert sum(t[3] for t in trades_of(rec) if t[0] == "ice") == 10
    assert book.get_order("ice") is None
    fills = [d for d in rec.of(EventType.ORDER_FILLED) if d["order_id"] == "ice"]
    assert dec(fills[-1]["filled_quantity"]) == 10
    assert dec(fills[-1]["remaining_quantity"]) == 0


def test_big_taker_consumes_an_iceberg_slice_by_slice() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 10, order_id="ice", displayed_quantity=3)
    book.add_order("buy", 10, 12, order_id="big")
    assert [t[3] for t in trades_of(rec)] == [3, 3, 3, 1]
    assert levels(book, "bids") == [(Decimal(10), Decimal(2), 1)]
    assert book.get_snapshot()["asks"] == []


def test_incoming_iceberg_takes_with_its_full_quantity_then_rests_a_slice() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 4, order_id="ask")
    book.add_order("buy", 10, 10, order_id="ice", displayed_quantity=2)
    assert trades_of(rec) == [("ask", "ice", Decimal(10), Decimal(4))]
    assert levels(book, "bids") == [(Decimal(10), Decimal(2), 1)]
    order = book.get_order("ice")
    assert order is not None
    assert dec(order["remaining_quantity"]) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"displayed_quantity": 11},
        {"displayed_quantity": 0},
        {"displayed_quantity": 2, "time_in_force": TimeInForce.IOC},
        {"order_type": "ICEBERG"},
    ],
)
def test_invalid_iceberg_is_rejected(kwargs: dict[str, object]) -> None:
    book, _, _ = make_book()
    before = state_of(book)
    with pytest.raises(ValueError):
        book.add_order("sell", 10, 10, **kwargs)  # type: ignore[arg-type]
    assert state_of(book) == before
