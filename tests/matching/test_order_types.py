"""Every order type and time in force through the Exchange, both sides: place, fill, modify, cancel, with
every user's balances checked exactly against an independent model after each step (ledger_model.py).

Market BTC/USD: tick 0.5, lot 0.1, maker fee 0.001, taker fee 0.002 (margin 1.002). ``carol`` and ``dave``
make the prints (small trades) that move the last price and trigger stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from manticore_matching import Exchange, InvalidCommand, OrderRejected
from tests.matching.exchange_streams import MARKETS, Clock, new_exchange
from tests.matching.ledger_model import LedgerModel

SIDES = ("buy", "sell")


def other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path: Path, clock: Clock) -> Iterator[tuple[Exchange, LedgerModel]]:
    with new_exchange(tmp_path, clock) as exchange:
        model = LedgerModel(MARKETS[0])
        for user in ("alice", "bob", "carol", "dave"):
            model.fund(exchange, user, "10000", "10")
        model.check(exchange)
        yield exchange, model


def place(exchange: Exchange, user: str, side: str, quantity: str, **kwargs: object) -> str:
    receipt = exchange.place_order(user, "BTC/USD", side, quantity, **kwargs)  # type: ignore[arg-type]
    assert receipt.order_id is not None and receipt.order_id.startswith("MC-")
    return receipt.order_id


def print_at(exchange: Exchange, model: LedgerModel, price: str, taker_side: str = "buy") -> None:
    """A 0.1 trade at ``price`` between carol (maker) and dave (taker on ``taker_side``)."""
    place(exchange, "carol", other(taker_side), "0.1", price=price)
    place(exchange, "dave", taker_side, "0.1", price=price)
    if taker_side == "buy":
        model.trade("dave", "carol", "buy", price, "0.1")
    else:
        model.trade("carol", "dave", "sell", price, "0.1")


def refused(exchange: Exchange, model: LedgerModel, error: type[Exception], **kwargs: object) -> Exception:
    before = (exchange.journal.appended, exchange._next_order_no)
    with pytest.raises(error) as caught:
        exchange.place_order(**kwargs)  # type: ignore[arg-type]
    assert (exchange.journal.appended, exchange._next_order_no) == before
    model.check(exchange)
    return caught.value


@pytest.mark.parametrize("side", SIDES)
def test_limit_rest_modify_fill_ioc_and_cancel(setup: tuple[Exchange, LedgerModel], side: str) -> None:
    exchange, model = setup
    maker = place(exchange, "alice", side, "2", price="100", client_order_id="a1")
    model.rest(maker, "alice", side, "100", "2")
    model.check(exchange)
    exchange.modify_order("alice", maker, new_quantity="1.5")
    model.rest(maker, "alice", side, "100", "1.5")
    model.check(exchange)
    exchange.modify_order("alice", maker, new_price="100.5")
    model.rest(maker, "alice", side, "100.5", "1.5")
    model.check(exchange)
    place(exchange, "bob", other(side), "0.5", price="100.5")
    buyer, seller = ("alice", "bob") if side == "buy" else ("bob", "alice")
    model.trade(buyer, seller, other(side), "100.5", "0.5")
    model.rest(maker, "alice", side, "100.5", "1", "partially_filled")
    model.check(exchange)
    place(exchange, "bob", other(side), "2", price="100.5", time_in_force="IOC")
    model.trade(buyer, seller, other(side), "100.5", "1")
    model.done(maker)
    model.check(exchange)
    assert exchange.get_order_by_client_id("alice", "a1")["status"] == "filled"  # type: ignore[index]
    again = place(exchange, "alice", side, "1", price="100", client_order_id="a1")
    model.rest(again, "alice", side, "100", "1")
    model.check(exchange)
    exchange.cancel_order_by_client_id("alice", "a1")
    model.done(again)
    model.check(exchange)


@pytest.mark.parametrize("taker_side", SIDES)
def test_market_orders_sweep_best_first(setup: tuple[Exchange, LedgerModel], taker_side: str) -> None:
    exchange, model = setup
    refused(
        exchange,
        model,
        OrderRejected,
        user_id="bob",
        symbol="BTC/USD",
        side=taker_side,
        quantity="1",
        order_type="market",
    )
    maker_side = other(taker_side)
    prices = ("100", "100.5") if maker_side == "sell" else ("100", "99.5")
    first = place(exchange, "alice", maker_side, "1", price=prices[0])
    second = place(exchange, "alice", maker_side, "1", price=prices[1])
    model.rest(first, "alice", maker_side, prices[0], "1")
    model.rest(second, "alice", maker_side, prices[1], "1")
    model.check(exchange)
    place(exchange, "bob", taker_side, "5", order_type="market", time_in_force="FOK")  # cannot fill: nothing
    model.check(exchange)
    receipt = exchange.place_order(
        "bob", "BTC/USD", taker_side, "1.5", order_type="market", client_order_id="m"
    )
    assert receipt.order is not None and receipt.order["client_order_id"] == "m"
    buyer, seller = ("bob", "alice") if taker_side == "buy" else ("alice", "bob")
    model.trade(buyer, seller, taker_side, prices[0], "1")
    model.trade(buyer, seller, taker_side, prices[1], "0.5")
    model.done(first)
    model.rest(second, "alice", maker_side, prices[1], "0.5", "partially_filled")
    model.check(exchange)
    refused(
        exchange,
        model,
        InvalidCommand,
        user_id="bob",
        symbol="BTC/USD",
        side=taker_side,
        quantity="1",
        order_type="market",
        price="100",
    )


@pytest.mark.parametrize("side", SIDES)
def test_post_only_rests_or_is_cancelled_without_trading(
    setup: tuple[Exchange, LedgerModel], side: str
) -> None:
    exchange, model = setup
    maker = place(exchange, "alice", side, "1", price="100", order_type="post_only")
    model.rest(maker, "alice", side, "100", "1")
    model.check(exchange)
    crossing = exchange.place_order("bob", "BTC/USD", other(side), "1", price="100", order_type="post_only")
    assert crossing.order is not None and crossing.order["status"] == "cancelled"
    model.check(exchange)
    error = refused(
        exchange,
        model,
        InvalidCommand,
        user_id="bob",
        symbol="BTC/USD",
        side=side,
        quantity="1",
        price="90",
        order_type="post_only",
        time_in_force="IOC",
    )
    assert "GTC or GTD" in str(error)
    exchange.cancel_order("alice", maker)
    model.done(maker)
    model.check(exchange)


@pytest.mark.parametrize("side", SIDES)
def test_fok_and_gtd(setup: tuple[Exchange, LedgerModel], clock: Clock, side: str) -> None:
    exchange, model = setup
    maker = place(exchange, "alice", side, "1", price="100", time_in_force="GTD", expiry_time=clock.now + 10)
    model.rest(maker, "alice", side, "100", "1")
    model.check(exchange)
    exchange.modify_order("alice", maker, new_expiry_time=clock.now + 20)
    place(exchange, "bob", other(side), "2", price="100", time_in_force="FOK")  # not enough: nothing happens
    model.check(exchange)
    place(exchange, "bob", other(side), "0.5", price="100", time_in_force="FOK")
    buyer, seller = ("alice", "bob") if side == "buy" else ("bob", "alice")
    model.trade(buyer, seller, other(side), "100", "0.5")
    model.rest(maker, "alice", side, "100", "0.5", "partially_filled")
    model.check(exchange)
    clock.now += 15
    assert exchange.expire_due() == 0
    clock.now += 10
    assert exchange.expire_due() == 1
    model.done(maker)
    model.check(exchange)
    assert exchange.get_order("alice", maker)["status"] == "expired"  # type: ignore[index]
    refused(
        exchange,
        model,
        InvalidCommand,
        user_id="alice",
        symbol="BTC/USD",
        side=side,
        quantity="1",
        price="100",
        time_in_force="GTD",
    )


@pytest.mark.parametrize("side", SIDES)
def test_stop_limit_waits_is_modified_triggers_and_fills(
    setup: tuple[Exchange, LedgerModel], side: str
) -> None:
    exchange, model = setup
    print_at(exchange, model, "100")
    buy = side == "buy"
    stop, limit, resting, trigger = ("101", "102", "101.5", "101") if buy else ("99", "98", "98.5", "99")
    order = place(exchange, "alice", side, "2", price=limit, stop_price=stop, order_type="stop_limit")
    model.rest(order, "alice", side, limit, "2", "pending")
    model.check(exchange)
    exchange.modify_order("alice", order, new_quantity="1")
    model.rest(order, "alice", side, limit, "1", "pending")
    model.check(exchange)
    spare = place(exchange, "alice", side, "1", price=limit, stop_price=stop, order_type="stop_limit")
    model.rest(spare, "alice", side, limit, "1", "pending")
    model.check(exchange)
    exchange.cancel_order("alice", spare)
    model.done(spare)
    model.check(exchange)
    counter = place(exchange, "bob", other(side), "1", price=resting)
    model.rest(counter, "bob", other(side), resting, "1")
    model.check(exchange)
    print_at(exchange, model, trigger, "buy" if buy else "sell")
    buyer, seller = ("alice", "bob") if buy else ("bob", "alice")
    model.trade(buyer, seller, side, resting, "1")
    model.done(order)
    model.done(counter)
    model.check(exchange)
    assert exchange.get_order("alice", order)["status"] == "filled"  # type: ignore[index]


def test_stop_market_sell_triggers_and_a_stop_market_buy_is_refused(
    setup: tuple[Exchange, LedgerModel],
) -> None:
    exchange, model = setup
    print_at(exchange, model, "100")
    order = place(
        exchange, "alice", "sell", "1", stop_price="99", order_type="stop_market", client_order_id="sm"
    )
    model.rest(order, "alice", "sell", None, "1", "pending")
    model.check(exchange)
    bid = place(exchange, "bob", "buy", "1", price="98.5")
    model.rest(bid, "bob", "buy", "98.5", "1")
    model.check(exchange)
    print_at(exchange, model, "99", "sell")
    model.trade("bob", "alice", "sell", "98.5", "1")
    model.done(order)
    model.done(bid)
    model.check(exchange)
    fills = exchange.fills("alice")
    assert exchange.storage is not None
    error = refused(
        exchange,
        model,
        OrderRejected,
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        quantity="1",
        stop_price="101",
        order_type="stop_market",
    )
    assert getattr(error, "code", None) == "unsupported_order"
    assert all(fill["role"] in ("maker", "taker") for fill in fills)


@pytest.mark.parametrize("protected", [False, True])
def test_trailing_stop_sell_follows_the_market_and_triggers(
    setup: tuple[Exchange, LedgerModel], protected: bool
) -> None:
    exchange, model = setup
    print_at(exchange, model, "100")
    limit = "100" if protected else None
    kwargs = {"price": limit} if protected else {}
    order = place(exchange, "alice", "sell", "1", order_type="trailing_stop", trail_value="1", **kwargs)
    model.rest(order, "alice", "sell", limit, "1", "pending")
    model.check(exchange)
    assert exchange.get_order("alice", order)["stop_price"] == "99.0"  # type: ignore[index]
    print_at(exchange, model, "102")
    assert exchange.get_order("alice", order)["stop_price"] == "101.0"  # type: ignore[index]
    model.check(exchange)
    bid = place(exchange, "bob", "buy", "1", price="100.5")
    model.rest(bid, "bob", "buy", "100.5", "1")
    print_at(exchange, model, "101", "sell")
    model.trade("bob", "alice", "sell", "100.5", "1")
    model.done(order)
    model.done(bid)
    model.check(exchange)


def test_trailing_stop_buy_needs_a_protection_limit_follows_and_triggers(
    setup: tuple[Exchange, LedgerModel],
) -> None:
    exchange, model = setup
    print_at(exchange, model, "100")
    error = refused(
        exchange,
        model,
        OrderRejected,
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        quantity="1",
        order_type="trailing_stop",
        trail_value="1",
    )
    assert getattr(error, "code", None) == "unsupported_order" and "limit price" in str(error)
    order = place(exchange, "alice", "buy", "1", order_type="trailing_stop", trail_value="1", price="103")
    model.rest(order, "alice", "buy", "103", "1", "pending")
    model.check(exchange)
    assert exchange.get_order("alice", order)["stop_price"] == "101.0"  # type: ignore[index]
    print_at(exchange, model, "99", "sell")
    assert exchange.get_order("alice", order)["stop_price"] == "100.0"  # type: ignore[index]
    model.check(exchange)
    ask = place(exchange, "bob", "sell", "1", price="100.5")
    model.rest(ask, "bob", "sell", "100.5", "1")
    model.check(exchange)
    print_at(exchange, model, "100")
    model.trade("alice", "bob", "buy", "100.5", "1")  # triggered: a limit buy at 103 pays the ask's 100.5
    model.done(order)
    model.done(ask)
    model.check(exchange)


def test_a_percentage_trail_and_a_trail_off_the_grid(setup: tuple[Exchange, LedgerModel]) -> None:
    exchange, model = setup
    print_at(exchange, model, "100")
    order = place(
        exchange, "alice", "sell", "1", order_type="trailing_stop", trail_value="2", trail_is_percent=True
    )
    assert exchange.get_order("alice", order)["stop_price"] == "98.0"  # type: ignore[index]
    model.rest(order, "alice", "sell", None, "1", "pending")
    model.check(exchange)
    for bad in ({"trail_value": "0.3"}, {"trail_value": "100", "trail_is_percent": True}):
        refused(
            exchange,
            model,
            InvalidCommand,
            user_id="alice",
            symbol="BTC/USD",
            side="sell",
            quantity="1",
            order_type="trailing_stop",
            **bad,
        )
    refused(
        exchange,
        model,
        InvalidCommand,
        user_id="alice",
        symbol="BTC/USD",
        side="sell",
        quantity="1",
        order_type="trailing_stop",
        trail_value="1",
        stop_price="99",
    )


@pytest.mark.parametrize("side", SIDES)
def test_iceberg_shows_a_slice_refills_is_modified_and_cancelled(
    setup: tuple[Exchange, LedgerModel], side: str
) -> None:
    exchange, model = setup
    order = place(
        exchange,
        "alice",
        side,
        "3",
        price="100",
        order_type="iceberg",
        displayed_quantity="1",
        client_order_id="ice",
    )
    model.rest(order, "alice", side, "100", "3")
    model.check(exchange)
    book = exchange.get_snapshot("BTC/USD")
    level = (book["bids"] if side == "buy" else book["asks"])[0]
    assert (level["price"], level["quantity"]) == ("100.0", "1.0")
    place(exchange, "bob", other(side), "2.5", price="100")
    buyer, seller = ("alice", "bob") if side == "buy" else ("bob", "alice")
    for quantity in ("1", "1", "0.5"):
        model.trade(buyer, seller, other(side), "100", quantity)
    model.rest(order, "alice", side, "100", "0.5", "partially_filled")
    model.check(exchange)
    exchange.modify_order("alice", order, new_quantity="3.5")
    model.rest(order, "alice", side, "100", "1", "partially_filled")
    model.check(exchange)
    exchange.cancel_order_by_client_id("alice", "ice")
    model.done(order)
    model.check(exchange)
    for tif in ("IOC", "FOK"):
        refused(
            exchange,
            model,
            InvalidCommand,
            user_id="alice",
            symbol="BTC/USD",
            side=side,
            quantity="3",
            price="100",
            order_type="iceberg",
            displayed_quantity="1",
            time_in_force=tif,
        )
    refused(
        exchange,
        model,
        InvalidCommand,
        user_id="alice",
        symbol="BTC/USD",
        side=side,
        quantity="1",
        price="100",
        order_type="iceberg",
        displayed_quantity="2",
    )
    refused(
        exchange,
        model,
        InvalidCommand,
        user_id="alice",
        symbol="BTC/USD",
        side=side,
        quantity="1",
        price="100",
        order_type="iceberg",
    )
