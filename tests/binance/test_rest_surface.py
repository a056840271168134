"""The Binance REST surface over raw HTTP against a real ``manticore serve``: public endpoints, the signing
rules (query, body, both; recvWindow), every error's code and HTTP status, rate limits (429 with
Retry-After), depth's ``lastUpdateId`` against the native book sequence, and candles that survive a
restart."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import ccxt
import httpx
import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from manticore_api.binance.klines import INTERVALS
from tests.binance.rest_support import Trader, Venue, ccxt_config, start_venue

API = "/binance/api/v3"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    yield from start_venue(tmp_path_factory.mktemp("rest-surface"))


def signed(
    http: httpx.Client,
    trader: Trader,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    where: str = "query",
    timestamp: int | None = None,
    secret: str | None = None,
) -> httpx.Response:
    """A Binance SIGNED request: ``where`` puts the parameters in the query, the form body, or splits
    them (``both``: the first half in the query)."""
    params = {**params, "timestamp": timestamp if timestamp is not None else int(time.time() * 1000)}
    items = list(params.items())
    if where == "both":
        query, body = urlencode(items[: len(items) // 2]), urlencode(items[len(items) // 2 :])
    elif where == "body":
        query, body = "", urlencode(items)
    else:
        query, body = urlencode(items), ""
    key = (secret or trader.api_secret).encode()
    signature = hmac.new(key, (query + body).encode(), hashlib.sha256).hexdigest()
    if body:
        body += f"&signature={signature}"
    else:
        query += f"&signature={signature}"
    headers = {"X-MBX-APIKEY": trader.api_key, "Content-Type": "application/x-www-form-urlencoded"}
    return http.request(method, f"{API}{path}?{query}", content=body.encode(), headers=headers)


def error_of(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


def test_public_endpoints(venue: Venue) -> None:
    http = venue.http
    assert http.get(f"{API}/ping").json() == {}
    assert abs(http.get(f"{API}/time").json()["serverTime"] - time.time() * 1000) < 5000
    info = http.get(f"{API}/exchangeInfo").json()
    btc = next(symbol for symbol in info["symbols"] if symbol["symbol"] == "BTCUSD")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == filters["LOT_SIZE"]["minQty"] == "0.00001"
    assert filters["MARKET_LOT_SIZE"]["stepSize"] == "0.00001"
    assert Decimal(filters["NOTIONAL"]["minNotional"]) == Decimal("0.0000001")
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == 500
    assert info["rateLimits"] == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 100}
    ]
    assert (
        http.get(f"{API}/exchangeInfo", params={"symbol": "ethbtc"}).json()["symbols"][0]["symbol"]
        == "ETHBTC"
    )
    assert http.get(f"{API}/exchangeInfo", params={"symbols": '["ETHUSD","BTCUSD"]'}).status_code == 200

    for path, params, status, code in [
        ("/depth", {"symbol": "NOPE"}, 400, -1121),
        ("/depth", {}, 400, -1102),
        ("/depth", {"symbol": "BTCUSD", "limit": "x"}, 400, -1100),
        ("/klines", {"symbol": "BTCUSD", "interval": "2m"}, 400, -1120),
        ("/ticker/24hr", {"symbols": "not-json"}, 400, -1100),
        ("/ticker/24hr", {"symbol": "BTCUSD", "symbols": '["BTCUSD"]'}, 400, -1101),
        ("/nothing/here", {}, 404, -1000),
    ]:
        assert error_of(http.get(f"{API}{path}", params=params)) == (status, code), path
    for path in ("/binance/sapi/v1/capital/config/getall", "/binance/fapi/v1/exchangeInfo"):
        assert error_of(http.get(path)) == (404, -1000), path


def test_depth_follows_the_native_book_sequence(venue: Venue) -> None:
    venue.alice.native.post(
        "/api/orders", {"symbol": "ETH/USD", "side": "sell", "quantity": "1", "price": "2000"}
    )
    venue.bob.native.post(
        "/api/orders", {"symbol": "ETH/USD", "side": "buy", "quantity": "2", "price": "1990"}
    )
    depth = venue.http.get(f"{API}/depth", params={"symbol": "ETHUSD", "limit": 1000}).json()
    native = venue.http.get("/api/orderbook", params={"symbol": "ETH/USD", "depth": 0}).json()
    assert depth["lastUpdateId"] == native["sequence"]
    assert depth["bids"] == [["1990.00", "2.0000"]] and depth["asks"] == [["2000.00", "1.0000"]]


def test_signing_places_and_errors(venue: Venue) -> None:
    http, alice = venue.http, venue.alice
    order = {
        "symbol": "BTCUSD",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "20000",
        "newOrderRespType": "RESULT",
    }
    for where in ("query", "body", "both"):
        response = signed(http, alice, "POST", "/order", order, where=where)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "NEW" and "fills" not in response.json()
    ack = signed(http, alice, "POST", "/order", {**order, "newOrderRespType": "ACK"}).json()
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert len(signed(http, alice, "GET", "/openOrders", {"symbol": "BTCUSD"}).json()) == 4

    now = int(time.time() * 1000)
    cases = [
        (signed(http, alice, "GET", "/account", {}, timestamp=now - 6000), (400, -1021)),
        (signed(http, alice, "GET", "/account", {"recvWindow": 10000}, timestamp=now - 6000), (200, None)),
        (signed(http, alice, "GET", "/account", {}, timestamp=now + 5000), (400, -1021)),
        (signed(http, alice, "GET", "/account", {"recvWindow": 60001}), (400, -1131)),
        (signed(http, alice, "GET", "/account", {}, secret="wrong"), (400, -1022)),
        (http.get(f"{API}/account", params={"timestamp": now, "signature": "ab"}), (401, -2014)),
        (
            http.get(f"{API}/account", params={"timestamp": now}, headers={"X-MBX-APIKEY": alice.api_key}),
            (400, -1102),
        ),
        (signed(http, alice, "POST", "/order", {**order, "type": "NOPE"}), (400, -1116)),
        (signed(http, alice, "POST", "/order", {**order, "side": "UP"}), (400, -1117)),
        (signed(http, alice, "POST", "/order", {**order, "timeInForce": "GTX"}), (400, -1115)),
        (signed(http, alice, "POST", "/order", {**order, "price": "1e3"}), (400, -1100)),
        (signed(http, alice, "POST", "/order", {**order, "price": "20000.001"}), (400, -1013)),
        (signed(http, alice, "POST", "/order", {**order, "quantity": "0.000001"}), (400, -1013)),
        (signed(http, alice, "POST", "/order", {**order, "quantity": "10000"}), (400, -2010)),
        (
            signed(http, alice, "POST", "/order", {**order, "selfTradePreventionMode": "TRANSFER"}),
            (400, -1130),
        ),
        (
            signed(http, alice, "POST", "/order", {k: v for k, v in order.items() if k != "timeInForce"}),
            (400, -1102),
        ),
        (signed(http, alice, "GET", "/order", {"symbol": "BTCUSD"}), (400, -1102)),
        (signed(http, alice, "GET", "/order", {"symbol": "BTCUSD", "orderId": 99999}), (400, -2013)),
        (signed(http, alice, "DELETE", "/order", {"symbol": "BTCUSD", "orderId": 99999}), (400, -2011)),
        (signed(http, alice, "DELETE", "/openOrders", {"symbol": "ETHBTC"}), (400, -2011)),
    ]
    for response, expected in cases:
        if expected[1] is None:
            assert response.status_code == 200, response.text
        else:
            assert error_of(response) == expected, response.text
    balances = venue.alice.balances()
    # 4 x 0.01 x 20000 plus the 0.2% taker fee each could pay: nothing else was held
    assert Decimal(balances["USD"]["held"]) == Decimal("801.6")
    assert len(signed(http, alice, "DELETE", "/openOrders", {"symbol": "BTCUSD"}).json()) == 4


def test_cancel_replace(venue: Venue) -> None:
    http, bob = venue.http, venue.bob
    order = {
        "symbol": "ETHBTC",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "0.05",
    }
    first = signed(http, bob, "POST", "/order", order).json()
    replaced = signed(
        http,
        bob,
        "POST",
        "/order/cancelReplace",
        {**order, "price": "0.06", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": first["orderId"]},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["cancelResult"] == body["newOrderResult"] == "SUCCESS"
    assert body["cancelResponse"]["status"] == "CANCELED" and body["newOrderResponse"]["price"] == "0.06000"
    failed = signed(
        http,
        bob,
        "POST",
        "/order/cancelReplace",
        {**order, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": first["orderId"]},
    )
    assert error_of(failed) == (400, -2022)
    assert failed.json()["data"]["cancelResponse"]["code"] == -2011
    assert len(signed(http, bob, "GET", "/openOrders", {"symbol": "ETHBTC"}).json()) == 1
    signed(http, bob, "DELETE", "/openOrders", {"symbol": "ETHBTC"})


def test_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    config = tmp_path / "markets.toml"
    config.write_text(
        '[[markets]]\nsymbol = "BTC/USD"\nbase_asset = "BTC"\nquote_asset = "USD"\n'
        'tick_size = "0.01"\nlot_size = "0.00001"\n\n[risk]\nrate_limit_orders = 3\nrate_limit_window = 60\n'
    )
    for venue in start_venue(tmp_path, ("--config", str(config))):
        order = {
            "symbol": "BTCUSD",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "20000",
        }
        answers = [signed(venue.http, venue.alice, "POST", "/order", order) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert answers[-1].json()["code"] == -1003
        assert int(answers[-1].headers["Retry-After"]) >= 1
        # what the clients raise: ccxt 4.5.90 turns every 429 into DDoSProtection before reading the body
        # (as against Binance); python-binance keeps Binance's code
        exchange = ccxt.binance(ccxt_config(venue.url, venue.alice))
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            exchange.create_order("BTC/USD", "limit", "buy", 0.01, 20000)

        class Local(Client):
            API_URL = f"{venue.url}/binance/api"

        with pytest.raises(BinanceAPIException) as caught:
            Local(venue.alice.api_key, venue.alice.api_secret).order_limit_buy(
                symbol="BTCUSD", quantity="0.01", price="20000"
            )
        assert (caught.value.status_code, caught.value.code) == (429, -1003)


def test_candles_survive_a_restart(tmp_path: Path) -> None:
    venue_runs = start_venue(tmp_path)
    venue = next(venue_runs)
    for price in ("30000", "30100", "29900"):
        venue.alice.native.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "sell", "quantity": "0.1", "price": price}
        )
        venue.bob.native.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "0.1", "price": price}
        )
    before = {
        interval: venue.http.get(f"{API}/klines", params={"symbol": "BTCUSD", "interval": interval}).json()
        for interval in INTERVALS
    }
    assert before["1M"][-1][1:5] == ["30000.00", "30100.00", "29900.00", "29900.00"]
    assert before["1M"][-1][8] == 3
    ticker = venue.http.get(f"{API}/ticker/24hr", params={"symbol": "BTCUSD"}).json()
    venue.server.stop()
    venue.server.start()
    after = {
        interval: venue.http.get(f"{API}/klines", params={"symbol": "BTCUSD", "interval": interval}).json()
        for interval in INTERVALS
    }
    assert after == before
    again = venue.http.get(f"{API}/ticker/24hr", params={"symbol": "BTCUSD"}).json()
    for key in (
        "lastPrice",
        "openPrice",
        "highPrice",
        "lowPrice",
        "volume",
        "quoteVolume",
        "count",
        "firstId",
    ):
        assert again[key] == ticker[key], key
    with pytest.raises(StopIteration):
        next(venue_runs)
