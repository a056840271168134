"""The Binance-compatible surface on gateways: real ``manticore gateway`` processes in front of a real
``manticore shard`` process on the private nats-server, driven by ccxt and python-binance, checked against
the native API of the same gateways."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest
from binance.client import Client as BinanceClient
from websockets.sync.client import connect

from manticore_cluster.natsconf import NatsOptions
from tests.binance.rest_support import Trader, ccxt_config, make_trader
from tests.cluster.rpc_support import Gateway
from tests.cluster.shard_processes import ShardProcess, shard_processes, write_config

pytestmark = pytest.mark.timeout(180)

SYMBOL = "BTC/USD"
FUNDS = {"USD": "1000000", "BTC": "100"}


@dataclass
class _Shard:
    """What :class:`Gateway` needs to know of its shard."""

    shard: str
    prefix: str


@dataclass
class Cluster:
    first: Gateway
    second: Gateway
    alice: Trader
    bob: Trader
    http: httpx.Client


@pytest.fixture
def cluster(tmp_path: Path, nats_options: NatsOptions) -> Iterator[Cluster]:
    config = write_config(tmp_path / "markets.toml")
    leader = ShardProcess(nats_options, tmp_path / "shard", config).start()
    with shard_processes(leader):
        leader.wait_for(": leader ")
        shard = _Shard("main", nats_options.prefix)
        url = nats_options.servers[0]
        first = Gateway(url, shard, tmp_path / "gateway")  # type: ignore[arg-type]
        second = Gateway(url, shard, tmp_path / "gateway")  # type: ignore[arg-type]
        try:
            first.start()  # creates the admin in the shared auth store
            second.start()
            with httpx.Client(base_url=first.url, timeout=30) as http:
                admin = first.admin(http)
                alice = make_trader(admin, "alice", FUNDS)
                bob = make_trader(admin, "bob", FUNDS)
                yield Cluster(first, second, alice, bob, http)
        finally:
            second.stop()
            first.stop()


def _ccxt(gateway: Gateway, trader: Trader) -> Any:
    client = ccxt.binance(ccxt_config(gateway.url, trader))
    client.load_markets()
    return client


def _native_balances(trader: Trader) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        asset: (Decimal(row["available"]), Decimal(row["held"])) for asset, row in trader.balances().items()
    }


def _ccxt_balances(client: Any) -> dict[str, tuple[Decimal, Decimal]]:
    rows = client.fetch_balance()["info"]["balances"]
    return {row["asset"]: (Decimal(row["free"]), Decimal(row["locked"])) for row in rows}


def test_ccxt_trades_through_gateways_as_through_the_native_api(cluster: Cluster) -> None:
    alice = _ccxt(cluster.first, cluster.alice)
    bob = _ccxt(cluster.second, cluster.bob)  # the other gateway
    assert set(alice.markets) == {"BTC/USD", "ETH/USD"}
    market = alice.market(SYMBOL)
    assert Decimal(str(market["precision"]["price"])) == Decimal("0.5")
    assert Decimal(str(market["precision"]["amount"])) == Decimal("0.1")
    assert _ccxt_balances(alice) == _native_balances(cluster.alice)

    # Place, query, cancel.
    resting = alice.create_order(SYMBOL, "limit", "buy", 2, 90)
    assert resting["status"] == "open" and Decimal(str(resting["amount"])) == 2
    native_orders = cluster.alice.native.get("/api/orders").json()["orders"]
    assert [order["order_id"] for order in native_orders] == [f"MC-{resting['id']}"]
    assert native_orders[0]["client_order_id"] == resting["clientOrderId"]
    fetched = alice.fetch_order(resting["id"], SYMBOL)
    assert fetched["id"] == resting["id"] and fetched["status"] == "open"
    assert [order["id"] for order in alice.fetch_open_orders(SYMBOL)] == [resting["id"]]
    usd_free, usd_locked = _ccxt_balances(alice)["USD"]
    assert usd_locked == Decimal("180.36")  # the price and the taker fee held
    assert usd_free + usd_locked == Decimal(FUNDS["USD"])
    cancelled = alice.cancel_order(resting["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    assert alice.fetch_open_orders(SYMBOL) == []
    assert _ccxt_balances(alice) == _native_balances(cluster.alice)

    # A trade between the two users, each on their own gateway.
    alice.create_order(SYMBOL, "limit", "sell", "0.5", 100)
    bought = bob.create_order(SYMBOL, "limit", "buy", "0.5", 100)
    assert bought["status"] == "closed" and Decimal(str(bought["filled"])) == Decimal("0.5")
    mine = bob.fetch_my_trades(SYMBOL)
    fills = cluster.bob.native.get("/api/fills?symbol=BTC/USD").json()["fills"]
    assert len(mine) == len(fills) == 1
    assert Decimal(str(mine[0]["price"])) == Decimal(fills[0]["price"]) == 100
    assert Decimal(str(mine[0]["amount"])) == Decimal(fills[0]["quantity"])
    assert Decimal(str(mine[0]["fee"]["cost"])) == Decimal(fills[0]["fee"])
    assert _ccxt_balances(bob) == _native_balances(cluster.bob)
    assert _ccxt_balances(alice) == _native_balances(cluster.alice)
    public = alice.fetch_trades(SYMBOL)
    native_trades = cluster.http.get("/api/trades", params={"symbol": SYMBOL}).json()["trades"]
    assert [t["id"] for t in public] == [t["trade_id"].rsplit("T", 1)[1] for t in reversed(native_trades)]
    book = alice.fetch_order_book(SYMBOL)
    native_book = cluster.http.get("/api/orderbook", params={"symbol": SYMBOL}).json()
    assert [[Decimal(str(p)), Decimal(str(q))] for p, q in book["bids"]] == [
        [Decimal(level["price"]), Decimal(level["quantity"])] for level in native_book["bids"]
    ]

    # Stored history through the leader: trades from an id, candles, the order list.
    raw = httpx.get(
        f"{cluster.second.url}/binance/api/v3/historicalTrades",
        params={"symbol": "BTCUSD", "fromId": public[0]["id"]},
    ).json()
    assert [str(t["id"]) for t in raw] == [public[0]["id"]] and Decimal(raw[0]["price"]) == 100
    for gateway in (cluster.first, cluster.second):
        candles = httpx.get(
            f"{gateway.url}/binance/api/v3/klines", params={"symbol": "BTCUSD", "interval": "1m"}
        ).json()
        assert [(Decimal(c[4]), Decimal(c[5])) for c in candles] == [(Decimal(100), Decimal("0.5"))]
    history = alice.fetch_orders(SYMBOL)
    assert [order["status"] for order in history] == ["canceled", "closed"]


def test_a_gateway_started_later_loads_the_stored_trades(
    cluster: Cluster, tmp_path: Path, nats_options: NatsOptions
) -> None:
    """Candles and executed quote amounts of a gateway that starts after trades were made come from
    the leader's storage: the same answers as the gateway that saw them live."""
    alice = _ccxt(cluster.first, cluster.alice)
    bob = _ccxt(cluster.first, cluster.bob)
    for price in (100, 101, 99):
        alice.create_order(SYMBOL, "limit", "sell", "0.3", price)
        bob.create_order(SYMBOL, "limit", "buy", "0.3", price)
    late = Gateway(nats_options.servers[0], _Shard("main", nats_options.prefix), tmp_path / "gateway")  # type: ignore[arg-type]
    late.start()
    try:
        for path, params in (
            ("/binance/api/v3/klines", {"symbol": "BTCUSD", "interval": "1m"}),
            ("/binance/api/v3/ticker/24hr", {"symbol": "BTCUSD"}),
        ):
            seen = httpx.get(f"{cluster.first.url}{path}", params=params).json()
            loaded = httpx.get(f"{late.url}{path}", params=params).json()
            if isinstance(seen, dict):
                seen.pop("closeTime"), loaded.pop("closeTime")
                seen.pop("openTime"), loaded.pop("openTime")
            assert loaded == seen, path
        late_bob = _ccxt(late, cluster.bob)
        orders = late_bob.fetch_orders(SYMBOL)
        assert [Decimal(str(order["cost"])) for order in orders] == [
            Decimal("30"),
            Decimal("30.3"),
            Decimal("29.7"),
        ]
    finally:
        late.stop()


def test_python_binance_and_a_stream_seen_through_the_other_gateway(cluster: Cluster) -> None:
    client = BinanceClient(cluster.alice.api_key, cluster.alice.api_secret, ping=False)
    client.API_URL = f"{cluster.first.url}/binance/api"
    with connect(f"ws://127.0.0.1:{cluster.second.port}/binance/ws/btcusd@trade", open_timeout=10) as ws:
        listed = json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1})
        ws.send(listed)
        assert json.loads(ws.recv(timeout=10)) == {"result": ["btcusd@trade"], "id": 1}
        sold = client.create_order(
            symbol="BTCUSD", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2", price="100"
        )
        assert sold["status"] == "NEW"
        bob = _ccxt(cluster.first, cluster.bob)
        bob.create_order(SYMBOL, "limit", "buy", "0.2", 100)
        trade = json.loads(ws.recv(timeout=15))
        assert trade["e"] == "trade" and trade["s"] == "BTCUSD"
        assert (Decimal(trade["p"]), Decimal(trade["q"])) == (Decimal(100), Decimal("0.2"))
    order = client.get_order(symbol="BTCUSD", orderId=sold["orderId"])
    assert order["status"] == "FILLED" and Decimal(order["cummulativeQuoteQty"]) == Decimal(20)
    account = client.get_account()
    assets = {row["asset"]: row for row in account["balances"]}
    native = cluster.alice.balances()
    assert Decimal(assets["USD"]["free"]) == Decimal(native["USD"]["available"])
    assert Decimal(assets["BTC"]["free"]) == Decimal(native["BTC"]["available"])


@contextlib.contextmanager
def ws_order_filled_through_another_gateway(
    first: Gateway, second: Gateway, seller: Trader, buyer: Trader, symbol: str, price: int
) -> Iterator[Any]:
    """On ``first``'s WebSocket API: ``seller`` subscribes to its user data and places a 0.4 sell at
    ``price`` on ``symbol`` (ccxt's name); ``buyer`` fills it through ``second`` with ccxt. Checks the
    answer and the NEW and TRADE execution reports; yields the connection after the TRADE report."""
    from tests.binance.test_ws_user import _call, _event, _signed

    with connect(f"ws://127.0.0.1:{first.port}/binance/ws-api/v3", open_timeout=10) as ws:
        subscribed = _call(ws, "s", "userDataStream.subscribe.signature", _signed(seller.native, {}))
        assert subscribed == {"id": "s", "status": 200, "result": {"subscriptionId": 0}}
        order = {
            "symbol": symbol.replace("/", ""),
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.4",
            "price": str(price),
            "newClientOrderId": "ws-1",
            "newOrderRespType": "RESULT",
        }
        placed = _call(ws, "o1", "order.place", _signed(seller.native, order))
        assert placed["status"] == 200, placed
        assert (placed["result"]["clientOrderId"], placed["result"]["status"]) == ("ws-1", "NEW")
        new = _event(ws, "executionReport", x="NEW")
        assert (new["c"], new["S"], Decimal(new["q"])) == ("ws-1", "SELL", Decimal("0.4"))
        _ccxt(second, buyer).create_order(symbol, "limit", "buy", "0.4", price)
        filled = _event(ws, "executionReport", x="TRADE")
        assert (filled["c"], filled["X"], Decimal(filled["l"]), Decimal(filled["Z"])) == (
            "ws-1",
            "FILLED",
            Decimal("0.4"),
            Decimal("0.4") * price,
        )
        yield ws


def test_ws_api_order_entry_and_user_data_on_a_gateway(cluster: Cluster) -> None:
    """The WebSocket API of a gateway: a signed user data subscription, an order placed and filled by a
    counterparty on the other gateway, each reported as on ``manticore serve``."""
    from tests.binance.test_ws_user import _event

    with ws_order_filled_through_another_gateway(
        cluster.first, cluster.second, cluster.alice, cluster.bob, SYMBOL, 100
    ) as ws:
        account = _event(ws, "outboundAccountPosition")
        assets = {row["a"]: row for row in account["B"]}
        native = cluster.alice.balances()
        assert Decimal(assets["BTC"]["f"]) == Decimal(native["BTC"]["available"])
        assert Decimal(assets["USD"]["f"]) == Decimal(native["USD"]["available"])
