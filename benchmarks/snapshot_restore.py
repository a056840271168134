"""What a snapshot saves a fresh instance: instructions (valgrind/callgrind, every thread of the
instance's process; the nats-server is another process and not counted) to open an exchange on an
empty directory from a shard's log, with and without the Object Store snapshot.

It starts a private ``nats-server -js`` on a free port, writes ``--orders`` place records (16 funded
users, :func:`benchmarks.exchange.orders`, seed 11) to the log of shard ``main``, checkpoints (the
checkpoint is published as a snapshot), writes ``--after`` more, and then counts, for each mode, a
process that opens an exchange on an empty directory: ``snapshot`` restores the snapshot and replays
the records after it; ``log`` replays the whole log.

Run: ``.venv/bin/python -m benchmarks.snapshot_restore [--orders 3000 --after 200]``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.exchange import LIMITS, MARKET, _fund, orders
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.snapshots import open_snapshots
from manticore_matching import Exchange

_TOTAL = re.compile(r"Collected\s*:\s*([\d,]+)")


def _exchange(directory: Path, options: NatsOptions, **journal: Any) -> Exchange:
    def build(on_durable: Callable[[int], None]) -> JetStreamJournal:
        return JetStreamJournal(options, "main", on_durable=on_durable, **journal)

    return Exchange(
        directory,
        markets=[MARKET],
        risk_limits=LIMITS,
        checkpoint_every=0,
        fsync=False,
        journal_factory=build,
    )


def make(directory: Path, options: NatsOptions, count: int, after: int) -> int:
    """Write the log and the snapshot; return the snapshot's position."""
    publisher = open_snapshots(options, "main", directory, keep=3, retention=False)
    exchange = _exchange(directory, options, on_checkpoint=publisher.offer)
    exchange.open()
    _fund(exchange, 16)
    placed = orders(count + after, 16, seed=11)
    for user, side, price, quantity in placed[:count]:
        with contextlib.suppress(Exception):
            exchange.place_order(user, "BTC/USD", side, quantity, price=price)
    position = exchange.checkpoint()
    publisher.flush(60)
    for user, side, price, quantity in placed[count:]:
        with contextlib.suppress(Exception):
            exchange.place_order(user, "BTC/USD", side, quantity, price=price)
    exchange.close(checkpoint=False)
    publisher.close()
    return position


def open_fresh(options: NatsOptions, mode: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "data"
        publisher = None
        if mode == "snapshot":
            publisher = open_snapshots(options, "main", directory, keep=3, retention=False)
        exchange = _exchange(directory, options)
        exchange.open()
        print(f"replayed {exchange.replayed_records}", flush=True)
        exchange.close(checkpoint=False)
        if publisher is not None:
            publisher.close()


def instructions(options: NatsOptions, mode: str) -> int:
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.snapshot_restore",
            "--open",
            mode,
            "--url",
            options.servers[0],
            "--prefix",
            options.prefix,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    print(f"{mode}: {out.stdout.strip()}")
    return int(found[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--after", type=int, default=200)
    parser.add_argument("--nats-server", default="/usr/sbin/nats-server")
    parser.add_argument("--open", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.open is not None:
        # valgrind slows the client ~50x: generous timeouts, so that no read gives up
        slow = NatsOptions(servers=(args.url,), prefix=args.prefix, connect_timeout=60, request_timeout=60)
        open_fresh(slow, args.open)
        return
    with tempfile.TemporaryDirectory() as scratch, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = subprocess.Popen(
            [args.nats_server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", f"{scratch}/store"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            options = NatsOptions(servers=(f"nats://127.0.0.1:{port}",), prefix="bench")
            position = make(Path(scratch) / "writer", options, args.orders, args.after)
            print(f"snapshot at position {position}")
            counts = {mode: instructions(options, mode) for mode in ("snapshot", "log")}
        finally:
            server.kill()
            server.wait(10)
    for mode, count in counts.items():
        print(f"fresh instance, {mode}: {count:,} instructions")
    saved, ratio = counts["log"] - counts["snapshot"], counts["log"] / counts["snapshot"]
    print(f"saved: {saved:,} instructions ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
