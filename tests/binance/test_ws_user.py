"""Binance user data and the WebSocket API on a real ``manticore serve``.

ccxt.pro's ``watch_orders``, ``watch_my_trades`` and ``watch_balance`` (which subscribe with
``userDataStream.subscribe.signature``) must report exactly what REST and the native API report; the raw
WebSocket API answers ping/time/logon/order requests with Binance's shapes and error codes; python-binance's
socket manager and WebSocket API client work unchanged apart from their URL constants.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from binance import AsyncClient, BinanceSocketManager
from tests.api.support import Server, SignedClient
from tests.binance.ws_support import ccxt_config, eventually, place, traders, until, user_id_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("binance-ws-user") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=15) as client:
        yield client


def _native_balances(client: SignedClient) -> dict[str, dict[str, str]]:
    response = client.get("/api/balances")
    assert response.status_code == 200, response.text
    balances: dict[str, dict[str, str]] = response.json()["balances"]
    return balances


def _signed(client: SignedClient, params: dict[str, Any]) -> dict[str, Any]:
    """WebSocket API parameters signed as Binance documents: sorted ``name=value`` pairs, HMAC-SHA256."""
    signed = {"apiKey": client.api_key, "timestamp": int(time.time() * 1000), **params}
    payload = "&".join(f"{key}={value}" for key, value in sorted(signed.items()))
    signed["signature"] = hmac.new(client.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return signed


_EARLY: dict[int, list[dict[str, Any]]] = {}


def _call(
    ws: ClientConnection, request_id: str, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Send one request; return its response (events that arrive first are kept for :func:`_event`)."""
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    ws.send(json.dumps(message))
    while True:
        answer = json.loads(ws.recv(timeout=15))
        if answer.get("id") == request_id:
            return answer
        _EARLY.setdefault(id(ws), []).append(answer)


def _event(ws: ClientConnection, kind: str, **match: Any) -> dict[str, Any]:
    """The next user data event of type ``kind`` whose fields equal ``match`` (wrapped as Binance does)."""
    early = _EARLY.setdefault(id(ws), [])
    while True:
        frame = early.pop(0) if early else json.loads(ws.recv(timeout=15))
        if "subscriptionId" not in frame:
            continue
        event: dict[str, Any] = frame["event"]
        if event["e"] == kind and all(event.get(key) == value for key, value in match.items()):
            return event


# ---------------------------------------------------------------------- ccxt.pro


def test_ccxt_pro_watch_orders_my_trades_and_balance(server: Server, http: httpx.Client) -> None:
    alice, bob = traders(server, http, "ud-alice", "ud-bob")
    admin = server.admin(http)

    async def scenario() -> None:
        exchange = ccxt.pro.binance(ccxt_config(server, alice.api_key, alice.api_secret))

        def order_state(order_id: str) -> dict[str, Any] | None:
            states = [row for row in exchange.orders or [] if row["id"] == order_id]
            return states[-1] if states else None

        try:
            await exchange.load_markets()
            balance_task = asyncio.ensure_future(exchange.watch_balance())
            orders_task = asyncio.ensure_future(exchange.watch_orders("BTC/USD"))
            trades_task = asyncio.ensure_future(exchange.watch_my_trades("BTC/USD"))
            await exchange.ensure_user_data_stream_ws_subscribe_signature("spot")  # acknowledged
            await asyncio.sleep(0.2)  # the watch tasks wait on their events now

            order = await exchange.create_order("BTC/USD", "limit", "sell", 0.5, 31000)
            orders = await asyncio.wait_for(orders_task, 15)
            seen = orders[-1]
            fetched = await exchange.fetch_order(order["id"], "BTC/USD")
            assert (seen["id"], seen["clientOrderId"], seen["status"]) == (
                order["id"],
                fetched["clientOrderId"],
                "open",
            )
            assert seen["clientOrderId"] == order["clientOrderId"]
            assert (seen["side"], seen["type"], seen["price"], seen["amount"]) == (
                "sell",
                "limit",
                31000.0,
                0.5,
            )
            balance = await asyncio.wait_for(balance_task, 15)
            native = await asyncio.to_thread(_native_balances, alice)
            assert balance["BTC"]["free"] == float(native["BTC"]["available"])
            assert balance["BTC"]["used"] == float(native["BTC"]["held"]) == 0.5

            await asyncio.to_thread(place, bob, "buy", "31000.00", "0.2")
            trades = await asyncio.wait_for(trades_task, 15)
            trade = trades[-1]
            assert (trade["order"], trade["price"], trade["amount"], trade["takerOrMaker"]) == (
                order["id"],
                31000.0,
                0.2,
                "maker",
            )
            assert trade["fee"]["currency"] == "USD" and trade["fee"]["cost"] == pytest.approx(6.2)
            rest_trades = await exchange.fetch_my_trades("BTC/USD")
            assert rest_trades[-1]["id"] == trade["id"]
            state = await until(lambda: order_state(order["id"]), lambda row: row["filled"] == 0.2)
            assert state["status"] == "open" and state["remaining"] == pytest.approx(0.3)
            assert state["cost"] == pytest.approx(6200.0)

            await exchange.cancel_order(order["id"], "BTC/USD")
            state = await until(lambda: order_state(order["id"]), lambda row: row["status"] == "canceled")
            assert state["filled"] == 0.2
            balance = await until(lambda: exchange.balance.get("spot"), lambda b: b["BTC"]["used"] == 0)
            native = await asyncio.to_thread(_native_balances, alice)
            for asset in ("BTC", "USD"):
                assert Decimal(str(balance[asset]["free"])) == Decimal(native[asset]["available"]), asset

            alice_id = await asyncio.to_thread(user_id_of, alice)
            deposit = await asyncio.to_thread(
                admin.post, "/api/deposits", {"user_id": alice_id, "asset": "ETH", "amount": "2.5"}
            )
            assert deposit.status_code == 201, deposit.text
            await until(
                lambda: exchange.balance.get("spot"), lambda b: b.get("ETH", {}).get("free") == 1002.5
            )
        finally:
            await exchange.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------------- raw WebSocket API


def test_ws_api_ping_time_and_signature_errors(server: Server, http: httpx.Client) -> None:
    (carol,) = traders(server, http, "ud-carol")
    with connect(f"ws://127.0.0.1:{server.port}/binance/ws-api/v3", open_timeout=10) as ws:
        assert _call(ws, "p", "ping") == {"id": "p", "status": 200, "result": {}}
        before = int(time.time() * 1000)
        server_time = _call(ws, "t", "time")["result"]["serverTime"]
        assert before - 1000 <= server_time <= int(time.time() * 1000) + 1000

        params = _signed(carol, {"recvWindow": 5000})
        params["signature"] = "0" * 64
        bad = _call(ws, "1", "userDataStream.subscribe.signature", params)
        assert bad["status"] == 400 and bad["error"]["code"] == -1022
        unknown = _call(
            ws, "2", "userDataStream.subscribe.signature", _signed(SignedClient(None, "nokey" * 8, "x"), {})
        )
        assert unknown["status"] == 401 and unknown["error"]["code"] == -2015
        stale = _signed(carol, {})
        stale["timestamp"] = int(time.time() * 1000) - 120_000
        payload = "&".join(f"{k}={v}" for k, v in sorted(stale.items()) if k != "signature")
        stale["signature"] = hmac.new(carol.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        old = _call(ws, "3", "userDataStream.subscribe.signature", stale)
        assert old["error"]["code"] == -1021
        assert _call(ws, "4", "nosuch.method")["status"] == 400
        ws.send("{broken")
        assert json.loads(ws.recv(timeout=10))["status"] == 400
        assert _call(ws, "5", "userDataStream.subscribe")["error"]["code"] == -2015  # not logged on


def test_ws_api_order_place_cancel_and_events(server: Server, http: httpx.Client) -> None:
    dave, erin = traders(server, http, "ud-dave", "ud-erin")
    with connect(f"ws://127.0.0.1:{server.port}/binance/ws-api/v3", open_timeout=10) as ws:
        subscribed = _call(
            ws, "s", "userDataStream.subscribe.signature", _signed(dave, {"recvWindow": 10000})
        )
        assert subscribed == {"id": "s", "status": 200, "result": {"subscriptionId": 0}}

        placed = _call(
            ws,
            "o1",
            "order.place",
            _signed(
                dave,
                {
                    "symbol": "BTCUSD",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.3",
                    "price": "29000",
                    "newClientOrderId": "dave-1",
                    "newOrderRespType": "RESULT",
                },
            ),
        )
        assert placed["status"] == 200, placed
        result = placed["result"]
        assert (result["symbol"], result["clientOrderId"], result["status"]) == ("BTCUSD", "dave-1", "NEW")
        assert (result["price"], result["origQty"]) == ("29000.00", "0.30000")
        new = _event(ws, "executionReport", x="NEW")
        rest = ccxt.binance(ccxt_config(server, dave.api_key, dave.api_secret))
        fetched = rest.fetch_order(str(result["orderId"]), "BTC/USD")
        assert fetched["clientOrderId"] == "dave-1"
        assert (new["i"], new["c"], new["X"], new["S"], new["o"], new["f"]) == (
            result["orderId"],
            "dave-1",
            "NEW",
            "BUY",
            "LIMIT",
            "GTC",
        )
        assert (new["q"], new["p"], new["z"]) == ("0.30000", "29000.00", "0.00000")
        position = _event(ws, "outboundAccountPosition")
        held = {entry["a"]: entry for entry in position["B"]}
        native = _native_balances(dave)
        assert Decimal(held["USD"]["l"]) == Decimal(native["USD"]["held"]) == Decimal("8717.4")  # + taker fee

        place(erin, "sell", "29000.00", "0.1")
        fill = _event(ws, "executionReport", x="TRADE")
        assert (fill["i"], fill["X"], fill["l"], fill["L"], fill["z"]) == (
            result["orderId"],
            "PARTIALLY_FILLED",
            "0.10000",
            "29000.00",
            "0.10000",
        )
        assert fill["m"] is True and fill["N"] == "USD" and Decimal(fill["n"]) == Decimal("2.9")
        assert Decimal(fill["Y"]) == Decimal("2900") and Decimal(fill["Z"]) == Decimal("2900")
        trades = http.get("/api/trades", params={"symbol": "BTC/USD", "limit": 1}).json()["trades"]
        assert trades[0]["trade_id"].endswith(f"T{fill['t']}")

        cancelled = _call(
            ws, "c1", "order.cancel", _signed(dave, {"symbol": "BTCUSD", "origClientOrderId": "dave-1"})
        )
        assert cancelled["status"] == 200, cancelled
        assert cancelled["result"]["status"] == "CANCELED"
        report = _event(ws, "executionReport", x="CANCELED")
        assert (report["i"], report["X"], report["z"]) == (result["orderId"], "CANCELED", "0.10000")

        place(erin, "sell", "29100.00", "0.05")
        ioc = _call(
            ws,
            "o4",
            "order.place",
            _signed(
                dave,
                {
                    "symbol": "BTCUSD",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "IOC",
                    "quantity": "0.1",
                    "price": "29100",
                },
            ),
        )
        assert ioc["status"] == 200, ioc
        partial = _event(ws, "executionReport", x="TRADE", i=ioc["result"]["orderId"])
        assert (partial["X"], partial["l"], partial["f"]) == ("PARTIALLY_FILLED", "0.05000", "IOC")
        expired = _event(ws, "executionReport", i=ioc["result"]["orderId"])
        assert (expired["x"], expired["X"], expired["z"]) == ("EXPIRED", "EXPIRED", "0.05000")

        native = place(dave, "buy", "28000.00", "0.01")
        changed = dave.patch(f"/api/orders/{native['order_id']}", {"new_price": "28100.00"})
        assert changed.status_code == 200, changed.text
        replaced = _event(ws, "executionReport", x="REPLACED")
        assert (replaced["p"], replaced["X"], replaced["q"]) == ("28100.00", "NEW", "0.01000")

        dave_id = user_id_of(dave)
        deposit = server.admin(http).post(
            "/api/deposits", {"user_id": dave_id, "asset": "BTC", "amount": "0.75"}
        )
        assert deposit.status_code == 201, deposit.text
        credited = _event(ws, "balanceUpdate")
        assert (credited["a"], credited["d"]) == ("BTC", "0.75000000")
        after = _event(ws, "outboundAccountPosition")
        native_btc = Decimal(_native_balances(dave)["BTC"]["available"])
        assert Decimal({entry["a"]: entry["f"] for entry in after["B"]}["BTC"]) == native_btc

        wrong = _call(
            ws,
            "o2",
            "order.place",
            _signed(dave, {"symbol": "NOPE", "side": "BUY", "type": "MARKET", "quantity": "1"}),
        )
        assert wrong["status"] == 400 and wrong["error"]["code"] == -1121

        logon = _call(ws, "l", "session.logon", _signed(dave, {}))
        assert logon["status"] == 200 and logon["result"]["apiKey"] == dave.api_key
        again = _call(ws, "s2", "userDataStream.subscribe")
        assert again["result"] == {"subscriptionId": 1}
        unsigned = _call(
            ws,
            "o3",
            "order.place",
            {
                "symbol": "BTCUSD",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "31000",
            },
        )
        assert unsigned["status"] == 200, unsigned
        assert unsigned["result"]["status"] == "NEW"
        assert _call(ws, "u", "userDataStream.unsubscribe", {"subscriptionId": 1})["result"] == {}


# ---------------------------------------------------------------------- python-binance


def test_python_binance_socket_manager_and_ws_api(server: Server, http: httpx.Client) -> None:
    frank, gina = traders(server, http, "ud-frank", "ud-gina")

    class LocalClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{server.url}/binance/api"
        WS_API_URL = f"ws://127.0.0.1:{server.port}/binance/ws-api/v3"

    class LocalSocketManager(BinanceSocketManager):  # type: ignore[misc]
        STREAM_URL = f"ws://127.0.0.1:{server.port}/binance/"

    async def scenario() -> None:
        client = await LocalClient.create(frank.api_key, frank.api_secret)
        try:
            manager = LocalSocketManager(client)
            async with manager.trade_socket("ETHUSD") as trades, manager.user_socket() as user:
                created = await client.ws_create_order(
                    symbol="ETHUSD",
                    side="SELL",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.5",
                    price="2100",
                )
                assert created["status"] == "NEW"
                await asyncio.to_thread(place, gina, "buy", "2100.00", "0.5", "ETH/USD")
                trade = await asyncio.wait_for(trades.recv(), 15)
                assert (trade["e"], trade["s"], trade["p"], trade["q"]) == (
                    "trade",
                    "ETHUSD",
                    "2100.00",
                    "0.5000",
                )
                statuses = []
                while "FILLED" not in statuses:
                    event = await asyncio.wait_for(user.recv(), 15)
                    if event.get("e") == "executionReport":
                        assert event["i"] == created["orderId"]
                        statuses.append(event["X"])
                assert statuses == ["NEW", "FILLED"]
            async with manager.depth_socket("ETHUSD", depth="5") as depth:
                await asyncio.to_thread(place, gina, "buy", "2050.00", "0.25", "ETH/USD")
                book = await eventually(
                    lambda: asyncio.wait_for(depth.recv(), 15),
                    lambda message: ["2050.00", "0.2500"] in message["bids"],
                )
                rest = await client.get_order_book(symbol="ETHUSD", limit=5)
                assert book["lastUpdateId"] <= rest["lastUpdateId"]
            streams = ["ethusd@kline_1m", "ethusd@ticker"]
            async with manager.multiplex_socket(streams) as combined, manager.kline_socket("ETHUSD") as kline:
                candle = await asyncio.wait_for(kline.recv(), 15)
                assert (candle["e"], candle["k"]["i"], candle["k"]["c"]) == ("kline", "1m", "2100.00")
                seen: dict[str, dict[str, Any]] = {}
                while set(seen) != set(streams):
                    frame = await asyncio.wait_for(combined.recv(), 15)
                    seen[frame["stream"]] = frame["data"]
                assert seen["ethusd@kline_1m"]["k"] == candle["k"]
                ticker = seen["ethusd@ticker"]
                rest_ticker = await client.get_ticker(symbol="ETHUSD")
                assert (ticker["c"], ticker["v"], ticker["b"]) == (
                    rest_ticker["lastPrice"],
                    rest_ticker["volume"],
                    "2050.00",
                )
        finally:
            await client.close_connection()

    asyncio.run(scenario())
