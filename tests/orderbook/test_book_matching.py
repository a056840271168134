"""Matching (issue section 3): price-time priority, maker price, partial fills, market orders, fees."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType
from manticore_orderbook.book import _HISTORY_STRIDE

from .support import dec, levels, make_book, trades_of


def test_best_price_trades_first() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 101, 1, order_id="worse")
    book.add_order("sell", 100, 1, order_id="better")
    book.add_order("buy", 101, 1, order_id="taker")
    assert trades_of(rec) == [("better", "taker", Decimal(100), Decimal(1))]
    assert levels(book, "asks") == [(Decimal(101), Decimal(1), 1)]


def test_earlier_order_at_the_same_price_trades_first() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 50, 1, order_id="first")
    book.add_order("buy", 50, 1, order_id="second")
    book.add_order("buy", 50, 1, order_id="third")
    book.add_order("sell", 50, 2, order_id="taker")
    assert [t[0] for t in trades_of(rec)] == ["first", "second"]
    assert [o["order_id"] for o in book.get_orders()] == ["third"]


def test_trade_executes_at_the_resting_order_price() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 1, order_id="ask")
    book.add_order("buy", 105, 1, order_id="bid")
    assert trades_of(rec) == [("ask", "bid", Decimal(100), Decimal(1))]
    book.add_order("buy", 90, 1, order_id="resting_bid")
    book.add_order("sell", 80, 1, order_id="aggressive_ask")
    assert trades_of(rec)[-1] == ("resting_bid", "aggressive_ask", Decimal(90), Decimal(1))


def test_partial_fill_of_the_maker_keeps_its_place() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 5, order_id="m1")
    book.add_order("sell", 100, 5, order_id="m2")
    book.add_order("buy", 100, 2, order_id="t1")
    maker = book.get_order("m1")
    assert maker is not None
    assert (maker["filled_quantity"], maker["remaining_quantity"]) == (2, 3)
    book.add_order("buy", 100, 4, order_id="t2")
    assert trades_of(rec)[1:] == [
        ("m1", "t2", Decimal(100), Decimal(3)),
        ("m2", "t2", Decimal(100), Decimal(1)),
    ]


def test_crossing_limit_trades_then_rests_its_remainder_at_its_limit() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 1, order_id="a1")
    book.add_order("sell", 101, 1, order_id="a2")
    book.add_order("sell", 103, 1, order_id="a3")
    book.add_order("buy", 102, 5, order_id="bid")
    assert [t[0] for t in trades_of(rec)] == ["a1", "a2"]
    assert levels(book, "bids") == [(Decimal(102), Decimal(3), 1)]
    assert levels(book, "asks") == [(Decimal(103), Decimal(1), 1)]
    order = book.get_order("bid")
    assert order is not None
    assert (order["filled_quantity"], order["remaining_quantity"]) == (2, 3)
    book.check_invariants()


def test_book_is_never_crossed_after_a_limit_at_the_opposite_best() -> None:
    book, _, _ = make_book()
    book.add_order("sell", 100, 1)
    book.add_order("buy", 100, 3)
    book.add_order("sell", 100, 1)
    snapshot = book.get_snapshot()
    assert snapshot["asks"] == []
    assert levels(book, "bids") == [(Decimal(100), Decimal(1), 1)]


def test_market_order_sweeps_levels_and_cancels_its_remainder() -> None:
    book, rec, _ = make_book()
    book.add_order("sell", 100, 1, order_id="a1")
    book.add_order("sell", 105, 2, order_id="a2")
    order_id = book.add_order("buy", None, 5, order_id="mkt")
    assert order_id == "mkt"
    assert trades_of(rec) == [
        ("a1", "mkt", Decimal(100), Decimal(1)),
        ("a2", "mkt", Decimal(105), Decimal(2)),
    ]
    cancelled = rec.of(EventType.ORDER_CANCELLED)
    assert [c["order_id"] for c in cancelled] == ["mkt"]
    assert dec(cancelled[0].get("cancelled_quantity", cancelled[0]["remaining_quantity"])) == 2
    assert cancelled[0]["reason"]
    assert book.get_order("mkt") is None
    assert book.get_snapshot()["bids"] == []


def test_market_order_on_an_empty_side_never_rests() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1)
    book.add_order("buy", None, 1, order_id="mkt")
    assert trades_of(rec) == []
    assert book.get_order("mkt") is None
    assert [c["order_id"] for c in rec.of(EventType.ORDER_CANCELLED)] == ["mkt"]
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]


def test_sell_market_order_walks_bids_from_the_top() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 99, 1, order_id="b99")
    book.add_order("buy", 101, 1, order_id="b101")
    book.add_order("buy", 100, 1, order_id="b100")
    book.add_order("sell", None, 3, order_id="mkt")
    assert [(t[0], t[2]) for t in trades_of(rec)] == [
        ("b101", Decimal(101)),
        ("b100", Decimal(100)),
        ("b99", Decimal(99)),
    ]


def test_trade_history_is_newest_first_and_limited() -> None:
    book, _, _ = make_book()
    for i in range(5):
        book.add_order("sell", 100 + i, 1, order_id=f"a{i}")
    book.add_order("buy", None, 5)
    history = book.get_trade_history(limit=3)
    assert [t["maker_order_id"] for t in history] == ["a4", "a3", "a2"]
    assert len(book.get_trade_history()) == 5
    assert book.get_trade_history(limit=0) == []
    assert book.last_trade_price == 104


def test_trade_history_keeps_at_most_max_trade_history() -> None:
    book, _, _ = make_book(max_trade_history=2)
    for i in range(4):
        book.add_order("sell", 100, 1, order_id=f"a{i}")
    book.add_order("buy", 100, 4)
    assert [t["maker_order_id"] for t in book.get_trade_history(limit=None)] == ["a3", "a2"]


@pytest.mark.parametrize("keep", [1, 3, 7, 8, 17])
def test_trade_history_wraps_around_in_order_over_many_commands(keep: int) -> None:
    """The history is a ring once full: after any number of trades it holds the last ``keep``,
    newest first, whether they came one per command or several per command. (Session 27: the
    interpreter's history holds up to an eighth more and drops the oldest in one slice: 8 and 17
    keep one and two more rows between trims.)"""
    book, _, _ = make_book(max_trade_history=keep)
    makers: list[str] = []
    for i in range(23):
        for j in range(1 + i % 3):
            oid = f"a{i}-{j}"
            book.add_order("sell", 100, 1, order_id=oid)
            makers.append(oid)
        book.add_order("buy", 100, 1 + i % 3)
        history = book.get_trade_history(limit=None)
        assert [t["maker_order_id"] for t in history] == makers[::-1][:keep]
        assert [t["trade_id"] for t in history] == sorted(
            (t["trade_id"] for t in history), key=lambda tid: -int(tid.rsplit("T", 1)[1])
        )
        assert book.get_statistics()["trade_history_size"] == min(len(makers), keep)
        assert len(book._history) <= (keep + keep // 8) * _HISTORY_STRIDE  # bounded between trims
    assert [t["maker_order_id"] for t in book.get_trade_history(limit=2)] == makers[::-1][: min(2, keep)]


def test_no_trade_history_is_kept_when_max_trade_history_is_zero() -> None:
    book, _, _ = make_book(max_trade_history=0)
    book.add_order("sell", 100, 1, order_id="a")
    book.add_order("buy", 100, 1)
    assert book.get_trade_history(limit=None) == []
    assert book.last_trade_price == 100


def test_trade_records_buyer_and_seller() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1, order_id="bid", user_id="alice")
    book.add_order("sell", 10, 1, order_id="ask", user_id="bob")
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    assert trade["maker_order_id"] == "bid"
    assert trade["taker_order_id"] == "ask"
    assert trade["maker_user_id"] == "alice"
    assert trade["taker_user_id"] == "bob"
    assert trade["taker_side"] == "sell"


def test_fees_are_exact_on_trades_and_fills() -> None:
    book, rec, _ = make_book(maker_fee_rate="0.001", taker_fee_rate="0.002", number_format="decimal")
    book.add_order("sell", "100.10", "0.3", order_id="m")
    book.add_order("buy", "100.10", "0.3", order_id="t")
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    notional = Decimal("100.10") * Decimal("0.3")
    assert trade["maker_fee"] == notional * Decimal("0.001") == Decimal("0.030030")
    assert trade["taker_fee"] == notional * Decimal("0.002")
    maker_fill, taker_fill = rec.of(EventType.ORDER_FILLED)
    assert maker_fill["is_maker"] is True
    assert maker_fill["fee"] == trade["maker_fee"]
    assert taker_fill["fee"] == trade["taker_fee"]


def test_fees_in_float_format_are_the_nearest_float() -> None:
    book, rec, _ = make_book(maker_fee_rate=0.001, taker_fee_rate=0.002)
    book.add_order("sell", 0.1, 0.3)
    book.add_order("buy", 0.1, 0.3)
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    assert trade["maker_fee"] == float(Decimal("0.03") * Decimal("0.001"))
    assert trade["taker_fee"] == float(Decimal("0.03") * Decimal("0.002"))


@settings(max_examples=150, deadline=None)
@given(
    tick=st.sampled_from(["1", "0.5", "0.01", "0.00000001", "25"]),
    lot=st.sampled_from(["1", "0.001", "0.00000001", "0.2"]),
    maker_rate=st.decimals("-0.01", "0.01", places=6),
    taker_rate=st.decimals("0", "0.05", places=7),
    price_ticks=st.integers(1, 10**9),
    lots=st.integers(1, 10**9),
)
# Found by the mypyc build, whose int / int divided two rounded doubles: notional * rate numerator > 2**53.
@example("1", "1", Decimal("0.000047"), Decimal(0), 14_146_603, 14_146_607)
def test_float_fees_are_the_nearest_float_to_the_exact_fee(
    tick: str, lot: str, maker_rate: Decimal, taker_rate: Decimal, price_ticks: int, lots: int
) -> None:
    """Trade and fill events compute float fees without Decimal; they must equal float(exact fee)."""
    book, rec, _ = make_book(
        tick_size=tick, lot_size=lot, maker_fee_rate=str(maker_rate), taker_fee_rate=str(taker_rate)
    )
    price, quantity = Decimal(tick) * price_ticks, Decimal(lot) * lots
    book.add_order("sell", str(price), str(quantity), order_id="m")
    book.add_order("buy", str(price), str(quantity), order_id="t")
    (trade,) = rec.of(EventType.TRADE_EXECUTED)
    with localcontext() as ctx:
        ctx.prec = 200
        expected_maker = float(price * quantity * maker_rate)
        expected_taker = float(price * quantity * taker_rate)
    assert (trade["maker_fee"], trade["taker_fee"]) == (expected_maker, expected_taker)
    fees = {fill["order_id"]: fill["fee"] for fill in rec.of(EventType.ORDER_FILLED)}
    assert fees == {"m": expected_maker, "t": expected_taker}
    assert trade["maker_fee_rate"] == float(maker_rate) and trade["taker_fee_rate"] == float(taker_rate)


@settings(max_examples=150, deadline=None)
@given(
    tick=st.sampled_from(["1", "0.5", "0.01", "0.00000001", "25", "1E+2"]),
    lot=st.sampled_from(["1", "0.001", "0.00000001", "0.2", "1E+1"]),
    maker_rate=st.decimals("-0.01", "0.01", places=6) | st.sampled_from([Decimal(0), Decimal("-0.0")]),
    taker_rate=st.decimals("0", "0.05", places=7) | st.sampled_from([Decimal("0.01"), Decimal("1E-2")]),
    price_ticks=st.integers(1, 10**9),
    lots=st.integers(1, 10**9),
)
@example("1E+2", "1E+1", Decimal("0.01"), Decimal("-0.0"), 3, 7)  # unit with a positive exponent
@example("0.00000001", "0.00000001", Decimal("-0.000001"), Decimal("0.0000001"), 1, 1)
def test_text_fees_are_the_decimal_fees_written_out(
    tick: str, lot: str, maker_rate: Decimal, taker_rate: Decimal, price_ticks: int, lots: int
) -> None:
    """A book in the ``str`` format writes each fee as ``format(fee, "f")`` of the same book's
    ``decimal`` fee: the same digits, sign, decimal places and zero."""
    fees: dict[str, list[object]] = {}
    for number_format in ("str", "decimal"):
        book, rec, _ = make_book(
            tick_size=tick,
            lot_size=lot,
            maker_fee_rate=str(maker_rate),
            taker_fee_rate=str(taker_rate),
            number_format=number_format,
        )
        price, quantity = Decimal(tick) * price_ticks, Decimal(lot) * lots
        book.add_order("sell", str(price), str(quantity), order_id="m")
        book.add_order("buy", str(price), str(quantity), order_id="t")
        (trade,) = rec.of(EventType.TRADE_EXECUTED)
        fills = {fill["order_id"]: fill["fee"] for fill in rec.of(EventType.ORDER_FILLED)}
        fees[number_format] = [trade["maker_fee"], trade["taker_fee"], fills["m"], fills["t"]]
    assert all(type(fee) is str for fee in fees["str"])
    assert fees["str"] == [format(fee, "f") for fee in fees["decimal"]]


def test_negative_maker_fee_is_a_rebate() -> None:
    book, rec, _ = make_book(maker_fee_rate="-0.0001", taker_fee_rate="0.0005", number_format="str")
    book.add_order("sell", 200, 2)
    book.add_order("buy", 200, 2)
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    assert Decimal(trade["maker_fee"]) == Decimal("-0.04")
    assert Decimal(trade["taker_fee"]) == Decimal("0.2")


def test_fees_stay_exact_for_large_prices_and_quantities() -> None:
    """BTC/JPY-like numbers on an 8-decimal grid: the fee must still be the exact product."""
    book, rec, _ = make_book(
        tick_size="0.00000001",
        lot_size="0.00000001",
        maker_fee_rate="0.0015",
        taker_fee_rate="0.0025",
        number_format="decimal",
    )
    price, quantity = Decimal("12345678.12345678"), Decimal("98765.43219876")
    book.add_order("sell", price, quantity)
    book.add_order("buy", price, quantity)
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    with localcontext() as ctx:
        ctx.prec = 100
        assert trade["maker_fee"] == price * quantity * Decimal("0.0015")
        assert trade["taker_fee"] == price * quantity * Decimal("0.0025")


def test_fees_are_invalid_outside_minus_one_to_one() -> None:
    with pytest.raises(ValueError):
        make_book(maker_fee_rate=2)
    with pytest.raises(ValueError):
        make_book(taker_fee_rate="nan")


def test_price_improvement_flag_is_accepted_and_trades_stay_at_maker_price() -> None:
    for flag in (True, False):
        book, rec, _ = make_book(enable_price_improvement=flag)
        book.add_order("sell", 100, 1)
        book.add_order("buy", 110, 1)
        assert trades_of(rec)[0][2] == Decimal(100)


def test_statistics_count_volume_and_trades() -> None:
    book, _, _ = make_book()
    book.add_order("sell", "0.1", "0.1")
    book.add_order("sell", "0.2", "0.2")
    book.add_order("buy", "0.2", "0.3")
    stats = book.get_statistics()
    assert stats["trades"] == 2
    assert dec(stats["total_volume"]) == Decimal("0.3")
    assert dec(stats["total_notional"]) == Decimal("0.1") * Decimal("0.1") + Decimal("0.2") * Decimal("0.2")
    assert stats["bid_levels"] == stats["ask_levels"] == 0


def test_statistics_totals_stay_exact_for_large_volumes() -> None:
    book, _, _ = make_book(
        tick_size="0.00000001", lot_size="0.00000001", maker_fee_rate="0.0015", number_format="decimal"
    )
    price, quantity = Decimal("12345678.12345678"), Decimal("98765.43219876")
    for _ in range(3):
        book.add_order("sell", price, quantity)
        book.add_order("buy", price, quantity)
    stats = book.get_statistics()
    with localcontext() as ctx:
        ctx.prec = 100
        assert stats["total_notional"] == 3 * price * quantity
        assert stats["maker_fees"] == 3 * price * quantity * Decimal("0.0015")
