"""Regression: a command on an order whose GTD expiry has passed.

The book expires due orders lazily inside the command that meets them. When that command then failed
(a modify or cancel of the order that just expired), the exchange discarded what the command had
captured although the book had changed: the expiry's events never reached the journal, storage or the
recent-orders view, and a restart replayed the expiry at another point. Now every command first expires
its market's due orders as a journaled command of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from manticore_matching import Exchange, OrderNotFound
from tests.matching.exchange_streams import START, Clock, crash_releases_lock, new_exchange


def _place_gtd(exchange: Exchange, clock: Clock) -> str:
    exchange.deposit("alice", "USD", "1000")
    return exchange.place_order(
        "alice",
        "BTC/USD",
        "buy",
        "1",
        price="97.5",
        time_in_force="GTD",
        expiry_time=clock.now + 10,
        client_order_id="mine",
    ).order_id


@pytest.mark.parametrize("command", ["modify", "cancel"])
def test_a_command_on_an_expired_order_journals_the_expiry_and_changes_nothing_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, command: str
) -> None:
    clock = Clock(START)
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    order_id = _place_gtd(exchange, clock)
    assert exchange.risk.balances("alice")["USD"]["held"] != "0"
    clock.now += 11  # past its expiry; no timer ran
    appended = exchange.journal.appended
    with caplog.at_level(logging.CRITICAL, logger="manticore_matching"), pytest.raises(OrderNotFound):
        if command == "modify":
            exchange.modify_order("alice", order_id, new_price="98")
        else:
            exchange.cancel_order("alice", order_id)
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert exchange.journal.appended == appended + 1  # the expiry, as a command of its own
    order = exchange.get_order("alice", order_id)
    assert order is not None and order["status"] == "expired"
    assert exchange.get_order_by_client_id("alice", "mine")["status"] == "expired"  # type: ignore[index]
    assert exchange.risk.balances("alice")["USD"] == {"available": "1000", "held": "0"}
    # the name is free again, and a crash then a restart gives the same state
    exchange.wait_durable(exchange.journal.appended, 10)
    before = exchange.book("BTC/USD").export_state()
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)
    with new_exchange(tmp_path, clock) as again:
        assert again.book("BTC/USD").export_state() == before
        assert again.get_order_by_client_id("alice", "mine")["status"] == "expired"  # type: ignore[index]
        assert again.place_order("alice", "BTC/USD", "buy", "1", price="97.5", client_order_id="mine")
