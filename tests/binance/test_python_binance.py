"""python-binance 1.0.37 (sync Client and AsyncClient) against a real ``manticore serve``: its signing
(sorted parameters, form bodies on POST and DELETE), market data, account, orders and errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance.async_client import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException

from tests.binance.rest_support import Trader, Venue, start_venue


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    yield from start_venue(tmp_path_factory.mktemp("python-binance"))


def local_client(venue: Venue, trader: Trader) -> Client:
    class LocalClient(Client):
        API_URL = f"{venue.url}/binance/api"

    return LocalClient(trader.api_key, trader.api_secret)  # its constructor pings the server


def test_market_data_account_and_orders(venue: Venue) -> None:
    alice, bob = local_client(venue, venue.alice), local_client(venue, venue.bob)
    assert alice.get_server_time()["serverTime"] > 0
    info = alice.get_symbol_info("BTCUSD")
    assert info is not None and info["baseAsset"] == "BTC" and info["quoteAsset"] == "USD"
    tick = next(f for f in info["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"]
    assert Decimal(tick) == Decimal("0.01")

    sell = alice.order_limit_sell(
        symbol="BTCUSD", quantity="0.3", price="30000", newClientOrderId="pb-sell-1"
    )
    assert sell["status"] == "NEW" and sell["side"] == "SELL" and isinstance(sell["orderId"], int)
    buy = bob.order_market_buy(symbol="BTCUSD", quantity="0.1")
    assert buy["status"] == "FILLED" and Decimal(buy["cummulativeQuoteQty"]) == Decimal("3000")
    assert [Decimal(fill["price"]) for fill in buy["fills"]] == [Decimal("30000")]

    book = alice.get_order_book(symbol="BTCUSD")
    assert book["asks"] == [["30000.00", "0.20000"]]
    assert isinstance(book["lastUpdateId"], int)
    assert alice.get_recent_trades(symbol="BTCUSD")[-1]["price"] == "30000.00"
    assert alice.get_aggregate_trades(symbol="BTCUSD")[-1]["q"] == "0.10000"
    assert alice.get_klines(symbol="BTCUSD", interval=Client.KLINE_INTERVAL_1MINUTE)[-1][4] == "30000.00"
    assert alice.get_ticker(symbol="BTCUSD")["lastPrice"] == "30000.00"
    assert alice.get_symbol_ticker(symbol="BTCUSD") == {"symbol": "BTCUSD", "price": "30000.00"}
    assert alice.get_orderbook_ticker(symbol="BTCUSD")["askPrice"] == "30000.00"
    assert alice.get_avg_price(symbol="BTCUSD")["price"] == "30000.00"
    assert {ticker["symbol"] for ticker in alice.get_all_tickers()} == {"BTCUSD", "ETHUSD", "ETHBTC"}

    native = venue.alice.balances()
    assert alice.get_asset_balance(asset="BTC") == {
        "asset": "BTC",
        "free": format(Decimal(native["BTC"]["available"]).normalize(), "f"),
        "locked": format(Decimal(native["BTC"]["held"]).normalize(), "f"),
    }

    order = alice.get_order(symbol="BTCUSD", orderId=sell["orderId"])
    assert order["status"] == "PARTIALLY_FILLED" and order["executedQty"] == "0.10000"
    assert [o["orderId"] for o in alice.get_open_orders(symbol="BTCUSD")] == [sell["orderId"]]
    assert sell["orderId"] in [o["orderId"] for o in alice.get_all_orders(symbol="BTCUSD")]
    trades = alice.get_my_trades(symbol="BTCUSD")
    assert trades[-1]["orderId"] == sell["orderId"] and trades[-1]["isMaker"] is True
    assert (
        alice.create_test_order(
            symbol="BTCUSD", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29000"
        )
        == {}
    )

    cancelled = alice.cancel_order(symbol="BTCUSD", orderId=sell["orderId"])  # a DELETE with a form body
    assert cancelled["status"] == "CANCELED" and cancelled["orderId"] == sell["orderId"]
    assert alice.get_open_orders(symbol="BTCUSD") == []


def test_errors(venue: Venue) -> None:
    alice = local_client(venue, venue.alice)
    cases: list[tuple[Any, int]] = [
        (lambda: alice.get_order(symbol="BTCUSD", orderId=424242), -2013),
        (lambda: alice.cancel_order(symbol="BTCUSD", orderId=424242), -2011),
        (lambda: alice.get_order_book(symbol="NOPE"), -1121),
        (lambda: alice.order_limit_buy(symbol="BTCUSD", quantity="1000", price="29000"), -2010),
        (lambda: alice.order_limit_buy(symbol="BTCUSD", quantity="0.1", price="29000.001"), -1013),
    ]
    for call, code in cases:
        with pytest.raises(BinanceAPIException) as caught:
            call()
        assert caught.value.code == code and caught.value.status_code == 400

    class WrongSecret(Client):
        API_URL = f"{venue.url}/binance/api"

    with pytest.raises(BinanceAPIException) as caught:
        WrongSecret(venue.alice.api_key, "wrong").get_account()
    assert caught.value.code == -1022


def test_async_client(venue: Venue) -> None:
    class LocalAsyncClient(AsyncClient):
        API_URL = f"{venue.url}/binance/api"

    async def run() -> None:
        client = await LocalAsyncClient.create(venue.bob.api_key, venue.bob.api_secret)
        try:
            placed = await client.order_limit_buy(symbol="ETHUSD", quantity="0.5", price="2000")
            assert placed["status"] == "NEW"
            found = await client.get_order(symbol="ETHUSD", orderId=placed["orderId"])
            assert found["origQty"] == "0.5000"
            account = await client.get_account()
            usd = next(row for row in account["balances"] if row["asset"] == "USD")
            assert Decimal(usd["locked"]) == Decimal(venue.bob.balances()["USD"]["held"])
            cancelled = await client.cancel_order(symbol="ETHUSD", orderId=placed["orderId"])
            assert cancelled["status"] == "CANCELED"
        finally:
            await client.close_connection()

    asyncio.run(run())
