"""Settlement from book events: trades, fees, surpluses, every way an order ends, modifies, and misuse."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

import pytest

from manticore_orderbook import EventType
from manticore_risk import InsufficientFunds, RiskManager

from .support import Exchange, new_book, verify

D = Decimal


def usd(ex: Exchange, user: str) -> tuple[str, str]:
    balance = ex.risk.balances(user).get("USD", {"available": "0", "held": "0"})
    return balance["available"], balance["held"]


def asset(ex: Exchange, user: str, name: str) -> tuple[str, str]:
    balance = ex.risk.balances(user).get(name, {"available": "0", "held": "0"})
    return balance["available"], balance["held"]


def funded(*symbols: str) -> Exchange:
    ex = Exchange(symbols=symbols or ("BTC/USD",))
    for user in ("alice", "bob", "carol"):
        ex.deposit(user, "USD", "10000")
        ex.deposit(user, "BTC", "10")
        ex.deposit(user, "ETH", "10")
    return ex


def place(
    ex: Exchange, order_id: str, user: str, side: str, order_type: str, price: Any, quantity: str, **kw: Any
) -> None:
    decision = ex.place(
        order_id,
        kw.pop("symbol", "BTC/USD"),
        user,
        side,
        order_type,
        None if price is None else D(price),
        D(quantity),
        **kw,
    )
    assert decision["approved"], decision
    verify(ex)


# ---------------------------------------------------------------------- trades and fees


def test_a_trade_moves_notional_base_and_fees_exactly() -> None:
    ex = funded()
    place(ex, "s", "bob", "sell", "limit", "100", "2")
    assert asset(ex, "bob", "BTC") == ("8", "2")
    place(ex, "b", "alice", "buy", "limit", "100", "1.5")
    # alice (taker, 0.2%): pays 150 + 0.3; bob (maker, 0.1%): receives 150 - 0.15.
    assert usd(ex, "alice") == ("9849.7", "0")
    assert asset(ex, "alice", "BTC") == ("11.5", "0")
    assert usd(ex, "bob") == ("10149.85", "0")
    assert asset(ex, "bob", "BTC") == ("8", "0.5")
    assert ex.risk.fees_collected() == {"USD": D("0.45")}
    assert ex.risk.total("USD") == 30000 and ex.risk.total("BTC") == 30


def test_a_buy_filled_below_its_limit_gets_the_improvement_back() -> None:
    ex = funded()
    place(ex, "s", "bob", "sell", "limit", "100", "1")
    place(ex, "b", "alice", "buy", "limit", "110", "1")  # held 110.22, paid 100.2
    assert usd(ex, "alice") == ("9899.8", "0")


def test_a_partial_fill_keeps_exactly_the_hold_of_the_rest() -> None:
    ex = funded()
    place(ex, "s", "bob", "sell", "limit", "99.5", "0.3")
    place(ex, "b", "alice", "buy", "limit", "100", "1")
    # paid 29.85 + 0.0597; the open 0.7 at 100 holds 70 x 1.002 = 70.14
    assert usd(ex, "alice") == (str(D("10000") - D("29.9097") - D("70.14")), "70.14")
    place(ex, "s2", "bob", "sell", "limit", "100", "0.7")  # alice is now the maker: fee 0.07
    assert usd(ex, "alice") == (str(D("10000") - D("29.9097") - D("70.07")), "0")


def test_a_negative_maker_fee_is_a_rebate_paid_from_the_fees() -> None:
    ex = funded("ETH/USD")  # maker -0.05%, taker 0.1%
    place(ex, "s", "bob", "sell", "limit", "100", "1", symbol="ETH/USD")
    place(ex, "b", "alice", "buy", "limit", "100", "1", symbol="ETH/USD")
    assert usd(ex, "bob") == ("10100.05", "0")
    assert usd(ex, "alice") == ("9899.9", "0")
    assert ex.risk.fees_collected() == {"USD": D("0.05")}
    # A maker buy pays less than the notional.
    place(ex, "b2", "alice", "buy", "limit", "100", "1", symbol="ETH/USD")
    assert usd(ex, "alice") == (str(D("9899.9") - D("100.1")), "100.1")  # held at margin 1.001
    place(ex, "s2", "bob", "sell", "limit", "100", "1", symbol="ETH/USD")
    assert usd(ex, "alice") == (str(D("9899.9") - D("99.95")), "0")
    assert ex.risk.fees_collected() == {"USD": D("0.1")}


def test_self_trade_without_prevention_settles_both_sides_of_one_user() -> None:
    ex = funded()
    place(ex, "s", "alice", "sell", "limit", "100", "1")
    place(ex, "b", "alice", "buy", "limit", "100", "1")
    assert usd(ex, "alice") == (str(D("10000") - D("0.3")), "0")
    assert asset(ex, "alice", "BTC") == ("10", "0")


# ---------------------------------------------------------------------- market orders


def test_market_buy_holds_a_sweep_bound_and_releases_the_rest() -> None:
    ex = funded()
    place(ex, "s1", "bob", "sell", "limit", "100", "1")
    place(ex, "s2", "carol", "sell", "limit", "101", "1")
    place(ex, "m", "alice", "buy", "market", None, "1.5")
    # paid 100 + 50.5 plus taker fee 0.301
    assert usd(ex, "alice") == (str(D("10000") - D("150.801")), "0")
    assert asset(ex, "alice", "BTC") == ("11.5", "0")


def test_market_buy_bound_counts_hidden_iceberg_reserves_at_visible_prices() -> None:
    ex = funded()
    place(ex, "ice", "bob", "sell", "iceberg", "100", "5", displayed_quantity="0.5")
    place(ex, "s2", "carol", "sell", "limit", "120", "1")
    ex.withdraw("alice", "USD", "10000")
    ex.deposit("alice", "USD", str(D("1.5") * 120 * D("1.002") + D("0.5") * 100 * D("1.002")))
    # The bound prices the 1.5 beyond the visible 0.5 + 1 at 120; the reserve fills it at 100.
    place(ex, "m", "alice", "buy", "market", None, "2")
    assert asset(ex, "alice", "BTC") == ("12", "0")
    assert usd(ex, "alice")[1] == "0"


def test_market_buy_bound_skips_own_orders_under_cancel_oldest() -> None:
    ex = funded("ETH/USD")  # default self-trade prevention: cancel_oldest
    place(ex, "own", "alice", "sell", "limit", "100", "1", symbol="ETH/USD")
    place(ex, "other", "bob", "sell", "limit", "200", "1", symbol="ETH/USD")
    ex.withdraw("alice", "USD", "10000")
    ex.deposit("alice", "USD", "200.2")  # what the sweep really costs: 200 x 1.001
    assert ex.check_new("ETH/USD", "alice", "buy", "market", None, D("1"))["approved"]
    ex.withdraw("alice", "USD", "0.01")
    refused = ex.check_new("ETH/USD", "alice", "buy", "market", None, D("1"))
    assert refused["code"] == "insufficient_balance"
    # With self-trade prevention off, the own ask is liquidity.
    assert ex.check_new("ETH/USD", "alice", "buy", "market", None, D("1"), self_trade_prevention="none")[
        "approved"
    ]
    ex.deposit("alice", "USD", "0.01")
    place(ex, "m", "alice", "buy", "market", None, "1", symbol="ETH/USD")
    assert "own" not in ex.books["ETH/USD"] and "other" not in ex.books["ETH/USD"]
    assert usd(ex, "alice") == ("0", "0")


def test_market_buy_bound_skips_orders_that_expire_before_it_matches() -> None:
    ex = funded()
    place(ex, "gtd", "bob", "sell", "limit", "100", "1", time_in_force="GTD", expiry_time=ex.clock.now + 5)
    place(ex, "late", "carol", "sell", "limit", "200", "1")
    ex.clock.now += 5  # the GTD ask is due; the book removes it at its next command
    ex.withdraw("alice", "USD", "10000")
    ex.deposit("alice", "USD", "200.4")
    # Without ``now``, reserve reads the book's clock: the same bound.
    args: dict[str, Any] = {"user_id": "alice", "symbol": "BTC/USD", "side": "buy", "order_type": "market"}
    assert ex.risk.reserve("probe", **args, price=None, quantity=D("1")) == D("200.4")
    assert ex.risk.release_unplaced("probe")
    place(ex, "m", "alice", "buy", "market", None, "1")
    assert usd(ex, "alice") == ("0", "0")
    assert asset(ex, "bob", "BTC") == ("10", "0")


def test_a_hold_that_was_too_small_is_settled_from_available_and_reported() -> None:
    # Misuse: the book changes between reserve and add_order (commands not serialised).
    ex = funded()
    place(ex, "cheap", "bob", "sell", "limit", "100", "1")
    place(ex, "dear", "carol", "sell", "limit", "200", "1")
    ex.withdraw("alice", "USD", "9899.8")
    hold = ex.risk.reserve(
        "m", user_id="alice", symbol="BTC/USD", side="buy", order_type="market", price=None, quantity=D("1")
    )
    assert hold == D("100.2")
    assert ex.books["BTC/USD"].cancel_order("cheap")
    ex.books["BTC/USD"].add_order("buy", None, "1", order_id="m", user_id="alice")
    assert len(ex.errors) == 1 and "only 100.2" in ex.errors[0]["message"]
    assert usd(ex, "alice") == ("-100.2", "0")  # negative: the shortfall is a debt
    assert ex.risk.total("USD") == ex.net["USD"]
    with pytest.raises(AssertionError, match="available"):
        ex.risk.check_invariants()


def test_market_sell_holds_base_and_an_ioc_remainder_is_released() -> None:
    ex = funded()
    place(ex, "b", "bob", "buy", "limit", "100", "1")
    place(ex, "m", "alice", "sell", "market", None, "3")
    assert asset(ex, "alice", "BTC") == ("9", "0")
    assert usd(ex, "alice") == (str(D("10000") + 100 - D("0.2")), "0")


# ---------------------------------------------------------------------- stops


def test_stop_limit_holds_from_arrival_and_settles_after_its_trigger() -> None:
    ex = funded()
    place(ex, "stop", "alice", "buy", "stop_limit", "105", "1", stop_price=D("102"))
    assert usd(ex, "alice") == (str(10000 - D("105.21")), "105.21")
    place(ex, "s1", "bob", "sell", "limit", "102", "0.1")
    place(ex, "s2", "carol", "sell", "limit", "104", "1")
    place(ex, "b1", "bob", "buy", "limit", "102", "0.1")  # prints 102: the stop triggers and buys at 104
    assert "stop" not in ex.books["BTC/USD"]
    assert usd(ex, "alice") == (str(10000 - D("104.208")), "0")


def test_stop_market_sell_and_trailing_stops_hold_their_base_or_limit() -> None:
    ex = funded()
    place(ex, "sm", "alice", "sell", "stop_market", None, "2", stop_price=D("95"))
    place(ex, "ts", "alice", "sell", "trailing_stop", None, "1", trail_value="5")
    place(ex, "tb", "alice", "buy", "trailing_stop", "120", "1", trail_value="5")
    assert asset(ex, "alice", "BTC") == ("7", "3")
    assert usd(ex, "alice")[1] == "120.24"
    place(ex, "b", "bob", "buy", "limit", "95", "5")
    place(ex, "s", "carol", "sell", "limit", "95", "0.1")  # prints 95: the stop-market fires into bob's bid
    assert asset(ex, "alice", "BTC") == ("7", "1")  # the trailing stop now trails at 90
    assert ex.books["BTC/USD"].cancel_order("b")
    place(ex, "b2", "bob", "buy", "limit", "90", "5")
    place(ex, "s2", "carol", "sell", "limit", "90", "0.1")  # prints 90: it fires too
    assert asset(ex, "alice", "BTC") == ("7", "0")
    verify(ex)


# ---------------------------------------------------------------------- every way an order ends


def test_every_cancellation_reason_releases_the_hold() -> None:
    ex = funded()
    place(ex, "rest", "alice", "buy", "limit", "100", "1")
    assert ex.books["BTC/USD"].cancel_order("rest")  # reason user
    assert usd(ex, "alice") == ("10000", "0")
    place(ex, "ioc", "alice", "buy", "limit", "100", "1", time_in_force="IOC")
    place(ex, "fok", "alice", "buy", "limit", "100", "1", time_in_force="FOK")
    place(ex, "ask", "bob", "sell", "limit", "100", "1")
    place(ex, "po", "alice", "buy", "post_only", "100", "1")
    assert usd(ex, "alice") == ("10000", "0")
    place(ex, "stp", "bob", "buy", "limit", "100", "1", self_trade_prevention="cancel_newest")
    place(ex, "both", "bob", "buy", "limit", "100", "1", self_trade_prevention="cancel_both")
    assert usd(ex, "bob") == ("10000", "0") and asset(ex, "bob", "BTC") == ("10", "0")


def test_self_trade_decrement_recomputes_both_holds() -> None:
    ex = funded()
    place(ex, "ask", "alice", "sell", "limit", "100", "3")
    place(ex, "bid", "alice", "buy", "limit", "100", "1", self_trade_prevention="decrement")
    assert asset(ex, "alice", "BTC") == ("8", "2")
    assert usd(ex, "alice") == ("10000", "0")
    place(ex, "big", "alice", "buy", "limit", "101", "5", self_trade_prevention="decrement")
    assert asset(ex, "alice", "BTC") == ("10", "0")
    assert usd(ex, "alice")[1] == str(D("101") * 3 * D("1.002"))


def test_expiry_and_clear_release_holds() -> None:
    ex = funded("BTC/USD", "ETH/USD")
    place(ex, "gtd", "alice", "buy", "limit", "100", "1", time_in_force="GTD", expiry_time=ex.clock.now + 10)
    place(
        ex,
        "stop",
        "alice",
        "sell",
        "stop_limit",
        "90",
        "1",
        stop_price=D("95"),
        expiry_time=ex.clock.now + 10,
    )
    ex.clock.now += 10
    assert ex.books["BTC/USD"].clean_expired_orders() == 2
    verify(ex)
    assert usd(ex, "alice") == ("10000", "0") and asset(ex, "alice", "BTC") == ("10", "0")
    place(ex, "a", "alice", "buy", "limit", "100", "1")
    place(ex, "b", "bob", "sell", "stop_market", None, "1", stop_price=D("90"))
    place(ex, "c", "alice", "buy", "limit", "100", "1", symbol="ETH/USD")
    ex.books["BTC/USD"].clear()
    verify(ex)
    assert ex.risk.open_order_count("alice") == 1 and ex.risk.open_order_count("bob") == 0


# ---------------------------------------------------------------------- modifies


def test_modifies_move_the_hold_both_ways() -> None:
    ex = funded()
    place(ex, "b", "alice", "buy", "limit", "100", "2")
    for price, quantity, held in [
        ("110", None, "220.44"),
        ("90", None, "180.36"),
        (None, "3", "270.54"),
        (None, "1", "90.18"),
    ]:
        assert ex.modify("b", None if price is None else D(price), None if quantity is None else D(quantity))[
            "approved"
        ]
        verify(ex)
        assert usd(ex, "alice")[1] == held
    place(ex, "st", "alice", "buy", "stop_limit", "100", "1", stop_price=D("120"))
    assert ex.modify("st", D("110"))["approved"]
    verify(ex)
    place(ex, "sell", "bob", "sell", "limit", "150", "2")
    assert ex.modify("sell", None, D("5"))["approved"]
    assert asset(ex, "bob", "BTC") == ("5", "5")
    assert ex.modify("sell", D("90"))["approved"]  # crosses alice's 90 bid: trades as a taker
    verify(ex)
    assert asset(ex, "alice", "BTC") == ("11", "0")


# ---------------------------------------------------------------------- reserve and release_unplaced


def test_release_unplaced_gives_the_hold_back_only_for_orders_the_book_refused() -> None:
    ex = funded()
    risk = ex.risk
    args: dict[str, Any] = {
        "user_id": "alice",
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "price": D("100"),
        "quantity": D("1"),
    }
    assert risk.reserve("x", **args) == D("100.2")
    assert usd(ex, "alice") == ("9899.8", "100.2")
    assert risk.release_unplaced("x") is True
    assert usd(ex, "alice") == ("10000", "0")
    assert risk.release_unplaced("x") is False
    assert risk.release_unplaced("never") is False
    place(ex, "live", "alice", "buy", "limit", "100", "1")
    assert risk.release_unplaced("live") is False  # it is in the book: its events will release it
    assert usd(ex, "alice")[1] == "100.2"
    # The pipeline: the book refuses a GTD expiry in the past, the hold comes back.
    decision = ex.place(
        "late",
        "BTC/USD",
        "alice",
        "buy",
        "limit",
        D("100"),
        D("1"),
        time_in_force="GTD",
        expiry_time=ex.clock.now,
    )
    assert decision["approved"] and "late" not in ex.books["BTC/USD"]
    verify(ex)


def test_reserve_refuses_what_it_cannot_hold_and_changes_nothing() -> None:
    ex = funded()
    risk = ex.risk
    place(ex, "o1", "alice", "buy", "limit", "100", "1")
    before = risk.export_state()
    base: dict[str, Any] = {
        "user_id": "alice",
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "price": D("100"),
        "quantity": D("1"),
    }
    with pytest.raises(ValueError, match="already"):
        risk.reserve("o1", **base)
    with pytest.raises(ValueError, match="market"):
        risk.reserve("o2", **{**base, "symbol": "X/Y"})
    with pytest.raises(ValueError, match="bounded"):
        risk.reserve("o2", **{**base, "order_type": "stop_market", "price": None, "stop_price": D("1")})
    with pytest.raises(ValueError):
        risk.reserve("o2", **{**base, "quantity": D("-1")})
    with pytest.raises(ValueError):
        risk.reserve("", **base)
    with pytest.raises(InsufficientFunds):
        risk.reserve("o2", **{**base, "quantity": D("100")})
    assert risk.export_state() == before


# ---------------------------------------------------------------------- event handling


def test_events_delivered_twice_are_applied_once() -> None:
    ex = funded()
    ex.books["BTC/USD"].event_manager.subscribe_all(ex.risk.on_event)  # a second subscription
    place(ex, "s", "bob", "sell", "limit", "100", "1")
    place(ex, "b", "alice", "buy", "limit", "100", "0.5")
    assert usd(ex, "alice") == ("9949.9", "0")


def test_events_of_unknown_books_and_orders_are_ignored() -> None:
    ex = funded()
    other = new_book("ETH/USD", ex.clock)  # not registered
    other.event_manager.subscribe_all(ex.risk.on_event)
    other.add_order("sell", "100", "1", order_id="a", user_id="alice")
    other.add_order("buy", "100", "1", order_id="b", user_id="bob")
    book = ex.books["BTC/USD"]
    book.add_order("buy", "100", "1", order_id="untracked", user_id="alice")
    book.cancel_order("untracked")
    verify(ex)
    ex.risk.on_event(EventType.PRICE_LEVEL_ADDED, {"symbol": "BTC/USD", "sequence": 10**9})
    ex.risk.on_event("not an event", {})
    verify(ex)


def test_a_trade_with_an_untracked_order_is_settled_and_reported() -> None:
    ex = funded()
    book = ex.books["BTC/USD"]
    book.add_order("sell", "100", "1", order_id="raw", user_id="bob")  # bypassed the risk manager
    ex.risk.reserve(
        "b",
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        price=D("100"),
        quantity=D("1"),
    )
    book.add_order("buy", "100", "1", order_id="b", user_id="alice")
    assert len(ex.errors) == 1 and "without a hold" in ex.errors[0]["message"]
    assert asset(ex, "bob", "BTC") == ("9", "0")  # taken from available
    assert usd(ex, "bob") == ("10099.9", "0")
    assert ex.risk.total("USD") == ex.net["USD"] and ex.risk.total("BTC") == ex.net["BTC"]


def test_a_modify_without_check_is_held_anyway_and_reported() -> None:
    ex = funded()
    place(ex, "b", "alice", "buy", "limit", "100", "1")
    ex.books["BTC/USD"].modify_order("b", new_quantity="200")
    assert len(ex.errors) == 1 and "without a check" in ex.errors[0]["message"]
    assert ex.risk.total("USD") == ex.net["USD"]
    assert D(usd(ex, "alice")[0]) < 0


def test_fresh_manager_has_no_markets() -> None:
    risk = RiskManager()
    assert risk.orders() == [] and risk.open_order_count("x") == 0
    risk.check_invariants()


def test_amounts_beyond_28_digits_stay_exact() -> None:
    """Notionals and fees with 30+ significant digits (the default decimal context would round them)."""
    ex = Exchange(symbols=())
    book = new_book("BTC/USD", ex.clock, tick_size="0.00000001", lot_size="0.00000001")
    ex.books["BTC/USD"] = book
    ex.risk.register_market("BTC/USD", "BTC", "USD", book)
    book.event_manager.subscribe_all(ex.risk.on_event)
    book.event_manager.subscribe(EventType.ERROR, lambda _t, data: ex.errors.append(dict(data)))
    ex.deposit("alice", "USD", "9" * 20)
    ex.deposit("bob", "BTC", "99999999.99999999")
    place(ex, "s", "bob", "sell", "limit", "12345678.12345678", "87654321.87654321")
    place(ex, "b", "alice", "buy", "limit", "20000000.12345679", "90000000.00000001")
    big = Context(prec=200)
    notional = big.multiply(D("12345678.12345678"), D("87654321.87654321"))
    assert len(notional.as_tuple().digits) > 28
    paid = big.add(notional, big.multiply(notional, D("0.002")))
    received = big.subtract(notional, big.multiply(notional, D("0.001")))
    rest = big.multiply(big.multiply(D("20000000.12345679"), D("2345678.1234568")), D("1.002"))
    assert usd(ex, "alice")[1] == format(rest.normalize(big), "f")
    assert D(usd(ex, "alice")[0]) == big.subtract(big.subtract(D("9" * 20), paid), rest)
    assert D(usd(ex, "bob")[0]) == received
    assert ex.risk.fees_collected()["USD"] == big.multiply(notional, D("0.003"))
    assert ex.risk.total("USD") == D("9" * 20)
    verify(ex)


@pytest.mark.parametrize("anonymous_side", ["sell", "buy"])
def test_a_trade_with_an_order_without_a_user_keeps_none_out_of_the_ledger(anonymous_side: str) -> None:
    """Regression: an order without a user id (sent to the book directly) that traded with a tracked
    order was settled to a ledger account of user None, which export_state wrote and restore_state then
    refused. Now that side is settled against the outside, like a deposit or a withdrawal (money stays
    conserved against the ledger's net deposits), and the trade is reported as an error."""
    ex = funded()
    book = ex.books["BTC/USD"]
    tracked_side = "buy" if anonymous_side == "sell" else "sell"
    book.add_order(anonymous_side, "100", "1", order_id="anon")  # no user id, no hold
    ex.risk.reserve(
        "t",
        user_id="alice",
        symbol="BTC/USD",
        side=tracked_side,
        order_type="limit",
        price=D("100"),
        quantity=D("1"),
    )
    book.add_order(tracked_side, "100", "1", order_id="t", user_id="alice")
    assert len(ex.errors) == 1 and "without a user" in ex.errors[0]["message"]
    state = ex.risk.export_state()
    assert [a["user_id"] for a in state["accounts"]] == ["alice"] * 3 + ["bob"] * 3 + ["carol"] * 3
    ex.risk.check_invariants()  # balances + fees == the ledger's net deposits, for every asset
    if tracked_side == "buy":  # alice paid 100 + the taker fee 0.2 and got 1 BTC
        assert usd(ex, "alice") == ("9899.8", "0") and asset(ex, "alice", "BTC") == ("11", "0")
    else:  # alice gave 1 BTC and got 100 - the taker fee 0.2
        assert usd(ex, "alice") == ("10099.8", "0") and asset(ex, "alice", "BTC") == ("9", "0")
    twin = RiskManager()
    twin.register_market("BTC/USD", "BTC", "USD", book)
    twin.restore_state(state)
    assert twin.export_state() == state
