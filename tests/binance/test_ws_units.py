"""Unit tests of the WebSocket surface's pure parts: the durable book mirror and stream names."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_api.binance.book_mirror import BookMirror, MirrorSide
from manticore_api.binance.errors import BinanceError
from manticore_api.binance.markets import BinanceMarkets
from manticore_api.binance.stream_names import StreamSpec, parse_stream
from manticore_matching import DEFAULT_MARKETS, MarketConfig


@dataclass
class _Markets:
    """The one thing BinanceMarkets reads: the exchange's ``markets`` mapping (real market configs)."""

    markets: dict[str, MarketConfig] = field(
        default_factory=lambda: {config.symbol: config for config in DEFAULT_MARKETS}
    )


_PRICES = st.one_of(
    st.integers(min_value=1, max_value=60).map(lambda n: f"{Decimal(n) / 4:.2f}"),
    st.integers(min_value=1, max_value=60).map(lambda n: str(Decimal(n) / 4)),
    st.sampled_from(["1E+1", "10", "10.000", " 7.5 ", "1_0", "0.25e1"]),
)
_QUANTITIES = st.one_of(
    st.sampled_from(["0", "0.000", "000", "0.", ".0", "0E+3", "-0", " 0 ", "1", "2.5", "0.125", "1E-9"]),
    st.sampled_from(["00.10", "10", "1_0", "0.0001", "+1", "٣"]),
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{0,4})?\Z"),
)


@settings(max_examples=300)
@given(
    descending=st.booleans(),
    operations=st.lists(st.tuples(_PRICES, _QUANTITIES), max_size=60),
    count=st.integers(min_value=1, max_value=30),
)
def test_mirror_side_matches_a_sorted_reference(
    descending: bool, operations: list[tuple[str, str]], count: int
) -> None:
    side = MirrorSide(descending)
    reference: dict[Decimal, str] = {}
    for price, quantity in operations:
        side.set(price, quantity)
        if Decimal(quantity) == 0:
            reference.pop(Decimal(price), None)
        else:
            reference[Decimal(price)] = quantity
        ordered = sorted(reference.items(), reverse=descending)
        assert side.best() == (ordered[0] if ordered else None)
        assert side.levels == reference
    assert side.top(count) == sorted(reference.items(), reverse=descending)[:count]


def test_mirror_applies_contiguous_diffs_and_refuses_a_gap() -> None:
    mirror = BookMirror()
    mirror.load(
        {
            "sequence": 7,
            "bids": [{"price": "99.00", "quantity": "1.0"}],
            "asks": [{"price": "101.00", "quantity": "2.0"}],
        }
    )
    diff = {
        "first_sequence": 8,
        "last_sequence": 10,
        "bids": [{"price": "99.00", "quantity": "0"}, {"price": "100.00", "quantity": "0.5"}],
        "asks": [],
    }
    assert mirror.apply(diff)
    assert mirror.sequence == 10
    assert mirror.bids.best() == (Decimal("100.00"), "0.5")
    gap = {
        "first_sequence": 12,
        "last_sequence": 12,
        "bids": [],
        "asks": [{"price": "100.5", "quantity": "1"}],
    }
    assert not mirror.apply(gap)
    assert mirror.sequence == 10 and mirror.asks.best() == (Decimal("101.00"), "2.0")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("btcusd@depth", StreamSpec("btcusd@depth", "depth", "BTC/USD", 1000)),
        ("BTCUSD@depth@100ms", StreamSpec("btcusd@depth@100ms", "depth", "BTC/USD", 100)),
        ("ethusd@depth@1000ms", StreamSpec("ethusd@depth@1000ms", "depth", "ETH/USD", 1000)),
        ("ethbtc@depth20@100ms", StreamSpec("ethbtc@depth20@100ms", "partial", "ETH/BTC", 100, 20)),
        ("btcusd@depth5", StreamSpec("btcusd@depth5", "partial", "BTC/USD", 1000, 5)),
        ("btcusd@trade", StreamSpec("btcusd@trade", "trade", "BTC/USD")),
        ("btcusd@aggTrade", StreamSpec("btcusd@aggTrade", "aggTrade", "BTC/USD")),
        ("btcusd@kline_1M", StreamSpec("btcusd@kline_1M", "kline", "BTC/USD", interval="1M")),
        ("btcusd@kline_1m", StreamSpec("btcusd@kline_1m", "kline", "BTC/USD", interval="1m")),
        ("btcusd@miniTicker", StreamSpec("btcusd@miniTicker", "miniTicker", "BTC/USD")),
        ("btcusd@bookTicker", StreamSpec("btcusd@bookTicker", "bookTicker", "BTC/USD")),
        ("!miniTicker@arr", StreamSpec("!miniTicker@arr", "!miniTicker@arr")),
        ("!ticker@arr", StreamSpec("!ticker@arr", "!ticker@arr")),
    ],
)
def test_stream_names(name: str, expected: StreamSpec) -> None:
    assert parse_stream(name, BinanceMarkets(_Markets())) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "btcusd",
        "@trade",
        "btcusd@depth7",
        "btcusd@depth@250ms",
        "btcusd@kline_2m",
        "btcusd@aggtrade",
        "xrpusd@trade",
        "btc/usd@trade",
        "!bookTicker@arr",
        "btcusd@trade" + "x" * 80,
        17,
        None,
    ],
)
def test_bad_stream_names_are_refused_with_code_2(name: object) -> None:
    with pytest.raises(BinanceError) as refused:
        parse_stream(name, BinanceMarkets(_Markets()))
    assert refused.value.code == 2
