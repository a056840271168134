"""The REST API in process (the ASGI app over a real Exchange, journal and SQLite in a temp dir)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from manticore_api import create_app
from manticore_api.server import ADMIN_CREDENTIALS, ServerOptions, build_service
from tests.api.support import SignedClient, new_user


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False))
    with TestClient(create_app(service)) as http:
        yield http


@pytest.fixture
def admin(client: TestClient, tmp_path: Path) -> SignedClient:
    credentials = json.loads((tmp_path / ADMIN_CREDENTIALS).read_text())
    return SignedClient(client, credentials["api_key"], credentials["api_secret"])


@pytest.fixture
def alice(admin: SignedClient) -> SignedClient:
    return new_user(admin, "alice", {"USD": "100000", "BTC": "10"})


@pytest.fixture
def bob(admin: SignedClient) -> SignedClient:
    return new_user(admin, "bob", {"USD": "100000", "BTC": "10"})


def _levels(levels: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal, int]]:
    return [(Decimal(level["price"]), Decimal(level["quantity"]), level["order_count"]) for level in levels]


def _state(client: TestClient, *users: SignedClient) -> Any:
    book = client.get("/api/orderbook?symbol=BTC/USD&depth=0").json()
    book.pop("timestamp")  # the exchange clock, which the periodic expiry check moves; not state
    return (
        book,
        [user.get("/api/balances").json() for user in users],
        [user.get("/api/orders").json() for user in users],
    )


def test_place_fill_cancel(client: TestClient, alice: SignedClient, bob: SignedClient) -> None:
    placed = alice.post(
        "/api/orders", {"symbol": "BTC/USD", "side": "sell", "price": "30000", "quantity": "0.5"}
    )
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "success" and body["order"]["status"] == "open"
    sell_id = body["order_id"]
    book = client.get("/api/orderbook?symbol=BTC/USD&depth=10").json()
    assert _levels(book["asks"]) == [(Decimal("30000"), Decimal("0.5"), 1)]
    taken = bob.post("/api/orders", {"symbol": "BTC/USD", "side": "buy", "price": 30000, "quantity": 0.2})
    assert taken.status_code == 201 and taken.json()["order"]["status"] == "filled"
    trades = client.get("/api/trades?symbol=BTC/USD").json()["trades"]
    assert [(Decimal(t["price"]), Decimal(t["quantity"])) for t in trades] == [(30000, Decimal("0.2"))]
    assert Decimal(alice.get(f"/api/orders/{sell_id}").json()["order"]["remaining_quantity"]) == Decimal(
        "0.3"
    )
    assert bob.get(f"/api/orders/{sell_id}").status_code == 404
    assert bob.delete(f"/api/orders/{sell_id}").status_code == 404
    cancelled = alice.delete(f"/api/orders/{sell_id}")
    assert cancelled.status_code == 200 and cancelled.json() == {
        "status": "success",
        "message": f"Order {sell_id} cancelled",
    }
    again = alice.delete(f"/api/orders/{sell_id}")
    assert again.status_code == 404 and again.json()["status"] == "error"
    balances = alice.get("/api/balances").json()["balances"]
    assert Decimal(balances["BTC"]["available"]) == Decimal("9.8") and Decimal(balances["BTC"]["held"]) == 0
    assert Decimal(balances["USD"]["available"]) == Decimal("100000") + Decimal("6000") - Decimal("6")
    admin_client = alice.http
    assert admin_client.get("/api/health").json()["status"] == "ok"
    metrics = admin_client.get("/metrics").text
    assert "manticore_orders_placed_total 2.0" in metrics


def test_modify_and_history(alice: SignedClient) -> None:
    order_id = alice.post("/api/orders", {"side": "buy", "price": "100", "quantity": "1"}).json()["order_id"]
    changed = alice.patch(f"/api/orders/{order_id}", {"new_quantity": "0.5"})
    assert changed.status_code == 200, changed.text
    assert Decimal(changed.json()["order"]["quantity"]) == Decimal("0.5")
    assert alice.patch(f"/api/orders/{order_id}", {}).status_code == 400
    open_orders = alice.get("/api/orders").json()["orders"]
    assert [o["order_id"] for o in open_orders] == [order_id]
    alice.delete(f"/api/orders/{order_id}")
    alice.http.app.state.service.exchange.storage.flush()
    history = alice.get("/api/orders/history").json()["orders"]
    assert [(o["order_id"], o["status"]) for o in history] == [(order_id, "cancelled")]


def test_risk_rejection_is_422_with_a_code(alice: SignedClient) -> None:
    response = alice.post("/api/orders", {"side": "buy", "price": "100000", "quantity": "100"})
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_balance"


@pytest.mark.parametrize(
    "payload",
    [
        {"side": "buy", "price": "100", "quantity": "NaN"},
        {"side": "buy", "price": "NaN", "quantity": "1"},
        {"side": "buy", "price": "-1", "quantity": "1"},
        {"side": "buy", "price": "100", "quantity": "1e400"},
        {"side": "buy", "price": "1" + "0" * 60, "quantity": "1"},
        {"side": "buy", "price": 10**30, "quantity": "1"},
        {"side": "buy", "price": "100.001", "quantity": "1"},
        {"side": "buy", "price": "100", "quantity": "0.000001"},
        {"side": "buy", "price": "100", "quantity": True},
        {"side": "buy", "price": "100", "quantity": None},
        {"side": "buy", "price": "100", "quantity": {"x": 1}},
        {"side": "sideways", "price": "100", "quantity": "1"},
        {"side": "buy", "price": "100", "quantity": "1", "symbol": "NOPE/USD"},
        {"side": "buy", "price": "100", "quantity": "1", "time_in_force": "FOREVER"},
        {"side": "buy", "price": "100", "quantity": "1", "unknown_field": 1},
        {"side": "buy", "price": "100", "quantity": "1", "user_id": "somebody-else"},
        {"side": "buy"},
        [],
        "not an object",
    ],
)
def test_malformed_orders_are_4xx_and_change_nothing(
    client: TestClient, alice: SignedClient, payload: Any
) -> None:
    before = _state(client, alice)
    response = alice.post("/api/orders", payload)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["status"] == "error" and body["code"] and body["message"]
    assert _state(client, alice) == before


def test_broken_json_and_oversized_bodies(client: TestClient, alice: SignedClient) -> None:
    body = b'{"side": "buy", '
    response = client.post("/api/orders", content=body, headers=alice.headers("POST", "/api/orders", body))
    assert response.status_code == 400
    big = b'{"side": "buy", "price": "1", "quantity": "1", "symbol": "' + b"x" * 70_000 + b'"}'
    response = client.post("/api/orders", content=big, headers=alice.headers("POST", "/api/orders", big))
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_authentication_failures(client: TestClient, alice: SignedClient, bob: SignedClient) -> None:
    order = {"side": "buy", "price": "100", "quantity": "1"}
    body = json.dumps(order).encode()
    assert client.post("/api/orders", json=order).json()["code"] == "missing_credentials"
    headers = alice.headers("POST", "/api/orders", body)
    bad = dict(headers, **{"X-MC-SIGNATURE": "0" * 64})
    assert client.post("/api/orders", content=body, headers=bad).json()["code"] == "bad_signature"
    stale = alice.headers("POST", "/api/orders", body, timestamp="1000")
    assert client.post("/api/orders", content=body, headers=stale).json()["code"] == "stale_timestamp"
    response = client.post("/api/orders", content=body, headers=headers)
    assert response.status_code == 201
    replay = client.post("/api/orders", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    other_body = json.dumps({**order, "quantity": "2"}).encode()
    tampered = client.post(
        "/api/orders", content=other_body, headers=alice.headers("POST", "/api/orders", body)
    )
    assert tampered.json()["code"] == "bad_signature"
    unknown = SignedClient(client, "no-such-key", "secret")
    assert unknown.get("/api/balances").status_code == 401
    assert alice.post("/api/deposits", {"user_id": "x", "asset": "USD", "amount": "1"}).status_code == 403
    assert client.get("/api/balances", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_sessions(client: TestClient, alice: SignedClient) -> None:
    assert client.post("/api/session", json={"username": "alice", "password": "wrong"}).status_code == 401
    login = client.post("/api/session", json={"username": "alice", "password": "alice-password"})
    assert login.status_code == 200
    token = login.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/balances", headers=headers).json()["balances"]["USD"]["available"] == "100000"
    assert client.delete("/api/session", headers=headers).status_code == 200
    assert client.get("/api/balances", headers=headers).status_code == 401


def test_unknown_routes_and_methods_are_json_errors(client: TestClient) -> None:
    assert client.get("/api/nothing").json()["code"] == "not_found"
    assert client.put("/api/orderbook").status_code == 405
    assert client.get("/api/orderbook?symbol=NOPE/USD").status_code == 404
    assert client.get("/api/orderbook?depth=-1").status_code == 400
    assert client.get("/openapi.json").status_code == 200


def test_websocket_book_and_private_streams(
    client: TestClient, alice: SignedClient, bob: SignedClient
) -> None:
    login = client.post("/api/session", json={"username": "alice", "password": "alice-password"}).json()
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "channel": "book", "symbol": "BTC/USD"})
        assert ws.receive_json()["type"] == "subscribed"
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        ws.send_json({"op": "subscribe", "channel": "private"})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"op": "auth", "token": login["token"]})
        assert ws.receive_json() == {"type": "authenticated", "user_id": login["user_id"]}
        ws.send_json({"op": "subscribe", "channel": "private"})
        assert ws.receive_json()["type"] == "subscribed"
        alice.post("/api/orders", {"side": "sell", "price": "100", "quantity": "1"})
        bob.post("/api/orders", {"side": "buy", "price": "100", "quantity": "0.25"})
        # alice's own events only: her order, her fill, her balances after each command
        frames = [ws.receive_json() for _ in range(6)]
        kinds = sorted(frame["type"] for frame in frames)
        assert kinds == ["balances", "balances", "book", "book", "fill", "order"]
        assert all(frame.get("user_id", login["user_id"]) == login["user_id"] for frame in frames)
        diffs = [frame for frame in frames if frame["type"] == "book"]
        assert diffs[0]["first_sequence"] == snapshot["sequence"] + 1
        ws.send_json({"op": "bogus"})
        assert ws.receive_json()["type"] == "error"


def test_the_api_docs_need_no_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
