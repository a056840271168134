"""The parts of the per-command path that session 14 wrote out for speed keep their contracts.

- :func:`manticore_matching.commands.receipt` makes a receipt equal to ``Receipt(...)``: same fields,
  frozen, a fresh ``result`` dict each time.
- A market's event capture subscribes one bound method and unsubscribes exactly what it subscribed
  when its stream messages are turned off.
- The books read the exchange's command clock: an order's timestamp is its command's clock reading.
- Replay checks each record's book sequence and fingerprint (``check``) item by item: a record whose
  ``seq`` or ``check`` differs, or whose ``check`` is malformed, fails the open; an unknown operation
  does too.
- ``decimal_arg`` of a string (the usual case) accepts exactly the finite positive decimals in range.
- A command that fails after its frame opened (the written-out frame of ``place_order``) leaves no
  captured event and no storage unit behind for the next command.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manticore_matching import Exchange, InvalidCommand, JournalCorrupt, OrderRejected
from manticore_matching.commands import Receipt, decimal_arg, receipt
from manticore_matching.feed import CORE_EVENTS
from tests.matching.exchange_streams import Clock, crashed_journal_with_a_trade, new_exchange


def _fund(exchange: Exchange, *users: str) -> None:
    for user in users:
        exchange.deposit(user, "USD", "100000")
        exchange.deposit(user, "BTC", "100")


def test_receipt_equals_the_constructor() -> None:
    order = {"order_id": "MC-1", "status": "open"}
    fast = receipt(7, "MC-1", order)
    made = Receipt(7, "MC-1", order)
    assert fast == made
    assert repr(fast) == repr(made)
    assert dataclasses.asdict(fast) == dataclasses.asdict(made)
    assert receipt(3) == Receipt(3)
    assert receipt(3).result is not receipt(3).result
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.position = 8  # type: ignore[misc]


def test_place_order_receipt_equals_the_constructor(tmp_path: Path) -> None:
    """The receipt ``_commit`` writes out is the constructor's (a fresh ``result`` each time)."""
    exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    try:
        _fund(exchange, "alice")
        first = exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="100")
        second = exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="100")
        for got in (first, second):
            assert type(got) is Receipt
            assert got == Receipt(got.position, got.order_id, got.order)
            assert repr(got) == repr(Receipt(got.position, got.order_id, got.order))
        assert first.result is not second.result and first.result == {}
        with pytest.raises(dataclasses.FrozenInstanceError):
            first.order = None  # type: ignore[misc]
    finally:
        exchange.close(checkpoint=False)


def test_capture_subscribes_one_handler_and_removes_it(tmp_path: Path) -> None:
    exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    try:
        market = exchange._markets["BTC/USD"]
        manager = market.book.event_manager
        handler = market.capture.handler
        before = manager.subscriber_count()
        market.capture.listen(manager, True)
        added = manager.subscriber_count() - before
        assert added > 0
        market.capture.listen(manager, False)
        assert manager.subscriber_count() == before
        # Subscribed to the core events by the bound method itself, once each.
        for event_type in CORE_EVENTS:
            assert manager.handlers[list(type(event_type)).index(event_type)].count(handler) == 1
    finally:
        exchange.close()


def test_books_read_the_command_clock(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    try:
        _fund(exchange, "alice")
        clock.now += 12.25
        placed = exchange.place_order("alice", "BTC/USD", "buy", "1", price="100")
        assert placed.order is not None
        assert placed.order["timestamp"] == clock.now
    finally:
        exchange.close()


def _rewrite_last(segment: Path, lines: list[bytes], change: dict[str, Any]) -> None:
    record = json.loads(lines[-1][9:])
    record.update(change)
    body = json.dumps(record, separators=(",", ":")).encode()
    segment.write_bytes(b"".join([*lines[:-1], b"%08x " % zlib.crc32(body) + body + b"\n"]))


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 10_000},
        {"check": [5, 1]},
        {"check": [0, 7]},
        {"check": [0]},
        {"check": [0, 1, 0]},
        {"check": None},
        {"check": "0,1"},
    ],
)
def test_replay_refuses_a_record_whose_book_facts_differ(tmp_path: Path, change: dict[str, Any]) -> None:
    segment, lines = crashed_journal_with_a_trade(tmp_path, Clock())
    assert json.loads(lines[-1][9:])["check"] == [0, 1]  # both orders filled, one trade
    _rewrite_last(segment, lines, change)
    with pytest.raises(JournalCorrupt, match="diverged"):
        new_exchange(tmp_path, Clock()).open()


def test_replay_accepts_the_recorded_facts(tmp_path: Path) -> None:
    segment, lines = crashed_journal_with_a_trade(tmp_path, Clock())
    _rewrite_last(segment, lines, {})  # the same record, written again
    exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    try:
        assert exchange.replayed_records == len(lines)
        assert exchange.statistics()["orders_resting"] == 0
    finally:
        exchange.close()


def test_replay_refuses_an_unknown_operation(tmp_path: Path) -> None:
    segment, lines = crashed_journal_with_a_trade(tmp_path, Clock())
    _rewrite_last(segment, lines, {"op": "teleport"})
    with pytest.raises(JournalCorrupt, match="unknown operation"):
        new_exchange(tmp_path, Clock()).open()


def test_a_refused_order_leaves_nothing_for_the_next_command(tmp_path: Path) -> None:
    exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    try:
        _fund(exchange, "alice", "bob")
        market = exchange._markets["BTC/USD"]
        balances = exchange.balances("alice")
        with pytest.raises(OrderRejected):
            exchange.place_order("alice", "BTC/USD", "buy", "100000", price="100")
        assert market.capture.events == []
        assert exchange._units == []
        placed = exchange.place_order("bob", "BTC/USD", "sell", "1", price="100")
        assert placed.order is not None and placed.order["status"] == "open"
        assert exchange.balances("alice") == balances
    finally:
        exchange.close()


@given(
    st.one_of(
        st.text(max_size=80),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    )
)
def test_decimal_arg_of_a_string(text: str) -> None:
    """A string is a finite positive decimal within 10**+-24 of at most 64 characters, or refused with
    InvalidCommand (never another error)."""
    try:
        number = decimal_arg(text, "price")
    except InvalidCommand:
        if len(text) > 64:
            return
        try:
            value = Decimal(text)
        except ArithmeticError:
            return
        assert not value.is_finite() or value <= 0 or not -24 <= value.adjusted() <= 24
        return
    assert len(text) <= 64
    assert number == Decimal(text) and number.is_finite() and number > 0
    assert str(number) == str(Decimal(text))


@pytest.mark.parametrize("op", [["place"], {"op": "place"}, None, 7])
def test_replay_refuses_an_operation_that_is_not_a_name(tmp_path: Path, op: object) -> None:
    segment, lines = crashed_journal_with_a_trade(tmp_path, Clock())
    _rewrite_last(segment, lines, {"op": op})
    with pytest.raises(JournalCorrupt, match="unknown operation"):
        new_exchange(tmp_path, Clock()).open()
