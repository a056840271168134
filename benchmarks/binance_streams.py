"""Binance market streams under load: delivery latency and completeness with many subscribers.

Starts ``manticore serve`` (fsynced journal, SQLite; the per-user limits raised) on a free port with a fresh
data directory, connects ``--subscribers`` WebSocket clients to
``/binance/stream?streams=btcusd@trade/btcusd@depth@100ms`` (each in its own thread), then two traders make
``--trades`` trades through the native API: a maker order, then a taker order crossing it. For every trade
the time from sending the taker order to the ``trade`` event's arrival is measured at every subscriber;
the subscribers also check that every trade arrived and that the depth diffs are gap-free (each ``U`` the
previous ``u + 1``). The clients share the machine's CPU with the server, so the figures are a ceiling on
latency for this machine, not a property of the protocol.

Run: ``python -m benchmarks.binance_streams [--subscribers 20] [--trades 300]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from benchmarks.binance_surface import CONFIG, _setup
from benchmarks.http_support import free_port, signed_request

STREAMS = "btcusd@trade/btcusd@depth@100ms"


class Subscriber(threading.Thread):
    """One WebSocket client: arrival time of each trade id, and depth diff continuity."""

    def __init__(self, port: int, expected: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.expected = expected
        self.arrivals: dict[int, float] = {}
        self.gaps = 0
        self.diffs = 0
        self.ready = threading.Event()

    def run(self) -> None:
        last_u: int | None = None
        with connect(f"ws://127.0.0.1:{self.port}/binance/stream?streams={STREAMS}", max_size=None) as ws:
            self.ready.set()
            deadline = time.monotonic() + 600
            while len(self.arrivals) < self.expected and time.monotonic() < deadline:
                frame: dict[str, Any] = json.loads(ws.recv(timeout=60))
                now = time.perf_counter()
                data = frame["data"]
                if frame["stream"].endswith("@trade"):
                    self.arrivals[data["t"]] = now
                else:
                    self.diffs += 1
                    if last_u is not None and data["U"] != last_u + 1:
                        self.gaps += 1
                    last_u = data["u"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--trades", type=int, default=300)
    args = parser.parse_args()
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
            (maker_key, maker_secret), (taker_key, taker_secret) = _setup(url, data / "data", 2)
            subscribers = [Subscriber(port, args.trades) for _ in range(args.subscribers)]
            for subscriber in subscribers:
                subscriber.start()
                subscriber.ready.wait(30)
            time.sleep(0.5)
            sent: dict[int, float] = {}
            started = time.perf_counter()
            with httpx.Client(base_url=url, timeout=30) as http:
                for number in range(1, args.trades + 1):
                    order = {"symbol": "BTC/USD", "price": "30000", "quantity": "0.001"}
                    maker = signed_request(
                        http, maker_key, maker_secret, "POST", "/api/orders", {**order, "side": "sell"}
                    )
                    if maker.status_code != 201:
                        raise SystemExit(f"maker order refused: {maker.text}")
                    sent[number] = time.perf_counter()
                    taker = signed_request(
                        http, taker_key, taker_secret, "POST", "/api/orders", {**order, "side": "buy"}
                    )
                    if taker.status_code != 201:
                        raise SystemExit(f"taker order refused: {taker.text}")
            elapsed = time.perf_counter() - started
            for subscriber in subscribers:
                subscriber.join(120)
        finally:
            server.terminate()
            server.wait(30)
    latencies = sorted(
        (subscriber.arrivals[number] - sent[number]) * 1000
        for subscriber in subscribers
        for number in sent
        if number in subscriber.arrivals
    )
    missing = args.trades * args.subscribers - len(latencies)
    gaps = sum(subscriber.gaps for subscriber in subscribers)
    diffs = sum(subscriber.diffs for subscriber in subscribers)
    print(
        f"{args.subscribers} subscribers x {args.trades} trades ({args.trades / elapsed:,.0f} trades/s, "
        f"each a maker and a taker order acknowledged once durable)"
    )
    print(
        f"trade event after the taker order was sent, ms: median {statistics.median(latencies):.1f}, "
        f"p90 {latencies[int(len(latencies) * 0.9)]:.1f}, p99 {latencies[int(len(latencies) * 0.99)]:.1f}, "
        f"max {latencies[-1]:.1f}; {missing} trade events missing; "
        f"{diffs} depth diffs, {gaps} gaps in U/u"
    )


if __name__ == "__main__":
    main()
