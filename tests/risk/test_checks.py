"""check_order / check_modify: every rejection code, its message, and that a rejection changes nothing."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import OrderBook, OrderType, Side
from manticore_risk import CODES, RiskLimits, RiskManager

from .support import Exchange, new_book

D = Decimal


def market(limits: RiskLimits | None = None, **book_kwargs: Any) -> Exchange:
    """One BTC/USD market (maker 0.1%, taker 0.2%), alice with 10000 USD and bob with 100 BTC."""
    ex = Exchange(limits=limits or RiskLimits(), symbols=("BTC/USD",), book_kwargs=book_kwargs)
    ex.deposit("alice", "USD", "10000")
    ex.deposit("bob", "BTC", "100")
    return ex


def rejected_without_change(ex: Exchange, code: str, **order: Any) -> str:
    """Check an order that must be rejected with ``code``; assert nothing changed; return the reason."""
    before = ex.risk.export_state()
    args: dict[str, Any] = {"symbol": "BTC/USD", "user": "alice", "side": "buy", "order_type": "limit"}
    args.update(order)
    args.setdefault("price", D("100"))
    args.setdefault("quantity", D("1"))
    decision = ex.check_new(**args)
    assert decision["approved"] is False, decision
    assert decision["code"] == code, decision
    assert decision["reason"], decision
    assert code in CODES
    assert ex.risk.export_state() == before
    return decision["reason"]


def approved(ex: Exchange, **order: Any) -> None:
    args: dict[str, Any] = {"symbol": "BTC/USD", "user": "alice", "side": "buy", "order_type": "limit"}
    args.update(order)
    args.setdefault("price", D("100"))
    args.setdefault("quantity", D("1"))
    decision = ex.check_new(**args)
    assert decision == {"approved": True, "reason": "", "code": ""}


def force(ex: Exchange, user: str, side: str, price: str, quantity: str = "0.1") -> str:
    """Place a limit order without the checks (reserve, then the book); return its id."""
    book = ex.books["BTC/USD"]
    order_id = f"{user}-{side}-{book.sequence}"
    ex.risk.reserve(
        order_id,
        user_id=user,
        symbol="BTC/USD",
        side=side,
        order_type="limit",
        price=D(price),
        quantity=D(quantity),
    )
    book.add_order(side, price, quantity, order_id=order_id, user_id=user)
    return order_id


def trade_at(ex: Exchange, price: str) -> None:
    """Make a trade print at ``price`` between a market maker's two orders (placed without checks)."""
    ex.deposit("mm", "USD", "1000000")
    ex.deposit("mm", "BTC", "10")
    force(ex, "mm", "sell", price)
    force(ex, "mm", "buy", price)
    assert D(str(ex.books["BTC/USD"].last_trade_price)) == D(price)


# ---------------------------------------------------------------------- invalid and unknown


def test_unknown_market() -> None:
    ex = market()
    reason = rejected_without_change(ex, "unknown_market", symbol="DOGE/USD")
    assert "DOGE/USD" in reason
    rejected_without_change(ex, "unknown_market", symbol=None)


@pytest.mark.parametrize(
    ("order", "words"),
    [
        ({"quantity": D("-1")}, "quantity"),
        ({"quantity": D("0")}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": True}, "bool"),
        ({"quantity": None}, "quantity"),
        ({"price": D("-100")}, "price"),
        ({"price": float("nan")}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": [1]}, "price"),
        ({"side": "long"}, "side"),
        ({"side": None}, "side"),
        ({"order_type": "fancy"}, "order type"),
        ({"price": D("100.25")}, "tick size"),
        ({"quantity": D("0.15")}, "lot size"),
        ({"order_type": "market"}, "no price"),
        ({"price": None}, "need a price"),
        ({"order_type": "stop_limit"}, "stop_price"),
        ({"order_type": "stop_market", "price": None, "side": "sell"}, "stop_price"),
        ({"stop_price": D("90")}, "stop_price is not allowed"),
        ({"stop_price": D("90.25"), "order_type": "stop_limit"}, "tick size"),
        ({"order_type": "post_only", "time_in_force": "IOC"}, "rest"),
        ({"order_type": "market", "price": None, "time_in_force": "GTD"}, "GTD"),
        ({"time_in_force": "forever"}, "time in force"),
        ({"self_trade_prevention": "maybe"}, "self-trade"),
        ({"now": float("nan")}, "now"),
        ({"now": "soon"}, "now"),
        ({"user": None}, "user_id"),
        ({"user": 1.5}, "user_id"),
        ({"price": "1e999999999"}, ""),
    ],
)
def test_invalid_arguments_are_answered_never_raised(order: dict[str, Any], words: str) -> None:
    reason = rejected_without_change(market(), "invalid", **order)
    assert words in reason


def test_strings_enums_and_any_case_are_accepted() -> None:
    ex = market()
    approved(ex, side=Side.BUY, order_type=OrderType.LIMIT)
    approved(ex, side="BUY", order_type="Limit", price="100", quantity="1", time_in_force="gtc")
    approved(ex, price=100, quantity=1)
    approved(ex, price=100.0, quantity=0.3)


@settings(max_examples=150)
@given(
    side=st.one_of(st.sampled_from(["buy", "sell", "BUY"]), st.none(), st.integers(), st.text(max_size=3)),
    order_type=st.one_of(
        st.sampled_from(
            ["limit", "market", "post_only", "stop_limit", "stop_market", "trailing_stop", "iceberg"]
        ),
        st.none(),
        st.floats(),
    ),
    price=st.one_of(st.none(), st.decimals(), st.floats(), st.integers(-5, 300), st.text(max_size=4)),
    quantity=st.one_of(st.none(), st.decimals(), st.floats(), st.integers(-5, 5), st.booleans()),
    stop_price=st.one_of(st.none(), st.decimals(), st.integers(-5, 300)),
    now=st.one_of(st.floats(), st.integers(), st.none()),
    user=st.one_of(st.sampled_from(["alice", "bob"]), st.none(), st.floats(), st.integers()),
)
def test_check_order_never_raises_and_rejections_change_nothing(
    side: Any, order_type: Any, price: Any, quantity: Any, stop_price: Any, now: Any, user: Any
) -> None:
    ex = market(RiskLimits(max_order_notional=D("5000"), price_band=D("0.5"), max_open_orders=3))
    before = ex.risk.export_state()
    decision = ex.risk.check_order(
        user_id=user,
        symbol="BTC/USD",
        side=side,
        order_type=order_type,
        price=price,
        quantity=quantity,
        stop_price=stop_price,
        now=now,
    )
    assert set(decision) == {"approved", "reason", "code"}
    if decision["approved"]:
        assert decision["reason"] == decision["code"] == ""
    else:
        assert decision["code"] in CODES and decision["reason"]
    assert ex.risk.export_state() == before  # no rate limit configured: even an approval changes nothing


# ---------------------------------------------------------------------- unsupported orders


def test_stop_market_and_trailing_buys_without_price_are_unsupported() -> None:
    ex = market()
    reason = rejected_without_change(
        ex, "unsupported_order", order_type="stop_market", price=None, stop_price=D("110")
    )
    assert "bounded" in reason
    reason = rejected_without_change(ex, "unsupported_order", order_type="trailing_stop", price=None)
    assert "limit price" in reason
    approved(ex, order_type="trailing_stop", price=D("100"))
    approved(ex, user="bob", side="sell", order_type="stop_market", price=None, stop_price=D("90"))
    approved(ex, user="bob", side="sell", order_type="trailing_stop", price=None)


# ---------------------------------------------------------------------- per-order limits


def test_max_quantity() -> None:
    ex = market(RiskLimits(max_order_quantity=D("2")))
    approved(ex, quantity=D("2"))
    assert "2.1" in rejected_without_change(ex, "max_quantity", quantity=D("2.1"))
    rejected_without_change(ex, "max_quantity", user="bob", side="sell", quantity=D("3"))


def test_max_notional_for_limit_stop_and_market_orders() -> None:
    ex = market(RiskLimits(max_order_notional=D("1000")))
    approved(ex, price=D("100"), quantity=D("10"))
    assert "1005" in rejected_without_change(ex, "max_notional", price=D("100.5"), quantity=D("10"))
    rejected_without_change(
        ex,
        "max_notional",
        user="bob",
        side="sell",
        order_type="stop_market",
        price=None,
        stop_price=D("101"),
        quantity=D("10"),
    )
    ex.deposit("carol", "BTC", "100")
    ex.place("a1", "BTC/USD", "carol", "sell", "limit", D("100"), D("5"))
    ex.place("a2", "BTC/USD", "carol", "sell", "limit", D("110"), D("5"))
    approved(ex, order_type="market", price=None, quantity=D("9.5"))  # 500 + 495 = 995
    rejected_without_change(ex, "max_notional", order_type="market", price=None, quantity=D("10"))  # 1050


def test_market_limits_replace_the_managers_per_order_limits() -> None:
    clock_ex = Exchange(limits=RiskLimits(max_order_quantity=D("1"), max_open_orders=1), symbols=())
    risk = clock_ex.risk
    book = new_book("BTC/USD", clock_ex.clock)
    risk.register_market("BTC/USD", "BTC", "USD", book, limits=RiskLimits(max_order_quantity=D("5")))
    risk.deposit("u", "USD", "100000")
    ok = risk.check_order(
        user_id="u", symbol="BTC/USD", side="buy", order_type="limit", price=D("1"), quantity=D("5"), now=0.0
    )
    assert ok["approved"]
    too_big = risk.check_order(
        user_id="u",
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        price=D("1"),
        quantity=D("5.1"),
        now=0.0,
    )
    assert too_big["code"] == "max_quantity"


# ---------------------------------------------------------------------- price band


def test_price_band_uses_last_trade_else_mid_else_nothing() -> None:
    ex = market(RiskLimits(price_band=D("0.10")))
    approved(ex, price=D("1000"))  # empty book: no reference, no check
    ex.place("bid", "BTC/USD", "alice", "buy", "limit", D("90"), D("0.1"))
    ex.place("ask", "BTC/USD", "bob", "sell", "limit", D("110"), D("0.1"))
    # mid = 100: [90, 110] allowed
    approved(ex, price=D("90"))
    approved(ex, price=D("110"))
    assert "mid" not in rejected_without_change(ex, "price_band", price=D("110.5"))
    rejected_without_change(ex, "price_band", user="bob", side="sell", price=D("89.5"))
    trade_at(ex, "105")  # now the last trade price is the reference: [94.5, 115.5]
    approved(ex, price=D("115.5"))
    reason = rejected_without_change(ex, "price_band", price=D("116"))
    assert "105" in reason and "0.10" in reason
    rejected_without_change(ex, "price_band", price=D("94"))


def test_price_band_for_stops_uses_the_stop_price() -> None:
    ex = market(RiskLimits(price_band=D("0.10")))
    trade_at(ex, "100")
    # A stop-limit waits: its limit is checked against its stop price, not against today's price.
    approved(ex, order_type="stop_limit", price=D("150"), stop_price=D("140"))
    reason = rejected_without_change(
        ex, "price_band", order_type="stop_limit", price=D("160"), stop_price=D("140")
    )
    assert "stop price" in reason
    approved(ex, user="bob", side="sell", order_type="stop_market", price=None, stop_price=D("10"))
    approved(ex, user="bob", side="sell", order_type="trailing_stop", price=None)


def test_price_band_rejects_a_market_order_that_would_sweep_too_far() -> None:
    ex = market(RiskLimits(price_band=D("0.10")))
    trade_at(ex, "100")
    force(ex, "bob", "sell", "105", "1")
    force(ex, "bob", "sell", "120", "1")
    force(ex, "alice", "buy", "95", "1")
    force(ex, "alice", "buy", "80", "1")
    approved(ex, order_type="market", price=None, quantity=D("1"))
    reason = rejected_without_change(ex, "price_band", order_type="market", price=None, quantity=D("1.1"))
    assert "120" in reason
    approved(ex, user="bob", side="sell", order_type="market", price=None, quantity=D("1"))
    rejected_without_change(
        ex, "price_band", user="bob", side="sell", order_type="market", price=None, quantity=D("2")
    )


def test_market_order_against_an_empty_side_is_rejected_no_liquidity() -> None:
    ex = market()
    reason = rejected_without_change(ex, "no_liquidity", order_type="market", price=None)
    assert "asks" in reason
    rejected_without_change(ex, "no_liquidity", user="bob", side="sell", order_type="market", price=None)


# ---------------------------------------------------------------------- per-user limits


def test_max_open_orders_counts_live_orders_over_all_markets() -> None:
    ex = Exchange(limits=RiskLimits(max_open_orders=2))
    ex.deposit("alice", "USD", "10000")
    assert ex.place("o1", "BTC/USD", "alice", "buy", "limit", D("100"), D("1"))["approved"]
    assert ex.place("o2", "ETH/USD", "alice", "buy", "limit", D("100"), D("1"))["approved"]
    assert ex.risk.open_order_count("alice") == 2
    before = ex.risk.export_state()
    decision = ex.check_new("BTC/USD", "alice", "buy", "limit", D("100"), D("1"))
    assert decision["code"] == "max_open_orders" and "2" in decision["reason"]
    assert ex.risk.export_state() == before
    # Orders that cannot rest are not limited.
    assert ex.check_new("BTC/USD", "alice", "buy", "limit", D("100"), D("1"), time_in_force="IOC")["approved"]
    assert ex.books["BTC/USD"].cancel_order("o1")
    assert ex.risk.open_order_count("alice") == 1
    assert ex.check_new("BTC/USD", "alice", "buy", "limit", D("100"), D("1"))["approved"]


def test_rate_limit_is_a_sliding_window_on_the_given_clock() -> None:
    ex = market(RiskLimits(rate_limit_orders=3, rate_limit_window=10.0))
    for t in (0.0, 1.0, 2.0):
        approved(ex, now=t)
    reason = rejected_without_change(ex, "rate_limited", now=9.99)
    assert "3" in reason and "10" in reason
    rejected_without_change(ex, "rate_limited", now=5.0)  # rejections are not counted
    approved(ex, now=10.0)  # the approval at 0.0 left the window
    rejected_without_change(ex, "rate_limited", now=10.5)
    approved(ex, user="bob", side="sell", now=10.5)  # per user
    approved(ex, now=12.0)
    # Invalid or otherwise rejected checks never count.
    ex2 = market(RiskLimits(rate_limit_orders=1, rate_limit_window=10.0))
    rejected_without_change(ex2, "insufficient_balance", quantity=D("1000"), now=0.0)
    approved(ex2, now=0.0)
    rejected_without_change(ex2, "rate_limited", now=1.0)


def test_rate_limiter_counts_modifies() -> None:
    ex = market(RiskLimits(rate_limit_orders=2, rate_limit_window=10.0))
    assert ex.place("o1", "BTC/USD", "alice", "buy", "limit", D("100"), D("1"))["approved"]
    assert ex.risk.check_modify("o1", new_quantity=D("0.5"), now=START_T)["approved"]
    assert ex.risk.check_modify("o1", new_quantity=D("0.5"), now=START_T)["code"] == "rate_limited"


START_T = 1_000.0


# ---------------------------------------------------------------------- funds


def test_buy_needs_notional_plus_the_highest_fee() -> None:
    ex = market()
    ex.withdraw("alice", "USD", "10000")
    ex.deposit("alice", "USD", "200.4")  # 2 x 100 x 1.002
    approved(ex, quantity=D("2"))
    reason = rejected_without_change(ex, "insufficient_balance", quantity=D("2.1"))
    assert "210.42" in reason and "200.4" in reason and "USD" in reason


def test_sell_needs_the_base_quantity() -> None:
    ex = market()
    approved(ex, user="bob", side="sell", quantity=D("100"))
    rejected_without_change(ex, "insufficient_balance", user="bob", side="sell", quantity=D("100.1"))
    rejected_without_change(ex, "insufficient_balance", user="alice", side="sell", quantity=D("0.1"))


def test_market_buy_needs_its_sweep_bound() -> None:
    ex = market()
    ex.place("a1", "BTC/USD", "bob", "sell", "limit", D("100"), D("1"))
    ex.place("a2", "BTC/USD", "bob", "sell", "limit", D("200"), D("1"))
    ex.withdraw("alice", "USD", "10000")
    ex.deposit("alice", "USD", "300.6")  # (100 + 200) x 1.002
    approved(ex, order_type="market", price=None, quantity=D("2"))
    # Beyond the visible liquidity the quantity is priced at the worst visible ask.
    rejected_without_change(ex, "insufficient_balance", order_type="market", price=None, quantity=D("2.1"))
    ex.deposit("alice", "USD", "20.04")
    approved(ex, order_type="market", price=None, quantity=D("2.1"))


def test_available_funds_exclude_what_other_orders_hold() -> None:
    ex = market()
    assert ex.place("o1", "BTC/USD", "alice", "buy", "limit", D("100"), D("99"))["approved"]  # holds 9919.8
    rejected_without_change(ex, "insufficient_balance", price=D("100"), quantity=D("1"))
    approved(ex, price=D("50"), quantity=D("1.5"))  # 75.15 <= 80.2


# ---------------------------------------------------------------------- check_modify


def test_check_modify_rules() -> None:
    ex = market(RiskLimits(max_order_quantity=D("100"), price_band=D("0.5")))
    assert ex.place("o1", "BTC/USD", "alice", "buy", "limit", D("100"), D("10"))["approved"]  # holds 1002
    risk = ex.risk
    before = risk.export_state()

    def modify(**kw: Any) -> dict[str, Any]:
        kw.setdefault("now", START_T)
        decision = dict(risk.check_modify("o1", **kw))
        if not decision["approved"]:
            assert risk.export_state() == before
        return decision

    assert modify(new_quantity=D("5"))["approved"]
    assert modify(new_price=D("120"))["approved"]
    assert modify(new_quantity=D("99"))["approved"]  # 9919.8 - 1002 <= 8998 available
    assert modify(new_quantity=D("100"))["code"] == "insufficient_balance"  # 10020 - 1002 > 8998
    assert modify(new_quantity=D("100.1"))["code"] == "max_quantity"
    assert modify(new_quantity=D("0.25"))["code"] == "invalid"
    assert modify(new_price=D("-1"))["code"] == "invalid"
    assert modify(new_price=D("100.1"))["code"] == "invalid"
    assert risk.check_modify("nope", new_quantity=D("1"), now=START_T)["code"] == "unknown_order"
    assert risk.check_modify(None, new_quantity=D("1"), now=START_T)["code"] == "unknown_order"
    assert modify(new_quantity=D("1"), now=float("inf"))["code"] == "invalid"
    trade_at(ex, "100")  # (the market maker's sell fills 0.1 of o1)
    before = risk.export_state()
    assert modify(new_price=D("151"))["code"] == "price_band"
    ex.deposit("bob", "USD", "1")
    # Partly filled: the new total quantity must exceed what has been filled.
    ex.place("s1", "BTC/USD", "bob", "sell", "limit", D("100"), D("4"))
    before = risk.export_state()
    assert risk.orders("alice")[0]["open_quantity"] == "5.9"  # 0.1 + 4 filled
    assert modify(new_quantity=D("4.1"))["code"] == "invalid"
    assert modify(new_quantity=D("4.2"))["approved"]


def test_a_pure_reduction_is_approved_even_outside_the_limits() -> None:
    ex = market(RiskLimits(price_band=D("0.10")))
    assert ex.place("o1", "BTC/USD", "alice", "buy", "limit", D("100"), D("10"))["approved"]
    trade_at(ex, "150")
    assert ex.risk.check_modify("o1", new_price=D("101"), now=START_T)["code"] == "price_band"
    assert ex.risk.check_modify("o1", new_quantity=D("5"), now=START_T)["approved"]


# ---------------------------------------------------------------------- configuration


def test_register_market_validation() -> None:
    risk = RiskManager()
    clock = Exchange(symbols=()).clock
    with pytest.raises(ValueError, match="number_format"):
        risk.register_market("X/Y", "X", "Y", OrderBook("X/Y"))
    with pytest.raises(ValueError, match="symbol"):
        risk.register_market("BTC/USD", "BTC", "USD", OrderBook("X/Y", number_format="str"))
    with pytest.raises(ValueError, match="differ"):
        risk.register_market("X/Y", "X", "X", OrderBook("X/Y", number_format="str"))
    with pytest.raises(ValueError, match="non-empty"):
        risk.register_market("X/Y", "", "Y", OrderBook("X/Y", number_format="str"))
    with pytest.raises(ValueError, match="rebate"):
        risk.register_market(
            "X/Y",
            "X",
            "Y",
            OrderBook("X/Y", number_format="str", maker_fee_rate="-0.002", taker_fee_rate="0.001"),
        )
    with pytest.raises(ValueError, match="OrderBook"):
        risk.register_market("X/Y", "X", "Y", "book")  # type: ignore[arg-type]
    risk.register_market("BTC/USD", "BTC", "USD", new_book("BTC/USD", clock))
    with pytest.raises(ValueError, match="already"):
        risk.register_market("BTC/USD", "BTC", "USD", new_book("BTC/USD", clock))
    risk.register_market("X/Y", "X", "Y", OrderBook("X/Y", number_format="decimal"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_order_quantity": D("0")},
        {"max_order_quantity": D("-1")},
        {"max_order_notional": "NaN"},
        {"price_band": 0.1},
        {"max_open_orders": 0},
        {"max_open_orders": True},
        {"rate_limit_orders": 5},
        {"rate_limit_window": 1.0},
        {"rate_limit_orders": 5, "rate_limit_window": math.inf},
        {"rate_limit_orders": 5, "rate_limit_window": 0},
    ],
)
def test_limits_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RiskLimits(**kwargs)


def test_limits_are_frozen_and_convert_strings() -> None:
    quantity: Any = "1.5"
    limits = RiskLimits(
        max_order_quantity=quantity, price_band=D("0.1"), rate_limit_orders=2, rate_limit_window=1
    )
    assert limits.max_order_quantity == D("1.5") and isinstance(limits.max_order_quantity, Decimal)
    assert limits.rate_limit_window == 1.0
    with pytest.raises(AttributeError):
        limits.max_open_orders = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        RiskManager(limits="none")  # type: ignore[arg-type]
