"""The Exchange: the order pipeline, money, journal replay, checkpoints and what is published when."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import (
    Exchange,
    InvalidCommand,
    JournalCorrupt,
    MarketExists,
    OrderNotFound,
    OrderRejected,
    UnknownMarket,
)
from tests.matching.exchange_streams import (
    MARKETS,
    Clock,
    apply,
    crash_releases_lock,
    crashed_journal_with_a_trade,
    make_stream,
    new_exchange,
    state,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exchange(tmp_path: Path, clock: Clock) -> Any:
    with new_exchange(tmp_path, clock) as opened:
        yield opened


def _fund(exchange: Exchange, *users: str) -> None:
    for user in users:
        exchange.deposit(user, "USD", "10000")
        exchange.deposit(user, "BTC", "10")


def test_markets_are_created_once_and_journaled(tmp_path: Path, clock: Clock) -> None:
    with new_exchange(tmp_path, clock) as exchange:
        assert list(exchange.markets) == ["BTC/USD", "ETH/USD"]
        with pytest.raises(MarketExists):
            exchange.create_market(MARKETS[0])
    with new_exchange(tmp_path, clock) as exchange:
        assert list(exchange.markets) == ["BTC/USD", "ETH/USD"]


def test_a_trade_moves_money_exactly(exchange: Exchange) -> None:
    _fund(exchange, "alice", "bob")
    sell = exchange.place_order("alice", "BTC/USD", "sell", "1.5", price="100")
    assert sell.order is not None and sell.order["status"] == "open"
    assert exchange.wait_durable(sell.position, 10)
    buy = exchange.place_order("bob", "BTC/USD", "buy", "1", price="100.5")
    assert buy.order is not None and buy.order["status"] == "filled"
    alice = exchange.balances("alice")["balances"]
    bob = exchange.balances("bob")["balances"]
    # alice sold 1 at 100 as maker (fee 0.1), still holds 0.5 BTC for her open remainder
    assert Decimal(alice["USD"]["available"]) == Decimal("10099.9")
    assert Decimal(alice["BTC"]["held"]) == Decimal("0.5")
    assert Decimal(alice["BTC"]["available"]) == Decimal("8.5")
    # bob paid 100 plus the taker fee 0.2; his limit was better, the improvement came back
    assert Decimal(bob["USD"]["available"]) == Decimal("9899.8")
    assert Decimal(bob["USD"]["held"]) == 0
    assert Decimal(bob["BTC"]["available"]) == Decimal("11")
    assert exchange.risk.total("USD") == Decimal("20000")


def test_rejections_change_nothing(exchange: Exchange) -> None:
    _fund(exchange, "alice")
    before = (exchange.journal.appended, exchange.book("BTC/USD").sequence, exchange.risk.export_state())
    with pytest.raises(OrderRejected) as rejected:
        exchange.place_order("alice", "BTC/USD", "buy", "1000", price="100")
    assert rejected.value.code == "insufficient_balance"
    for bad in (
        {"quantity": "0"},
        {"quantity": "-1"},
        {"quantity": "NaN"},
        {"quantity": "1e999999"},
        {"quantity": "0.05"},  # off the lot grid
        {"price": "100.25"},  # off the tick grid
        {"price": "Infinity"},
        {"quantity": True},
        {"quantity": [1]},
        {"side": "up"},
        {"order_type": "teleport"},
        {"time_in_force": "GTD"},
        {"order_type": "iceberg"},
    ):
        args: dict[str, Any] = {"side": "buy", "quantity": "1", "price": "100", **bad}
        with pytest.raises(InvalidCommand):
            exchange.place_order("alice", "BTC/USD", **args)
    with pytest.raises(UnknownMarket):
        exchange.place_order("alice", "DOGE/USD", "buy", "1", price="1")
    with pytest.raises(OrderNotFound):
        exchange.cancel_order("alice", "MC-999")
    assert (
        exchange.journal.appended,
        exchange.book("BTC/USD").sequence,
        exchange.risk.export_state(),
    ) == before


def test_users_only_touch_their_own_orders(exchange: Exchange) -> None:
    _fund(exchange, "alice", "bob")
    order_id = exchange.place_order("alice", "BTC/USD", "buy", "1", price="90").order_id
    assert order_id is not None
    with pytest.raises(OrderNotFound):
        exchange.cancel_order("bob", order_id)
    with pytest.raises(OrderNotFound):
        exchange.modify_order("bob", order_id, new_quantity="0.5")
    assert exchange.get_order("bob", order_id) is None
    assert exchange.get_order("alice", order_id) is not None
    exchange.cancel_order("alice", order_id)
    finished = exchange.get_order("alice", order_id)
    assert finished is not None and finished["status"] == "cancelled"


def test_messages_leave_only_after_the_journal_is_durable(exchange: Exchange) -> None:
    _fund(exchange, "alice", "bob")
    seen: list[dict[str, Any]] = []
    exchange.add_listener(seen.extend)
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    receipt = exchange.place_order("bob", "BTC/USD", "buy", "0.4", price="100")
    assert exchange.wait_durable(receipt.position, 10)
    kinds = [message["type"] for message in seen]
    assert kinds.count("trade") == 1
    books = [message for message in seen if message["type"] == "book"]
    assert books[0]["first_sequence"] == 1
    for previous, current in itertools.pairwise(books):
        assert current["first_sequence"] == previous["last_sequence"] + 1
    assert books[-1]["last_sequence"] == exchange.book("BTC/USD").sequence
    assert books[-1]["asks"] == [{"price": "100.0", "quantity": "0.6", "order_count": 1}]
    private = {(m["type"], m["user_id"]) for m in seen if "user_id" in m}
    assert {("fill", "alice"), ("fill", "bob"), ("balances", "alice"), ("balances", "bob")} <= private


def test_restart_after_close_restores_everything(tmp_path: Path, clock: Clock) -> None:
    stream = make_stream(7, 300)
    with new_exchange(tmp_path, clock) as exchange:
        for command in stream:
            apply(exchange, clock, command)
        expected = state(exchange)
    with new_exchange(tmp_path, clock) as exchange:
        assert exchange.replayed_records == 0  # the checkpoint at close covers everything
        assert state(exchange) == expected


def test_restart_without_close_replays_the_journal(tmp_path: Path, clock: Clock) -> None:
    stream = make_stream(11, 300)
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    for command in stream:
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended, 10)
    expected = state(exchange)
    exchange.journal.close()  # the process dies: no checkpoint, storage not flushed
    crash_releases_lock(exchange)
    with new_exchange(tmp_path, clock) as restored:
        assert restored.replayed_records == exchange.journal.appended  # the market records too
        assert state(restored) == expected
        for symbol in restored.markets:
            report = restored.storage.reconcile(restored.book(symbol))  # type: ignore[union-attr]
            assert report.ok, report


def test_a_tampered_journal_is_detected(tmp_path: Path, clock: Clock) -> None:
    segment, lines = crashed_journal_with_a_trade(tmp_path, clock)
    # Rewrite the last record consistently (valid checksum) but with a different quantity.
    import zlib

    record = json.loads(lines[-1][9:])
    record["quantity"] = "0.5"
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    lines[-1] = b"%08x " % zlib.crc32(body) + body + b"\n"
    segment.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match="diverged"):
        new_exchange(tmp_path, clock).open()


@settings(max_examples=15)
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.integers(0, 120), max_size=4),
    every=st.sampled_from([0, 7, 50]),
)
def test_restarts_anywhere_give_the_same_exchange(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cuts: list[int], every: int
) -> None:
    """Checkpoints and restarts (clean or not) at random points: same state as one uninterrupted run."""
    stream = make_stream(seed, 120)
    reference_clock = Clock()
    with new_exchange(tmp_path_factory.mktemp("reference"), reference_clock) as reference:
        for command in stream:
            apply(reference, reference_clock, command)
        expected = state(reference)
    directory = tmp_path_factory.mktemp("restarted")
    clock = Clock()
    exchange = new_exchange(directory, clock, checkpoint_every=every)
    exchange.open()
    for index, command in enumerate(stream):
        if index in cuts:
            exchange.wait_durable(exchange.journal.appended, 10)
            if index % 2:
                exchange.close()
            else:
                exchange.journal.close()
                exchange.storage.close()  # type: ignore[union-attr]
                crash_releases_lock(exchange)
            exchange = new_exchange(directory, clock, checkpoint_every=every)
            exchange.open()
        apply(exchange, clock, command)
    assert state(exchange) == expected
    for asset in ("USD", "BTC", "ETH"):
        deposits = sum(Decimal(c["amount"]) for c in stream if c["op"] == "deposit" and c["asset"] == asset)
        assert exchange.risk.total(asset) == deposits
    exchange.close()


def test_a_checkpoint_syncs_storage_commits_before_the_journal_is_dropped(
    tmp_path: Path, clock: Clock
) -> None:
    """Regression: SQLite with ``synchronous=NORMAL`` keeps commits in its write-ahead log, unsynced,
    until a WAL checkpoint; a power cut can lose them. A checkpoint drops the journal records that could
    rewrite those rows, so it must first put them in the database file. Simulated here by opening a copy
    of the database file without its WAL: every order placed before the checkpoint must be in it."""
    import shutil
    import sqlite3

    exchange = Exchange(tmp_path / "data", markets=MARKETS, clock=clock, fsync=True)
    with exchange:
        _fund(exchange, "alice", "bob")
        for n in range(20):
            exchange.place_order("alice", "BTC/USD", "buy", "0.1", price=str(100 + n))
        exchange.place_order("bob", "BTC/USD", "sell", "0.5", price="110")
        exchange.checkpoint()
        copy = tmp_path / "after-power-cut.db"
        shutil.copyfile(tmp_path / "data" / "manticore.db", copy)
        with sqlite3.connect(copy) as connection:
            orders = connection.execute("SELECT COUNT(*) FROM manticore_orders").fetchone()[0]
            trades = connection.execute("SELECT COUNT(*) FROM manticore_trades").fetchone()[0]
        assert orders == 21
        assert trades == 5


def test_a_checkpoint_waits_while_sqlite_readers_hold_the_log_and_a_restart_replays(
    tmp_path: Path, clock: Clock
) -> None:
    """When storage cannot sync its commits (a reader keeps an older snapshot of the write-ahead log),
    no checkpoint is written: the journal keeps the records, and a restart replays them."""
    import sqlite3

    data = tmp_path / "data"
    exchange = Exchange(data, markets=MARKETS, clock=clock, fsync=True)
    exchange.open()
    _fund(exchange, "alice")
    first = exchange.checkpoint()
    reader = sqlite3.connect(data / "manticore.db")
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM manticore_orders").fetchone()  # a snapshot, held open
    try:
        placed = exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="100")
        assert exchange.checkpoint() == first
    finally:
        reader.rollback()
        reader.close()
    exchange.journal.close()  # the process dies here: no checkpoint at close
    crash_releases_lock(exchange)
    with Exchange(data, markets=MARKETS, clock=clock, fsync=True) as restarted:
        assert restarted.replayed_records == 1
        assert restarted.get_order("alice", placed.order_id) is not None


def test_the_rate_limit_window_survives_a_restart_that_replays_the_journal(
    tmp_path: Path, clock: Clock
) -> None:
    """Regression: replay skips risk's checks, so it did not count the replayed places and modifies, and a
    user could send a full window's worth of orders again right after a restart."""
    from manticore_risk import RiskLimits

    limits = RiskLimits(rate_limit_orders=3, rate_limit_window=60)
    exchange = new_exchange(tmp_path, clock, risk_limits=limits)
    exchange.open()
    _fund(exchange, "alice")
    first = exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="100")
    exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="101")
    clock.now += 1
    exchange.modify_order("alice", first.order_id, new_price="99")  # the third counted command
    with pytest.raises(OrderRejected) as refused:
        exchange.place_order("alice", "BTC/USD", "buy", "0.1", price="102")
    assert refused.value.code == "rate_limited"
    exchange.wait_durable(exchange.journal.appended, 10)
    exchange.journal.close()  # the process dies: no checkpoint
    crash_releases_lock(exchange)
    clock.now += 1
    with new_exchange(tmp_path, clock, risk_limits=limits) as restarted:
        assert restarted.replayed_records > 0
        with pytest.raises(OrderRejected) as again:
            restarted.place_order("alice", "BTC/USD", "buy", "0.1", price="102")
        assert again.value.code == "rate_limited"
        clock.now += 60  # the window has passed
        restarted.place_order("alice", "BTC/USD", "buy", "0.1", price="102")
