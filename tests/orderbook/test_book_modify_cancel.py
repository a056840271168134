"""modify_order, cancel_order and order ids (issue section 3), including the classic order-book bugs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from manticore_orderbook import DuplicateOrderIdError, EventType, InvalidOrderError, OrderBook

from .support import FakeClock, Recorder, cancelled_quantity, dec, levels, make_book, state_of, trades_of

# ---------------------------------------------------------------------------- modify: priority


def test_reducing_quantity_keeps_time_priority() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 5, order_id="a")
    book.add_order("sell", 10, 5, order_id="b")
    assert book.modify_order("a", new_quantity=3) is True
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("a", "t", Decimal(10), Decimal(1))]


def test_increasing_quantity_loses_time_priority() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 5, order_id="a")
    book.add_order("sell", 10, 5, order_id="b")
    assert book.modify_order("a", new_quantity=6) is True
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("b", "t", Decimal(10), Decimal(1))]
    assert levels(book, "asks") == [(Decimal(10), Decimal(10), 2)]


def test_changing_price_moves_the_order_to_the_back_of_the_new_level() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 11, 1, order_id="a")
    book.add_order("sell", 10, 1, order_id="b")
    assert book.modify_order("a", new_price=10) is True
    assert levels(book, "asks") == [(Decimal(10), Decimal(2), 2)]
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("b", "t", Decimal(10), Decimal(1))]


def test_changing_price_there_and_back_loses_priority() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    book.add_order("buy", 10, 1, order_id="b")
    book.modify_order("a", new_price=9)
    book.modify_order("a", new_price=10)
    book.add_order("sell", 10, 1, order_id="t")
    assert trades_of(rec)[0][0] == "b"


# ---------------------------------------------------------------------------- modify after partial fill


def partially_filled_book() -> tuple[OrderBook, Recorder, FakeClock]:
    """'a' sells 10 at 10 and has 4 filled (6 open); 'b' rests behind it."""
    book, rec, clock = make_book()
    book.add_order("sell", 10, 10, order_id="a")
    book.add_order("sell", 10, 5, order_id="b")
    book.add_order("buy", 10, 4)
    order = book.get_order("a")
    assert order is not None and dec(order["filled_quantity"]) == 4 and dec(order["remaining_quantity"]) == 6
    rec.clear()
    return book, rec, clock


def test_new_quantity_is_the_new_total_after_a_partial_fill() -> None:
    book, rec, _ = partially_filled_book()
    assert book.modify_order("a", new_quantity=8) is True
    order = book.get_order("a")
    assert order is not None
    assert dec(order["original_quantity"]) == 8
    assert dec(order["filled_quantity"]) == 4
    assert dec(order["quantity"]) == dec(order["remaining_quantity"]) == 4
    assert levels(book, "asks") == [(Decimal(10), Decimal(9), 2)]
    book.add_order("buy", 10, 4, order_id="t")  # reduction kept priority: 'a' fills first, fully
    assert trades_of(rec) == [("a", "t", Decimal(10), Decimal(4))]
    assert book.get_order("a") is None


def test_increasing_after_a_partial_fill_uses_the_open_quantity() -> None:
    book, rec, _ = partially_filled_book()
    assert book.modify_order("a", new_quantity=12) is True
    order = book.get_order("a")
    assert order is not None
    assert dec(order["remaining_quantity"]) == 8
    assert levels(book, "asks") == [(Decimal(10), Decimal(13), 2)]
    book.add_order("buy", 10, 5, order_id="t")  # 'b' is first now
    assert trades_of(rec) == [("b", "t", Decimal(10), Decimal(5))]


@pytest.mark.parametrize("new_quantity", [4, 3, "0.001", 0, -1])
def test_modify_to_at_or_below_the_filled_quantity_is_rejected(new_quantity: object) -> None:
    book, rec, _ = partially_filled_book()
    before = state_of(book)
    with pytest.raises(InvalidOrderError):
        book.modify_order("a", new_quantity=new_quantity)
    assert state_of(book) == before
    assert rec.events == []


def test_modify_event_reports_old_and_new_values() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 5, order_id="a", expiry_time=clock.now + 10)
    book.modify_order("a", new_price=9, new_quantity=3, new_expiry_time=clock.now + 20)
    modified = rec.of(EventType.ORDER_MODIFIED)
    assert len(modified) == 1
    event = modified[0]
    assert event["order_id"] == "a"
    assert (dec(event["old_price"]), dec(event["new_price"])) == (Decimal(10), Decimal(9))
    assert (dec(event["old_quantity"]), dec(event["new_quantity"])) == (Decimal(5), Decimal(3))
    assert (event["old_expiry_time"], event["new_expiry_time"]) == (clock.now + 10, clock.now + 20)


# ---------------------------------------------------------------------------- crossing modify


def test_modify_that_crosses_trades_immediately_at_the_maker_price() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 2, order_id="ask")
    book.add_order("buy", 99, 5, order_id="bid")
    assert book.modify_order("bid", new_price=101) is True
    assert trades_of(rec) == [("ask", "bid", Decimal(100), Decimal(2))]
    assert levels(book, "bids") == [(Decimal(101), Decimal(3), 1)]
    assert book.get_snapshot()["asks"] == []
    book.check_invariants()


def test_crossing_modify_events_come_before_the_trades() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 5, order_id="ask")
    book.add_order("buy", 99, 2, order_id="bid")
    rec.clear()
    book.modify_order("bid", new_price=100)
    types = rec.types()
    assert types.index(EventType.ORDER_MODIFIED) < types.index(EventType.TRADE_EXECUTED)
    assert book.get_order("bid") is None


def test_post_only_modify_that_would_cross_never_trades() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 1, order_id="ask")
    book.add_order("buy", 99, 1, order_id="po", order_type="POST_ONLY")
    try:
        book.modify_order("po", new_price=100)
    except InvalidOrderError:
        assert book.get_order("po") is not None
    assert trades_of(rec) == []
    assert levels(book, "asks") == [(Decimal(100), Decimal(1), 1)]


# ---------------------------------------------------------------------------- modify: expiry, stops, icebergs


def test_modify_extends_gtd_expiry() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 1, order_id="g", expiry_time=clock.now + 5)
    book.modify_order("g", new_expiry_time=clock.now + 50)
    clock.advance(10)
    book.add_order("sell", 10, 1, order_id="t")
    assert trades_of(rec) == [("g", "t", Decimal(10), Decimal(1))]
    assert not rec.of(EventType.ORDER_EXPIRED)


def test_modify_shortens_gtd_expiry() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 1, order_id="g", expiry_time=clock.now + 50)
    book.modify_order("g", new_expiry_time=clock.now + 5)
    clock.advance(10)
    assert book.clean_expired_orders() == 1
    assert [d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)] == ["g"]


@pytest.mark.parametrize("tif_kwargs", [{}, {"time_in_force": "GTC"}])
def test_expiry_on_a_non_gtd_order_is_rejected(tif_kwargs: dict[str, str]) -> None:
    book, _, clock = make_book()
    book.add_order("buy", 10, 1, order_id="a", **tif_kwargs)  # type: ignore[arg-type]
    before = state_of(book)
    with pytest.raises(InvalidOrderError):
        book.modify_order("a", new_expiry_time=clock.now + 5)
    assert state_of(book) == before


@pytest.mark.parametrize("delta", [0.0, -1.0])
def test_expiry_in_the_past_is_rejected(delta: float) -> None:
    book, _, clock = make_book()
    book.add_order("buy", 10, 1, order_id="g", expiry_time=clock.now + 5)
    before = state_of(book)
    with pytest.raises(InvalidOrderError):
        book.modify_order("g", new_expiry_time=clock.now + delta)
    assert state_of(book) == before


def test_modify_of_an_expired_gtd_returns_false() -> None:
    book, rec, clock = make_book()
    book.add_order("buy", 10, 5, order_id="g", expiry_time=clock.now + 5)
    clock.advance(10)
    assert book.modify_order("g", new_quantity=3) is False
    assert [d["order_id"] for d in rec.of(EventType.ORDER_EXPIRED)] == ["g"]
    assert book.get_order("g") is None


def test_modify_of_an_expired_gtd_returns_false_even_without_a_change() -> None:
    """The order is finished once its expiry has passed, whether or not it has been swept yet."""
    book, _, clock = make_book()
    book.add_order("buy", 10, 5, order_id="g", expiry_time=clock.now + 5)
    clock.advance(10)
    assert book.modify_order("g", new_quantity=5) is False
    assert book.get_order("g") is None


def test_modify_of_a_pending_stop_does_not_trigger_it() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 12, 5, order_id="stop", stop_price=11)
    assert book.modify_order("stop", new_price=13, new_quantity=7) is True
    order = book.get_order("stop")
    assert order is not None
    assert (dec(order["price"]), dec(order["quantity"])) == (Decimal(13), Decimal(7))
    assert not rec.of(EventType.ORDER_TRIGGERED)
    assert book.get_snapshot()["bids"] == []


def test_modify_price_of_a_stop_market_is_rejected() -> None:
    book, _, _ = make_book()
    book.add_order("buy", None, 5, order_id="stop", stop_price=11)
    with pytest.raises(InvalidOrderError):
        book.modify_order("stop", new_price=12)


def test_reducing_an_iceberg_below_its_visible_slice_shrinks_the_slice() -> None:
    book, _, _ = make_book()
    book.add_order("sell", 10, 10, order_id="ice", displayed_quantity=4)
    book.modify_order("ice", new_quantity=3)
    assert levels(book, "asks") == [(Decimal(10), Decimal(3), 1)]
    book.check_invariants()


# ---------------------------------------------------------------------------- finished orders, cancel


def test_modify_of_unknown_filled_or_cancelled_order_returns_false() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="filled")
    book.add_order("buy", 10, 1)
    book.add_order("buy", 5, 1, order_id="cancelled")
    book.cancel_order("cancelled")
    sequence = book.sequence
    events = len(rec.events)
    for order_id in ("unknown", "filled", "cancelled"):
        assert book.modify_order(order_id, new_quantity=2) is False
    assert book.sequence == sequence
    assert len(rec.events) == events


def test_cancel_returns_true_and_reports_quantity_left_and_reason() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 5, order_id="a")
    book.add_order("sell", 10, 2)
    rec.clear()
    assert book.cancel_order("a") is True
    cancelled = rec.of(EventType.ORDER_CANCELLED)
    assert [c["order_id"] for c in cancelled] == ["a"]
    assert cancelled_quantity(cancelled[0]) == 3
    assert cancelled[0]["reason"]
    assert book.get_order("a") is None
    assert book.get_snapshot()["bids"] == []
    assert rec.types()[-1] is EventType.PRICE_LEVEL_REMOVED


def test_cancel_of_a_filled_order_returns_false_and_publishes_nothing() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="a")
    book.add_order("buy", 10, 1)
    before = state_of(book)
    events = len(rec.events)
    assert book.cancel_order("a") is False
    assert state_of(book) == before
    assert len(rec.events) == events


def test_cancel_twice_returns_false_the_second_time() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    assert book.cancel_order("a") is True
    assert book.cancel_order("a") is False
    assert len(rec.of(EventType.ORDER_CANCELLED)) == 1


def test_cancel_of_unknown_id_returns_false() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1)
    before = state_of(book)
    assert book.cancel_order("nope") is False
    assert state_of(book) == before


def test_cancel_in_the_middle_of_a_queue_keeps_the_others_in_order() -> None:
    book, rec, _ = make_book()
    for name in "abcd":
        book.add_order("buy", 10, 1, order_id=name)
    book.cancel_order("b")
    book.add_order("sell", 10, 3, order_id="t")
    assert [t[0] for t in trades_of(rec)] == ["a", "c", "d"]


def test_cancel_with_an_unhashable_id_is_rejected_cleanly() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    before = state_of(book)
    try:
        result = book.cancel_order(["a"])  # type: ignore[arg-type]
    except ValueError:
        result = False
    assert result is False
    assert state_of(book) == before


def test_batch_cancel_maps_each_id() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    book.add_order("buy", 11, 1, order_id="b")
    result = book.batch_cancel_orders(["a", "zzz", "b"])
    assert result == {"a": True, "zzz": False, "b": True}
    assert len(book) == 0


# ---------------------------------------------------------------------------- duplicate ids


def test_duplicate_live_id_is_rejected_and_nothing_changes() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="dup")
    before = state_of(book)
    events = len(rec.events)
    with pytest.raises(DuplicateOrderIdError):
        book.add_order("sell", 20, 5, order_id="dup")
    assert issubclass(DuplicateOrderIdError, ValueError)
    assert state_of(book) == before
    assert len(rec.events) == events
    order = book.get_order("dup")
    assert order is not None and order["side"] == "buy"


def test_duplicate_of_a_pending_stop_id_is_rejected() -> None:
    book, _, _ = make_book()
    book.add_order("buy", None, 1, order_id="stop", stop_price=50)
    with pytest.raises(DuplicateOrderIdError):
        book.add_order("buy", 10, 1, order_id="stop")


def test_duplicate_of_a_crossing_order_is_rejected_before_it_trades() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="ask")
    book.add_order("buy", 5, 1, order_id="dup")
    with pytest.raises(DuplicateOrderIdError):
        book.add_order("buy", 10, 1, order_id="dup")
    assert trades_of(rec) == []


def test_id_of_a_finished_order_can_be_used_again() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="x")
    book.cancel_order("x")
    assert book.add_order("buy", 11, 1, order_id="x") == "x"
    book.add_order("sell", 11, 1)
    assert book.add_order("buy", 12, 1, order_id="x") == "x"


def test_generated_ids_are_unique_and_never_clash_with_given_ids() -> None:
    book, _, _ = make_book()
    ids = {book.add_order("buy", 10, 1) for _ in range(50)}
    assert len(ids) == 50
    taken = next(iter(ids))
    book.cancel_order(taken)
    more = {book.add_order("buy", 10, 1) for _ in range(50)}
    assert len(more) == 50
    assert not (more & (ids - {taken}))


def test_changing_only_the_expiry_keeps_time_priority() -> None:
    book, rec, clock = make_book()
    book.add_order("sell", 10, 1, order_id="a", expiry_time=clock.now + 10)
    book.add_order("sell", 10, 1, order_id="b")
    assert book.modify_order("a", new_expiry_time=clock.now + 100) is True
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("a", "t", Decimal(10), Decimal(1))]


def test_modifying_to_the_same_total_keeps_time_priority() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 2, order_id="a")
    book.add_order("sell", 10, 1, order_id="b")
    assert book.modify_order("a", new_price=10, new_quantity=2) is True
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("a", "t", Decimal(10), Decimal(1))]


def test_expiry_only_modify_publishes_no_level_event() -> None:
    """Regression: changing only a GTD expiry used to publish a PRICE_LEVEL_CHANGED with no change."""
    book, rec, _ = make_book(clock=FakeClock(100.0))
    book.add_order("buy", 10, 1, order_id="g", expiry_time=200.0)
    start = len(rec.events)
    assert book.modify_order("g", new_expiry_time=300.0)
    assert [event for event, _ in rec.since(start)] == [EventType.ORDER_MODIFIED]
    assert book.get_order("g")["expiry_time"] == 300.0  # type: ignore[index]
