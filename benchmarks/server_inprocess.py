"""Signed ``POST /api/orders`` straight into the ASGI app of ``manticore serve``: CPU per request and the
cyclic collector's work, without HTTP or a load generator (so the figures are this process's alone).

The app is built as ``manticore serve`` builds it (``build_service`` with authentication on, the
serving GC policy applied after start-up); ``--users`` funded users each get an API key; every request
is signed just before its batch (the replay guard accepts each once) and ``--concurrency`` tasks keep
that many requests in flight, as a server under load has. Reports, for the measured requests:

* CPU per request of the whole process (all threads: the journal and storage writer included), and
  wall-clock requests/s (for orientation only; on a shared machine use the CPU figure);
* the collector's pauses by generation (count, total, longest; from :data:`gc.callbacks`), pauses over
  10 ms, and the collector's time per request;
* with ``--objects``: the GC-tracked objects outside the frozen generation by type at the end (what a
  full collection would traverse), per resting order.

Run::

    python -m benchmarks.server_inprocess --requests 20000
    python -m benchmarks.server_inprocess --requests 20000 --objects --no-gc-policy
    python -m benchmarks.server_inprocess --profile /tmp/prof.txt   # cProfile of the measured part
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import io
import json
import logging
import pstats
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from manticore_api.app import create_app
from manticore_api.gcpolicy import GcPolicy
from manticore_api.server import ServerOptions, build_service
from manticore_auth import current_timestamp, sign_request
from manticore_matching import DEFAULT_RISK_LIMITS, MarketConfig
from manticore_risk import RiskLimits

from .server_orders import order_body

__all__ = ["main"]

_MARKET = MarketConfig(
    symbol="BTC/USD",
    base_asset="BTC",
    quote_asset="USD",
    tick_size="0.01",
    lot_size="0.00001",
    maker_fee_rate="0.001",
    taker_fee_rate="0.002",
)


class GcTimes:
    """Collections per generation with their pause durations (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.cpu_ms = [0.0, 0.0, 0.0]
        self.max_cpu_ms = [0.0, 0.0, 0.0]
        self.over_10ms = 0
        self.pauses: list[tuple[int, float, float, int]] = []
        self._started = 0.0
        self._started_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        pause = (time.perf_counter() - self._started) * 1000.0
        cpu = (time.thread_time() - self._started_cpu) * 1000.0
        generation = info["generation"]
        self.count[generation] += 1
        self.total_ms[generation] += pause
        self.max_ms[generation] = max(self.max_ms[generation], pause)
        self.cpu_ms[generation] += cpu
        self.max_cpu_ms[generation] = max(self.max_cpu_ms[generation], cpu)
        self.pauses.append((generation, pause, cpu, info.get("collected", 0)))
        if pause > 10.0:
            self.over_10ms += 1


def _scope(headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/orders",
        "raw_path": b"/api/orders",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = _scope(headers, body)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


Request = tuple[list[tuple[bytes, bytes]], bytes]


def _requests(keys: list[tuple[str, str]], start: int, count: int, signed: bool = True) -> list[Request]:
    """``count`` resting-order requests, round robin over ``keys``, from counter ``start``: signed, or
    (``signed`` false, for a server without authentication) naming the user in ``X-MC-User``."""
    out: list[Request] = []
    stamp = current_timestamp()
    for n in range(start, start + count):
        index = n % len(keys)
        key, secret = keys[index]
        body = json.dumps(order_body("resting", n // len(keys) + 1, index), separators=(",", ":")).encode()
        if not signed:
            out.append(([(b"x-mc-user", key.encode())], body))
            continue
        signature = sign_request(secret, stamp, "POST", "/api/orders", body)
        headers = [
            (b"x-mc-apikey", key.encode()),
            (b"x-mc-timestamp", stamp.encode()),
            (b"x-mc-signature", signature.encode()),
        ]
        out.append((headers, body))
    return out


async def _drive(app: Any, requests: list[Request], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = iter(requests)

    async def worker() -> None:
        for headers, body in queue:
            statuses[await _post(app, headers, body)] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def _tracked_by_type() -> Counter[str]:
    """GC-tracked objects outside the permanent (frozen) generation, by type name."""
    return Counter(type(o).__qualname__ for o in gc.get_objects())


async def run(args: argparse.Namespace) -> str:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="inproc-") as directory:
        options = ServerOptions(
            data_dir=Path(directory),
            markets=(_MARKET,),
            fsync=args.fsync,
            risk_limits=_limits(),
            require_auth=not args.no_auth,
        )
        service = build_service(options)
        policy = None
        if not args.no_gc_policy:
            thresholds = tuple(int(t) for t in args.thresholds.split(",")) if args.thresholds else None
            policy = GcPolicy(thresholds=thresholds) if thresholds else GcPolicy()  # type: ignore[arg-type]
        app = create_app(service, gc_policy=policy)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        if args.no_fast_path:
            app.fast_path = None
        keys = []
        for i in range(args.users):
            user = service.auth.create_user(f"trader{i}")
            created = service.auth.create_api_key(user.user_id)
            keys.append((user.user_id, "") if args.no_auth else (created["api_key"], created["api_secret"]))
            for asset, amount in (("USD", "1000000000"), ("BTC", "1000000")):
                receipt = service.exchange.deposit(user.user_id, asset, amount)
                service.exchange.wait_durable(receipt.position)
        times = GcTimes()
        gc.callbacks.append(times)
        counter = 0
        # Warm-up (not measured): also fills the book with args.warmup resting orders.
        for _ in range(0, args.warmup, args.batch):
            batch = _requests(keys, counter, min(args.batch, args.warmup), not args.no_auth)
            counter += len(batch)
            await _drive(app, batch, args.concurrency)
        times.__init__()  # type: ignore[misc]
        statuses: Counter[int] = Counter()
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        cpu = 0.0
        wall = 0.0
        done = 0
        while done < args.requests:
            batch = _requests(keys, counter, min(args.batch, args.requests - done), not args.no_auth)
            counter += len(batch)
            done += len(batch)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            statuses += await _drive(app, batch, args.concurrency)
            if profiler is not None:
                profiler.disable()
            cpu += time.process_time() - cpu0
            wall += time.perf_counter() - wall0
        gc.callbacks.remove(times)
        resting = service.exchange.statistics()["orders_resting"]
        lines.append(
            f"{done} signed POST /api/orders after {args.warmup} warm-up, {args.concurrency} in flight, "
            f"{args.users} users, GC policy {'off' if args.no_gc_policy else 'on'} "
            f"thresholds {gc.get_threshold()}, "
            f"fast path {'on' if getattr(app, 'fast_path', None) else 'off'}; "
            f"{resting} resting orders"
        )
        lines.append(f"answers: {dict(statuses)}")
        lines.append(
            f"CPU {cpu / done * 1e6:.1f} us/request (all threads); {done / wall:,.0f} requests/s wall"
        )
        gc_total = sum(times.total_ms)
        lines.append(
            f"GC: {gc_total / done * 1000:.1f} us/request, pauses over 10 ms {times.over_10ms}; "
            "per generation "
            + ", ".join(
                f"gen{g} {times.count[g]} x (total {times.total_ms[g]:.1f} ms, max {times.max_ms[g]:.2f} ms; "
                f"thread CPU total {times.cpu_ms[g]:.1f} ms, max {times.max_cpu_ms[g]:.2f} ms)"
                for g in range(3)
            )
        )
        if args.pauses:
            longest = sorted(times.pauses, key=lambda p: -p[1])[: args.pauses]
            lines.append(
                "longest pauses (generation, wall ms, thread CPU ms, collected): "
                + "; ".join(f"gen{g} {w:.2f} {c:.2f} {n}" for g, w, c, n in longest)
            )
        if args.objects:
            started, started_cpu = time.perf_counter(), time.thread_time()
            gc.collect()
            full_ms = (time.perf_counter() - started) * 1000.0
            full_cpu_ms = (time.thread_time() - started_cpu) * 1000.0
            lines.append(f"one full collection now: {full_ms:.1f} ms ({full_cpu_ms:.1f} ms thread CPU)")
            tracked = _tracked_by_type()
            total = sum(tracked.values())
            lines.append(
                f"GC-tracked objects outside the frozen generation: {total:,} "
                f"({total / max(resting, 1):.1f} per resting order); frozen {gc.get_freeze_count():,}"
            )
            for name, count in tracked.most_common(args.objects):
                lines.append(f"  {count:>9,}  {name}")
            for generation in range(3):
                lines.append(f"  generation {generation}: {len(gc.get_objects(generation)):,} objects")
        if profiler is not None:
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(60)
            Path(args.profile).write_text(stream.getvalue())
            lines.append(f"profile: {args.profile}")
        await lifespan.__aexit__(None, None, None)
        service.exchange.close(checkpoint=False)
        service.auth.close()
    return "\n".join(lines)


def _limits() -> RiskLimits:
    """The default limits without the per-user rate and open-order limits (as benchmarks.server)."""
    return dataclasses.replace(DEFAULT_RISK_LIMITS, max_open_orders=10_000_000, rate_limit_orders=10_000_000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=2_000, help="requests before measuring")
    parser.add_argument("--batch", type=int, default=2_000, help="requests signed at a time")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--fsync", action="store_true", help="fsync the journal (as manticore serve)")
    parser.add_argument("--no-gc-policy", action="store_true", help="leave the collector as Python starts it")
    parser.add_argument("--no-auth", action="store_true", help="a server without authentication (X-MC-User)")
    parser.add_argument("--no-fast-path", action="store_true", help="serve through the middleware stack")
    parser.add_argument("--thresholds", help="gen0,gen1,gen2 thresholds instead of the policy's")
    parser.add_argument(
        "--objects", type=int, default=0, metavar="N", help="list the N commonest tracked types"
    )
    parser.add_argument("--pauses", type=int, default=0, metavar="N", help="list the N longest pauses")
    parser.add_argument("--profile", help="write a cProfile of the measured requests here")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
