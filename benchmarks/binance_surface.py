"""Acknowledged orders per second through the Binance surface beside the native API, in one server run.

Starts ``manticore serve`` (fsynced journal, SQLite; BTC/USD with the per-user order rate and open-order
limits raised out of the way) on a free port with a fresh data directory, creates
and funds ``--clients`` traders, then, after a short warm-up, runs rounds on the two surfaces (alternating
which goes first): in each round every client thread sends ``--orders`` limit orders (a crossing mix
around one price, the same random sequence on both surfaces) and waits for each answer. Native orders are
``POST /api/orders`` (JSON, X-MC-* signature); Binance orders are ``POST /binance/api/v3/order`` (form
body, HMAC over query + body, the default FULL answer with fills). Both are answered only once durable.
The clients share the machine's CPU with the server, so the figures are a floor; compare the two surfaces,
not machines.

Run: ``python -m benchmarks.binance_surface [--clients 8] [--orders 150] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import httpx

from benchmarks.http_support import free_port, signed_request

#: BTC/USD with the default grid and fees; the per-user limits raised so that they never refuse an order here.
CONFIG = """
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"
maker_fee_rate = "0.001"
taker_fee_rate = "0.002"

[risk]
price_band = "0.10"
max_open_orders = 1000000
rate_limit_orders = 1000000
rate_limit_window = 1.0
"""

Sender = Callable[[httpx.Client, tuple[str, str], dict[str, str]], httpx.Response]


def _native(http: httpx.Client, trader: tuple[str, str], order: dict[str, str]) -> httpx.Response:
    payload = {"symbol": "BTC/USD", **order}
    return signed_request(http, trader[0], trader[1], "POST", "/api/orders", payload)


def _binance(http: httpx.Client, trader: tuple[str, str], order: dict[str, str]) -> httpx.Response:
    params = {
        "symbol": "BTCUSD",
        "side": order["side"].upper(),
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": order["quantity"],
        "price": order["price"],
        "timestamp": str(int(time.time() * 1000)),
    }
    body = urlencode(params)
    signature = hmac.new(trader[1].encode(), body.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MBX-APIKEY": trader[0], "Content-Type": "application/x-www-form-urlencoded"}
    return http.post("/binance/api/v3/order", content=f"{body}&signature={signature}", headers=headers)


def _round(
    url: str, traders: list[tuple[str, str]], orders: int, send: Sender, ok: int, seed: int
) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(orders):
                order = {
                    "side": rng.choice(["buy", "sell"]),
                    "price": str(Decimal(30000) + Decimal("0.01") * rng.randint(-200, 200)),
                    "quantity": str(Decimal("0.00001") * rng.randint(1, 10000)),
                }
                started = time.perf_counter()
                response = send(http, traders[index], order)
                mine.append(time.perf_counter() - started)
                if response.status_code != ok:
                    with lock:
                        failures.append(response.text[:200])
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(traders))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def _setup(url: str, data: Path, clients: int) -> list[tuple[str, str]]:
    admin = json.loads((data / "admin-credentials.json").read_text())
    traders = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(clients):
            user = signed_request(
                http, admin["api_key"], admin["api_secret"], "POST", "/api/users", {"username": f"t{n}"}
            )
            if user.status_code != 201:
                raise SystemExit(f"cannot create a trader: {user.text}")
            created = user.json()
            for asset, amount in (("USD", "1000000000"), ("BTC", "100000")):
                deposit = {"user_id": created["user_id"], "asset": asset, "amount": amount}
                signed_request(http, admin["api_key"], admin["api_secret"], "POST", "/api/deposits", deposit)
            traders.append((created["api_key"], created["api_secret"]))
    return traders


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=150, help="orders per client per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per surface, alternating")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, list[float], list[str]]]] = {"native": [], "binance": []}
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = data / "bench.toml"
        config.write_text(CONFIG)
        command = [sys.executable, "-m", "manticore_api.cli", "serve", "--port", str(port)]
        command += ["--data-dir", str(data / "data"), "--config", str(config)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            traders = _setup(url, data / "data", args.clients)
            _round(url, traders, max(1, args.orders // 10), _native, 201, -1)  # warm-up, not counted
            surfaces: list[tuple[str, Sender, int]] = [("native", _native, 201), ("binance", _binance, 200)]
            for number in range(args.rounds):
                for name, send, ok in surfaces if number % 2 == 0 else surfaces[::-1]:
                    results[name].append(_round(url, traders, args.orders, send, ok, number))
        finally:
            server.terminate()
            server.wait(30)
    print(f"{args.clients} clients x {args.orders} orders x {args.rounds} rounds per surface, one server run")
    for surface, rounds in results.items():
        elapsed = sum(r[0] for r in rounds)
        latencies = sorted(latency for r in rounds for latency in r[1])
        failures = [failure for r in rounds for failure in r[2]]
        total = len(latencies)
        per_round = ", ".join(f"{len(r[1]) / r[0]:,.0f}" for r in rounds)
        median = statistics.median(latencies) * 1000
        p90, p99 = latencies[int(total * 0.9)] * 1000, latencies[int(total * 0.99)] * 1000
        print(
            f"{surface:8s} {total / elapsed:7,.0f} acknowledged orders/s (rounds: {per_round}); latency ms: "
            f"median {median:.1f}, p90 {p90:.1f}, p99 {p99:.1f}; {len(failures)} not accepted {failures[:1]}"
        )


if __name__ == "__main__":
    main()
