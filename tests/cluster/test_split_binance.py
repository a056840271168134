"""The Binance-compatible surface on split-mode gateways: real ``manticore shard --role account|market``
processes and ``manticore gateway --market-shard ...`` processes on the private nats-server, driven by
ccxt and checked against the native API of the same gateways."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from websockets.sync.client import connect

from manticore_cluster.natsconf import NatsOptions
from tests.api.support import SignedClient
from tests.binance.rest_support import Trader, make_trader
from tests.cluster.rpc_support import Gateway
from tests.cluster.shard_processes import ShardProcess, shard_processes, write_config
from tests.cluster.test_gateway_binance import (
    _ccxt,
    _ccxt_balances,
    _native_balances,
    ws_order_filled_through_another_gateway,
)

pytestmark = pytest.mark.timeout(240)

FUNDS = {"USD": "1000000", "BTC": "100", "ETH": "1000"}
ROUTES = ("--market-shard", "m1=BTC/USD", "--market-shard", "m2=ETH/USD")
T = TypeVar("T")


@dataclass
class _Shard:
    shard: str
    prefix: str


@dataclass
class Split:
    first: Gateway
    second: Gateway
    alice: Trader
    bob: Trader
    http: httpx.Client
    admin: SignedClient
    new_gateway: Callable[[], Gateway]


@pytest.fixture
def split(tmp_path: Path, nats_options: NatsOptions) -> Iterator[Split]:
    config = write_config(tmp_path / "markets.toml")

    def shard(name: str, extra: tuple[str, ...]) -> ShardProcess:
        return ShardProcess(nats_options, tmp_path / name, config, name=name, extra_args=extra)

    processes = (
        shard("m1", ("--role", "market", "--markets", "BTC/USD")),
        shard("m2", ("--role", "market", "--markets", "ETH/USD")),
        shard("acct", ("--role", "account", *ROUTES)),
    )
    with shard_processes(*processes):
        for process in processes:
            process.start()
        for process in processes:
            process.wait_for(": leader ", 30)
        account = _Shard("acct", nats_options.prefix)

        def new_gateway() -> Gateway:
            return Gateway(nats_options.servers[0], account, tmp_path / "gateway", extra_args=ROUTES)  # type: ignore[arg-type]

        first, second = new_gateway(), new_gateway()
        try:
            first.start()  # creates the admin in the shared auth store
            second.start()
            with httpx.Client(base_url=first.url, timeout=30) as http:
                admin = first.admin(http)
                alice = make_trader(admin, "alice", FUNDS)
                bob = make_trader(admin, "bob", FUNDS)
                yield Split(first, second, alice, bob, http, admin, new_gateway)
        finally:
            second.stop()
            first.stop()


def _eventually(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    """``read()`` again until ``done`` holds (settlements reach the account shard asynchronously)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def test_ccxt_trades_on_two_market_shards_through_split_gateways(split: Split) -> None:
    alice = _ccxt(split.first, split.alice)
    bob = _ccxt(split.second, split.bob)  # the other gateway
    assert set(alice.markets) == {"BTC/USD", "ETH/USD"}
    assert Decimal(str(alice.market("ETH/USD")["precision"]["price"])) == Decimal("0.01")
    assert _ccxt_balances(alice) == _native_balances(split.alice)

    # An order resting on each market shard, found, listed and cancelled through ccxt.
    btc = alice.create_order("BTC/USD", "limit", "buy", 2, 90)
    eth = alice.create_order("ETH/USD", "limit", "sell", 3, "25.5")
    assert btc["status"] == eth["status"] == "open"
    assert btc["id"] != eth["id"]
    assert alice.fetch_order(eth["id"], "ETH/USD")["status"] == "open"
    assert {order["id"] for order in alice.fetch_open_orders()} == {btc["id"], eth["id"]}
    native_open = split.alice.native.get("/api/orders").json()["orders"]
    assert {order["order_id"] for order in native_open} == {f"MC-{btc['id']}", f"MC-{eth['id']}"}
    usd_free, usd_locked = _ccxt_balances(alice)["USD"]
    assert usd_locked == Decimal("180.36")  # the price and the taker fee held by the account shard
    assert usd_free + usd_locked == Decimal(FUNDS["USD"])
    assert alice.cancel_order(btc["id"], "BTC/USD")["status"] == "canceled"
    assert [order["id"] for order in alice.fetch_open_orders("BTC/USD")] == []

    # Trades on both shards, each side on its own gateway.
    bought = bob.create_order("ETH/USD", "limit", "buy", 3, "25.5")
    assert bought["status"] == "closed" and Decimal(str(bought["filled"])) == 3
    alice.create_order("BTC/USD", "limit", "sell", "0.5", 100)
    taken = bob.create_order("BTC/USD", "limit", "buy", "0.5", 100)
    assert taken["status"] == "closed"
    for symbol in ("BTC/USD", "ETH/USD"):
        mine = bob.fetch_my_trades(symbol)
        fills = split.bob.native.get(f"/api/fills?symbol={symbol}").json()["fills"]
        assert len(mine) == len(fills) == 1
        assert Decimal(str(mine[0]["amount"])) == Decimal(fills[0]["quantity"])
        assert Decimal(str(mine[0]["fee"]["cost"])) == Decimal(fills[0]["fee"])
    for trader, client in ((split.alice, alice), (split.bob, bob)):
        native = _eventually(lambda t=trader: _native_balances(t), lambda b: b["USD"][1] == 0)
        assert _ccxt_balances(client) == native
    assert _native_balances(split.bob)["ETH"] == (Decimal(1003), Decimal(0))

    # Public and stored data, read from the market shard that owns each market.
    book = alice.fetch_order_book("ETH/USD")
    assert book["bids"] == [] and book["asks"] == []
    public = alice.fetch_trades("BTC/USD")
    assert [Decimal(str(t["price"])) for t in public] == [Decimal(100)]
    first_eth = alice.fetch_trades("ETH/USD")[0]["id"]
    raw = httpx.get(
        f"{split.second.url}/binance/api/v3/historicalTrades",
        params={"symbol": "ETHUSD", "fromId": first_eth},
    )
    assert raw.status_code == 200, raw.text
    assert [(Decimal(t["price"]), Decimal(t["qty"])) for t in raw.json()] == [(Decimal("25.5"), Decimal(3))]
    for gateway in (split.first, split.second):
        candles = httpx.get(
            f"{gateway.url}/binance/api/v3/klines", params={"symbol": "BTCUSD", "interval": "1m"}
        ).json()
        assert [(Decimal(c[4]), Decimal(c[5])) for c in candles] == [(Decimal(100), Decimal("0.5"))]
    history = alice.fetch_orders("BTC/USD")
    assert [order["status"] for order in history] == ["canceled", "closed"]
    limits = httpx.get(f"{split.first.url}/binance/api/v3/exchangeInfo").json()
    assert {symbol["symbol"] for symbol in limits["symbols"]} == {"BTCUSD", "ETHUSD"}

    # A gateway started after the trades loads them from both market shards' storage.
    late = split.new_gateway()
    late.start()
    try:
        for symbol in ("BTCUSD", "ETHUSD"):
            params = {"symbol": symbol, "interval": "1m"}
            seen = httpx.get(f"{split.first.url}/binance/api/v3/klines", params=params).json()
            loaded = httpx.get(f"{late.url}/binance/api/v3/klines", params=params).json()
            assert loaded == seen and len(loaded) == 1, symbol
        costs = [Decimal(str(order["cost"])) for order in _ccxt(late, split.bob).fetch_orders("ETH/USD")]
        assert costs == [Decimal("76.5")]
    finally:
        late.stop()


def test_ws_api_order_entry_and_execution_reports_on_a_split_gateway(split: Split) -> None:
    """The WebSocket API of a split gateway: a signed user data subscription, an order placed there and
    filled by a counterparty on the other gateway, each reported by an execution report."""
    with ws_order_filled_through_another_gateway(
        split.first, split.second, split.alice, split.bob, "ETH/USD", 30
    ):
        pass  # the NEW and TRADE execution reports were checked (account positions: the test below)


def _balances_until(ws: Any, expected: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The ``balances`` frames received until one shows ``expected`` (every asset, exactly)."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = json.loads(ws.recv(timeout=15))
        if frame["type"] != "balances":
            continue
        seen.append(frame)
        if _amounts(frame["balances"]) == _amounts(expected):
            return seen


def _amounts(balances: dict[str, dict[str, str]]) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        asset: (Decimal(value["available"]), Decimal(value["held"]))
        for asset, value in balances.items()
        if Decimal(value["available"]) or Decimal(value["held"])
    }


def _events_until(ws: Any, expected: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The user data events received (of any kind) until an ``outboundAccountPosition`` shows
    ``expected``'s available amounts (free) and held amounts (locked)."""
    from tests.binance.test_ws_user import _EARLY

    early = _EARLY.setdefault(id(ws), [])
    seen: list[dict[str, Any]] = []
    want = _amounts(expected)
    while True:
        frame = early.pop(0) if early else json.loads(ws.recv(timeout=15))
        if "subscriptionId" not in frame:
            continue
        event = frame["event"]
        seen.append(event)
        if event["e"] == "outboundAccountPosition":
            shown = {row["a"]: (Decimal(row["f"]), Decimal(row["l"])) for row in event["B"]}
            if {asset: amounts for asset, amounts in shown.items() if any(amounts)} == want:
                return seen


@contextlib.contextmanager
def _private_frames(gateway: Gateway, trader: Trader) -> Iterator[Any]:
    """A native WebSocket on ``gateway``, authenticated as ``trader`` and subscribed to its private
    channel."""
    with connect(f"ws://127.0.0.1:{gateway.port}/ws", open_timeout=10) as ws:
        client = trader.native
        timestamp = client.fresh_timestamp("GET", "/ws")
        signature = client.headers("GET", "/ws", timestamp=timestamp)["X-MC-SIGNATURE"]
        auth = {"op": "auth", "api_key": client.api_key, "timestamp": timestamp, "signature": signature}
        ws.send(json.dumps(auth))
        assert json.loads(ws.recv(timeout=10))["type"] == "authenticated"
        ws.send(json.dumps({"op": "subscribe", "channel": "private"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        yield ws


def test_balance_frames_and_account_positions_on_split_gateways(split: Split) -> None:
    """The account shard publishes each touched user's balances after every durable change; split
    gateways deliver them as the embedded server does: native private ``balances`` frames (same shape)
    and Binance ``balanceUpdate`` (deposits and withdrawals only) and ``outboundAccountPosition``."""
    from tests.binance.test_ws_user import _call, _event, _signed

    alice = split.alice
    with (
        _private_frames(split.first, alice) as native,
        connect(f"ws://127.0.0.1:{split.second.port}/binance/ws-api/v3", open_timeout=10) as binance,
    ):
        subscribed = _call(binance, "s", "userDataStream.subscribe.signature", _signed(alice.native, {}))
        assert subscribed["status"] == 200, subscribed

        # A deposit: one frame with the new balances, a balanceUpdate with the amount.
        deposited = split.admin.post(
            "/api/deposits", {"user_id": alice.user_id, "asset": "USD", "amount": "5"}
        )
        assert deposited.status_code in (200, 201), deposited.text
        after_deposit = alice.balances()
        frames = _balances_until(native, after_deposit)
        assert set(frames[-1]) == {"type", "user_id", "balances"}  # the embedded frame's shape
        assert frames[-1]["user_id"] == alice.user_id
        update = _event(binance, "balanceUpdate")
        assert (update["a"], Decimal(update["d"])) == ("USD", Decimal(5))
        _events_until(binance, after_deposit)

        # A resting buy: its hold (account shard) is shown, no balanceUpdate for it.
        placed = alice.native.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "buy", "price": "90", "quantity": "1"}
        )
        assert placed.status_code == 201, placed.text
        resting = alice.balances()
        assert Decimal(resting["USD"]["held"]) > 0
        _balances_until(native, resting)
        events = _events_until(binance, resting)
        assert "balanceUpdate" not in [event["e"] for event in events]

        # Filled by bob through the other gateway: the settlement's balances reach alice's frames.
        sold = split.bob.native.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "sell", "price": "90", "quantity": "1"}
        )
        assert sold.status_code == 201, sold.text
        settled = _eventually(alice.balances, lambda b: Decimal(b["USD"]["held"]) == 0)
        assert Decimal(settled["BTC"]["available"]) == Decimal(FUNDS["BTC"]) + 1
        _balances_until(native, settled)
        events = _events_until(binance, settled)
        assert "balanceUpdate" not in [event["e"] for event in events]
        if not any(event["e"] == "executionReport" and event["x"] == "TRADE" for event in events):
            # the market shard's report and the account shard's position travel apart
            assert _event(binance, "executionReport", x="TRADE")["X"] == "FILLED"

        # A withdrawal: the last change, a balanceUpdate with the negative amount.
        withdrawn = split.admin.post(
            "/api/withdrawals", {"user_id": alice.user_id, "asset": "BTC", "amount": "0.5"}
        )
        assert withdrawn.status_code in (200, 201), withdrawn.text
        final = alice.balances()
        _balances_until(native, final)
        update = _event(binance, "balanceUpdate")
        assert (update["a"], Decimal(update["d"])) == ("BTC", Decimal("-0.5"))
        _events_until(binance, final)
