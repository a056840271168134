"""A gateway killed with requests in flight: real ``manticore shard`` processes (one whole shard, or an
account shard and two market shards) and two ``manticore gateway`` processes on the private
nats-server. Client threads place signed orders (resting limits, crossing
IOCs, each with its own client order id) through the first gateway; it is killed with ``kill -9``
mid-load; every request that got no answer is sent again, with the same client order id, to the
second gateway. Then every client order id names exactly one order, and each retried request got
that order (the original, when the first attempt had been applied)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from manticore_cluster.natsconf import NatsOptions
from tests.api.support import SignedClient, new_user
from tests.cluster.rpc_support import Gateway
from tests.cluster.shard_processes import ShardProcess, shard_processes, write_config

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

FUNDS = {"USD": "10000000", "BTC": "10000"}
USERS = ("alice", "bob", "carol", "dave")


@dataclass
class _Shard:
    shard: str
    prefix: str


@dataclass
class Sent:
    """One order request: its body, the answer of its first attempt (None: no answer, the gateway
    died), and the answer of its retry at the other gateway."""

    user: str
    body: dict[str, Any]
    first: dict[str, Any] | None = None
    retried: dict[str, Any] | None = None


@pytest.fixture(params=["whole", "split"])
def gateways(
    request: pytest.FixtureRequest, tmp_path: Path, nats_options: NatsOptions
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two gateways in front of one whole shard, or (split) of an account shard and two market shards."""
    config = write_config(tmp_path / "markets.toml")

    def process(name: str, extra: tuple[str, ...] = ()) -> ShardProcess:
        return ShardProcess(nats_options, tmp_path / name, config, name=name, extra_args=extra)

    if request.param == "whole":
        processes: tuple[ShardProcess, ...] = (process("main"),)
        account, routes = "main", ()
    else:
        routes = ("--market-shard", "m1=BTC/USD", "--market-shard", "m2=ETH/USD")
        processes = (
            process("m1", ("--role", "market", "--markets", "BTC/USD")),
            process("m2", ("--role", "market", "--markets", "ETH/USD")),
            process("acct", ("--role", "account", *routes)),
        )
        account = "acct"
    with shard_processes(*processes):
        for shard in processes:
            shard.start()
        for shard in processes:
            shard.wait_for(": leader ", 30)
        served = _Shard(account, nats_options.prefix)
        url = nats_options.servers[0]
        first = Gateway(url, served, tmp_path / "gateway", extra_args=routes)  # type: ignore[arg-type]
        second = Gateway(url, served, tmp_path / "gateway", extra_args=routes)  # type: ignore[arg-type]
        try:
            first.start()
            second.start()
            yield first, second
        finally:
            second.stop()
            first.stop()


def _orders(seed: int, user: str, stop: threading.Event, client: SignedClient, sent: list[Sent]) -> None:
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        side = rng.choice(("buy", "sell"))
        body: dict[str, Any] = {
            "symbol": "BTC/USD",
            "side": side,
            "quantity": "0.1",
            "client_order_id": f"{user}-{seed}-{n}",
        }
        if rng.random() < 0.5:  # crossing: fills against resting orders at once, or is cancelled
            body["price"] = "110" if side == "buy" else "90"
            body["time_in_force"] = "IOC"
        else:
            body["price"] = str(100 + (rng.randint(1, 5) if side == "sell" else -rng.randint(1, 5)))
        record = Sent(user, body)
        try:
            answer = client.post("/api/orders", body)
        except httpx.TransportError:
            sent.append(record)  # in flight when the gateway died
            return
        assert answer.status_code == 201, answer.text
        record.first = answer.json()
        sent.append(record)


def test_requests_in_flight_at_a_killed_gateway_are_answered_once_by_another(
    gateways: tuple[Gateway, Gateway],
) -> None:
    first, second = gateways
    with (
        httpx.Client(base_url=first.url, timeout=30) as at_first,
        httpx.Client(base_url=second.url, timeout=30) as at_second,
    ):
        admin = first.admin(at_first)
        keys = {user: new_user(admin, user, FUNDS) for user in USERS}
        clients = {user: SignedClient(at_first, key.api_key, key.api_secret) for user, key in keys.items()}
        retry_clients = {
            user: SignedClient(at_second, key.api_key, key.api_secret) for user, key in keys.items()
        }
        sent: list[Sent] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_orders, args=(seed, user, stop, clients[user], sent))
            for seed, user in enumerate(USERS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(sent) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGKILL)  # requests in flight
        first.process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)
        in_flight = [record for record in sent if record.first is None]
        assert in_flight, "no request was in flight when the gateway died"
        # Every request is sent again to the other gateway, with its client order id: the ones in
        # flight because their outcome is unknown, the answered ones as a client that missed the
        # answer would.
        for record in sent:
            answer = retry_clients[record.user].post("/api/orders", record.body)
            assert answer.status_code == 201, answer.text
            record.retried = answer.json()
        for user, client in retry_clients.items():
            mine = [record for record in sent if record.user == user]
            names = {record.body["client_order_id"] for record in mine}
            by_name: dict[str, list[str]] = {}
            deadline = time.monotonic() + 20
            while not names <= set(by_name) and time.monotonic() < deadline:
                time.sleep(0.2)  # the history is read from storage, which trails the log
                history = client.get("/api/orders/history?limit=1000").json()["orders"]
                live = client.get("/api/orders").json()["orders"]
                by_name = {}
                for order in {order["order_id"]: order for order in history + live}.values():
                    by_name.setdefault(order["client_order_id"], []).append(order["order_id"])
            for record in mine:
                name = record.body["client_order_id"]
                assert record.retried is not None
                placed = by_name.get(name, [])
                assert placed == [record.retried["order_id"]], (name, placed, record)
                if record.first is not None:
                    assert record.retried["order_id"] == record.first["order_id"]
