"""The exchange on its file journal versus on a JetStream journal (issue 18, phase 1), in one run.

For each backend: acknowledged orders per second with one client (place, then wait until durable, one
at a time) and with 64 orders in flight (place 64, wait for the last: what concurrent clients get from
group commit), the records per journal batch (message), and the replay rate of a restart without a
checkpoint (records/s, fingerprint-checked, as after ``kill -9``).

Backends: ``file, fsync`` (the embedded default), ``file, no fsync`` (what JetStream R1 on nats-server
2.9 guarantees: survives kill -9, not power loss), ``jetstream R1`` (a private nats-server started for
the run, or ``--nats-url`` with a unique stream prefix). Wall-clock figures on a shared 2-core machine:
compare the rows of one run, not runs.

Run: ``.venv/bin/python -m benchmarks.jetstream_journal [--orders N] [--nats-url URL]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange, MarketConfig

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)
USERS = [f"u{i}" for i in range(8)]


def _orders(count: int, seed: int = 1) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    return [
        (
            rng.choice(USERS),
            rng.choice(["buy", "sell"]),
            str(Decimal(rng.randint(1, 20)) / 1000),
            str(Decimal(30_000) + Decimal(rng.randint(-40, 40)) / 2),
        )
        for _ in range(count)
    ]


def _start_server(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = ["/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    raise RuntimeError("nats-server did not start")


def _run(make: Callable[[Path], Exchange], directory: Path, orders: int) -> dict[str, Any]:
    exchange = make(directory)
    exchange.open()
    for user in USERS:
        exchange.deposit(user, "USD", "100000000")
        exchange.deposit(user, "BTC", "10000")
    stream = _orders(orders)
    half = len(stream) // 2
    started = time.perf_counter()
    for user, side, quantity, price in stream[:half]:
        receipt = exchange.place_order(user, "BTC/USD", side, quantity, price=price)
        exchange.wait_durable(receipt.position)
    one_client = half / (time.perf_counter() - started)
    batches_before = exchange.journal.batches
    records_before = exchange.journal.durable
    started = time.perf_counter()
    for offset in range(half, len(stream), 64):
        last = 0
        for user, side, quantity, price in stream[offset : offset + 64]:
            last = exchange.place_order(user, "BTC/USD", side, quantity, price=price).position
        exchange.wait_durable(last)
    in_flight = (len(stream) - half) / (time.perf_counter() - started)
    per_batch = (exchange.journal.durable - records_before) / max(
        1, exchange.journal.batches - batches_before
    )
    records = exchange.journal.appended
    exchange.journal.close()  # as kill -9 leaves it: no checkpoint
    assert exchange.storage is not None
    exchange.storage.close()
    assert exchange.directory_lock is not None
    exchange.directory_lock.release()
    restored = make(directory)
    started = time.perf_counter()
    restored.open()
    replay = restored.replayed_records / (time.perf_counter() - started)
    assert restored.replayed_records == records
    restored.close()
    return {"one client": one_client, "64 in flight": in_flight, "records/batch": per_batch, "replay": replay}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--nats-url", default=None, help="an existing server (default: start a private one)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mc-bench-js-"))
    server = None
    try:
        if args.nats_url is None:
            server, url = _start_server(root / "nats")
        else:
            url = args.nats_url
        options = NatsOptions(servers=(url,), prefix=f"bench{uuid.uuid4().hex[:8]}")

        def file_journal(fsync: bool) -> Callable[[Path], Exchange]:
            return lambda d: Exchange(d, markets=[MARKET], fsync=fsync, checkpoint_every=0)

        def jetstream(d: Path) -> Exchange:
            return Exchange(
                d,
                markets=[MARKET],
                fsync=False,
                checkpoint_every=0,
                journal_factory=lambda on_durable: JetStreamJournal(options, "bench", on_durable=on_durable),
            )

        backends: list[tuple[str, Callable[[Path], Exchange]]] = [
            ("file journal, fsync", file_journal(True)),
            ("file journal, no fsync", file_journal(False)),
            ("JetStream R1 (nats-server 2.9)", jetstream),
        ]
        print(f"{args.orders} orders per backend (half one client, half 64 in flight)")
        print("| backend | one client orders/s | 64 in flight orders/s | records/batch | replay records/s |")
        print("|---|---:|---:|---:|---:|")
        for name, make in backends:
            result = _run(make, root / name.replace(" ", "_").replace(",", ""), args.orders)
            print(
                f"| {name} | {result['one client']:,.0f} | {result['64 in flight']:,.0f} | "
                f"{result['records/batch']:.1f} | {result['replay']:,.0f} |"
            )
    finally:
        if server is not None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
