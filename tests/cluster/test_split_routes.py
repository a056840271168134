"""Routed commands between an account shard and market shards, step by step (no NATS)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Exchange, ExchangeError, InvalidCommand, OrderRejected
from manticore_risk.amounts import amount_str
from tests.cluster.split_model import BTC, SplitSystem
from tests.matching.exchange_streams import Clock


@pytest.fixture
def system(tmp_path: Path) -> Any:
    opened = SplitSystem(tmp_path, Clock())
    yield opened
    opened.close()


def _placed(system: SplitSystem, *args: Any, **kwargs: Any) -> dict[str, Any]:
    record = system.command("place", *args, **kwargs)
    assert isinstance(record, dict), record
    return record


def test_a_route_delivered_twice_is_applied_once(system: SplitSystem) -> None:
    system.command("deposit", "bob", "BTC", "5")
    route = _placed(system, "bob", "BTC/USD", "sell", "2", price="100")
    first = system.deliver_route(route["n"])
    again = system.deliver_route(route["n"])
    assert first == again  # the market answers a repeated route with its first settlement
    assert len(system.markets["m1"].book("BTC/USD").get_orders()) == 1
    system.receive(first)
    system.receive(again)
    system.check(quiescent=True)
    assert system.account.balances("bob") == {"BTC": {"available": "3", "held": "2"}}
    # the next route tells the market shard what the account has settled and applied: a late copy of
    # the first route is then stale and changes nothing
    with pytest.raises(KeyError):
        system.account.message(route["n"])
    system.receive(system.deliver_route(_placed(system, "bob", "BTC/USD", "sell", "1", price="101")["n"]))
    stale = system.markets["m1"].routed(
        "acct", route["n"], route["n"], 2, "bob", {"BTC": "2"}, dict(route["action"])
    )
    assert stale == {"stale": True}
    # the outbox keeps only what the account has not confirmed (the second route's settlement)
    assert [e["routed"] for e in system.pending_settlements("m1")] == [["acct", 4]]
    system.check(quiescent=True)


def test_a_refused_order_gets_its_whole_funding_back(system: SplitSystem) -> None:
    system.command("deposit", "alice", "USD", "1000")
    # a market buy against an empty book: the market shard refuses it (no_liquidity) after funding
    route = _placed(system, "alice", "BTC/USD", "buy", "1", order_type="market")
    assert route["funding"] == {"USD": "1000"}  # a market buy takes everything available
    (entry,) = system.deliver_route(route["n"])
    assert entry["error"]["code"] == "no_liquidity"
    assert entry["users"]["alice"]["USD"] == {"returned": "1000", "held": "0"}
    system.receive([entry])
    system.check(quiescent=True)
    assert system.account.balances("alice") == {"USD": {"available": "1000", "held": "0"}}
    assert system.account.results[route["n"]]["error"]["code"] == "no_liquidity"


def test_a_market_buy_keeps_only_what_it_spent(system: SplitSystem) -> None:
    system.command("deposit", "alice", "USD", "1000")
    system.command("deposit", "bob", "BTC", "1")
    system.receive(system.deliver_route(_placed(system, "bob", "BTC/USD", "sell", "1", price="100")["n"]))
    route = _placed(system, "alice", "BTC/USD", "buy", "0.5", order_type="market")
    system.receive(system.deliver_route(route["n"]))
    system.check(quiescent=True)
    fee = Decimal("50") * BTC.taker_fee_rate
    assert system.account.balances("alice") == {
        "USD": {"available": amount_str(Decimal(1000) - 50 - fee), "held": "0"},
        "BTC": {"available": "0.5", "held": "0"},
    }
    maker_fee = Decimal("50") * BTC.maker_fee_rate
    bob = system.account.balances("bob")
    assert Decimal(bob["USD"]["available"]) == 50 - maker_fee
    assert Decimal(bob["BTC"]["held"]) == Decimal("0.5")


def test_the_account_checks_what_needs_no_book(system: SplitSystem) -> None:
    system.command("deposit", "alice", "USD", "100")
    with pytest.raises(OrderRejected) as refused:
        raise_if_error(system.command("place", "alice", "BTC/USD", "buy", "1", price="100"))
    assert refused.value.code == "insufficient_balance"  # 100 x 1 x 1.002 > 100
    for _ in range(6):
        _placed(system, "alice", "BTC/USD", "buy", "0.1", price="100")
    with pytest.raises(OrderRejected) as refused:
        raise_if_error(system.command("place", "alice", "BTC/USD", "buy", "0.1", price="100"))
    assert refused.value.code == "max_open_orders"  # in-transit places count
    assert len(system.log) == 7  # refusals journal nothing


def raise_if_error(result: dict[str, Any] | ExchangeError) -> None:
    if isinstance(result, ExchangeError):
        raise result


def test_a_market_shard_rebuilt_from_its_log_has_the_same_outbox_and_dedup(system: SplitSystem) -> None:
    system.command("deposit", "bob", "BTC", "5")
    system.command("deposit", "alice", "USD", "1000")
    sell = _placed(system, "bob", "BTC/USD", "sell", "2", price="100")
    buy = _placed(system, "alice", "BTC/USD", "buy", "1", price="100")
    system.deliver_route(sell["n"])
    answer = system.deliver_route(buy["n"])
    system.restart_market("m1", clean=False)  # replays the journal: same books, ledger, outbox
    assert system.deliver_route(buy["n"]) == answer  # the rebuilt shard still knows the route
    system.receive(answer)
    system.check(quiescent=True)


def test_a_whole_exchange_takes_no_routed_commands(tmp_path: Path) -> None:
    with Exchange(tmp_path, markets=(BTC,), fsync=False) as exchange:
        assert exchange.outbox is None
        with pytest.raises(RuntimeError):
            exchange.routed(
                "acct", 1, 0, 0, "bob", {}, {"kind": "cancel", "symbol": "BTC/USD", "order_id": "x"}
            )


def test_malformed_funding_changes_nothing_and_journals_nothing(system: SplitSystem) -> None:
    exchange = system.markets["m1"]
    appended = exchange.journal.appended
    action = {"kind": "cancel", "symbol": "BTC/USD", "order_id": "MC-1"}
    for funding in ({"USD": "10", "BTC": "-1"}, {"USD": "abc"}, {"usd": "1"}):
        with pytest.raises(InvalidCommand):
            exchange.routed("acct", 1, 0, 0, "bob", funding, action)
    assert exchange.journal.appended == appended
    assert exchange.risk.balances("bob") == {}
