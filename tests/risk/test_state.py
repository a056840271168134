"""export_state / restore_state: a JSON round trip gives the same ledger and the same behaviour; a bad
state raises ValueError and changes nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from manticore_risk import RiskLimits, RiskManager

from .support import Clock, Exchange, new_book, verify

D = Decimal
LIMITS = RiskLimits(rate_limit_orders=3, rate_limit_window=10.0, max_open_orders=5)


def busy_exchange() -> Exchange:
    ex = Exchange(limits=LIMITS)
    for user in ("alice", "bob"):
        ex.deposit(user, "USD", "1000")
        ex.deposit(user, "BTC", "5")
        ex.deposit(user, "ETH", "5")
    ex.place("s1", "BTC/USD", "bob", "sell", "limit", D("100"), D("2"))
    ex.place(
        "b1",
        "BTC/USD",
        "alice",
        "buy",
        "limit",
        D("100.5"),
        D("1.5"),
        time_in_force="GTD",
        expiry_time=1010.0,
    )
    ex.place("st", "ETH/USD", "alice", "sell", "stop_limit", D("90"), D("1"), stop_price=D("95"))
    ex.place("b2", "ETH/USD", "bob", "buy", "limit", D("80"), D("2"))
    verify(ex)
    return ex


def twin_of(ex: Exchange) -> Exchange:
    """A second exchange restored from ``ex``'s books and risk state (both through JSON)."""
    books = {}
    for symbol, book in ex.books.items():
        twin_book = new_book(symbol, ex.clock)
        twin_book.restore_state(json.loads(json.dumps(book.export_state())))
        books[symbol] = twin_book
    twin = Exchange(limits=LIMITS, clock=ex.clock, books=books)
    twin.net = dict(ex.net)
    twin.risk.restore_state(json.loads(json.dumps(ex.risk.export_state())))
    return twin


def test_round_trip_gives_the_same_ledger_and_the_same_behaviour() -> None:
    ex = busy_exchange()
    twin = twin_of(ex)
    assert twin.risk.export_state() == ex.risk.export_state()
    verify(twin)
    for e in (ex, twin):
        # Prints 80: alice's sell stop triggers and rests at 90.
        assert e.place("m", "ETH/USD", "alice", "sell", "market", None, D("0.5"))["approved"]
        assert e.modify("b2", D("85"))["approved"]
        # alice has made 3 orders in this window: the rate limiter state was restored too.
        assert e.check_new("BTC/USD", "alice", "buy", "limit", D("1"), D("1"))["code"] == "rate_limited"
        verify(e)
    assert twin.risk.export_state() == ex.risk.export_state()
    for user in ("alice", "bob"):
        assert twin.risk.balances(user) == ex.risk.balances(user)
    assert twin.risk.fees_collected() == ex.risk.fees_collected()


def test_restore_replaces_everything() -> None:
    ex = busy_exchange()
    state = ex.risk.export_state()
    other = Exchange(limits=LIMITS, clock=ex.clock, books={s: new_book(s, ex.clock) for s in ex.books})
    other.deposit("zed", "USD", "5")
    other.risk.restore_state(state)
    assert other.risk.balances("zed") == {}
    assert other.risk.export_state() == state


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def account(field: str, value: object) -> Callable[[dict[str, Any]], None]:
        def apply(state: dict[str, Any]) -> None:
            state["accounts"][0][field] = value

        return apply

    def order(field: str, value: object) -> Callable[[dict[str, Any]], None]:
        def apply(state: dict[str, Any]) -> None:
            state["orders"][0][field] = value

        return apply

    def set_key(key: str, value: object) -> Callable[[dict[str, Any]], None]:
        def apply(state: dict[str, Any]) -> None:
            state[key] = value

        return apply

    return [
        ("format", set_key("format", "v0")),
        ("accounts type", set_key("accounts", {})),
        ("orders type", set_key("orders", None)),
        ("fees type", set_key("fees", [])),
        ("rate limiter type", set_key("rate_limiter", {})),
        ("rate limiter times", set_key("rate_limiter", [["alice", [float("nan")]]])),
        ("rate limiter user", set_key("rate_limiter", [[None, [1.0]]])),
        ("negative available", account("available", "-1")),
        ("available changed", account("available", "1000.5")),
        ("float amount", account("available", 1000.0)),
        ("nan amount", account("held", "NaN")),
        ("bool user", account("user_id", True)),
        ("empty asset", account("asset", "")),
        ("held not orders", lambda s: next(a for a in s["accounts"] if a["held"] != "0").update(held="0")),
        ("duplicate account", lambda s: s["accounts"].append(copy.deepcopy(s["accounts"][0]))),
        ("fee changed", lambda s: s["fees"].update({"USD": "5"})),
        ("negative fees", lambda s: s["fees"].update({"USD": "-1"})),
        ("net deposits", lambda s: s["net_deposits"].update({"BTC": "11"})),
        ("unknown market", order("symbol", "X/Y")),
        ("bad side", order("side", "long")),
        ("bad type", order("order_type", "fancy")),
        ("wrong asset", order("asset", "USD")),
        ("hold not formula", order("hold", "1.5")),
        ("open above quantity", order("open_quantity", "3")),
        ("zero open", order("open_quantity", "0")),
        ("margin below one", order("margin", "0.9")),
        ("bad expiry", order("expiry_time", "soon")),
        ("pending limit", order("pending", True)),
        ("seen not bool", order("seen", 1)),
        ("bad price", order("price", "0")),
        ("empty id", order("order_id", "")),
        ("duplicate order", lambda s: s["orders"].append(copy.deepcopy(s["orders"][0]))),
        ("not a mapping", lambda s: s.clear()),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[name for name, _ in _mutations()])
def test_bad_state_raises_value_error_and_changes_nothing(
    name: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    ex = busy_exchange()
    state = ex.risk.export_state()
    assert state["orders"][0]["order_id"] == "s1" and state["accounts"][0]["user_id"] == "alice"
    bad = copy.deepcopy(state)
    mutate(bad)
    target = twin_of(ex)
    target.deposit("zed", "USD", "1")
    before = target.risk.export_state()
    with pytest.raises(ValueError):
        target.risk.restore_state(bad)
    assert target.risk.export_state() == before


def test_restore_needs_a_mapping() -> None:
    with pytest.raises(ValueError):
        RiskManager().restore_state([])  # type: ignore[arg-type]


def test_the_fast_path_holds_in_the_restored_tables() -> None:
    """``restore_state`` replaces the contents of the ledger's and the registry's tables, which the
    ``check_and_reserve`` fast path keeps references to: an order approved after a restore is held in
    the restored balances and tracked in the restored registry, and nothing of the old state remains."""
    source = RiskManager(limits=RiskLimits(max_open_orders=10))
    book = new_book("BTC/USD", Clock())
    source.register_market("BTC/USD", "BTC", "USD", book)
    source.deposit("alice", "USD", "1000")
    target = RiskManager(limits=RiskLimits(max_open_orders=10))
    target_book = new_book("BTC/USD", Clock())
    target.register_market("BTC/USD", "BTC", "USD", target_book)
    target.deposit("bob", "USD", "5")
    target.restore_state(json.loads(json.dumps(source.export_state())))
    assert target.balances("bob") == {}
    args = {"user_id": "alice", "symbol": "BTC/USD", "side": "buy", "order_type": "limit"}
    decision = target.check_and_reserve("o1", **args, price=Decimal("10"), quantity=Decimal("1"), now=1.0)
    assert decision["approved"]
    held = Decimal(target.balances("alice")["USD"]["held"])
    assert held > 0 and Decimal(target.balances("alice")["USD"]["available"]) == 1000 - held
    assert [o["order_id"] for o in target.orders("alice")] == ["o1"]
    target.check_invariants()
