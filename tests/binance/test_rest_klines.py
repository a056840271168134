"""Klines against a reference model (hypothesis): any sequence of trades gives, for every Binance interval,
the candles that grouping the trades by interval gives; window queries; calendar alignment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from hypothesis import given
from hypothesis import strategies as st

from manticore_api.binance.klines import INTERVALS, Klines, interval_close, interval_open
from manticore_api.binance.markets import BinanceMarkets
from manticore_matching import DEFAULT_MARKETS, MarketConfig


class _Markets:
    markets: ClassVar[dict[str, MarketConfig]] = {config.symbol: config for config in DEFAULT_MARKETS}


MARKETS = BinanceMarkets(_Markets())
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a Thursday

trades = st.lists(
    st.tuples(
        st.integers(0, 40 * 86_400_000),  # ms after T0 (over a month boundary)
        st.integers(1, 5_000_000),  # price in ticks
        st.integers(1, 10_000),  # quantity in lots
        st.booleans(),  # taker bought
    ),
    min_size=1,
    max_size=40,
).map(lambda rows: sorted(rows, key=lambda row: row[0]))


@given(trades)
def test_candles_equal_the_grouped_trades(rows: list[tuple[int, int, int, bool]]) -> None:
    klines = Klines(MARKETS)
    for sequence, (offset, ticks, lots, bought) in enumerate(rows, start=1):
        price, qty = Decimal(ticks) / 100, Decimal(lots) / 100_000
        klines.on_trade("BTC/USD", price, qty, (T0 + offset) / 1000, "buy" if bought else "sell", sequence)
        klines.on_trade("BTC/USD", price, qty, (T0 + offset) / 1000, "buy", sequence)  # a repeat: ignored
    for interval in INTERVALS:
        groups: dict[int, list[tuple[Decimal, Decimal, bool]]] = {}
        for offset, ticks, lots, bought in rows:
            opened = interval_open(interval, T0 + offset)
            groups.setdefault(opened, []).append((Decimal(ticks) / 100, Decimal(lots) / 100_000, bought))
        expected = []
        for opened in sorted(groups):
            group = groups[opened]
            prices = [price for price, _, _ in group]
            expected.append(
                [
                    opened,
                    f"{prices[0]:.2f}",
                    f"{max(prices):.2f}",
                    f"{min(prices):.2f}",
                    f"{prices[-1]:.2f}",
                    f"{sum(qty for _, qty, _ in group):.5f}",
                    interval_close(interval, opened),
                    f"{sum(price * qty for price, qty, _ in group):.7f}",
                    len(group),
                    f"{sum((qty for _, qty, b in group if b), Decimal(0)):.5f}",
                    f"{sum((price * qty for price, qty, b in group if b), Decimal(0)):.7f}",
                    "0",
                ]
            )
        assert klines.klines("BTC/USD", interval, limit=1000) == expected, interval
        assert klines.klines("BTC/USD", interval, limit=2) == expected[-2:]
        first = expected[0][0]
        assert klines.klines("BTC/USD", interval, start_ms=first, limit=1) == expected[:1]
        assert klines.klines("BTC/USD", interval, end_ms=first, limit=5) == expected[:1]


def test_calendar_alignment() -> None:
    def ms(*parts: int) -> int:
        return int(dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp() * 1000)

    moment = ms(2026, 3, 18, 13, 47, 5)  # a Wednesday
    assert interval_open("1w", moment) == ms(2026, 3, 16)  # weeks open on Monday 00:00 UTC
    assert interval_open("1M", moment) == ms(2026, 3, 1)
    assert interval_close("1M", ms(2026, 12, 1)) == ms(2027, 1, 1) - 1
    assert interval_open("4h", moment) == ms(2026, 3, 18, 12)
    assert interval_open("1s", moment + 999) == moment


def test_current_candle_of_a_quiet_interval_carries_the_last_close() -> None:
    klines = Klines(MARKETS)
    assert klines.current("BTC/USD", "1m", T0) is None
    klines.on_trade("BTC/USD", "30000.5", "0.1", T0 / 1000, "buy", 1)
    row = klines.current("BTC/USD", "1m", T0 + 5 * 60_000)
    assert row is not None
    assert row[0] == T0 + 5 * 60_000 and row[1:6] == ["30000.50"] * 4 + ["0.00000"] and row[8] == 0
    same = klines.current("BTC/USD", "1m", T0 + 1)
    assert same is not None and same[5] == "0.10000"
