"""WebSocket order entry and durability: kill -9 with pipelined orders in flight loses no acknowledged
order and invents none; rate limiting answers as REST (429 ``rate_limited`` with the retry time)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed

from tests.api.support import Server, new_user
from tests.api.ws_orders_support import CONFIG, WsTrader

IN_FLIGHT_AT_MOST = 20_000
ACKNOWLEDGED_BEFORE_KILL = 300


def test_kill_9_with_orders_in_flight_keeps_exactly_a_prefix_holding_every_acknowledged_order(
    tmp_path: Path,
) -> None:
    config = tmp_path / "markets.toml"
    config.write_text(CONFIG)
    server = Server(tmp_path / "data", extra=("--config", str(config)))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            alice = new_user(server.admin(http), "alice", {"USD": "100000000"})
            trader = WsTrader(server.url)
            trader.auth_signed(alice)
            sent: list[int] = []

            def send_all() -> None:
                try:
                    for i in range(IN_FLIGHT_AT_MOST):
                        price = f"{1 + i % 50}.{i % 100:02d}"
                        order = {
                            "side": "buy",
                            "price": price,
                            "quantity": "0.001",
                            "client_order_id": f"k{i}",
                        }
                        trader.send({"op": "order.place", "id": i, **order})
                        sent.append(i)
                except (ConnectionClosed, OSError):
                    return

            sender = threading.Thread(target=send_all, daemon=True)
            sender.start()
            acknowledged: dict[int, dict[str, object]] = {}
            while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL:
                frame = trader.read()
                if frame["type"] == "response":
                    assert frame["status"] == 201, frame
                    acknowledged[frame["id"]] = frame["result"]["order"]
            server.kill()
            sender.join(30)
            assert not sender.is_alive()
            trader.close()
            in_flight = len(sent) - len(acknowledged)
            assert in_flight > 0, "the kill came with no order in flight"

        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            alice.http = http
            for order in acknowledged.values():
                restored = alice.get(f"/api/orders/{order['order_id']}")
                assert restored.status_code == 200, restored.text
                kept = restored.json()["order"]
                for field in ("client_order_id", "side", "price", "quantity", "status"):
                    assert kept[field] == order[field], (field, kept, order)
            live = alice.get("/api/orders").json()["orders"]
            restored_ids = sorted(int(order["client_order_id"][1:]) for order in live)
            # the journal keeps commands in the order they ran: a prefix of what was sent, with every
            # acknowledged order in it, and nothing that was not sent
            assert restored_ids == list(range(len(restored_ids)))
            assert len(restored_ids) >= max(acknowledged) + 1
            assert len(restored_ids) <= len(sent)
    finally:
        server.stop()


RATE_CONFIG = """
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"

[risk]
rate_limit_orders = 4
rate_limit_window = 1.5
"""


def test_rate_limited_requests_get_429_with_the_retry_time_and_change_nothing(tmp_path: Path) -> None:
    config = tmp_path / "markets.toml"
    config.write_text(RATE_CONFIG)
    server = Server(tmp_path / "data", extra=("--config", str(config)))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            alice = new_user(server.admin(http), "alice", {"USD": "100000"})
            trader = WsTrader(server.url)
            trader.auth_signed(alice)
            for i in range(8):
                trader.send(
                    {"op": "order.place", "id": i, "side": "buy", "price": f"{100 + i}", "quantity": "0.001"}
                )
            answers = [trader.response(i) for i in range(8)]
            assert [answer["status"] for answer in answers[:4]] == [201] * 4
            refused = answers[4:]
            for answer in refused:
                assert answer["status"] == 429, answer
                error = answer["error"]
                assert error["code"] == "rate_limited" and error["message"]
                assert isinstance(error["retry_after"], int) and 1 <= error["retry_after"] <= 2
                assert error["rate_limit"] == 4
            placed = {answer["result"]["order_id"] for answer in answers[:4]}
            assert {order["order_id"] for order in alice.get("/api/orders").json()["orders"]} == placed
            # REST answers the same refusal with the same status and code
            rest = alice.post("/api/orders", {"side": "buy", "price": "99", "quantity": "0.001"})
            assert (rest.status_code, rest.json()["code"]) == (429, "rate_limited")
            trader.close()
    finally:
        server.stop()
