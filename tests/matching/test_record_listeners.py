"""Fill and trade listeners (``Exchange.add_fill_listener``, ``add_trade_listener``) read records: the
values of every durable fill's ``fill`` message and every trade's ``trade`` message, the same as those
messages say, in journal order, before the round's waiters are released; with only record listeners
no fill or trade message is built. The Binance fill ledger and candles fed by records hold what they
held fed by messages."""

from __future__ import annotations

import contextlib
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_api.binance.fill_ledger import FillLedger
from manticore_api.binance.klines import Klines
from manticore_api.binance.markets import BinanceMarkets
from manticore_matching import Demand, ExchangeError, ServiceUnavailable
from manticore_matching.feed import fee_text
from manticore_matching.journal import JournalClosed
from tests.matching.exchange_streams import MARKETS, START, USERS, Clock, new_exchange

_orders = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(("BTC/USD", "ETH/USD")),
        st.sampled_from(("buy", "sell")),
        st.integers(-6, 6),
        st.integers(1, 30),
    ),
    min_size=1,
    max_size=30,
)


def _run(
    orders: list[tuple[str, str, str, int, int]], data_dir: Path
) -> tuple[list[Any], list[Any], list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """The orders on one exchange with a fill and a trade listener and a message listener of every
    fill and trade; what each got, the order in which the listeners were called, and what a listener
    of nothing but one user's private messages got."""
    fills: list[Any] = []
    trades: list[Any] = []
    messages: list[dict[str, Any]] = []
    calls: list[str] = []
    other: list[dict[str, Any]] = []
    clock = Clock(START)
    with new_exchange(data_dir, clock) as exchange:
        for user in USERS:
            exchange.deposit(user, "USD", "1000000")
            exchange.deposit(user, "BTC", "1000")
            exchange.deposit(user, "ETH", "1000")

        def on_fills(records: list[tuple[Any, ...]]) -> None:
            calls.append("fills")
            fills.extend(records)

        def on_trades(records: list[tuple[Any, ...]]) -> None:
            calls.append("trades")
            trades.extend(records)

        exchange.add_fill_listener(on_fills)
        exchange.add_trade_listener(on_trades)
        exchange.add_listener(messages.extend, Demand(trades=None, fills=True))
        exchange.add_listener(other.extend, Demand(users=["nobody"]))
        exchange.add_round_listener(lambda _position, _batches: calls.append("round"))
        for user, symbol, side, ticks, lots in orders:
            clock.now += 0.25
            price = str(Decimal(100) + Decimal("0.5") * ticks if symbol == "BTC/USD" else Decimal(50) + ticks)
            quantity = str(Decimal("0.1") * lots if symbol == "BTC/USD" else Decimal("0.01") * lots)
            with contextlib.suppress(ExchangeError):
                exchange.place_order(user, symbol, side, quantity, price=price)
        exchange.wait_durable(exchange.journal.appended)
    return fills, trades, messages, calls, other


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=_orders)
def test_records_are_the_messages_values(orders: list[tuple[str, str, str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        fills, trades, messages, calls, _ = _run(orders, Path(directory))
    fill_messages = [m for m in messages if m["type"] == "fill"]
    trade_messages = [m for m in messages if m["type"] == "trade"]
    assert [
        (user, order, trade, price, quantity, fee_text(fee))
        for user, order, trade, price, quantity, fee in fills
    ] == [
        (m["user_id"], m["order_id"], m["trade_id"], m["price"], m["quantity"], m["fee"])
        for m in fill_messages
    ]
    assert trades == [
        (
            m["symbol"],
            m["price"],
            m["quantity"],
            m["timestamp"],
            m["taker_side"],
            m["sequence"],
            m["trade_id"],
        )
        for m in trade_messages
    ]
    assert len(fills) == 2 * len(trades)
    # Each round's records come before its round listener, never as an empty list.
    for index, call in enumerate(calls):
        if call in ("fills", "trades"):
            assert "round" in calls[index + 1 :]


def test_record_listeners_alone_build_no_message(tmp_path: Path) -> None:
    clock = Clock(START)
    fills: list[Any] = []
    trades: list[Any] = []
    other: list[dict[str, Any]] = []
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("alice", "USD", "100000")
        exchange.deposit("bob", "BTC", "10")
        exchange.add_fill_listener(fills.extend)
        exchange.add_trade_listener(trades.extend)
        exchange.add_listener(other.extend, Demand(users=["carol"]))
        exchange.place_order("alice", "BTC/USD", "buy", "1", price="100")
        receipt = exchange.place_order("bob", "BTC/USD", "sell", "0.5", price="100")
        exchange.wait_durable(receipt.position)
        exchange.remove_fill_listener(fills.extend)
        exchange.remove_trade_listener(trades.extend)
        assert exchange._release.fill_listeners == [] and exchange._release.trade_listeners == []
        exchange.place_order("alice", "BTC/USD", "buy", "1", price="100")
        receipt = exchange.place_order("bob", "BTC/USD", "sell", "0.5", price="100")
        exchange.wait_durable(receipt.position)
    assert other == []
    assert len(fills) == 2 and len(trades) == 1  # the second trade came after the removal
    assert trades[0][:3] == ("BTC/USD", "100.0", "0.5")
    assert {fill[0] for fill in fills} == {"alice", "bob"}


@settings(max_examples=15, deadline=None)
@given(orders=_orders)
def test_ledger_and_candles_from_records_equal_from_messages(
    orders: list[tuple[str, str, str, int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        fills, trades, messages, _, _ = _run(orders, Path(directory))
    by_records, by_messages = FillLedger(), FillLedger()
    by_records.on_fills(fills)
    by_messages.on_messages(messages)
    assert by_records._quote == by_messages._quote
    assert by_records._fills == by_messages._fills
    assert [str(fill.fee) for fills_ in by_records._fills.values() for fill in fills_] == [
        str(fill.fee) for fills_ in by_messages._fills.values() for fill in fills_
    ]
    candles_records, candles_messages = Klines(_markets()), Klines(_markets())
    candles_records.on_trades(trades)
    candles_messages.on_messages(messages)
    assert {key: series.candles for key, series in candles_records._series.items()} == {
        key: series.candles for key, series in candles_messages._series.items()
    }
    assert len(candles_records._series) == (16 * len({t[0] for t in trades}))
    assert candles_records._last_sequence == candles_messages._last_sequence


def _markets() -> BinanceMarkets:
    class _Source:
        def __init__(self) -> None:
            self.markets = {config.symbol: config for config in MARKETS}

    return BinanceMarkets(_Source())


def test_a_command_the_journal_refuses_leaves_no_records(tmp_path: Path) -> None:
    clock = Clock(START)
    fills: list[Any] = []
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("alice", "USD", "100000")
        exchange.deposit("bob", "BTC", "10")
        exchange.add_fill_listener(fills.extend)
        exchange.add_trade_listener(fills.extend)
        exchange.place_order("alice", "BTC/USD", "buy", "1", price="100")
        exchange.wait_durable(exchange.journal.appended)

        def refuse(record: dict[str, Any]) -> int:
            raise JournalClosed("the journal is closed")

        exchange.journal.append = refuse  # type: ignore[method-assign]
        with pytest.raises(ServiceUnavailable):
            exchange.place_order("bob", "BTC/USD", "sell", "0.5", price="100")
        assert not exchange._release.records
        assert not exchange._release.unreleased
    assert fills == []
