"""Stream messages are built only for what the listeners read (:mod:`manticore_matching.demand`), and
every listener still gets exactly the messages it read before.

Model: an exchange with one listener that reads everything builds every message, as before demands
existed. The same commands, with the same clock, on an exchange whose listeners each name a demand
must give each listener, among what it receives, exactly the reference's messages that its demand
names (a listener may receive more: the messages are built once for the union of the demands).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Demand, Exchange
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange

Received = list[tuple[int, dict[str, Any]]]


def _record(exchange: Exchange, demand: Demand | None) -> Received:
    received: Received = []
    exchange.add_batch_listener(lambda position, batch: received.extend((position, m) for m in batch), demand)
    return received


def _names(demand: Demand, message: dict[str, Any]) -> bool:
    """Whether ``demand`` names ``message`` (the model of what a listener reads)."""
    kind = message["type"]
    if kind == "book":
        return demand.books is None or message["symbol"] in demand.books
    if kind == "trade":
        return demand.trades is None or message["symbol"] in demand.trades
    if kind == "fill" and demand.fills:
        return True
    return demand.users is None or message["user_id"] in demand.users


def _run(exchange: Exchange, clock: Clock, commands: list[dict[str, Any]], switch: Any = None) -> int:
    """Apply ``commands``; call ``switch()`` half-way; return the journal position at the switch."""
    switched_at = 0
    for index, command in enumerate(commands):
        if index == len(commands) // 2 and switch is not None:
            switch()
            switched_at = exchange.journal.appended
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended)
    return switched_at


@pytest.mark.parametrize("seed", [3, 17, 41])
def test_each_listener_gets_exactly_the_messages_its_demand_names(tmp_path: Path, seed: int) -> None:
    commands = make_stream(seed, 250)
    clock = Clock()
    reference = new_exchange(tmp_path / "reference", clock, checkpoint_every=0)
    reference.open()
    everything = _record(reference, None)
    _run(reference, clock, commands)
    reference.close()

    demands = {
        "btc book": Demand(books={"BTC/USD"}),
        "eth trades, alice": Demand(trades={"ETH/USD"}, users={"alice"}),
        "every fill": Demand(fills=True),
        "binance market feed": Demand(books=None, trades=None),
    }
    switching = Demand(users={"bob"})  # then: carol's messages and ETH's book diffs
    clock = Clock()
    exchange = new_exchange(tmp_path / "limited", clock, checkpoint_every=0)
    exchange.open()
    received = {name: _record(exchange, demand) for name, demand in demands.items()}
    received_switching = _record(exchange, switching)

    def switch() -> None:
        switching.users = {"carol"}
        switching.books = {"ETH/USD"}
        exchange.demand_changed()

    switched_at = _run(exchange, clock, commands, switch)
    exchange.close()

    assert everything, "the stream made no messages"
    for name, demand in demands.items():
        expected = [(n, m) for n, m in everything if _names(demand, m)]
        assert [(n, m) for n, m in received[name] if _names(demand, m)] == expected, name
    before, after = Demand(users={"bob"}), Demand(users={"carol"}, books={"ETH/USD"})
    expected = [(n, m) for n, m in everything if _names(before if n <= switched_at else after, m)]
    got = [(n, m) for n, m in received_switching if _names(before if n <= switched_at else after, m)]
    assert got == expected
    assert any(m["type"] == "book" and m["symbol"] == "ETH/USD" for _, m in got)


def test_nothing_is_built_that_no_listener_reads(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=0)
    exchange.open()
    demand = Demand()
    received = _record(exchange, demand)
    for command in make_stream(5, 120):
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended)
    assert received == []
    assert not any(market.capture.complete for market in exchange._markets.values())  # no level payloads

    demand.books = {"BTC/USD"}
    exchange.demand_changed()
    for command in make_stream(6, 60)[9:]:  # without the deposits
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended)
    assert {m["type"] for _, m in received} == {"book"}
    assert {m["symbol"] for _, m in received} == {"BTC/USD"}
    assert [market.capture.complete for market in exchange._markets.values()] == [True, False]
    exchange.close()
