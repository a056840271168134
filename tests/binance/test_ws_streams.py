"""Binance market streams on a real ``manticore serve``: the raw protocol and ccxt.pro's watch_* calls.

The books ccxt.pro keeps from ``@depth@100ms`` diffs must equal REST ``depth`` at the same
``lastUpdateId`` while two users trade; trades, tickers and candles must match what REST reports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt.pro
import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.api.support import Server, SignedClient
from tests.binance.ws_support import book_at, ccxt_config, eventually, place, trade_randomly, traders


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("binance-ws") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def pair(server: Server, http: httpx.Client) -> tuple[SignedClient, SignedClient]:
    alice, bob = traders(server, http, "ws-alice", "ws-bob")
    return alice, bob


def _ws(server: Server, path: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=10, close_timeout=2)


def _request(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    """Send a control message and return the answer with its id (stream payloads before it are skipped)."""
    ws.send(json.dumps(message))
    while True:
        answer = json.loads(ws.recv(timeout=10))
        if isinstance(answer, dict) and "id" in answer and ("result" in answer or "error" in answer):
            return answer


def _depth(http: httpx.Client, symbol: str = "BTCUSD") -> dict[str, Any]:
    response = http.get("/binance/api/v3/depth", params={"symbol": symbol, "limit": 1000})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# ---------------------------------------------------------------------- protocol


def test_subscribe_list_unsubscribe_and_errors(server: Server) -> None:
    with _ws(server, "/binance/ws/0") as ws:
        assert _request(ws, {"method": "SUBSCRIBE", "params": ["btcusd@trade", "BTCUSD@depth"], "id": 1}) == {
            "result": None,
            "id": 1,
        }
        again = _request(ws, {"method": "SUBSCRIBE", "params": ["btcusd@trade"], "id": "a-2"})
        assert again == {"result": None, "id": "a-2"}
        listed = _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert listed == {"result": ["btcusd@trade", "btcusd@depth"], "id": 3}
        assert _request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusd@trade"], "id": 4}) == {
            "result": None,
            "id": 4,
        }
        assert _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 5})["result"] == ["btcusd@depth"]
        unknown = _request(ws, {"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 6})
        assert unknown["id"] == 6 and unknown["error"]["code"] == 2
        bad_kind = _request(ws, {"method": "SUBSCRIBE", "params": ["btcusd@depth7"], "id": 7})
        assert bad_kind["error"]["code"] == 2
        assert _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 8})["result"] == ["btcusd@depth"]
        bad_method = _request(ws, {"method": "FROB", "id": 9})
        assert bad_method["error"]["code"] == 2
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == 3
        assert _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 10})["result"] is False
        assert (
            _request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 11})["result"] is None
        )
        assert _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 12})["result"] is True


def test_raw_path_and_combined_streams_deliver_trades(
    server: Server, pair: tuple[SignedClient, SignedClient]
) -> None:
    alice, bob = pair
    with (
        _ws(server, "/binance/ws/ethbtc@trade") as raw,
        _ws(server, "/binance/stream?streams=ethbtc@trade/ethbtc@aggTrade") as combined,
    ):
        assert _request(raw, {"method": "LIST_SUBSCRIPTIONS", "id": 1})["result"] == ["ethbtc@trade"]
        assert _request(combined, {"method": "LIST_SUBSCRIPTIONS", "id": 1})["result"] == [
            "ethbtc@trade",
            "ethbtc@aggTrade",
        ]
        place(alice, "sell", "0.05", "0.5", "ETH/BTC")
        place(bob, "buy", "0.05", "0.5", "ETH/BTC")
        trade = json.loads(raw.recv(timeout=10))
        assert trade["e"] == "trade" and trade["s"] == "ETHBTC"
        assert (trade["p"], trade["q"], trade["m"]) == ("0.05000", "0.5000", False)
        wrapped = [json.loads(combined.recv(timeout=10)) for _ in range(2)]
        by_stream = {frame["stream"]: frame["data"] for frame in wrapped}
        assert by_stream["ethbtc@trade"] == trade
        aggregate = by_stream["ethbtc@aggTrade"]
        assert (
            aggregate["e"] == "aggTrade" and aggregate["a"] == aggregate["f"] == aggregate["l"] == trade["t"]
        )
        native = httpx.get(f"{server.url}/api/trades", params={"symbol": "ETH/BTC", "limit": 1}).json()
        assert native["trades"][0]["trade_id"].endswith(f"T{trade['t']}")


def test_unknown_stream_in_the_path_closes_with_a_reason(server: Server) -> None:
    with _ws(server, "/binance/ws/nosuch@trade") as ws:
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
        assert "unknown stream" in str(closed.value)


def test_diffs_are_gap_free_and_rebuild_rest_depth(
    server: Server, http: httpx.Client, pair: tuple[SignedClient, SignedClient]
) -> None:
    """The local-book procedure of Binance's docs, by hand: buffer diffs, take the REST snapshot, drop
    ``u <= lastUpdateId``, then every ``U`` is the previous ``u + 1`` and the result equals REST depth."""
    alice, bob = pair
    with _ws(server, "/binance/ws/btcusd@depth@100ms") as ws:
        trade_randomly(alice, bob, 40, seed=11)
        snapshot = _depth(http)
        trade_randomly(alice, bob, 40, seed=12)
        final = _depth(http)
        book = {
            "bids": {p: q for p, q in snapshot["bids"]},
            "asks": {p: q for p, q in snapshot["asks"]},
        }
        last = snapshot["lastUpdateId"]
        applied = 0
        while last < final["lastUpdateId"]:
            diff = json.loads(ws.recv(timeout=10))
            if diff["u"] <= last:
                continue
            if applied == 0:
                assert diff["U"] - 1 <= last <= diff["u"] - 1
            else:
                assert diff["U"] == last + 1
            for side, key in (("bids", "b"), ("asks", "a")):
                for price, quantity in diff[key]:
                    if Decimal(quantity) == 0:
                        book[side].pop(price, None)
                    else:
                        book[side][price] = quantity
            last = diff["u"]
            applied += 1
        assert last == final["lastUpdateId"] and applied > 0
        bids = sorted(book["bids"].items(), key=lambda level: -Decimal(level[0]))
        asks = sorted(book["asks"].items(), key=lambda level: Decimal(level[0]))
        assert [list(level) for level in bids] == final["bids"]
        assert [list(level) for level in asks] == final["asks"]


def test_partial_book_and_book_ticker_show_the_durable_top(
    server: Server, http: httpx.Client, pair: tuple[SignedClient, SignedClient]
) -> None:
    alice, bob = pair
    trade_randomly(alice, bob, 20, seed=21)
    with _ws(server, "/binance/stream?streams=btcusd@depth5@100ms/btcusd@bookTicker") as ws:
        before = _depth(http)
        better_bid = Decimal(before["bids"][0][0]) + Decimal("0.01")
        assert better_bid < Decimal(before["asks"][0][0])
        place(alice, "buy", str(better_bid), "0.01")  # a new top, so bookTicker speaks
        depth = _depth(http)
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(1000):
            frame = json.loads(ws.recv(timeout=10))
            seen[frame["stream"]] = frame["data"]
            if (
                len(seen) == 2
                and min(seen["btcusd@depth5@100ms"]["lastUpdateId"], seen["btcusd@bookTicker"]["u"])
                >= depth["lastUpdateId"]
            ):
                break
        partial = seen["btcusd@depth5@100ms"]
        assert partial["lastUpdateId"] == depth["lastUpdateId"]
        assert partial["bids"] == depth["bids"][:5] and partial["asks"] == depth["asks"][:5]
        top = seen["btcusd@bookTicker"]
        assert (top["s"], top["u"]) == ("BTCUSD", depth["lastUpdateId"])
        assert [top["b"], top["B"]] == depth["bids"][0] == [f"{better_bid:.2f}", "0.01000"]
        assert [top["a"], top["A"]] == depth["asks"][0]


# ---------------------------------------------------------------------- ccxt.pro


def test_ccxt_pro_order_book_stays_equal_to_rest_depth_while_two_users_trade(
    server: Server, pair: tuple[SignedClient, SignedClient]
) -> None:
    alice, bob = pair

    async def scenario() -> tuple[int, int]:
        exchange = ccxt.pro.binance(ccxt_config(server))
        try:
            await exchange.load_markets()
            await asyncio.wait_for(exchange.watch_order_book("BTC/USD"), 15)
            trading = asyncio.ensure_future(asyncio.to_thread(trade_randomly, alice, bob, 150, 31))
            matched = 0
            while not trading.done():
                rest = await exchange.fetch_order_book("BTC/USD", 1000)
                book = await book_at(exchange, "BTC/USD", rest["nonce"])
                if book["nonce"] == rest["nonce"]:
                    assert book["bids"] == rest["bids"] and book["asks"] == rest["asks"]
                    matched += 1
            await trading
            rest = await exchange.fetch_order_book("BTC/USD", 1000)
            book = await book_at(exchange, "BTC/USD", rest["nonce"])
            assert book["nonce"] == rest["nonce"]
            assert book["bids"] == rest["bids"] and book["asks"] == rest["asks"]
            return matched, len(book["bids"]) + len(book["asks"])
        finally:
            await exchange.close()

    _matched, levels = asyncio.run(scenario())
    assert levels > 0


def test_ccxt_pro_trades_ticker_and_ohlcv(
    server: Server, http: httpx.Client, pair: tuple[SignedClient, SignedClient]
) -> None:
    alice, bob = pair

    async def scenario() -> None:
        exchange = ccxt.pro.binance(ccxt_config(server))
        try:
            await exchange.load_markets()
            trades_task = asyncio.ensure_future(exchange.watch_trades("ETH/USD"))
            await asyncio.sleep(2.0)  # subscribed (ccxt.pro has no call that waits for the acknowledgement)
            await asyncio.to_thread(place, alice, "buy", "1990.00", "0.5", "ETH/USD")
            await asyncio.to_thread(place, alice, "sell", "2020.00", "0.125", "ETH/USD")
            await asyncio.to_thread(place, bob, "buy", "2020.00", "0.125", "ETH/USD")
            await asyncio.to_thread(place, bob, "sell", "2030.00", "1", "ETH/USD")
            trades = await asyncio.wait_for(trades_task, 15)
            trade = trades[-1]
            assert (trade["symbol"], trade["side"], trade["price"], trade["amount"]) == (
                "ETH/USD",
                "buy",
                2020.0,
                0.125,
            )
            native = http.get("/api/trades", params={"symbol": "ETH/USD", "limit": 1}).json()["trades"][0]
            assert native["trade_id"].endswith("T" + trade["id"])

            ticker = await eventually(
                lambda: asyncio.wait_for(exchange.watch_ticker("ETH/USD"), 15),
                lambda t: t["last"] == 2020.0,
            )
            rest_ticker = await exchange.fetch_ticker("ETH/USD")
            for key in ("last", "open", "high", "low", "baseVolume", "quoteVolume"):
                assert ticker[key] == rest_ticker[key], key
            full = await eventually(
                lambda: asyncio.wait_for(exchange.watch_ticker("ETH/USD", {"name": "ticker"}), 15),
                lambda t: t["last"] == 2020.0 and t["bid"] is not None,
            )
            assert (full["bid"], full["ask"]) == (1990.0, 2030.0)
            assert full["bidVolume"] == 0.5 and full["askVolume"] == 1.0

            candles = await eventually(
                lambda: asyncio.wait_for(exchange.watch_ohlcv("ETH/USD", "1m"), 15),
                lambda rows: bool(rows) and rows[-1][4] == 2020.0,
            )
            rest_rows = await exchange.fetch_ohlcv("ETH/USD", "1m", limit=1)
            assert candles[-1][:6] == rest_rows[-1][:6]
        finally:
            await exchange.close()

    asyncio.run(scenario())


def test_all_market_tickers_and_a_closing_candle(
    server: Server, pair: tuple[SignedClient, SignedClient]
) -> None:
    alice, bob = pair
    with _ws(server, "/binance/stream?streams=!miniTicker@arr/ethbtc@kline_1s") as ws:
        frames: list[dict[str, Any]] = []

        def next_frame(stream: str, accept: Any = lambda data: True) -> dict[str, Any]:
            while True:
                frame = json.loads(ws.recv(timeout=10))
                frames.append(frame)
                if frame["stream"] == stream and accept(frame["data"]):
                    data: dict[str, Any] = frame["data"]
                    return data

        everything = next_frame("!miniTicker@arr")
        assert {ticker["s"] for ticker in everything} == {"BTCUSD", "ETHUSD", "ETHBTC"}
        assert all(ticker["e"] == "24hrMiniTicker" for ticker in everything)
        place(alice, "sell", "0.05100", "0.3", "ETH/BTC")
        place(bob, "buy", "0.05100", "0.3", "ETH/BTC")
        changed = next_frame("!miniTicker@arr", lambda data: any(t["c"] == "0.05100" for t in data))
        assert [ticker["s"] for ticker in changed] == ["ETHBTC"]
        closed = next_frame(
            "ethbtc@kline_1s", lambda data: data["k"]["x"] is True and data["k"]["c"] == "0.05100"
        )
        assert closed["k"]["i"] == "1s" and Decimal(closed["k"]["v"]) >= Decimal("0.3")
        assert closed["k"]["T"] == closed["k"]["t"] + 999
        following = next_frame("ethbtc@kline_1s")
        assert following["k"]["x"] is False and following["k"]["t"] > closed["k"]["t"]
        assert following["k"]["o"] == following["k"]["c"] == "0.05100"  # a candle without trades
