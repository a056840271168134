"""Self-trade prevention (issue section 3): none, cancel newest, cancel oldest, cancel both, decrement."""

from __future__ import annotations

from decimal import Decimal

import pytest

from manticore_orderbook import EventType, SelfTradePrevention

from .support import Recorder, cancelled_quantity, dec, levels, make_book, state_of, trades_of


def cancelled_ids(rec: Recorder) -> list[str]:
    return [d["order_id"] for d in rec.of(EventType.ORDER_CANCELLED)]


def test_without_stp_a_user_may_trade_with_itself() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="m", user_id="alice")
    book.add_order("buy", 10, 1, order_id="t", user_id="alice")
    assert trades_of(rec) == [("m", "t", Decimal(10), Decimal(1))]


def test_cancel_newest_cancels_the_taker_and_keeps_the_maker() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 2, order_id="m", user_id="alice")
    book.add_order("buy", 10, 1, order_id="t", user_id="alice", self_trade_prevention="cancel_newest")
    assert trades_of(rec) == []
    assert cancelled_ids(rec) == ["t"]
    cancelled = rec.of(EventType.ORDER_CANCELLED)[0]
    assert cancelled["reason"]
    assert cancelled_quantity(cancelled) == 1
    assert levels(book, "asks") == [(Decimal(10), Decimal(2), 1)]
    assert book.get_snapshot()["bids"] == []


def test_cancel_newest_after_trading_with_others_cancels_the_remainder() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="other", user_id="bob")
    book.add_order("sell", 10, 1, order_id="own", user_id="alice")
    book.add_order("sell", 10, 1, order_id="behind", user_id="bob")
    book.add_order("buy", 10, 3, order_id="t", user_id="alice", self_trade_prevention="CANCEL_NEWEST")
    assert trades_of(rec) == [("other", "t", Decimal(10), Decimal(1))]
    assert cancelled_ids(rec) == ["t"]
    assert cancelled_quantity(rec.of(EventType.ORDER_CANCELLED)[0]) == 2
    assert [o["order_id"] for o in book.get_orders()] == ["own", "behind"]


def test_cancel_oldest_cancels_the_maker_and_goes_on_matching() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="own", user_id="alice")
    book.add_order("sell", 10, 1, order_id="other", user_id="bob")
    book.add_order(
        "buy", 10, 3, order_id="t", user_id="alice", self_trade_prevention=SelfTradePrevention.CANCEL_OLDEST
    )
    assert cancelled_ids(rec) == ["own"]
    assert trades_of(rec) == [("other", "t", Decimal(10), Decimal(1))]
    assert levels(book, "bids") == [(Decimal(10), Decimal(2), 1)]
    assert book.get_snapshot()["asks"] == []


def test_cancel_both_cancels_maker_and_taker() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 5, order_id="own", user_id="alice")
    book.add_order("buy", 10, 2, order_id="t", user_id="alice", self_trade_prevention="cancel_both")
    assert trades_of(rec) == []
    assert sorted(cancelled_ids(rec)) == ["own", "t"]
    assert len(book) == 0
    assert book.get_snapshot()["asks"] == [] and book.get_snapshot()["bids"] == []


def test_decrement_with_larger_maker_shrinks_the_maker_and_ends_the_taker() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 5, order_id="own", user_id="alice")
    book.add_order("buy", 10, 2, order_id="t", user_id="alice", self_trade_prevention="decrement")
    assert trades_of(rec) == []
    maker = book.get_order("own")
    assert maker is not None
    assert dec(maker["remaining_quantity"]) == 3
    assert levels(book, "asks") == [(Decimal(10), Decimal(3), 1)]
    assert book.get_order("t") is None
    assert book.get_snapshot()["bids"] == []
    assert "own" in [d["order_id"] for d in rec.of(EventType.ORDER_MODIFIED)]


def test_decrement_with_larger_taker_removes_the_maker_and_the_taker_goes_on() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 2, order_id="own", user_id="alice")
    book.add_order("sell", 10, 1, order_id="other", user_id="bob")
    book.add_order("buy", 10, 5, order_id="t", user_id="alice", self_trade_prevention="decrement")
    assert "own" in cancelled_ids(rec)
    assert trades_of(rec) == [("other", "t", Decimal(10), Decimal(1))]
    taker = book.get_order("t")
    assert taker is not None
    assert dec(taker["remaining_quantity"]) == 2  # 5 - 2 decremented - 1 traded
    assert levels(book, "bids") == [(Decimal(10), Decimal(2), 1)]


def test_decrement_of_equal_quantities_removes_both_without_a_trade() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 2, order_id="own", user_id="alice")
    book.add_order("buy", 10, 2, order_id="t", user_id="alice", self_trade_prevention="decrement")
    assert trades_of(rec) == []
    assert sorted(cancelled_ids(rec)) == ["own", "t"]
    assert len(book) == 0


def test_book_default_applies_when_the_order_does_not_choose() -> None:
    book, rec, _ = make_book(self_trade_prevention="cancel_newest")
    book.add_order("sell", 10, 1, order_id="m", user_id="alice")
    book.add_order("buy", 10, 1, order_id="t", user_id="alice")
    assert trades_of(rec) == []
    assert cancelled_ids(rec) == ["t"]


def test_order_override_beats_the_book_default() -> None:
    book, rec, _ = make_book(self_trade_prevention="cancel_newest")
    book.add_order("sell", 10, 1, order_id="m", user_id="alice")
    book.add_order("buy", 10, 1, order_id="t", user_id="alice", self_trade_prevention="none")
    assert trades_of(rec) == [("m", "t", Decimal(10), Decimal(1))]


def test_the_taker_mode_decides_not_the_makers() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="m", user_id="alice", self_trade_prevention="cancel_both")
    book.add_order("buy", 10, 1, order_id="t", user_id="alice", self_trade_prevention="cancel_oldest")
    assert cancelled_ids(rec) == ["m"]
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]


@pytest.mark.parametrize("mode", ["cancel_newest", "cancel_oldest", "cancel_both", "decrement"])
def test_stp_applies_only_to_the_same_user(mode: str) -> None:
    book, rec, _ = make_book(self_trade_prevention=mode)
    book.add_order("sell", 10, 1, order_id="m", user_id="alice")
    book.add_order("buy", 10, 1, order_id="t", user_id="bob")
    assert trades_of(rec) == [("m", "t", Decimal(10), Decimal(1))]


@pytest.mark.parametrize("mode", ["cancel_newest", "cancel_oldest", "cancel_both", "decrement"])
def test_orders_without_a_user_never_trigger_stp(mode: str) -> None:
    book, rec, _ = make_book(self_trade_prevention=mode)
    book.add_order("sell", 10, 1, order_id="m")
    book.add_order("buy", 10, 1, order_id="t")
    assert trades_of(rec) == [("m", "t", Decimal(10), Decimal(1))]


def test_fok_blocked_by_own_order_does_nothing() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="other", user_id="bob")
    book.add_order("sell", 10, 1, order_id="own", user_id="alice")
    before = state_of(book)
    start = len(rec.events)
    book.add_order(
        "buy",
        10,
        2,
        order_id="fok",
        user_id="alice",
        time_in_force="FOK",
        self_trade_prevention="cancel_newest",
    )
    assert [e for e, _ in rec.since(start)] == [EventType.ORDER_CANCELLED]
    snapshot, *_ = state_of(book)
    assert (snapshot["bids"], snapshot["asks"]) == (before[0]["bids"], before[0]["asks"])


def test_fok_with_cancel_oldest_fills_past_own_orders() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 10, 1, order_id="own", user_id="alice")
    book.add_order("sell", 10, 2, order_id="other", user_id="bob")
    book.add_order(
        "buy",
        10,
        2,
        order_id="fok",
        user_id="alice",
        time_in_force="FOK",
        self_trade_prevention="cancel_oldest",
    )
    assert trades_of(rec) == [("other", "fok", Decimal(10), Decimal(2))]
    assert cancelled_ids(rec) == ["own"]


def test_invalid_stp_mode_is_rejected() -> None:
    book, _, _ = make_book()
    before = state_of(book)
    with pytest.raises(ValueError):
        book.add_order("buy", 10, 1, user_id="alice", self_trade_prevention="cancel_everything")
    assert state_of(book) == before
    with pytest.raises(ValueError):
        make_book(self_trade_prevention="sometimes")


def test_fok_whose_fill_would_be_decremented_does_nothing() -> None:
    """A decrement is not a fill: a FOK that could only complete by self-trade decrement is cancelled."""
    book, rec, _ = make_book(self_trade_prevention="decrement")
    book.add_order("buy", 11, 1, order_id="own", user_id="bob")
    book.add_order("buy", 10, 1, order_id="other", user_id="alice")
    start = len(rec.events)
    book.add_order("sell", None, 2, order_id="fok", user_id="bob", time_in_force="FOK")
    assert [e for e, _ in rec.since(start)] == [EventType.ORDER_CANCELLED]
    assert [o["order_id"] for o in book.get_orders()] == ["own", "other"]
