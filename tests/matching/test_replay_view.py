"""Replay rebuilds the exchange's in-memory state exactly: the recent-orders view (its orders, their
order and their keys' order), the client order id indexes, the command ids' receipts, the recent
trades, the books and the ledger, as the live commands left them.

Replay builds the ORDER_FILLED payloads of the view itself (``recent.ReplayFills``) unless a command
needs every fill (a command id, an iceberg in the book): the streams here run with and without
icebergs and command ids, so that both ways are compared with the live exchange."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, ExchangeError
from manticore_matching.recent import ReplayFills
from manticore_orderbook import EventType
from tests.matching.exchange_streams import (
    Clock,
    apply,
    crash_releases_lock,
    make_stream,
    new_exchange,
    state,
)


def _stream(seed: int, length: int, icebergs: bool, command_ids: bool) -> list[dict[str, Any]]:
    """:func:`make_stream`, its icebergs made plain limit orders unless ``icebergs``, and a command id
    on about a quarter of its commands if ``command_ids``."""
    rng = random.Random(seed)
    stream = []
    for command in make_stream(seed, length):
        if not icebergs and command.get("order_type") == "iceberg":
            command = {key: value for key, value in command.items() if key != "displayed_quantity"}
            command["order_type"] = "limit"
        if command_ids and command["op"] in ("place", "cancel", "modify", "deposit") and rng.random() < 0.25:
            command["command_id"] = f"cmd-{len(stream)}"
        stream.append(command)
    return stream


def _apply(exchange: Exchange, clock: Clock, command: dict[str, Any]) -> None:
    """:func:`apply`, passing a command id where the command has one."""
    command_id = command.get("command_id")
    if command_id is None:
        apply(exchange, clock, command)
        return
    args = {key: value for key, value in command.items() if key not in ("op", "command_id")}
    with contextlib.suppress(ExchangeError):  # a refused command changed nothing (as apply() has it)
        if command["op"] == "place":
            exchange.place_order(**args, command_id=command_id)
        elif command["op"] == "cancel":
            exchange.cancel_order(args["user_id"], args["order_id"], command_id=command_id)
        elif command["op"] == "modify":
            user, order_id = args.pop("user_id"), args.pop("order_id")
            exchange.modify_order(user, order_id, **args, command_id=command_id)
        else:
            exchange.deposit(**args, command_id=command_id)


def _memory(exchange: Exchange) -> dict[str, Any]:
    """Everything replay rebuilds in memory, with the order of the view and of each dict's keys."""
    return {
        "state": state(exchange),
        "recent": [(order_id, list(order.items())) for order_id, order in exchange._recent.items()],
        "recent_names": sorted(exchange._recent_client_ids.items()),
        "live_names": sorted(exchange._live_client_ids.items()),
        "receipts": exchange._commands.export_state(),
        "trades": {
            symbol: [list(trade.items()) for trade in market.trades]
            for symbol, market in exchange._markets.items()
        },
        "ledger": exchange.risk.export_state(),
    }


def _crash(exchange: Exchange) -> None:
    exchange.wait_durable(exchange.journal.appended, 10)
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    icebergs=st.booleans(),
    command_ids=st.booleans(),
    checkpoint_at=st.none() | st.integers(0, 150),
)
def test_replay_rebuilds_what_the_live_commands_built(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    icebergs: bool,
    command_ids: bool,
    checkpoint_at: int | None,
) -> None:
    """A crash after a random stream (a checkpoint part-way or none): the replayed exchange holds
    exactly the memory state the live one had (the recent-orders view compared item by item, in
    order, with each order's keys in order)."""
    stream = _stream(seed, 150, icebergs, command_ids)
    directory = tmp_path_factory.mktemp("replay")
    clock = Clock()
    exchange = new_exchange(directory, clock, checkpoint_every=0)
    exchange.open()
    for index, command in enumerate(stream):
        if index == checkpoint_at:
            exchange.checkpoint()
        _apply(exchange, clock, command)
    live = _memory(exchange)
    _crash(exchange)
    replayed = new_exchange(directory, clock, checkpoint_every=0)
    replayed.open()
    try:
        assert replayed.replayed_records > 0
        after = _memory(replayed)
        if checkpoint_at is None:
            assert after == live
        else:  # the view holds what the journal after the checkpoint finished (it is not checkpointed)
            assert after["state"] == live["state"]
            assert after["trades"] == live["trades"]
            assert after["ledger"] == live["ledger"]
            assert after["live_names"] == live["live_names"]
            assert after["receipts"] == live["receipts"]
            recent = dict(live["recent"])
            for order_id, items in after["recent"]:
                assert recent[order_id] == items
    finally:
        replayed.close()


def _filled_orders(exchange: Exchange) -> int:
    return sum(1 for order in exchange._recent.values() if order["status"] == "filled")


def test_the_view_of_a_replay_without_fills_holds_the_books_fill_payloads(tmp_path: Path) -> None:
    """The plain path (no icebergs, no command ids: no fill captured in replay) on makers of the
    checkpoint and of the journal, partial and whole fills, sweeps over several makers, fees and
    rebates (ETH/USD): every filled order's view is the book's ORDER_FILLED payload."""
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    exchange.open()
    for user in ("alice", "bob"):
        for asset, amount in (("USD", "100000"), ("BTC", "50"), ("ETH", "500")):
            exchange.deposit(user, asset, amount)
    for n in range(4):  # makers kept by the checkpoint
        exchange.place_order("alice", "BTC/USD", "sell", "0.3", price=str(100 + n), client_order_id=f"a{n}")
    exchange.checkpoint()
    for n in range(4):  # makers in the journal
        exchange.place_order("alice", "ETH/USD", "sell", "1.5", price=f"20.0{n}")
    exchange.place_order("bob", "BTC/USD", "buy", "0.7", price="102")  # two whole fills, one partial
    exchange.place_order("bob", "BTC/USD", "buy", "0.5", order_type="market")  # the rest, then more
    exchange.place_order("bob", "ETH/USD", "buy", "2", price="20.01", time_in_force="IOC")
    exchange.place_order("bob", "ETH/USD", "buy", "1", price="20.05")  # fills the taker wholly
    live = _memory(exchange)
    assert _filled_orders(exchange) >= 6
    _crash(exchange)
    replayed = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    replayed.open()
    try:
        after = _memory(replayed)
        assert after["recent"] == live["recent"]
        assert after == live
    finally:
        replayed.close()


def test_replay_captures_fills_again_once_it_is_done(tmp_path: Path) -> None:
    """After the replay the markets' captures read every fill again (the live view needs them)."""
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    exchange.open()
    for user in ("alice", "bob"):
        exchange.deposit(user, "USD", "10000")
        exchange.deposit(user, "BTC", "10")
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    _crash(exchange)
    replayed = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    replayed.open()
    try:
        assert replayed._replay_fills == {}
        manager = replayed.book("BTC/USD").event_manager
        assert manager.subscriber_count(EventType.ORDER_FILLED) == 1
        receipt = replayed.place_order("bob", "BTC/USD", "buy", "0.4", price="100")
        assert receipt.order is not None
        assert receipt.order["filled_quantity"] == "0.4"
        replayed.place_order("bob", "BTC/USD", "buy", "0.6", price="100")
        (maker,) = [order for order in replayed._recent.values() if order["user_id"] == "alice"]
        assert maker["status"] == "filled"
        assert maker["fill_quantity"] == "0.6"
    finally:
        replayed.close()


def test_replay_fills_refuses_a_fill_of_an_order_it_does_not_know(tmp_path: Path) -> None:
    """A trade that filled an order no event stated is a replay that went wrong: an error, not a
    made-up payload."""
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    exchange.open()
    try:
        book = exchange.book("BTC/USD")
        fills = ReplayFills(book, exchange._markets["BTC/USD"].capture.handler)
        trade = {"maker_order_id": "MC-1", "taker_order_id": "MC-2", "taker_side": "buy"}
        with pytest.raises(KeyError):
            fills._fill(trade, "MC-1", True)
        fills.capture_fills(True)
    finally:
        exchange.close()
