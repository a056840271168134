"""Acknowledged orders per second through the real server over HTTP (signed requests, fsynced journal).

Starts ``manticore serve`` on a free port with a fresh data directory, creates and funds traders, then
``--clients`` threads each send ``--orders`` signed limit orders (a crossing mix around one price) and
wait for each answer. Reports orders/s and the latency percentiles of the 201 answers. The clients run
on the same machine (2 cores here) and share its CPU with the server, so this is a floor.

Run: ``python -m benchmarks.server [--clients 8] [--orders 200]``.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx

from manticore_auth import current_timestamp, sign_request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed(
    http: httpx.Client, key: str, secret: str, method: str, path: str, payload: object
) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = current_timestamp()
    headers = {
        "X-MC-APIKEY": key,
        "X-MC-TIMESTAMP": stamp,
        "X-MC-SIGNATURE": sign_request(secret, stamp, method, path, body),
        "content-type": "application/json",
    }
    return http.request(method, path, content=body, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=200, help="orders per client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "manticore_api.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            admin = json.loads((data / "admin-credentials.json").read_text())
            traders = []
            with httpx.Client(base_url=url, timeout=30) as http:
                for n in range(args.clients):
                    user = _signed(
                        http,
                        admin["api_key"],
                        admin["api_secret"],
                        "POST",
                        "/api/users",
                        {"username": f"t{n}"},
                    )
                    created = user.json()
                    if user.status_code != 201:
                        raise SystemExit(f"cannot create a trader: {user.text}")
                    for asset, amount in (("USD", "1000000000"), ("BTC", "100000")):
                        deposit = {"user_id": created["user_id"], "asset": asset, "amount": amount}
                        _signed(http, admin["api_key"], admin["api_secret"], "POST", "/api/deposits", deposit)
                    traders.append((created["api_key"], created["api_secret"]))
            latencies: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()

            def client(index: int) -> None:
                rng = random.Random(index)
                key, secret = traders[index]
                mine: list[float] = []
                with httpx.Client(base_url=url, timeout=30) as http:
                    for _ in range(args.orders):
                        order = {
                            "symbol": "BTC/USD",
                            "side": rng.choice(["buy", "sell"]),
                            "price": str(Decimal(30000) + Decimal("0.01") * rng.randint(-200, 200)),
                            "quantity": str(Decimal("0.00001") * rng.randint(1, 10000)),
                        }
                        started = time.perf_counter()
                        response = _signed(http, key, secret, "POST", "/api/orders", order)
                        mine.append(time.perf_counter() - started)
                        if response.status_code != 201:
                            with lock:
                                failures.append(response.text[:200])
                with lock:
                    latencies.extend(mine)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(30)
    latencies.sort()
    total = len(latencies)
    print(f"{args.clients} clients x {args.orders} orders: {total / elapsed:,.0f} acknowledged orders/s")
    print(
        f"latency ms: median {statistics.median(latencies) * 1000:.1f}, "
        f"p90 {latencies[int(total * 0.9)] * 1000:.1f}, p99 {latencies[int(total * 0.99)] * 1000:.1f}; "
        f"{len(failures)} not accepted {failures[:1]}"
    )


if __name__ == "__main__":
    main()
