"""One way to write numbers on REST and WebSocket (docs/api.md, "Numbers"), against the real server:
prices with the tick's decimals, quantities with the lot's (a gone level too), amounts trimmed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.api.support import Server, SignedClient, new_user

PRICE = re.compile(r"^\d+\.\d{2}$")  # BTC/USD: tick 0.01
QUANTITY = re.compile(r"^\d+\.\d{5}$")  # BTC/USD: lot 0.00001
AMOUNT = re.compile(r"^(0|[1-9]\d*)(\.\d*[1-9])?$")  # no exponent, no trailing zeros
QUANTITY_KEYS = ("quantity", "filled_quantity", "remaining_quantity", "visible_quantity")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def _check_order(order: dict[str, Any]) -> None:
    assert PRICE.match(order["price"]), order
    for key in QUANTITY_KEYS:
        assert QUANTITY.match(order[key]), (key, order)


def _check_level(level: dict[str, Any]) -> None:
    assert PRICE.match(level["price"]) and QUANTITY.match(level["quantity"]), level


def _frames(ws: ClientConnection, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=10))
        seen.append(frame)
        if until(frame):
            return seen
    raise AssertionError(f"no such frame in {seen}")


def _eventually(
    read: Callable[[], list[dict[str, Any]]], ready: Callable[[list[dict[str, Any]]], bool] = bool
) -> list[dict[str, Any]]:
    """Storage trails the journal by milliseconds: read until the rows are ``ready``."""
    for _ in range(100):
        rows = read()
        if ready(rows):
            return rows
        time.sleep(0.05)
    raise AssertionError("storage never showed the rows")


def test_rest_and_websocket_write_numbers_the_same_way(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        alice = new_user(admin, "alice", {"USD": "100000", "BTC": "5"})
        bob = new_user(admin, "bob", {"USD": "100000", "BTC": "5"})
        with connect(server.url.replace("http", "ws") + "/ws") as ws:
            signed = SignedClient(http, alice.api_key, alice.api_secret).headers("GET", "/ws")
            ws.send(json.dumps({"op": "subscribe", "channel": "book", "symbol": "BTC/USD"}))
            ws.send(
                json.dumps(
                    {
                        "op": "auth",
                        "api_key": alice.api_key,
                        "timestamp": signed["X-MC-TIMESTAMP"],
                        "signature": signed["X-MC-SIGNATURE"],
                    }
                )
            )
            _frames(ws, lambda f: f["type"] == "authenticated")
            ws.send(json.dumps({"op": "subscribe", "channel": "private"}))
            _frames(ws, lambda f: f.get("channel") == "private")

            # numbers sent in any decimal form come back on the grid
            placed = alice.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "sell", "price": "30000", "quantity": "0.5"}
            )
            assert placed.status_code == 201, placed.text
            order = placed.json()["order"]
            _check_order(order)
            assert (order["price"], order["quantity"]) == ("30000.00", "0.50000")
            book = http.get("/api/orderbook", params={"symbol": "BTC/USD"}).json()
            assert book["asks"] == [{"price": "30000.00", "quantity": "0.50000", "order_count": 1}]
            diff = _frames(ws, lambda f: f["type"] == "book" and bool(f["asks"]))[-1]
            assert diff["asks"] == book["asks"]  # the same level, written the same way

            # bob takes it all: the gone level is the zero on the grid, on the socket and in the docs
            taken = bob.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "buy", "price": 30000, "quantity": 0.5}
            )
            assert taken.json()["order"]["status"] == "filled"
            seen = _frames(ws, lambda f: f["type"] == "fill")
            gone = [f for f in seen if f["type"] == "book" and f["asks"]][-1]
            assert gone["asks"] == [{"price": "30000.00", "quantity": "0.00000", "order_count": 0}]
            fill = seen[-1]
            assert PRICE.match(fill["price"]) and QUANTITY.match(fill["quantity"]), fill
            assert fill["fee"] == "15", fill  # 30000 x 0.5 x the maker rate 0.001, trimmed
            assert http.get("/api/orderbook", params={"symbol": "BTC/USD"}).json()["asks"] == []

        # REST reads from storage follow the same rule
        history = _eventually(
            lambda: alice.get("/api/orders/history").json()["orders"],
            lambda rows: bool(rows) and rows[0]["status"] == "filled",
        )
        _check_order(history[0])
        assert (history[0]["quantity"], history[0]["remaining_quantity"]) == ("0.50000", "0.00000")
        one = alice.get(f"/api/orders/{order['order_id']}").json()
        _check_order(one.get("order", one))
        fills = _eventually(lambda: alice.get("/api/fills").json()["fills"])
        assert PRICE.match(fills[0]["price"]) and QUANTITY.match(fills[0]["quantity"]), fills
        fees = [value for key, value in fills[0].items() if key.endswith("fee")]
        assert fees and all(AMOUNT.match(fee) for fee in fees), fills
        trades = http.get("/api/trades", params={"symbol": "BTC/USD"}).json()["trades"]
        assert (trades[0]["price"], trades[0]["quantity"]) == ("30000.00", "0.50000")
        balances = alice.get("/api/balances").json()["balances"]
        assert balances["USD"] == {"available": "114985", "held": "0"}
        assert all(AMOUNT.match(v) for entry in balances.values() for v in entry.values()), balances
