"""The gateway protocol end to end: a real Exchange served by CommandServer over a private nats-server,
``manticore gateway`` processes in front of it, real HTTP and WebSocket clients.

* the gateway answers the same statuses and bodies as the embedded ``manticore serve`` for the same
  requests (places, modifies, cancels, refusals, reads);
* a WebSocket subscriber on the gateway receives exactly the frames the embedded hub sends for the same
  durable commands;
* a place whose answer was lost is retried with the same client order id and answered with the original
  order, never a duplicate; requests sent while no leader is subscribed are answered once one is.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from websockets.sync.client import connect

from manticore_cluster import protocol
from manticore_cluster.server import CommandServer
from manticore_matching import InvalidCommand, OrderNotFound

from ..api.support import Server, SignedClient, new_user
from .rpc_support import Gateway, ServedShard

FUNDS = {"USD": "100000", "BTC": "10", "ETH": "100"}


@pytest.fixture
def shard(nats_server: Any, tmp_path: Path) -> Iterator[ServedShard]:
    """A shard on the file journal."""
    served = ServedShard(nats_server.url, tmp_path / "shard")
    served.start_server()
    try:
        yield served
    finally:
        served.close()


@pytest.fixture(params=["file journal", "JetStream journal"])
def any_shard(request: pytest.FixtureRequest, nats_server: Any, tmp_path: Path) -> Iterator[ServedShard]:
    """A shard on the file journal, then on a JetStream journal (the phase-1 shard)."""
    journal = request.getfixturevalue("nats_options") if request.param == "JetStream journal" else None
    served = ServedShard(nats_server.url, tmp_path / "shard", journal=journal)
    served.start_server()
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def gateway(nats_server: Any, any_shard: ServedShard, tmp_path: Path) -> Iterator[Gateway]:
    process = Gateway(nats_server.url, any_shard, tmp_path / "gateway")
    process.start()
    try:
        yield process
    finally:
        process.stop()


# ---------------------------------------------------------------------- the same answers


def _scenario(url: str, admin_of: Any) -> list[tuple[str, int, Any]]:
    """Run one fixed conversation against a server; every (step, status, body), user ids replaced by
    names and clock readings removed."""
    answers: list[tuple[str, int, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = admin_of(http)
        alice = new_user(admin, "alice", FUNDS)
        bob = new_user(admin, "bob", FUNDS)
        names = {alice.get("/api/me").json()["user_id"]: "alice", bob.get("/api/me").json()["user_id"]: "bob"}

        def step(label: str, response: httpx.Response) -> Any:
            body = response.json()
            answers.append((label, response.status_code, _normal(body, names)))
            return body

        order = {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
        step("place", alice.post("/api/orders", {**order, "client_order_id": "a1"}))
        # another order under a name in use (the same order repeated is answered with the first on a
        # gateway: docs/scale-out.md, "Differences from the embedded server")
        step("duplicate name", alice.post("/api/orders", {**order, "price": "99", "client_order_id": "a1"}))
        step("off tick", alice.post("/api/orders", {**order, "price": "100.001", "client_order_id": "a2"}))
        step("too big", alice.post("/api/orders", {**order, "quantity": "5000", "client_order_id": "a3"}))
        step(
            "unknown market", alice.post("/api/orders", {**order, "symbol": "XX/YY", "client_order_id": "a4"})
        )
        step("bad body", alice.post("/api/orders", {**order, "side": "up"}))
        step("band", alice.post("/api/orders", {**order, "price": "1000", "client_order_id": "a5"}))
        step("second", alice.post("/api/orders", {**order, "price": "99", "client_order_id": "a6"}))
        step(
            "cross",
            bob.post("/api/orders", {**order, "side": "sell", "quantity": "0.4", "client_order_id": "b1"}),
        )
        step(
            "market sell",
            bob.post(
                "/api/orders",
                {
                    "symbol": "BTC/USD",
                    "side": "sell",
                    "quantity": "0.1",
                    "order_type": "market",
                    "client_order_id": "b2",
                },
            ),
        )
        step(
            "ioc nothing",
            bob.post(
                "/api/orders",
                {**order, "side": "sell", "price": "101", "time_in_force": "IOC", "client_order_id": "b3"},
            ),
        )
        step("modify", alice.patch("/api/orders/MC-1", {"new_quantity": "2"}))
        step("modify price", alice.patch("/api/orders/MC-1", {"new_price": "98"}))
        step("modify bad", alice.patch("/api/orders/MC-1", {"new_price": "98.0001"}))
        step("modify missing", alice.patch("/api/orders/MC-999", {"new_quantity": "2"}))
        step("modify other's", bob.patch("/api/orders/MC-1", {"new_quantity": "2"}))
        step("cancel other's", bob.delete("/api/orders/MC-1"))
        step("get", alice.get("/api/orders/MC-1"))
        step("get other's", bob.get("/api/orders/MC-1"))
        step("get by name", alice.get("/api/orders/by-client-id/a1"))
        step("get by missing name", alice.get("/api/orders/by-client-id/zz"))
        step("open", alice.get("/api/orders"))
        step("open BTC", alice.get("/api/orders?symbol=BTC/USD"))
        step("open unknown", alice.get("/api/orders?symbol=XX/YY"))
        step("cancel by name", alice.delete("/api/orders/by-client-id/a1"))
        step("cancel by name again", alice.delete("/api/orders/by-client-id/a1"))
        step("cancel", alice.delete("/api/orders/MC-2"))
        step("cancel again", alice.delete("/api/orders/MC-2"))
        step("reuse name", alice.post("/api/orders", {**order, "client_order_id": "a1"}))
        step(
            "eth",
            bob.post(
                "/api/orders",
                {
                    "symbol": "ETH/USD",
                    "side": "sell",
                    "quantity": "1",
                    "price": "2000",
                    "client_order_id": "b4",
                },
            ),
        )
        step(
            "stop",
            alice.post(
                "/api/orders",
                {
                    **order,
                    "order_type": "stop_limit",
                    "stop_price": "101",
                    "price": "101",
                    "client_order_id": "a7",
                },
            ),
        )
        step("book", http.get("/api/orderbook", params={"symbol": "BTC/USD", "depth": 0}))
        step("book eth", http.get("/api/orderbook", params={"symbol": "ETH/USD"}))
        step("book unknown", http.get("/api/orderbook", params={"symbol": "XX/YY"}))
        step("trades", http.get("/api/trades", params={"symbol": "BTC/USD"}))
        step("markets", http.get("/api/markets"))
        step("balances alice", alice.get("/api/balances"))
        step("balances bob", bob.get("/api/balances"))
        step(
            "withdraw",
            admin.post("/api/withdrawals", {"user_id": _id(names, "bob"), "asset": "USD", "amount": "5"}),
        )
        step(
            "withdraw too much",
            admin.post(
                "/api/withdrawals", {"user_id": _id(names, "bob"), "asset": "USD", "amount": "1000000000"}
            ),
        )
        step(
            "deposit bad asset",
            admin.post("/api/deposits", {"user_id": _id(names, "bob"), "asset": "usd", "amount": "5"}),
        )
        step(
            "trader deposits",
            bob.post("/api/deposits", {"user_id": _id(names, "bob"), "asset": "USD", "amount": "5"}),
        )
        step(
            "market",
            admin.post(
                "/api/markets",
                {
                    "symbol": "SOL/USD",
                    "base_asset": "SOL",
                    "quote_asset": "USD",
                    "tick_size": "0.01",
                    "lot_size": "0.1",
                },
            ),
        )
        step(
            "market again",
            admin.post(
                "/api/markets",
                {
                    "symbol": "SOL/USD",
                    "base_asset": "SOL",
                    "quote_asset": "USD",
                    "tick_size": "0.01",
                    "lot_size": "0.1",
                },
            ),
        )
        time.sleep(0.5)  # storage is written behind the journal on both
        step("fills", bob.get("/api/fills"))
        step("fills unknown", bob.get("/api/fills?symbol=XX/YY"))
        step("history", alice.get("/api/orders/history"))
        step("history BTC", bob.get("/api/orders/history?symbol=BTC/USD"))
        step("history unknown", bob.get("/api/orders/history?symbol=XX/YY"))
        step("get finished", bob.get("/api/orders/MC-3"))
    return answers


def _is_clock(key: str) -> bool:
    return key.endswith("timestamp") or key.endswith("_at") or key == "uptime_seconds"


def _normal(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _normal(item, names) for key, item in value.items() if not _is_clock(key)}
    if isinstance(value, list):
        return [_normal(item, names) for item in value]
    if isinstance(value, str):
        for user_id, name in names.items():
            value = value.replace(user_id, name)
    return value


def _id(names: dict[str, str], name: str) -> str:
    return next(user_id for user_id, known in names.items() if known == name)


@pytest.fixture(scope="module")
def embedded_answers(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, Any]]:
    """The scenario's answers from ``manticore serve``."""
    embedded = Server(tmp_path_factory.mktemp("embedded") / "data")
    embedded.start()
    try:
        return _scenario(embedded.url, embedded.admin)
    finally:
        embedded.stop()


def test_gateway_answers_as_the_embedded_server(
    gateway: Gateway, embedded_answers: list[tuple[str, int, Any]]
) -> None:
    expected = embedded_answers
    got = _scenario(gateway.url, gateway.admin)
    assert [(label, status) for label, status, _ in got] == [(label, status) for label, status, _ in expected]
    differences = [
        (label, body, want)
        for (label, _, body), (_, _, want) in zip(got, expected, strict=True)
        if body != want
    ]
    assert not differences, [label for label, _, _ in differences]


# ---------------------------------------------------------------------- stream frames


def _frames_for(batches: list[list[dict[str, Any]]], user_id: str, symbol: str) -> list[dict[str, Any]]:
    """What the embedded hub sends a connection subscribed to ``symbol``'s book and trades and to
    ``user_id``'s private channel, for these durable batches (streams.StreamHub.publish's rule)."""
    frames = []
    for batch in batches:
        for message in batch:
            kind = message["type"]
            if kind in ("order", "fill", "balances"):
                if message["user_id"] == user_id:
                    frames.append(message)
            elif message["symbol"] == symbol:
                frames.append(message)
    return [json.loads(json.dumps(frame, default=str)) for frame in frames]


def test_stream_subscriber_on_the_gateway_gets_the_embedded_frames(
    gateway: Gateway, any_shard: ServedShard
) -> None:
    shard = any_shard
    rng = random.Random(7)
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        admin = gateway.admin(http)
        traders = [new_user(admin, name, FUNDS) for name in ("alice", "bob")]
        alice_id = traders[0].get("/api/me").json()["user_id"]
        login = http.post("/api/session", json={"username": "alice", "password": "alice-password"})
        token = login.json()["token"]
        start = len(shard.batches)
        with connect(gateway.url.replace("http", "ws") + "/ws") as ws:
            ws.send(json.dumps({"op": "auth", "token": token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "authenticated"
            for request in (
                {"op": "subscribe", "channel": "book", "symbol": "BTC/USD"},
                {"op": "subscribe", "channel": "trades", "symbol": "BTC/USD"},
                {"op": "subscribe", "channel": "private"},
            ):
                ws.send(json.dumps(request))
            first = [json.loads(ws.recv(timeout=10)) for _ in range(4)]
            assert [frame["type"] for frame in first] == [
                "subscribed",
                "snapshot",
                "subscribed",
                "subscribed",
            ]
            subscribed_at = len(shard.batches)
            assert subscribed_at == start  # nothing traded meanwhile
            for _ in range(60):
                trader = rng.choice(traders)
                side = rng.choice(["buy", "sell"])
                price = str(rng.choice([98, 99, 100, 101, 102]))
                answer = trader.post(
                    "/api/orders",
                    {
                        "symbol": rng.choice(["BTC/USD", "ETH/USD"]),
                        "side": side,
                        "quantity": "0.5",
                        "price": price if rng.random() < 0.9 else "2000",
                    },
                )
                assert answer.status_code in (201, 422), answer.text
                if rng.random() < 0.3:
                    mine = trader.get("/api/orders").json()["orders"]
                    if mine:
                        assert trader.delete(f"/api/orders/{mine[0]['order_id']}").status_code == 200
            expected = _frames_for([batch for _, batch in shard.batches[start:]], alice_id, "BTC/USD")
            assert expected, "the scenario streamed nothing"
            got = [json.loads(ws.recv(timeout=10)) for _ in expected]
            assert got == expected
            ws.send(json.dumps({"op": "ping"}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}  # and nothing more was sent
        positions = [position for position, _ in shard.batches[start:]]
        assert positions == sorted(positions)


def test_websocket_order_entry_through_the_gateway(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        new_user(gateway.admin(http), "alice", FUNDS)
        token = http.post("/api/session", json={"username": "alice", "password": "alice-password"}).json()[
            "token"
        ]
        order = {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
        with connect(gateway.url.replace("http", "ws") + "/ws") as ws:
            ws.send(json.dumps({"op": "auth", "token": token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "authenticated"
            requests = [
                {"op": "order.place", "id": 1, **order, "client_order_id": "ws1"},
                {"op": "order.place", "id": 2, **order, "price": "100.001"},
                {"op": "order.place", "id": 3, **order, "quantity": "5000"},
                {"op": "order.place", "id": 4, **order, "price": "99", "client_order_id": "ws1"},
                {"op": "order.modify", "id": 5, "order_id": "MC-1", "new_quantity": "2"},
                {"op": "order.cancel", "id": 6, "client_order_id": "ws1"},
                {"op": "order.cancel", "id": 7, "order_id": "MC-1"},
            ]
            for request in requests:  # pipelined
                ws.send(json.dumps(request))
            answers = {}
            while len(answers) < len(requests):
                frame = json.loads(ws.recv(timeout=20))
                if frame["type"] == "response":
                    answers[frame["id"]] = frame
        statuses = {number: answer["status"] for number, answer in answers.items()}
        assert statuses == {1: 201, 2: 400, 3: 422, 4: 400, 5: 200, 6: 200, 7: 404}
        assert answers[1]["result"]["order"]["client_order_id"] == "ws1"
        assert answers[4]["error"]["code"] == "duplicate_client_order_id"
        assert answers[5]["result"]["order"]["quantity"] == "2.00000"  # on the lot grid, as REST answers
        assert answers[6]["result"]["order"]["status"] == "cancelled"


def test_concurrent_clients_are_all_answered(gateway: Gateway, any_shard: ServedShard) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        admin = gateway.admin(http)
        traders = [new_user(admin, f"trader{number}", FUNDS) for number in range(8)]  # one key per thread
    placed: list[str] = []
    failures: list[str] = []

    def trade(number: int) -> None:
        with httpx.Client(base_url=gateway.url, timeout=60) as own:
            mine = traders[number % len(traders)]
            client = SignedClient(own, mine.api_key, mine.api_secret)
            for index in range(15):
                price = str(95 + (number + index) % 5)
                answer = client.post(
                    "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "0.1", "price": price}
                )
                if answer.status_code == 201:
                    placed.append(answer.json()["order_id"])
                else:
                    failures.append(answer.text)

    workers = [threading.Thread(target=trade, args=(number,)) for number in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not failures
    assert len(placed) == len(set(placed)) == 120
    assert any_shard.exchange.statistics()["orders_resting"] == 120


# ---------------------------------------------------------------------- retries


def test_a_retried_request_is_recognised_by_the_leader(shard: ServedShard) -> None:
    shard.call(lambda: shard.exchange.deposit("u1", "USD", "1000"))
    args = {
        "user_id": "u1",
        "symbol": "BTC/USD",
        "side": "buy",
        "quantity": "0.5",
        "price": "100",
        "client_order_id": "c-1",
    }
    first = protocol.decode_reply(shard.request("cmd", protocol.encode_request("x1", "place_order", args)))
    # The first answer lost: the same request again, marked as a retry, gets the same order.
    again = protocol.decode_reply(
        shard.request("cmd", protocol.encode_request("x1", "place_order", args, retry=True))
    )
    assert again["order_id"] == first["order_id"]
    assert again["order"]["client_order_id"] == "c-1"
    assert again["order"]["status"] == "open"
    # Without the retry mark (a client repeating its order through another gateway after its own died)
    # the same order under the same name, placed less than REPEAT_WINDOW ago, is the same order too.
    repeated = protocol.decode_reply(shard.request("cmd", protocol.encode_request("x2", "place_order", args)))
    assert repeated["order_id"] == first["order_id"]
    # Another order under a name in use is refused, as on the embedded server.
    with pytest.raises(InvalidCommand) as refused:
        protocol.decode_reply(
            shard.request("cmd", protocol.encode_request("x2b", "place_order", {**args, "quantity": "0.4"}))
        )
    assert refused.value.code == "duplicate_client_order_id"
    # A retry of a different order under the same name is not taken for the first one.
    other = {**args, "price": "99"}
    with pytest.raises(InvalidCommand):
        protocol.decode_reply(
            shard.request("cmd", protocol.encode_request("x3", "place_order", other, retry=True))
        )
    assert len(shard.exchange.open_orders("u1")) == 1
    # A cancel whose answer was lost: the retry answers success, a new cancel 404.
    cancel = {"user_id": "u1", "order_id": first["order_id"]}
    protocol.decode_reply(shard.request("cmd", protocol.encode_request("x4", "cancel_order", cancel)))
    retried = protocol.decode_reply(
        shard.request("cmd", protocol.encode_request("x4", "cancel_order", cancel, retry=True))
    )
    assert retried["order_id"] == first["order_id"]
    with pytest.raises(OrderNotFound):
        protocol.decode_reply(shard.request("cmd", protocol.encode_request("x5", "cancel_order", cancel)))
    # The same request id again gets the original answer (the command id the leader remembers).
    original = protocol.decode_reply(
        shard.request("cmd", protocol.encode_request("x1", "place_order", args, retry=True))
    )
    assert original == first and original["order"]["status"] == "open"
    # A retry under an id the leader does not remember (its first attempt journaled without one) is
    # recognised by the order's name: the finished order is returned, cancelled.
    late = protocol.decode_reply(
        shard.request("cmd", protocol.encode_request("x9", "place_order", args, retry=True))
    )
    assert late["order_id"] == first["order_id"] and late["order"]["status"] == "cancelled"
    assert shard.exchange.open_orders("u1") == []
    # A market order that filled: its retry answers the filled order (shaped like a placement's
    # answer) and trades nothing more.
    shard.call(lambda: shard.exchange.deposit("u2", "BTC", "5"))
    resting = {"user_id": "u2", "symbol": "BTC/USD", "side": "sell", "quantity": "1", "price": "100"}
    protocol.decode_reply(shard.request("cmd", protocol.encode_request("x6", "place_order", resting)))
    market = {
        "user_id": "u1",
        "symbol": "BTC/USD",
        "side": "buy",
        "quantity": "0.5",
        "order_type": "market",
        "client_order_id": "m-1",
    }
    bought = protocol.decode_reply(shard.request("cmd", protocol.encode_request("x7", "place_order", market)))
    repeated = protocol.decode_reply(
        shard.request("cmd", protocol.encode_request("x7", "place_order", market, retry=True))
    )
    assert repeated["order_id"] == bought["order_id"]
    assert repeated["order"]["status"] == "filled" and "fill_price" not in repeated["order"]
    assert set(repeated["order"]) <= set(bought["order"]) | {"sequence"}
    assert [order["remaining_quantity"] for order in shard.exchange.open_orders("u2")] == ["0.50000"]


class _LosesFirstAnswer(CommandServer):
    """The leader that dies after its first placement became durable, before answering it: its answer
    is never sent (what the gateway sees when the leader is killed at that moment)."""

    lost: ClassVar[list[str]] = []

    def _send(self, subject: str, body: bytes) -> None:
        if not self.lost and b'"client_order_id"' in body and not subject.startswith(self.prefix):
            self.lost.append(subject)
            return
        super()._send(subject, body)


def test_a_place_whose_answer_was_lost_returns_the_original_order(nats_server: Any, tmp_path: Path) -> None:
    _LosesFirstAnswer.lost = []
    shard = ServedShard(nats_server.url, tmp_path / "shard", server_class=_LosesFirstAnswer)
    shard.start_server()
    gateway = Gateway(nats_server.url, shard, tmp_path / "gateway", request_timeout=1.0)
    try:
        gateway.start()
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            alice = new_user(gateway.admin(http), "alice", FUNDS)
            placed = alice.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
            )
            assert _LosesFirstAnswer.lost, "the first answer was not lost"
            assert placed.status_code == 201, placed.text
            body = placed.json()
            assert body["order"]["status"] == "open"
            generated = body["order"]["client_order_id"]
            assert re.fullmatch(r"gw-[0-9a-f]{32}", generated)
            orders = alice.get("/api/orders").json()["orders"]
            assert [order["order_id"] for order in orders] == [body["order_id"]]  # placed once
            assert alice.get("/api/balances").json()["balances"]["USD"] == {
                "available": "99899.8",
                "held": "100.2",  # one order's hold: 1 x 100 and the 0.2% taker fee
            }
        assert shard.exchange.statistics()["orders_resting"] == 1
    finally:
        gateway.stop()
        shard.close()


def test_requests_wait_for_a_leader(nats_server: Any, tmp_path: Path) -> None:
    shard = ServedShard(nats_server.url, tmp_path / "shard")
    shard.start_server()
    gateway = Gateway(nats_server.url, shard, tmp_path / "gateway", request_timeout=1.0)
    try:
        gateway.start()
        with httpx.Client(base_url=gateway.url, timeout=60) as http:
            alice = new_user(gateway.admin(http), "alice", FUNDS)
            shard.stop_server()  # no leader now
            answers: list[httpx.Response] = []

            def place() -> None:
                with httpx.Client(base_url=gateway.url, timeout=60) as other:
                    client = SignedClient(other, alice.api_key, alice.api_secret)
                    order = {
                        "symbol": "BTC/USD",
                        "side": "buy",
                        "quantity": "1",
                        "price": "100",
                        "client_order_id": "w1",
                    }
                    answers.append(client.post("/api/orders", order))

            reads: list[httpx.Response] = []

            def read() -> None:
                with httpx.Client(base_url=gateway.url, timeout=60) as other:
                    reads.append(SignedClient(other, alice.api_key, alice.api_secret).get("/api/balances"))

            worker = threading.Thread(target=place)
            worker.start()
            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(1.5)
            assert not answers  # still retrying
            # The loop keeps serving while the read and the place wait for a leader (the read awaits
            # its round trip: before, it blocked the loop for 2 s and then answered 503).
            health = http.get("/api/health")
            assert health.status_code == 503 and health.json()["components"]["shard"]["ok"] is False
            for _ in range(5):
                assert http.get("/api/metrics/gc").status_code == 200
                assert not reads and not answers
                time.sleep(0.5)
            shard.start_server()  # a leader again
            worker.join(30)
            reader.join(30)
            assert len(answers) == 1 and answers[0].status_code == 201, answers
            assert len(reads) == 1 and reads[0].status_code == 200, reads
            usd = reads[0].json()["balances"]["USD"]
            assert Decimal(usd["available"]) + Decimal(usd["held"]) == Decimal(FUNDS["USD"])
            assert [order["client_order_id"] for order in alice.get("/api/orders").json()["orders"]] == ["w1"]
    finally:
        gateway.stop()
        shard.close()


def test_no_leader_past_the_deadline_is_503(nats_server: Any, tmp_path: Path) -> None:
    shard = ServedShard(nats_server.url, tmp_path / "shard")
    shard.start_server()
    gateway = Gateway(nats_server.url, shard, tmp_path / "gateway", request_timeout=0.5, retry_deadline=2.0)
    try:
        gateway.start()
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            alice = new_user(gateway.admin(http), "alice", FUNDS)
            shard.stop_server()
            answer = alice.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
            )
            assert answer.status_code == 503
            assert answer.json()["code"] == "unavailable"
            assert alice.get("/api/orders").status_code == 503
        assert shard.exchange.statistics()["orders_resting"] == 0
    finally:
        gateway.stop()
        shard.close()


def test_gateway_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "manticore_api.cli", "gateway"]
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    for option in ("--nats", "--shard", "--prefix", "--port", "--database-url", "--retry-deadline"):
        assert option in helped.stdout
    refused = subprocess.run(
        [*command, "--nats", "nats://127.0.0.1:1", "--shard", "s1", "--host", "0.0.0.0", "--no-auth"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "non-loopback" in refused.stderr
    bad = subprocess.run(
        [
            *command,
            "--nats",
            "nats://127.0.0.1:1",
            "--shard",
            "s1",
            "--prefix",
            "Bad",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "gw"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "prefix 'Bad'" in bad.stderr
