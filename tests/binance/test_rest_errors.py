"""The Manticore -> Binance error mapping, code by code (every risk rejection code, order lookups, rate
limits, the journal, auth errors), and Binance's number formats for a market."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import pytest

from manticore_api.binance.errors import from_auth_error, from_exchange_error
from manticore_api.binance.markets import BinanceMarkets, decimals
from manticore_auth import AuthError
from manticore_matching import (
    DEFAULT_MARKETS,
    InvalidCommand,
    MarketConfig,
    OrderNotFound,
    OrderRejected,
    ServiceUnavailable,
    UnknownMarket,
)
from manticore_risk.decisions import CODES


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OrderRejected("x", "insufficient_balance"),
            (-2010, "Account has insufficient balance for requested action.", 400),
        ),
        (OrderRejected("x", "max_quantity"), (-1013, "Filter failure: LOT_SIZE", 400)),
        (OrderRejected("x", "max_notional"), (-1013, "Filter failure: NOTIONAL", 400)),
        (OrderRejected("x", "max_open_orders"), (-2010, "Filter failure: MAX_NUM_ORDERS", 400)),
        (OrderRejected("x", "price_band"), (-2010, "Filter failure: PERCENT_PRICE_BY_SIDE", 400)),
        (OrderRejected("x", "unsupported_order"), (-1014, "Unsupported order combination.", 400)),
        (InvalidCommand("dup", "duplicate_client_order_id"), (-2010, "Duplicate order sent.", 400)),
        (UnknownMarket("nope"), (-1121, "Invalid symbol.", 400)),
        (OrderNotFound("gone"), (-2013, "Order does not exist.", 400)),
        (
            ServiceUnavailable("down"),
            (-1001, "Internal error; unable to process your request. Please try again.", 503),
        ),
        (InvalidCommand("price must be positive"), (-1013, "price must be positive", 400)),
    ],
)
def test_exchange_errors(error: Exception, expected: tuple[int, str, int]) -> None:
    mapped = from_exchange_error(error)
    assert (mapped.code, mapped.msg, mapped.status) == expected


def test_every_risk_code_is_a_client_error() -> None:
    for code in CODES:
        mapped = from_exchange_error(OrderRejected("reason", code))
        assert mapped.code < 0 and 400 <= mapped.status < 500, code


def test_unknown_order_on_cancel_and_rate_limits() -> None:
    assert from_exchange_error(OrderNotFound("gone"), cancelling=True).code == -2011
    limited = from_exchange_error(OrderRejected("too many orders", "rate_limited"))
    assert (limited.code, limited.status, limited.retry_after) == (-1003, 429, 1)

    slowed = from_exchange_error(OrderRejected("too many orders", "rate_limited", retry_after=2.2))
    assert (slowed.code, slowed.status, slowed.retry_after) == (-1003, 429, 3)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("bad_signature", (-1022, 400)),
        ("stale_timestamp", (-1021, 400)),
        ("malformed", (-2014, 401)),
        ("unknown_key", (-2015, 401)),
        ("revoked_key", (-2015, 401)),
        ("missing_credentials", (-2015, 401)),
    ],
)
def test_auth_errors(code: str, expected: tuple[int, int]) -> None:
    mapped = from_auth_error(AuthError(code))
    assert (mapped.code, mapped.status) == expected


class _Exchange:
    markets: ClassVar[dict[str, MarketConfig]] = {config.symbol: config for config in DEFAULT_MARKETS}


def test_market_formats_and_symbols() -> None:
    markets = BinanceMarkets(_Exchange())
    assert markets.native("btcusd") == "BTC/USD" and markets.binance_symbol("ETH/BTC") == "ETHBTC"
    assert markets.price("BTC/USD", "30000.1") == "30000.10"
    assert markets.qty("BTC/USD", Decimal("0.01")) == "0.01000"
    assert markets.quote("ETH/BTC", "0.5") == "0.500000000"  # 5 tick decimals + 4 lot decimals
    assert [decimals(Decimal(step)) for step in ("0.01", "1", "10", "0.00001", "2.50")] == [2, 0, 0, 5, 1]
    with pytest.raises(Exception) as caught:
        markets.native("BTC/USD")
    assert getattr(caught.value, "code", None) == -1121
