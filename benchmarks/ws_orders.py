"""WebSocket order entry beside REST, in one run against one ``manticore serve`` (fsynced journal).

Starts the server on a free port with a fresh data directory (risk limits raised so that only the
transport is measured), creates two funded traders, then for each of ``--repeats`` interleaved rounds:

- **REST**: ``--clients`` threads each send ``--orders`` signed ``POST /api/orders`` and wait for each
  answer (the HTTP/1.1 way of a program: one request in flight per connection);
- **WS**: ``--connections`` ``/ws`` connections (authenticated once with the API key) each pipeline
  ``--orders`` ``order.place`` requests with at most ``--window`` unanswered at a time.

Both send the same orders: buys and sells around one price, about one in three crossing. Every answer
must be 201. Reports per round and as medians: acknowledged orders/s (wall clock; the clients share the
2 cores with the server, so a floor) and **server CPU µs per acknowledged order** (user + system time of
the server process from /proc, which the clients' load does not inflate), and the WS/REST ratios.

Run: ``python -m benchmarks.ws_orders [--repeats 3] [--orders 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from manticore_auth import current_timestamp, sign_request

from .http_support import cpu_seconds, free_port, signed_request

CONFIG = """
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"

[risk]
max_open_orders = 10000000
rate_limit_orders = 10000000
rate_limit_window = 1
"""


def _orders(seed: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(trader index, order body): buys 99.00-100.19 by trader 0, sells 100.00-101.19 by trader 1."""
    for i in itertools.count(seed):
        side = i % 2
        cents = (i * 7919) % 120
        price = f"{99 + side + cents // 100}.{cents % 100:02d}"
        yield (
            side,
            {
                "symbol": "BTC/USD",
                "side": ("buy", "sell")[side],
                "price": price,
                "quantity": "0.001",
                "client_order_id": f"b{i}",
            },
        )


def _rest_round(url: str, keys: list[tuple[str, str]], clients: int, orders: int, seed: int) -> int:
    done = [0] * clients

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for n, (who, order) in enumerate(_orders(seed + index * orders)):
                if n == orders:
                    return
                answer = signed_request(http, *keys[who], "POST", "/api/orders", order)
                assert answer.status_code == 201, answer.text
                done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


async def _ws_connection(
    url: str, key: tuple[str, str], who: int, orders: int, window: int, seed: int
) -> int:
    async with connect(url.replace("http", "ws", 1) + "/ws", max_size=None) as ws:
        stamp = current_timestamp()
        signature = sign_request(key[1], stamp, "GET", "/ws", b"")
        await ws.send(
            json.dumps({"op": "auth", "api_key": key[0], "timestamp": stamp, "signature": signature})
        )
        assert json.loads(await ws.recv())["type"] == "authenticated"
        mine = (order for side, order in _orders(seed) if side == who)
        slots = asyncio.Semaphore(window)
        answered = 0

        async def read() -> None:
            nonlocal answered
            while answered < orders:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "response":
                    assert frame["status"] == 201, frame
                    answered += 1
                    slots.release()

        reader = asyncio.create_task(read())
        for request_id in range(orders):
            await slots.acquire()
            await ws.send(json.dumps({"op": "order.place", "id": request_id, **next(mine)}))
        await reader
        return answered


def _ws_round(
    url: str, keys: list[tuple[str, str]], connections: int, orders: int, window: int, seed: int
) -> int:
    async def run() -> int:
        counts = await asyncio.gather(
            *(
                _ws_connection(url, keys[i % 2], i % 2, orders, window, seed + i * orders * 2)
                for i in range(connections)
            )
        )
        return sum(counts)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--orders", type=int, default=1000, help="orders per REST client / WS connection")
    parser.add_argument("--clients", type=int, default=8, help="REST client threads")
    parser.add_argument("--connections", type=int, default=2, help="WS connections")
    parser.add_argument("--window", type=int, default=64, help="unanswered WS requests per connection")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        (data / "markets.toml").write_text(CONFIG)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "manticore_api.cli", "serve", "--port", str(port)]
        command += ["--data-dir", str(data / "data"), "--config", str(data / "markets.toml")]
        command += ["--log-level", "warning"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            admin_file = data / "data" / "admin-credentials.json"
            admin = json.loads(admin_file.read_text())
            keys: list[tuple[str, str]] = []
            with httpx.Client(base_url=url, timeout=60) as http:
                for name in ("bench-buyer", "bench-seller"):
                    user = signed_request(
                        http, admin["api_key"], admin["api_secret"], "POST", "/api/users", {"username": name}
                    )
                    assert user.status_code == 201, user.text
                    created = user.json()
                    for asset in ("USD", "BTC"):
                        deposit = {"user_id": created["user_id"], "asset": asset, "amount": "1000000000"}
                        answer = signed_request(
                            http, admin["api_key"], admin["api_secret"], "POST", "/api/deposits", deposit
                        )
                        assert answer.status_code == 201, answer.text
                    keys.append((created["api_key"], created["api_secret"]))
            rows: dict[str, list[tuple[float, float]]] = {"REST": [], "WS": []}
            seed = 0
            for repeat in range(args.repeats):
                for kind in ("REST", "WS") if repeat % 2 == 0 else ("WS", "REST"):
                    seed += 10_000_000
                    cpu, start = cpu_seconds(server.pid), time.perf_counter()
                    if kind == "REST":
                        count = _rest_round(url, keys, args.clients, args.orders, seed)
                    else:
                        count = _ws_round(url, keys, args.connections, args.orders, args.window, seed)
                    elapsed, used = time.perf_counter() - start, cpu_seconds(server.pid) - cpu
                    rows[kind].append((count / elapsed, used / count * 1e6))
                    print(
                        f"round {repeat + 1} {kind:4}: {count} orders, {count / elapsed:8.0f} acknowledged/s,"
                        f" server CPU {used / count * 1e6:6.0f} us/order",
                        flush=True,
                    )
            rest_rate = statistics.median(rate for rate, _ in rows["REST"])
            ws_rate = statistics.median(rate for rate, _ in rows["WS"])
            rest_cpu = statistics.median(cpu for _, cpu in rows["REST"])
            ws_cpu = statistics.median(cpu for _, cpu in rows["WS"])
            print(f"median REST {rest_rate:8.0f}/s {rest_cpu:6.0f} us/order")
            print(f"median WS   {ws_rate:8.0f}/s {ws_cpu:6.0f} us/order")
            print(
                f"WS/REST: rate {ws_rate / rest_rate:.2f}x,"
                f" server CPU per order {rest_cpu / ws_cpu:.2f}x less"
            )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
