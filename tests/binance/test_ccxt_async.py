"""ccxt.async_support against a real ``manticore serve``, and freqtrade-style use: a bot that builds its
ccxt client from a JSON config (name, key, secret and a ``ccxt_config`` dict merged into the constructor,
as freqtrade does) trades with no code change and no patching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from tests.binance.rest_support import Venue, ccxt_config, start_venue

SYMBOL = "ETH/USD"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    yield from start_venue(tmp_path_factory.mktemp("ccxt-async"))


def test_async_client_trades_and_reads(venue: Venue) -> None:
    async def run() -> None:
        alice = ccxt_async.binance(ccxt_config(venue.url, venue.alice))
        bob = ccxt_async.binance(ccxt_config(venue.url, venue.bob))
        try:
            await asyncio.gather(alice.load_markets(), bob.load_markets())
            sell = await alice.create_order(SYMBOL, "limit", "sell", 2, 2000)
            buy = await bob.create_order(SYMBOL, "market", "buy", 0.5)
            assert buy["status"] == "closed" and buy["average"] == 2000.0
            book, trades, ticker, candles = await asyncio.gather(
                alice.fetch_order_book(SYMBOL),
                alice.fetch_trades(SYMBOL),
                alice.fetch_ticker(SYMBOL),
                alice.fetch_ohlcv(SYMBOL, "5m"),
            )
            assert book["asks"] == [[2000.0, 1.5]]
            assert trades[-1]["amount"] == 0.5 and ticker["last"] == 2000.0 and candles[-1][5] == 0.5
            order = await alice.fetch_order(sell["id"], SYMBOL)
            assert order["filled"] == 0.5 and order["status"] == "open"
            balance = await bob.fetch_balance()
            native = venue.bob.balances()
            assert Decimal(str(balance["ETH"]["free"])) == Decimal(native["ETH"]["available"])
            canceled = await alice.cancel_order(sell["id"], SYMBOL)
            assert canceled["status"] == "canceled"
            with pytest.raises(ccxt.OrderNotFound):
                await alice.cancel_order(sell["id"], SYMBOL)
            with pytest.raises(ccxt.BadSymbol):
                await alice.public_get_ticker_price({"symbol": "XYZ"})
        finally:
            await asyncio.gather(alice.close(), bob.close())

    asyncio.run(run())


FREQTRADE_STYLE_CONFIG = """
{
    "exchange": {
        "name": "binance",
        "key": "%(key)s",
        "secret": "%(secret)s",
        "ccxt_config": %(ccxt)s,
        "ccxt_async_config": %(ccxt)s
    }
}
"""


def test_freqtrade_style_constructor_only(venue: Venue) -> None:
    """The bot only reads a config file; everything Manticore needs is in the constructor dict."""
    settings = {key: value for key, value in ccxt_config(venue.url).items()}
    text = FREQTRADE_STYLE_CONFIG % {
        "key": venue.alice.api_key,
        "secret": venue.alice.api_secret,
        "ccxt": json.dumps(settings),
    }
    exchange_config = json.loads(text)["exchange"]

    def build(module: Any, extra: dict[str, Any]) -> Any:
        # what freqtrade's Exchange._init_ccxt does: credentials + enableRateLimit + the user's ccxt dict
        constructor = {
            "apiKey": exchange_config["key"],
            "secret": exchange_config["secret"],
            "enableRateLimit": True,
            **extra,
        }
        return getattr(module, exchange_config["name"])(constructor)

    sync_api = build(ccxt, exchange_config["ccxt_config"])
    markets = sync_api.load_markets()
    assert "BTC/USD" in markets and sync_api.markets["BTC/USD"]["active"]
    placed = sync_api.create_limit_buy_order("BTC/USD", 0.01, 25000)
    assert sync_api.fetch_order(placed["id"], "BTC/USD")["status"] == "open"
    assert sync_api.fetch_balance()["USD"]["used"] > 0

    async def run() -> None:
        async_api = build(ccxt_async, exchange_config["ccxt_async_config"])
        try:
            await async_api.load_markets()
            assert [o["id"] for o in await async_api.fetch_open_orders("BTC/USD")] == [placed["id"]]
            await async_api.cancel_order(placed["id"], "BTC/USD")
            assert await async_api.fetch_open_orders() == []
        finally:
            await async_api.close()

    asyncio.run(run())
