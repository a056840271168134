"""WebSocket order entry on ``/ws`` against a real ``manticore serve``: place, modify and cancel for every
order kind, each answer the same as REST's (status, code, message, body), pipelining, and what a refusal
leaves behind (nothing)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.support import Server, SignedClient, new_user
from tests.api.ws_orders_support import CONFIG, WsTrader, key

_USERS = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = Path(tmp_path_factory.mktemp("ws-orders"))
    config = directory / "markets.toml"
    config.write_text(CONFIG)
    running = Server(directory / "data", extra=("--config", str(config)))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as client:
        yield client


@pytest.fixture
def admin(server: Server, http: httpx.Client) -> SignedClient:
    return server.admin(http)


def trader(admin: SignedClient, name: str) -> SignedClient:
    return new_user(admin, f"{name}{next(_USERS)}", {"USD": "1000000", "BTC": "100"})


@pytest.fixture
def ws(server: Server) -> Iterator[WsTrader]:
    connection = WsTrader(server.url)
    yield connection
    connection.close()


def state(client: SignedClient) -> tuple[Any, Any]:
    """What a refusal must leave unchanged: the user's balances and live orders."""
    return client.get("/api/balances").json(), client.get("/api/orders").json()


def test_limit_order_placed_modified_cancelled_as_rest_answers(
    admin: SignedClient, ws: WsTrader, server: Server
) -> None:
    alice = trader(admin, "alice")
    ws.auth_signed(alice)
    placed = ws.call("order.place", 1, side="buy", price="100", quantity="1.5", client_order_id="w-1")
    assert placed["type"] == "response" and placed["id"] == 1 and placed["status"] == 201, placed
    result = placed["result"]
    order_id = result["order_id"]
    assert result["status"] == "success" and result["order"]["status"] == "open"
    assert result["order"]["client_order_id"] == "w-1" and Decimal(result["order"]["price"]) == 100
    # the same body REST gives (same keys, same value types)
    rest = alice.post("/api/orders", {"side": "buy", "price": "99", "quantity": "1.5"})
    assert rest.status_code == 201
    assert result.keys() == rest.json().keys()
    assert {k: type(v) for k, v in result["order"].items() if v is not None} == {
        k: type(v) for k, v in rest.json()["order"].items() if v is not None and k != "client_order_id"
    } | {"client_order_id": str}
    # acknowledged means durable and visible
    assert alice.get(f"/api/orders/{order_id}").json()["order"]["status"] == "open"

    modified = ws.call("order.modify", "m-1", order_id=order_id, new_price="101", new_quantity="2")
    assert modified["status"] == 200, modified
    assert modified["result"]["order_id"] == order_id
    assert Decimal(modified["result"]["order"]["price"]) == 101
    assert Decimal(modified["result"]["order"]["quantity"]) == 2
    rest_modified = alice.patch(f"/api/orders/{rest.json()['order_id']}", {"new_price": "98"})
    assert modified["result"].keys() == rest_modified.json().keys()

    cancelled = ws.call("order.cancel", "c-1", order_id=order_id)
    assert cancelled == {
        "type": "response",
        "id": "c-1",
        "status": 200,
        "result": {"status": "success", "message": f"Order {order_id} cancelled"},
    }
    assert alice.get(f"/api/orders/{order_id}").json()["order"]["status"] == "cancelled"
    rest_cancelled = alice.delete(f"/api/orders/{rest.json()['order_id']}")
    assert rest_cancelled.json() == {
        "status": "success",
        "message": f"Order {rest.json()['order_id']} cancelled",
    }
    assert alice.get("/api/orders").json()["orders"] == []


def test_market_ioc_and_stop_orders_with_private_frames(admin: SignedClient, server: Server) -> None:
    alice, bob = trader(admin, "alice"), trader(admin, "bob")
    alice_ws, bob_ws = WsTrader(server.url), WsTrader(server.url)
    try:
        alice_id = alice_ws.auth_signed(alice)
        bob_ws.auth_signed(bob)
        alice_ws.send({"op": "subscribe", "channel": "private"})
        assert alice_ws.next_other()["type"] == "subscribed"

        ask = bob_ws.call("order.place", 1, side="sell", price="100", quantity="1")
        assert ask["status"] == 201 and ask["result"]["order"]["status"] == "open"

        market = alice_ws.call("order.place", 1, side="buy", quantity="0.3", order_type="market")
        assert market["status"] == 201, market
        assert market["result"]["order"]["status"] == "filled"
        assert Decimal(market["result"]["order"]["filled_quantity"]) == Decimal("0.3")

        ioc = alice_ws.call("order.place", 2, side="buy", price="100", quantity="1", time_in_force="IOC")
        assert ioc["status"] == 201, ioc
        assert Decimal(ioc["result"]["order"]["filled_quantity"]) == Decimal("0.7")
        assert ioc["result"]["order"]["status"] != "open"
        assert alice.get("/api/orders").json()["orders"] == []

        stop = alice_ws.call(
            "order.place",
            3,
            side="buy",
            quantity="0.5",
            price="111",
            stop_price="110",
            order_type="stop_limit",
            client_order_id="stop-1",
        )
        assert stop["status"] == 201, stop
        assert stop["result"]["order"]["status"] == "pending"
        stop_market = alice_ws.call(
            "order.place", 4, side="sell", quantity="0.5", stop_price="90", order_type="stop_market"
        )
        assert stop_market["status"] == 201 and stop_market["result"]["order"]["status"] == "pending"
        live = {order["order_id"] for order in alice.get("/api/orders").json()["orders"]}
        assert live == {stop["result"]["order_id"], stop_market["result"]["order_id"]}

        changed = alice_ws.call("order.modify", 5, order_id=stop["result"]["order_id"], new_quantity="0.4")
        assert changed["status"] == 200, changed
        assert Decimal(changed["result"]["order"]["quantity"]) == Decimal("0.4")

        by_client_id = alice_ws.call("order.cancel", 6, client_order_id="stop-1")
        assert by_client_id["status"] == 200, by_client_id
        assert by_client_id["result"]["order_id"] == stop["result"]["order_id"]
        assert by_client_id["result"]["client_order_id"] == "stop-1"
        assert by_client_id["result"]["order"]["status"] == "cancelled"
        assert alice_ws.call("order.cancel", 7, order_id=stop_market["result"]["order_id"])["status"] == 200
        assert alice.get("/api/orders").json()["orders"] == []

        # the private channel kept flowing beside the answers: alice's own orders and fills
        while not (
            {"fill", "order", "balances"} <= {frame["type"] for frame in alice_ws.frames}
            and sum(frame["type"] == "fill" for frame in alice_ws.frames) >= 2
        ):
            alice_ws.next_other()
        assert all(frame.get("user_id", alice_id) == alice_id for frame in alice_ws.frames)
    finally:
        alice_ws.close()
        bob_ws.close()


# (request fields, REST method, REST path, REST body) for each refusal; {own} is an order id of the user
REFUSALS: list[tuple[dict[str, Any], str, str, Any]] = [
    (
        {"op": "order.place", "price": "100", "quantity": "1"},
        "POST",
        "/api/orders",
        {"price": "100", "quantity": "1"},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "100", "quantity": "1", "colour": "red"},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "100", "quantity": "1", "colour": "red"},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "100", "quantity": [1]},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "100", "quantity": [1]},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "abc", "quantity": "1"},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "abc", "quantity": "1"},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "100.001", "quantity": "1"},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "100.001", "quantity": "1"},
    ),
    (
        {"op": "order.place", "symbol": "NOPE/USD", "side": "buy", "price": "1", "quantity": "1"},
        "POST",
        "/api/orders",
        {"symbol": "NOPE/USD", "side": "buy", "price": "1", "quantity": "1"},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "100", "quantity": "99999"},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "100", "quantity": "99999"},
    ),
    (
        {"op": "order.place", "side": "sell", "price": "100", "quantity": "1000"},
        "POST",
        "/api/orders",
        {"side": "sell", "price": "100", "quantity": "1000"},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "1", "quantity": "1", "client_order_id": "x" * 65},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "1", "quantity": "1", "client_order_id": "x" * 65},
    ),
    (
        {"op": "order.place", "side": "buy", "price": "1", "quantity": "1", "user_id": "someone-else"},
        "POST",
        "/api/orders",
        {"side": "buy", "price": "1", "quantity": "1", "user_id": "someone-else"},
    ),
    (
        {"op": "order.place", "side": "buy", "quantity": "1", "order_type": "teleport"},
        "POST",
        "/api/orders",
        {"side": "buy", "quantity": "1", "order_type": "teleport"},
    ),
    (
        {"op": "order.modify", "order_id": "MC-999999", "new_price": "5"},
        "PATCH",
        "/api/orders/MC-999999",
        {"new_price": "5"},
    ),
    ({"op": "order.modify", "order_id": "{own}"}, "PATCH", "/api/orders/{own}", {}),
    (
        {"op": "order.modify", "order_id": "{own}", "new_price": "0"},
        "PATCH",
        "/api/orders/{own}",
        {"new_price": "0"},
    ),
    (
        {"op": "order.modify", "order_id": "{own}", "new_price": "5", "bogus": 1},
        "PATCH",
        "/api/orders/{own}",
        {"new_price": "5", "bogus": 1},
    ),
    ({"op": "order.cancel", "order_id": "MC-999999"}, "DELETE", "/api/orders/MC-999999", None),
    ({"op": "order.cancel", "client_order_id": "never"}, "DELETE", "/api/orders/by-client-id/never", None),
]


def _fill(value: Any, own: str) -> Any:
    if isinstance(value, str):
        return value.replace("{own}", own)
    if isinstance(value, dict):
        return {k: _fill(v, own) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", range(len(REFUSALS)))
def test_each_refusal_is_what_rest_answers_and_changes_nothing(
    admin: SignedClient, ws: WsTrader, case: int
) -> None:
    alice = trader(admin, "alice")
    ws.auth_signed(alice)
    own = alice.post("/api/orders", {"side": "buy", "price": "50", "quantity": "1"}).json()["order_id"]
    frame, method, path, body = (_fill(part, own) for part in REFUSALS[case])
    before = state(alice)
    answer = ws.call(frame.pop("op"), f"r{case}", **frame)
    assert state(alice) == before
    rest = alice.request(method, path, body)
    assert state(alice) == before
    assert 400 <= rest.status_code < 500, rest.text
    assert (answer["type"], answer["id"]) == ("response", f"r{case}")
    assert (answer["status"], answer["error"]["code"]) == (rest.status_code, rest.json()["code"])
    assert answer["error"]["message"]
    if rest.json()["code"] != "invalid":  # the message of a malformed body is the transport's own wording
        assert answer["error"]["message"] == rest.json()["message"]


def test_order_requests_need_auth_and_an_id(admin: SignedClient, ws: WsTrader) -> None:
    alice = trader(admin, "alice")
    order = {"side": "buy", "price": "100", "quantity": "1"}
    before = state(alice)
    # before auth: 401 with REST's code for a request without credentials, the id echoed
    refused = ws.call("order.place", "early", **order)
    assert refused["status"] == 401 and refused["id"] == "early"
    assert refused["error"]["code"] == alice.http.post("/api/orders", json=order).json()["code"]
    assert refused["error"]["code"] == "missing_credentials"
    for op, fields in (("order.modify", {"order_id": "MC-1"}), ("order.cancel", {"order_id": "MC-1"})):
        assert ws.call(op, 7, **fields)["status"] == 401
    # a failed auth leaves the connection unauthenticated and usable
    ws.send({"op": "auth", "api_key": alice.api_key, "timestamp": "1", "signature": "00"})
    assert ws.next_other()["type"] == "error"
    assert ws.call("order.place", "still-early", **order)["status"] == 401
    assert state(alice) == before

    ws.auth_signed(alice)
    # missing or unusable ids: 400 invalid, the id (if any) echoed as sent, nothing placed
    ws.send({"op": "order.place", **order})
    answer = ws.response(None)
    assert answer["status"] == 400 and answer["error"]["code"] == "invalid"
    for bad in (True, 1.5, ["x"], {"a": 1}):
        answer = ws.call("order.place", bad, **order)
        assert answer["status"] == 400 and answer["error"]["code"] == "invalid", answer
    assert state(alice) == before
    # cancel needs exactly one of order_id / client_order_id, as strings
    for fields in ({}, {"order_id": "MC-1", "client_order_id": "a"}, {"order_id": 5}, {"client_order_id": 5}):
        answer = ws.call("order.cancel", "c", **fields)
        assert answer["status"] == 400 and answer["error"]["code"] == "invalid", answer
        ws.responses.clear()
    answer = ws.call("order.cancel", "c", order_id="MC-1", price="1")
    assert answer["status"] == 400 and answer["error"]["code"] == "invalid"
    answer = ws.call("order.modify", "m", order_id=None, new_price="1")
    assert answer["status"] == 400 and answer["error"]["code"] == "invalid"

    # malformed frames get an error frame and the connection stays usable
    malformed = (
        "{not json",
        "[1, 2]",
        json.dumps({"op": "order.teleport", "id": 1}),
        json.dumps({"op": ["x"]}),
    )
    for text in malformed:
        ws.send(text)
        assert ws.next_other()["type"] == "error"
    ws.send("x" * (64 * 1024 - 100))
    assert ws.next_other() == {"type": "error", "code": "too_large", "message": "frame too large"}
    assert state(alice) == before
    # ids are echoed verbatim: strings of any characters, large and negative integers
    for request_id in ('\u00e9t\u00e9 \U0001f680 "quoted"', 2**70, -3, 0, ""):
        placed = ws.call("order.place", request_id, **order)
        assert (
            placed["status"] == 201 and placed["id"] == request_id and type(placed["id"]) is type(request_id)
        )


def test_pipelined_requests_each_get_one_answer(admin: SignedClient, ws: WsTrader) -> None:
    alice = trader(admin, "alice")
    ws.auth_signed(alice)
    count = 300
    expected: dict[str, int] = {}
    for i in range(count):
        request_id: object = i if i % 2 else f"s{i}"
        ws.send(
            {
                "op": "order.place",
                "id": request_id,
                "side": "buy",
                "price": str(10 + i % 7),
                "quantity": "0.01",
                "client_order_id": f"p{i}",
            }
        )
        expected[key(request_id)] = 201
        if i % 3 == 0:  # cancelled by its client order id in the same pipeline: runs after the placement
            ws.send({"op": "order.cancel", "id": f"c{i}", "client_order_id": f"p{i}"})
            expected[key(f"c{i}")] = 200
        if i % 50 == 0:  # a refusal in the middle
            ws.send({"op": "order.place", "id": f"bad{i}", "side": "buy", "quantity": "-1", "price": "1"})
            expected[key(f"bad{i}")] = 400
    while len(ws.responses) < len(expected):
        ws.read()
    ws.send({"op": "ping"})
    while ws.read()["type"] != "pong":
        pass
    assert {k: [r["status"] for r in v] for k, v in ws.responses.items()} == {
        k: [status] for k, status in expected.items()
    }
    live = alice.get("/api/orders").json()["orders"]
    assert sorted(order["client_order_id"] for order in live) == sorted(
        f"p{i}" for i in range(count) if i % 3
    )
    placed = {r[0]["result"]["order_id"] for k, r in ws.responses.items() if r[0]["status"] == 201}
    assert len(placed) == count


def test_a_frame_over_the_size_limit_closes_only_that_connection(admin: SignedClient, server: Server) -> None:
    alice = trader(admin, "alice")
    huge, other = WsTrader(server.url), WsTrader(server.url)
    try:
        huge.auth_signed(alice)
        other.auth_signed(alice)
        huge.send(
            {"op": "order.place", "id": 1, "side": "buy", "price": "1", "quantity": "1", "pad": "x" * 70_000}
        )
        with pytest.raises(ConnectionClosed) as closed:
            huge.read()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert alice.get("/api/orders").json()["orders"] == []
        assert other.call("order.place", 2, side="buy", price="1", quantity="1")["status"] == 201
    finally:
        huge.close()
        other.close()
