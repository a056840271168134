"""The per-command fast paths keep the exchange's behaviour.

- The expiry step before each command is skipped while no order of the market can be due
  (``Market.expiries``): GTD orders placed, modified, restored from a checkpoint or replayed from the
  journal must still expire before the next command once their time has come.
- The journal encodes a record at ``append`` (orjson) and still reads the lines of the standard
  library's encoder that older journals hold.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Exchange, OrderNotFound
from manticore_matching.journal import Journal, _decode, _encode
from tests.matching.exchange_streams import START, Clock, crash_releases_lock, new_exchange


def _gtd(exchange: Exchange, clock: Clock, seconds: float, price: str = "97.5") -> str:
    order_id = exchange.place_order(
        "alice", "BTC/USD", "buy", "1", price=price, time_in_force="GTD", expiry_time=clock.now + seconds
    ).order_id
    assert order_id is not None
    return order_id


def _status(exchange: Exchange, order_id: str) -> str:
    order = exchange.get_order("alice", order_id)
    assert order is not None
    return str(order["status"])


def _next_command(exchange: Exchange) -> None:
    """Any command of the market (it runs the expiry step first)."""
    exchange.place_order("alice", "BTC/USD", "buy", "1", price="50")


def test_a_due_order_expires_before_the_next_command_and_not_before_its_time(tmp_path: Path) -> None:
    clock = Clock(START)
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("alice", "USD", "10000")
        order_id = _gtd(exchange, clock, 10)
        clock.now += 9
        _next_command(exchange)
        assert _status(exchange, order_id) == "open"
        clock.now += 2
        appended = exchange.journal.appended
        _next_command(exchange)
        assert _status(exchange, order_id) == "expired"
        assert exchange.journal.appended == appended + 2  # the expiry, then the command


@pytest.mark.parametrize("change", [+20.0, -5.0])
def test_a_modified_expiry_is_the_one_that_counts(tmp_path: Path, change: float) -> None:
    clock = Clock(START)
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("alice", "USD", "10000")
        order_id = _gtd(exchange, clock, 10)
        exchange.modify_order("alice", order_id, new_expiry_time=clock.now + 10 + change)
        clock.now += 10 + min(change, 0) + 0.5
        appended = exchange.journal.appended
        _next_command(exchange)
        assert _status(exchange, order_id) == ("open" if change > 0 else "expired")
        # an expiry is journaled as a command of its own, before the command that met it
        assert exchange.journal.appended == appended + (1 if change > 0 else 2)
        clock.now += abs(change) + 1
        appended = exchange.journal.appended
        _next_command(exchange)
        assert _status(exchange, order_id) == "expired"
        assert exchange.journal.appended == appended + (2 if change > 0 else 1)


@pytest.mark.parametrize("checkpoint", [True, False])
def test_orders_restored_or_replayed_still_expire_before_the_next_command(
    tmp_path: Path, checkpoint: bool
) -> None:
    clock = Clock(START)
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    exchange.deposit("alice", "USD", "10000")
    order_id = _gtd(exchange, clock, 10)
    if checkpoint:
        exchange.close()
    else:  # kill -9: the journal is replayed
        exchange.wait_durable(exchange.journal.appended, 10)
        exchange.journal.close()
        assert exchange.storage is not None
        exchange.storage.close()
        crash_releases_lock(exchange)
    with new_exchange(tmp_path, clock) as again:
        assert _status(again, order_id) == "open"
        clock.now += 11
        with pytest.raises(OrderNotFound):  # expired by the cancel's expiry step, not by the cancel
            again.cancel_order("alice", order_id)
        assert _status(again, order_id) == "expired"
        assert again.risk.balances("alice")["USD"] == {"available": "10000", "held": "0"}


def test_the_expiry_sweep_of_a_quiet_market_refuses_once_the_journal_cannot_write(tmp_path: Path) -> None:
    clock = Clock(START)
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    exchange.journal.close()
    with pytest.raises(Exception, match="journal"):
        exchange.expire_due()
    exchange.close(checkpoint=False)


def test_old_journal_lines_of_the_standard_encoder_are_read(tmp_path: Path) -> None:
    records = [
        {"op": "deposit", "ts": START + 0.1, "user_id": "alice", "asset": "USD", "amount": "1", "n": 1},
        {"op": "odd", "ts": float("nan"), "n": 2},  # json.dumps wrote NaN; orjson does not read it
    ]
    lines = []
    for record in records:
        body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        lines.append(b"%08x " % zlib.crc32(body) + body + b"\n")
    decoded = [_decode(line) for line in lines]
    assert decoded[0] == records[0]
    assert decoded[1] is not None and decoded[1]["n"] == 2 and decoded[1]["ts"] != decoded[1]["ts"]
    (tmp_path / "journal-0000000000000001.log").write_bytes(b"".join(lines))
    assert [r["n"] for r in Journal(tmp_path).read()] == [1, 2]


def test_a_line_round_trips_exactly(tmp_path: Path) -> None:
    record: dict[str, Any] = {"op": "place", "ts": 1700000000.123456, "price": "97.5", "x": None, "n": 7}
    assert _decode(_encode(record)) == record
    damaged = bytearray(_encode(record))
    damaged[-3] ^= 1
    assert _decode(bytes(damaged)) is None


def test_an_unserialisable_record_is_refused_and_takes_no_position(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    with pytest.raises(TypeError):
        journal.append({"op": "bad", "amount": Decimal("1")})
    assert journal.appended == 0
    assert journal.append({"op": "good"}) == 1
    assert journal.wait(1, 10)
    journal.close()
    assert [r["op"] for r in Journal(tmp_path).read()] == ["good"]


def test_what_orjson_refuses_but_json_holds_is_journaled_and_replayed(tmp_path: Path) -> None:
    """A user id with a lone surrogate (orjson refuses to encode it) is journaled as before."""
    clock = Clock(START)
    user = "odd\ud800user"
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    exchange.deposit(user, "USD", "1000")
    exchange.place_order(user, "BTC/USD", "buy", "1", price="97.5")
    exchange.wait_durable(exchange.journal.appended, 10)
    before = (exchange.book("BTC/USD").export_state(), exchange.risk.balances(user))
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)
    with new_exchange(tmp_path, clock) as again:
        assert (again.book("BTC/USD").export_state(), again.risk.balances(user)) == before
    big: dict[str, Any] = {"op": "big", "value": 2**70, "n": 1}
    assert _decode(_encode(big)) == big
