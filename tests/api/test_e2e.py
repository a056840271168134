"""End to end: the real ``manticore serve`` in a subprocess on a free port, driven over HTTP and WebSocket.

Covers the order life cycle, a WebSocket client that rebuilds the book from snapshot + diffs and ends
identical to ``GET /api/orderbook``, and ``kill -9`` after acknowledged orders: after a restart the book,
balances and trades are exactly as acknowledged.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.api.support import Server, SignedClient, new_user


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def _order(rng: random.Random) -> dict[str, Any]:
    return {
        "symbol": "BTC/USD",
        "side": rng.choice(["buy", "sell"]),
        "price": str(Decimal("30000") + Decimal("0.5") * rng.randint(-20, 20)),
        "quantity": str(Decimal("0.001") * rng.randint(1, 200)),
    }


def test_order_life_cycle_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        alice = new_user(admin, "alice", {"USD": "100000", "BTC": "5"})
        bob = new_user(admin, "bob", {"USD": "100000", "BTC": "5"})
        placed = alice.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "sell", "price": "30000", "quantity": "1"}
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        filled = bob.post(
            "/api/orders", {"symbol": "BTC/USD", "side": "buy", "price": "30000", "quantity": "0.4"}
        )
        assert filled.json()["order"]["status"] == "filled"
        assert alice.delete(f"/api/orders/{order_id}").status_code == 200
        assert alice.delete(f"/api/orders/{order_id}").status_code == 404
        book = http.get("/api/orderbook", params={"symbol": "BTC/USD"}).json()
        assert book["asks"] == [] and book["bids"] == []
        trades = http.get("/api/trades", params={"symbol": "BTC/USD"}).json()["trades"]
        assert [Decimal(t["quantity"]) for t in trades] == [Decimal("0.4")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not bob.get("/api/fills").json()["fills"]:
            time.sleep(0.05)
        assert [Decimal(f["quantity"]) for f in bob.get("/api/fills").json()["fills"]] == [Decimal("0.4")]
        assert http.get("/docs").status_code == 200
        assert "manticore_http_requests_total" in http.get("/metrics").text


def _apply_diff(book: dict[str, dict[str, str]], levels: list[dict[str, Any]]) -> None:
    for level in levels:
        if Decimal(level["quantity"]) == 0:
            book.pop(level["price"], None)
        else:
            book[level["price"]] = level["quantity"]


def test_websocket_client_rebuilds_the_book(server: Server) -> None:
    rng = random.Random(5)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        traders = [
            new_user(admin, name, {"USD": "1000000", "BTC": "100"}) for name in ("alice", "bob", "carol")
        ]
        for _ in range(20):  # a book exists before the client connects
            assert rng.choice(traders).post("/api/orders", _order(rng)).status_code == 201
        ws_url = server.url.replace("http", "ws") + "/ws"
        with connect(ws_url) as ws:
            ws.send(json.dumps({"op": "subscribe", "channel": "book", "symbol": "BTC/USD"}))
            stop = threading.Event()

            def trade_in_background() -> None:
                local = random.Random(9)
                with httpx.Client(base_url=server.url, timeout=10) as other:
                    clients = [SignedClient(other, t.api_key, t.api_secret) for t in traders]
                    for _ in range(150):
                        if stop.is_set():
                            return
                        client = local.choice(clients)
                        if local.random() < 0.2:
                            mine = client.get("/api/orders").json()["orders"]
                            if mine:
                                client.delete(f"/api/orders/{local.choice(mine)['order_id']}")
                                continue
                        client.post("/api/orders", _order(local))

            worker = threading.Thread(target=trade_in_background)
            worker.start()
            bids: dict[str, str] = {}
            asks: dict[str, str] = {}
            sequence = -1
            try:
                worker.join(120)
                assert not worker.is_alive()
                final = http.get("/api/orderbook", params={"symbol": "BTC/USD", "depth": 0}).json()
                while sequence < final["sequence"]:
                    frame = json.loads(ws.recv(timeout=10))
                    if frame["type"] == "snapshot":
                        bids = {level["price"]: level["quantity"] for level in frame["bids"]}
                        asks = {level["price"]: level["quantity"] for level in frame["asks"]}
                        sequence = frame["sequence"]
                    elif frame["type"] == "book":
                        if frame["last_sequence"] <= sequence:
                            continue
                        assert frame["first_sequence"] == sequence + 1, "a gap in the diffs"
                        _apply_diff(bids, frame["bids"])
                        _apply_diff(asks, frame["asks"])
                        sequence = frame["last_sequence"]
            finally:
                stop.set()
        assert sequence == final["sequence"]
        assert bids == {level["price"]: level["quantity"] for level in final["bids"]}
        assert asks == {level["price"]: level["quantity"] for level in final["asks"]}


def _everything(http: httpx.Client, clients: list[SignedClient]) -> Any:
    book = http.get("/api/orderbook", params={"symbol": "BTC/USD", "depth": 0}).json()
    book.pop("timestamp", None)
    return (
        book,
        [c.get("/api/balances").json() for c in clients],
        [c.get("/api/orders").json() for c in clients],
        http.get("/api/trades", params={"symbol": "BTC/USD", "limit": 1000}).json(),
    )


def test_kill_9_keeps_every_acknowledged_order(server: Server) -> None:
    rng = random.Random(3)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        traders = [new_user(admin, name, {"USD": "1000000", "BTC": "100"}) for name in ("alice", "bob")]
        acknowledged = []
        for _ in range(60):
            response = rng.choice(traders).post("/api/orders", _order(rng))
            assert response.status_code == 201
            acknowledged.append(response.json()["order_id"])
        expected = _everything(http, traders)
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        clients = [SignedClient(http, t.api_key, t.api_secret) for t in traders]
        assert _everything(http, clients) == expected


def test_kill_9_during_load_loses_nothing_acknowledged(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        traders = [
            new_user(admin, name, {"USD": "1000000", "BTC": "100"}) for name in ("alice", "bob", "carol")
        ]
    acknowledged: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        local = random.Random(worker)
        with httpx.Client(base_url=server.url, timeout=5) as http:
            client = SignedClient(http, traders[worker % 3].api_key, traders[worker % 3].api_secret)
            while True:
                try:
                    response = client.post("/api/orders", _order(local))
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged.append((worker % 3, response.json()["order_id"]))

    with ThreadPoolExecutor(4) as pool:
        for worker in range(4):
            pool.submit(send, worker)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(acknowledged) >= 80:
                    break
            time.sleep(0.02)
        server.kill()
    with lock:
        done = list(acknowledged)
    assert len(done) >= 80
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        clients = [SignedClient(http, t.api_key, t.api_secret) for t in traders]
        for owner, order_id in done:
            response = clients[owner].get(f"/api/orders/{order_id}")
            assert response.status_code == 200, (order_id, response.text)
        health = http.get("/api/health").json()
        assert health["status"] == "ok"


def test_auth_failures_and_hostile_inputs_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        alice = new_user(admin, "alice", {"USD": "100000", "BTC": "5"})
        bob = new_user(admin, "bob", {"USD": "100000", "BTC": "5"})
        mine = alice.post("/api/orders", {"side": "buy", "price": "29000", "quantity": "0.1"}).json()[
            "order_id"
        ]
        order = json.dumps({"side": "buy", "price": "29000", "quantity": "0.1"}).encode()
        signed = alice.headers("POST", "/api/orders", order)
        placed = http.post("/api/orders", content=order, headers=signed)
        assert placed.status_code == 201
        replay = http.post("/api/orders", content=order, headers=signed)
        assert alice.delete(f"/api/orders/{placed.json()['order_id']}").status_code == 200
        before = _everything(http, [alice, bob])
        stale_headers = alice.headers("POST", "/api/orders", order, "1")
        refusals = {
            "no key": http.post("/api/orders", content=order),
            "bad signature": http.post(
                "/api/orders", content=order, headers={**signed, "X-MC-SIGNATURE": "ab" * 32}
            ),
            "stale": http.post("/api/orders", content=order, headers=stale_headers),
            "replay": replay,
            "another user's order": bob.delete(f"/api/orders/{mine}"),
            "trader as admin": alice.post("/api/deposits", {"user_id": "x", "asset": "USD", "amount": "1"}),
        }
        hostile: list[Any] = [
            {"side": "buy", "price": "29000", "quantity": "NaN"},
            {"side": "buy", "price": "Infinity", "quantity": "1"},
            {"side": "buy", "price": "1e99999999", "quantity": "1"},
            {"side": "buy", "price": 1e308, "quantity": "1"},
            {"side": "buy", "price": "29000", "quantity": 10**400},
            {"side": ["buy"], "price": "29000", "quantity": "1"},
            {"side": "buy", "price": {"$gt": 0}, "quantity": "1"},
            {"side": "buy", "price": "29000", "quantity": "1", "symbol": "../../etc/passwd"},
            {"side": "buy", "price": "29000", "quantity": "1", "order_type": "x" * 10_000},
            "\x00\x01",
            None,
        ]
        for payload in hostile:
            refusals[f"hostile {str(payload)[:40]}"] = alice.post("/api/orders", payload)
        huge = b"[" * 100_000
        refusals["oversized"] = http.post(
            "/api/orders", content=huge, headers=alice.headers("POST", "/api/orders", huge)
        )
        for name, response in refusals.items():
            assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:200])
            assert response.json()["status"] == "error", name
        assert refusals["replay"].json()["code"] == "replayed"
        assert refusals["another user's order"].status_code == 404
        assert refusals["trader as admin"].status_code == 403
        assert _everything(http, [alice, bob]) == before
