"""``/ws`` under uvicorn in this process (so that the per-connection queue can be made small and the
journal broken): a client that only listens and falls too far behind is closed with 1013 and forgotten, as
the Binance streams do; order entry in the no-auth development mode; 503 when the journal cannot write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from manticore_api import create_app
from manticore_api.server import ServerOptions, build_service, uvicorn_config
from manticore_api.service import ExchangeService
from tests.api.support import free_port
from tests.api.ws_orders_support import WsTrader

QUEUE = 20
MAKERS = 3 * QUEUE


class InProcess:
    """The app over a real exchange in a temp dir, served by uvicorn on a thread."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # uvicorn as ``manticore serve`` configures it (its HTTP and WebSocket protocols, frame limit).
        config = uvicorn_config(create_app(service), "127.0.0.1", self.port, "warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the in-process server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connections(self) -> int:
        health = httpx.get(f"{self.url}/api/health", timeout=5).json()
        count: int = health["components"]["streams"]["connections"]
        return count


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, require_auth=False))
    service.hub.max_queue = QUEUE
    running = InProcess(service)
    running.start()
    yield running
    running.stop()


def test_a_listen_only_client_that_falls_behind_is_closed_with_1013(served: InProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=20) as http:
        for user, asset in (("maker", "BTC"), ("taker", "USD")):
            deposit = {"user_id": user, "asset": asset, "amount": "1000000"}
            assert http.post("/api/deposits", json=deposit).status_code == 201
        with connect(served.url.replace("http", "ws") + "/ws") as listener:
            listener.send(json.dumps({"op": "subscribe", "channel": "trades", "symbol": "BTC/USD"}))
            assert json.loads(listener.recv(timeout=10))["type"] == "subscribed"
            # from now on the listener sends nothing and reads nothing until one command sends it more
            # trades than its queue holds
            maker = WsTrader(served.url)
            maker.send({"op": "auth", "user": "maker"})
            assert maker.next_other()["type"] == "authenticated"
            for i in range(MAKERS):
                maker.send({"op": "order.place", "id": i, "side": "sell", "price": "100", "quantity": "0.01"})
            assert all(maker.response(i)["status"] == 201 for i in range(MAKERS))
            maker.close()
            sweep = {"side": "buy", "order_type": "market", "quantity": f"{MAKERS * 0.01:.2f}"}
            answer = http.post("/api/orders", json=sweep, headers={"X-MC-User": "taker"})
            assert answer.status_code == 201 and answer.json()["order"]["status"] == "filled", answer.text
            received = 0
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frame = json.loads(listener.recv(timeout=20))
                    assert frame["type"] == "trade"
                    received += 1
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert received < MAKERS
    deadline = time.monotonic() + 20
    while served.connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.connections() == 0


def test_order_entry_without_auth_acts_as_the_named_user(served: InProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=20) as http:
        deposit = {"user_id": "carol", "asset": "USD", "amount": "1000"}
        assert http.post("/api/deposits", json=deposit).status_code == 201
        trader = WsTrader(served.url)
        try:
            assert trader.call("order.place", 1, side="buy", price="10", quantity="1")["status"] == 401
            trader.send({"op": "auth", "user": "carol"})
            assert trader.next_other() == {"type": "authenticated", "user_id": "carol"}
            placed = trader.call("order.place", 2, side="buy", price="10", quantity="1")
            assert placed["status"] == 201 and placed["result"]["order"]["user_id"] == "carol"
            # as REST without auth: user_id in the body names the user the order is for
            for_dave = trader.call("order.place", 3, side="buy", price="10", quantity="1", user_id="dave")
            assert for_dave["status"] == 422 and for_dave["error"]["code"] == "insufficient_balance"
            rest = http.post(
                "/api/orders",
                json={"side": "buy", "price": "10", "quantity": "1", "user_id": "dave"},
                headers={"X-MC-User": "carol"},
            )
            assert (rest.status_code, rest.json()["code"]) == (422, "insufficient_balance")
            orders = http.get("/api/orders", headers={"X-MC-User": "carol"}).json()["orders"]
            assert [order["order_id"] for order in orders] == [placed["result"]["order_id"]]
            cancelled = trader.call("order.cancel", 4, order_id=placed["result"]["order_id"])
            assert cancelled["status"] == 200
            assert http.get("/api/orders", headers={"X-MC-User": "carol"}).json()["orders"] == []
        finally:
            trader.close()


def test_a_journal_that_cannot_write_is_503_unavailable_as_rest(served: InProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=20) as http:
        deposit = {"user_id": "erin", "asset": "USD", "amount": "1000"}
        assert http.post("/api/deposits", json=deposit).status_code == 201
        trader = WsTrader(served.url)
        try:
            trader.send({"op": "auth", "user": "erin"})
            assert trader.next_other()["type"] == "authenticated"
            assert trader.call("order.place", 1, side="buy", price="10", quantity="1")["status"] == 201
            served.service.exchange.journal._failure = OSError("the disk is gone")  # as a failed write
            answer = trader.call("order.place", 2, side="buy", price="10", quantity="1")
            rest = http.post(
                "/api/orders",
                json={"side": "buy", "price": "10", "quantity": "1"},
                headers={"X-MC-User": "erin"},
            )
            assert rest.status_code == 503
            assert answer == {
                "type": "response",
                "id": 2,
                "status": 503,
                "error": {"code": rest.json()["code"], "message": rest.json()["message"]},
            }
        finally:
            served.service.exchange.journal._failure = None  # let the server shut down cleanly
            trader.close()
