"""Every order type and time in force, client order ids and private fills, through a real ``manticore serve``.

One server (a subprocess on a free port) for the module; each test opens its own market through the admin
API (tick 0.5, lot 0.1, maker fee 0.001, taker fee 0.002) and its own users, so that an independent model
(tests/matching/ledger_model.py) can say exactly what every balance, live order and print must be after
each step. ``carol`` and ``dave`` make the small prints that move the last price and trigger stops.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from manticore_matching import MarketConfig
from tests.api.support import Server, SignedClient, new_user
from tests.matching.ledger_model import LedgerModel

_NAMES = (f"ORD{letter}" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_USERS = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(Path(tmp_path_factory.mktemp("orders")) / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as client:
        yield client


class Venue:
    """One fresh market and its traders on the running server, with the model that checks them."""

    def __init__(self, server: Server, http: httpx.Client) -> None:
        self.http = http
        self.admin = server.admin(http)
        base = next(_NAMES)
        self.symbol = f"{base}/USD"
        config = MarketConfig(
            self.symbol, base, "USD", Decimal("0.5"), Decimal("0.1"), Decimal("0.001"), Decimal("0.002")
        )
        created = self.admin.post(
            "/api/markets",
            {
                "symbol": self.symbol,
                "base_asset": base,
                "quote_asset": "USD",
                "tick_size": "0.5",
                "lot_size": "0.1",
                "maker_fee_rate": "0.001",
                "taker_fee_rate": "0.002",
            },
        )
        assert created.status_code == 201, created.text
        self.model = LedgerModel(config)
        self.clients: dict[str, SignedClient] = {}
        self.ids: dict[str, str] = {}
        for name in ("alice", "bob", "carol", "dave"):
            client = new_user(self.admin, f"{name}{next(_USERS)}", {"USD": "10000", base: "10"})
            user_id = client.get("/api/me").json()["user_id"]
            self.clients[user_id] = client
            self.ids[name] = user_id
            key = (user_id, "USD")
            self.model.deposits[key] = Decimal("10000")
            self.model.deposits[(user_id, base)] = Decimal("10")
        self.check()

    def client(self, name: str) -> SignedClient:
        return self.clients[self.ids[name]]

    def place(self, name: str, side: str, quantity: str, **fields: Any) -> str:
        response = self.try_place(name, side, quantity, **fields)
        assert response.status_code == 201, response.text
        order_id: str = response.json()["order_id"]
        assert order_id.startswith("MC-")
        return order_id

    def try_place(self, name: str, side: str, quantity: str, **fields: Any) -> httpx.Response:
        body = {"symbol": self.symbol, "side": side, "quantity": quantity, **fields}
        return self.client(name).post("/api/orders", body)

    def refused(self, status: int, code: str, name: str, side: str, quantity: str, **fields: Any) -> str:
        response = self.try_place(name, side, quantity, **fields)
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        self.check()
        message: str = response.json()["message"]
        return message

    def order(self, name: str, order_id: str) -> dict[str, Any]:
        response = self.client(name).get(f"/api/orders/{order_id}")
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()["order"]
        return order

    def modify(self, name: str, order_id: str, **fields: Any) -> None:
        response = self.client(name).patch(f"/api/orders/{order_id}", fields)
        assert response.status_code == 200, response.text

    def cancel(self, name: str, order_id: str) -> None:
        assert self.client(name).delete(f"/api/orders/{order_id}").status_code == 200

    def trade(self, buyer: str, seller: str, taker_side: str, price: str, quantity: str) -> None:
        self.model.trade(self.ids[buyer], self.ids[seller], taker_side, price, quantity)

    def rest(
        self, order_id: str, name: str, side: str, limit: str | None, open_: str, status: str = "open"
    ) -> None:
        self.model.rest(order_id, self.ids[name], side, limit, open_, status)

    def print_at(self, price: str, taker_side: str = "buy") -> None:
        self.place("carol", "sell" if taker_side == "buy" else "buy", "0.1", price=price)
        self.place("dave", taker_side, "0.1", price=price)
        if taker_side == "buy":
            self.trade("dave", "carol", "buy", price, "0.1")
        else:
            self.trade("carol", "dave", "sell", price, "0.1")

    def check(self) -> None:
        trades = self.http.get("/api/trades", params={"symbol": self.symbol, "limit": 1000}).json()["trades"]
        self.model.check_views(
            lambda user: self.clients[user].get("/api/balances").json()["balances"],
            lambda user: self.clients[user].get("/api/orders").json()["orders"],
            trades,
        )


def other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_limit_post_only_fok_gtd_and_market_orders(server: Server, http: httpx.Client, side: str) -> None:
    venue = Venue(server, http)
    buyer, seller = ("alice", "bob") if side == "buy" else ("bob", "alice")
    # LIMIT GTC: rest, shrink, reprice, partial fill, IOC takes the rest
    maker = venue.place("alice", side, "2", price="100", client_order_id="a1")
    venue.rest(maker, "alice", side, "100", "2")
    venue.check()
    venue.modify("alice", maker, new_quantity="1.5")
    venue.rest(maker, "alice", side, "100", "1.5")
    venue.check()
    venue.modify("alice", maker, new_price="100.5")
    venue.rest(maker, "alice", side, "100.5", "1.5")
    venue.check()
    venue.place("bob", other(side), "0.5", price="100.5")
    venue.trade(buyer, seller, other(side), "100.5", "0.5")
    venue.rest(maker, "alice", side, "100.5", "1", "partially_filled")
    venue.check()
    venue.place("bob", other(side), "2", price="100.5", time_in_force="IOC")
    venue.trade(buyer, seller, other(side), "100.5", "1")
    del venue.model.live[maker]
    venue.check()
    # POST_ONLY: rests; a crossing one is cancelled without trading; IOC is refused
    post = venue.place("alice", side, "1", price="100", order_type="post_only", client_order_id="po")
    venue.rest(post, "alice", side, "100", "1")
    venue.check()
    crossing = venue.try_place("bob", other(side), "1", price="100", order_type="post_only")
    assert crossing.status_code == 201 and crossing.json()["order"]["status"] == "cancelled"
    venue.check()
    venue.refused(400, "invalid", "bob", side, "1", price="90", order_type="post_only", time_in_force="IOC")
    assert venue.client("alice").delete("/api/orders/by-client-id/po").status_code == 200
    del venue.model.live[post]
    venue.check()
    # GTD with FOK against it: too much does nothing, enough fills; then it expires on the server's timer
    expiry = time.time() + 3
    gtd = venue.place("alice", side, "1", price="100", time_in_force="GTD", expiry_time=expiry)
    venue.rest(gtd, "alice", side, "100", "1")
    venue.check()
    venue.place("bob", other(side), "2", price="100", time_in_force="FOK")
    venue.check()
    venue.place("bob", other(side), "0.5", price="100", time_in_force="FOK")
    venue.trade(buyer, seller, other(side), "100", "0.5")
    venue.rest(gtd, "alice", side, "100", "0.5", "partially_filled")
    venue.check()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and venue.order("alice", gtd)["status"] != "expired":
        time.sleep(0.1)
    assert venue.order("alice", gtd)["status"] == "expired"
    del venue.model.live[gtd]
    venue.check()
    # MARKET: refused on an empty side, sweeps best first, FOK too large does nothing
    venue.refused(422, "no_liquidity", "bob", other(side), "1", order_type="market")
    prices = ("100", "99.5") if side == "buy" else ("100", "100.5")
    first = venue.place("alice", side, "1", price=prices[0])
    second = venue.place("alice", side, "1", price=prices[1])
    venue.rest(first, "alice", side, prices[0], "1")
    venue.rest(second, "alice", side, prices[1], "1")
    venue.check()
    venue.place("bob", other(side), "5", order_type="market", time_in_force="FOK")
    venue.check()
    venue.place("bob", other(side), "1.5", order_type="market", client_order_id="mkt")
    venue.trade(buyer, seller, other(side), prices[0], "1")
    venue.trade(buyer, seller, other(side), prices[1], "0.5")
    del venue.model.live[first]
    venue.rest(second, "alice", side, prices[1], "0.5", "partially_filled")
    venue.check()
    venue.cancel("alice", second)
    del venue.model.live[second]
    venue.check()
    venue.refused(400, "invalid", "bob", other(side), "1", order_type="market", price="100")


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_stops_trailing_stops_and_icebergs(server: Server, http: httpx.Client, side: str) -> None:
    venue = Venue(server, http)
    buy = side == "buy"
    buyer, seller = ("alice", "bob") if buy else ("bob", "alice")
    venue.print_at("100")
    venue.check()
    # STOP_LIMIT: waits holding its funds, is modified, triggers on a print and fills
    stop, limit, resting, trigger = ("101", "102", "101.5", "101") if buy else ("99", "98", "98.5", "99")
    order = venue.place("alice", side, "2", price=limit, stop_price=stop, order_type="stop_limit")
    venue.rest(order, "alice", side, limit, "2", "pending")
    venue.check()
    venue.modify("alice", order, new_quantity="1")
    venue.rest(order, "alice", side, limit, "1", "pending")
    venue.check()
    counter = venue.place("bob", other(side), "1", price=resting)
    venue.rest(counter, "bob", other(side), resting, "1")
    venue.check()
    venue.print_at(trigger, side)
    venue.trade(buyer, seller, side, resting, "1")
    del venue.model.live[order]
    del venue.model.live[counter]
    venue.check()
    # back to 100
    venue.print_at("100", "sell" if buy else "buy")
    venue.check()
    if buy:
        # STOP_MARKET buys cannot be bounded: refused. TRAILING_STOP buys need their protection limit.
        venue.refused(
            422, "unsupported_order", "alice", "buy", "1", stop_price="101", order_type="stop_market"
        )
        message = venue.refused(
            422, "unsupported_order", "alice", "buy", "1", order_type="trailing_stop", trail_value="1"
        )
        assert "limit price" in message
        trailing = venue.place(
            "alice",
            "buy",
            "1",
            order_type="trailing_stop",
            trail_value="1",
            price="103",
            client_order_id="trail",
        )
        venue.rest(trailing, "alice", "buy", "103", "1", "pending")
        venue.check()
        assert venue.order("alice", trailing)["stop_price"] == "101.0"
        venue.print_at("99", "sell")
        assert venue.order("alice", trailing)["stop_price"] == "100.0"
        venue.check()
        ask = venue.place("bob", "sell", "1", price="100.5")
        venue.rest(ask, "bob", "sell", "100.5", "1")
        venue.check()
        venue.print_at("100")
        venue.trade("alice", "bob", "buy", "100.5", "1")
        del venue.model.live[trailing]
        del venue.model.live[ask]
        venue.check()
    else:
        # STOP_MARKET sell: waits holding its quantity, triggers into the bids
        stop_market = venue.place("alice", "sell", "1", stop_price="99", order_type="stop_market")
        venue.rest(stop_market, "alice", "sell", None, "1", "pending")
        venue.check()
        bid = venue.place("bob", "buy", "1", price="98.5")
        venue.rest(bid, "bob", "buy", "98.5", "1")
        venue.print_at("99", "sell")
        venue.trade("bob", "alice", "sell", "98.5", "1")
        del venue.model.live[stop_market]
        del venue.model.live[bid]
        venue.check()
        # TRAILING_STOP sell without a price: follows the highest print, triggers as a market sell
        venue.print_at("100")
        trailing = venue.place(
            "alice", "sell", "1", order_type="trailing_stop", trail_value="1", client_order_id="trail"
        )
        venue.rest(trailing, "alice", "sell", None, "1", "pending")
        venue.check()
        assert venue.order("alice", trailing)["stop_price"] == "99.0"
        venue.print_at("102")
        assert venue.order("alice", trailing)["stop_price"] == "101.0"
        bid = venue.place("bob", "buy", "1", price="100.5")
        venue.rest(bid, "bob", "buy", "100.5", "1")
        venue.check()
        venue.print_at("101", "sell")
        venue.trade("bob", "alice", "sell", "100.5", "1")
        del venue.model.live[trailing]
        del venue.model.live[bid]
        venue.check()
    assert venue.client("alice").get("/api/orders/by-client-id/trail").json()["order"]["status"] == "filled"
    # ICEBERG: one slice shows, refills, is modified and cancelled by its client order id
    price = "100"
    iceberg = venue.place(
        "alice", side, "3", price=price, order_type="iceberg", displayed_quantity="1", client_order_id="ice"
    )
    venue.rest(iceberg, "alice", side, price, "3")
    venue.check()
    book = http.get("/api/orderbook", params={"symbol": venue.symbol}).json()
    assert [(level["price"], level["quantity"]) for level in book["bids" if buy else "asks"]] == [
        ("100.0", "1.0")
    ]
    venue.place("bob", other(side), "2.5", price=price)
    for quantity in ("1", "1", "0.5"):
        venue.trade(buyer, seller, other(side), price, quantity)
    venue.rest(iceberg, "alice", side, price, "0.5", "partially_filled")
    venue.check()
    venue.modify("alice", iceberg, new_quantity="3.5")
    venue.rest(iceberg, "alice", side, price, "1", "partially_filled")
    venue.check()
    cancelled = venue.client("alice").delete("/api/orders/by-client-id/ice")
    assert cancelled.status_code == 200 and cancelled.json()["order_id"] == iceberg
    del venue.model.live[iceberg]
    venue.check()
    venue.refused(
        400,
        "invalid",
        "alice",
        side,
        "3",
        price=price,
        order_type="iceberg",
        displayed_quantity="1",
        time_in_force="IOC",
    )


def test_client_order_ids_are_per_user_over_http(server: Server, http: httpx.Client) -> None:
    venue = Venue(server, http)
    alice, bob = venue.client("alice"), venue.client("bob")
    first = venue.place("alice", "buy", "1", price="90", client_order_id="same")
    duplicate = venue.try_place("alice", "buy", "1", price="91", client_order_id="same")
    assert (duplicate.status_code, duplicate.json()["code"]) == (400, "duplicate_client_order_id")
    bobs = venue.place("bob", "buy", "1", price="90", client_order_id="same")  # another user: no conflict
    assert first != bobs
    got = alice.get("/api/orders/by-client-id/same").json()["order"]
    assert (got["order_id"], got["client_order_id"]) == (first, "same")
    assert alice.get(f"/api/orders/{first}").json()["order"]["client_order_id"] == "same"
    assert venue.client("carol").get("/api/orders/by-client-id/same").status_code == 404
    assert venue.client("carol").delete("/api/orders/by-client-id/same").status_code == 404
    assert bob.delete("/api/orders/by-client-id/same").status_code == 200
    assert alice.get(f"/api/orders/{first}").json()["order"]["status"] == "open"
    assert alice.delete("/api/orders/by-client-id/same").status_code == 200
    assert alice.delete("/api/orders/by-client-id/same").status_code == 404
    again = venue.place("alice", "buy", "1", price="90", client_order_id="same")  # free again once ended
    assert alice.get("/api/orders/by-client-id/same").json()["order"]["order_id"] == again
    for bad in ("x" * 65, "a b"):
        response = venue.try_place("alice", "buy", "1", price="90", client_order_id=bad)
        assert response.status_code == 400, response.text
    deadline = time.monotonic() + 10
    history: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(history) < 2:
        history = alice.get("/api/orders/history").json()["orders"]
        time.sleep(0.05)
    assert {order["client_order_id"] for order in history} == {"same"}


def test_fills_and_private_frames_show_only_the_users_own_side(server: Server, http: httpx.Client) -> None:
    venue = Venue(server, http)
    alice_id, bob_id = venue.ids["alice"], venue.ids["bob"]
    ws_url = server.url.replace("http", "ws") + "/ws"
    frames: dict[str, list[dict[str, Any]]] = {alice_id: [], bob_id: []}
    with contextlib.ExitStack() as stack:
        sockets = {}
        for name, user_id in (("alice", alice_id), ("bob", bob_id)):
            client = venue.client(name)
            ws = stack.enter_context(connect(ws_url))
            sockets[user_id] = ws
            timestamp = str(int(time.time() * 1000))
            signature = client.headers("GET", "/ws", timestamp=timestamp)["X-MC-SIGNATURE"]
            ws.send(
                json.dumps(
                    {"op": "auth", "api_key": client.api_key, "timestamp": timestamp, "signature": signature}
                )
            )
            assert json.loads(ws.recv(timeout=10))["type"] == "authenticated"
            ws.send(json.dumps({"op": "subscribe", "channel": "private"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        ask = venue.place("alice", "sell", "1", price="100", client_order_id="a-ask")
        bid = venue.place("bob", "buy", "0.4", price="100", client_order_id="b-bid")
        for user_id, ws in sockets.items():
            while not any(frame["type"] == "fill" for frame in frames[user_id]):
                frames[user_id].append(json.loads(ws.recv(timeout=10)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not venue.client("bob").get("/api/fills").json()["fills"]:
        time.sleep(0.05)
    (alice_fill,) = (
        venue.client("alice")
        .get(
            "/api/fills",
        )
        .json()["fills"]
    )
    (bob_fill,) = venue.client("bob").get("/api/fills").json()["fills"]
    keys = [
        "trade_id",
        "symbol",
        "order_id",
        "client_order_id",
        "side",
        "role",
        "price",
        "quantity",
        "fee",
        "fee_asset",
        "timestamp",
    ]
    assert list(alice_fill) == list(bob_fill) == keys
    assert (
        alice_fill["order_id"],
        alice_fill["client_order_id"],
        alice_fill["side"],
        alice_fill["role"],
    ) == (ask, "a-ask", "sell", "maker")
    assert (bob_fill["order_id"], bob_fill["client_order_id"], bob_fill["side"], bob_fill["role"]) == (
        bid,
        "b-bid",
        "buy",
        "taker",
    )
    assert alice_fill["trade_id"] == bob_fill["trade_id"] and alice_fill["symbol"] == venue.symbol
    assert Decimal(alice_fill["price"]) == 100 and Decimal(alice_fill["quantity"]) == Decimal("0.4")
    assert (Decimal(alice_fill["fee"]), Decimal(bob_fill["fee"])) == (Decimal("0.04"), Decimal("0.08"))
    assert alice_fill["fee_asset"] == bob_fill["fee_asset"] == "USD"
    for user_id, own, theirs in (
        (alice_id, (ask, alice_fill), (bob_id, bid)),
        (bob_id, (bid, bob_fill), (alice_id, ask)),
    ):
        fills = [frame for frame in frames[user_id] if frame["type"] == "fill"]
        assert len(fills) == 1
        assert {key: fills[0][key] for key in keys if key != "timestamp"} == {
            key: value for key, value in own[1].items() if key != "timestamp"
        }
        for frame in frames[user_id]:
            text = json.dumps(frame)
            assert theirs[0] not in text and theirs[1] not in text, frame
        rest = json.dumps(venue.client("alice" if user_id == alice_id else "bob").get("/api/fills").json())
        assert theirs[0] not in rest and theirs[1] not in rest
