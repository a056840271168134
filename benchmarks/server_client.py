"""Load clients of ``benchmarks.server``, each run in its own process (pinned by the harness to the core
the server does not use). Both print one JSON line on stdout.

* ``paced``: an open-loop HTTP/1.1 client. Request ``i`` is due at ``start + i / rate`` whatever the
  server does; its latency is measured from that due time (so a stalled server shows up in the
  percentiles instead of slowing the client down: no coordinated omission). Requests come from a
  requests file (the format of ``server_wrk.lua``) and go out over ``--connections`` keep-alive
  connections, one request in flight on each; when all are busy the due request waits for one (and
  that wait counts in its latency). With ``--timeline FILE`` it also writes every request's due time,
  the time it was written to its connection, the time its answer was complete (``time.perf_counter``,
  i.e. ``CLOCK_MONOTONIC`` on Linux, the clock the server's own traces can use) and its status, as a
  JSON list of ``[due, sent, answered, status]`` rows (status 0: the connection closed).
* ``ws``: WebSocket order entry (``{"op": "order.place", "id": ...}`` on ``/ws``), pipelined: each
  connection keeps ``--window`` requests in flight and sends one more per reply, for ``--duration``
  seconds. Prints ``{"supported": false}`` when the server answers the first order.place with an
  error frame instead of a response (a server without WebSocket order entry).

Run by the harness; by hand: ``python -m benchmarks.server_client paced --url http://127.0.0.1:8000
--requests FILE --rate 500`` or ``python -m benchmarks.server_client ws --url ... --users FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from manticore_api.gcpolicy import GcPauseRecorder
from manticore_auth import current_timestamp, sign_request

from .server_orders import order_body

__all__ = ["main", "raw_requests"]


def raw_requests(path: Path, host: str) -> list[bytes]:
    """The requests of a requests file (api_key, timestamp, signature, user, body per line, tab
    separated) as raw HTTP/1.1 ``POST /api/orders`` requests for ``host``."""
    out: list[bytes] = []
    for line in path.read_text().splitlines():
        key, stamp, signature, user, body = line.split("\t", 4)
        encoded = body.encode()
        head = [
            "POST /api/orders HTTP/1.1",
            f"Host: {host}",
            "Content-Type: application/json",
            f"Content-Length: {len(encoded)}",
        ]
        if key:
            head += [f"X-MC-APIKEY: {key}", f"X-MC-TIMESTAMP: {stamp}", f"X-MC-SIGNATURE: {signature}"]
        if user:
            head.append(f"X-MC-User: {user}")
        out.append(("\r\n".join(head) + "\r\n\r\n").encode() + encoded)
    return out


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        marker = head.find(b"content-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker)
            length = int(head[marker + 15 : stop if stop >= 0 else len(head)].strip())
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def send(self, raw: bytes) -> int:
        """Send one request; the status of its answer."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """No cyclic garbage collection in this process while the block runs (a load client's own pauses
    would delay its sends and reads, and count against the server it measures).

    The heap built so far (imports, the prepared requests) is collected once and frozen first; the
    block's garbage cycles (asyncio futures and tasks of a 10-60 s run) wait until it ends. Measured
    on the paced client (session 28): a gen-2 collection over the imported modules' objects stalled
    it for 64 ms with every connection idle, which the window's p99 counted as the server's."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)}


async def _paced(
    url: str,
    requests: list[bytes],
    rate: float,
    connections: int,
    grace: float,
    timeline: list[tuple[float, float, float, int]] | None = None,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    opened: list[_Connection] = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(
            _Connection, parts.hostname or "127.0.0.1", parts.port or 80
        )
        opened.append(protocol)
        free.put_nowait(protocol)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    late = 0.0
    pauses = GcPauseRecorder()  # the client's own pauses delay its sends and reads
    pauses.install()

    async def one(connection: _Connection, raw: bytes, due: float) -> None:
        sent = time.perf_counter()
        try:
            status = await connection.send(raw)
        except (ConnectionError, ValueError):
            statuses["closed"] += 1
            if timeline is not None:
                timeline.append((due, sent, time.perf_counter(), 0))
            return
        answered = time.perf_counter()
        if timeline is not None:
            timeline.append((due, sent, answered, status))
        if status == 201:
            latencies.append(answered - due)
        statuses[str(status)] += 1
        if not connection.lost:
            free.put_nowait(connection)

    clock = time.perf_counter  # uvloop's loop.time() only has millisecond resolution
    start = clock() + 0.05
    for index, raw in enumerate(requests):
        due = start + index / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late = max(late, -delay)
        connection = free.get_nowait() if not free.empty() else await free.get()
        task = loop.create_task(one(connection, raw, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_until = clock()
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            statuses["unanswered"] += len(pending)
    elapsed = clock() - start
    for protocol in opened:
        if protocol.transport is not None:
            protocol.transport.close()
    return {
        "rate_asked": rate,
        "sent": len(requests),
        "send_seconds": round(sent_until - start, 3),
        "seconds": round(elapsed, 3),
        "acknowledged": statuses.get("201", 0),
        "status": dict(statuses),
        "latency_ms": _percentiles(latencies),
        "max_send_lag_ms": round(late * 1000, 3),
        "client_gc": {
            "collections": sum(pauses.collections),
            "max_pause_ms": round(pauses.max_pause_ms, 3),
            "pauses_over_10ms": pauses.pauses_over_10ms,
        },
    }


async def _ws(
    url: str, users: list[dict[str, str]], window: int, duration: float, scenario: str
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    parts = urlsplit(url)
    ws_url = f"ws://{parts.hostname}:{parts.port}/ws"
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    supported: list[bool | None] = [None]
    probe_error: list[str] = []
    deadline_holder: list[float] = []

    async def session(number: int, user: dict[str, str]) -> None:
        async with connect(ws_url, max_size=1 << 20) as websocket:
            if user.get("api_key"):
                stamp = current_timestamp()
                auth = {
                    "op": "auth",
                    "api_key": user["api_key"],
                    "timestamp": stamp,
                    "signature": sign_request(user["api_secret"], stamp, "GET", "/ws", b""),
                }
            else:
                auth = {"op": "auth", "user": user["user"]}
            await websocket.send(json.dumps(auth))
            while True:
                frame = json.loads(await websocket.recv())
                if frame.get("type") == "authenticated":
                    break
                if frame.get("type") == "error":
                    raise RuntimeError(f"WebSocket auth refused: {frame}")
            counter = 0

            def request() -> bytes:
                nonlocal counter
                counter += 1
                body: dict[str, object] = {"op": "order.place", "id": counter}
                body.update(order_body(scenario, counter, number))
                sent_at[counter] = time.perf_counter()
                return orjson.dumps(body)

            sent_at: dict[int, float] = {}
            await websocket.send(request(), text=True)
            while True:  # the probe: the first answer to our order
                frame = json.loads(await websocket.recv())
                if frame.get("type") == "response":
                    supported[0] = True
                    statuses[str(frame.get("status"))] += 1
                    break
                if frame.get("type") == "error":
                    supported[0] = False
                    probe_error.append(str(frame)[:200])
                    return
            while not deadline_holder:
                await asyncio.sleep(0.001)
            deadline = deadline_holder[0]
            for _ in range(window):
                await websocket.send(request(), text=True)
            in_flight = window
            # The client's own work per order is kept small (orjson both ways, the text frames' bytes
            # undecoded, one deadline for the whole run instead of a timer per reply), so that its
            # core is not what limits the rate: the server is measured, not this client.
            send, receive, loads, clock = websocket.send, websocket.recv, orjson.loads, time.perf_counter

            async def replies() -> None:
                nonlocal in_flight
                while in_flight:
                    frame = loads(await receive(decode=False))
                    if frame.get("type") != "response":
                        continue
                    in_flight -= 1
                    status = str(frame.get("status"))
                    statuses[status] += 1
                    started = sent_at.pop(frame.get("id"), None)
                    now = clock()
                    if status == "201" and started is not None:
                        latencies.append(now - started)
                    if now < deadline:
                        await send(request(), text=True)
                        in_flight += 1

            try:
                await asyncio.wait_for(replies(), deadline - time.perf_counter() + 30.0)
            except asyncio.TimeoutError:  # requests without a reply 30 s after the run's end
                statuses["unanswered"] += in_flight

    tasks = [asyncio.create_task(session(n, user)) for n, user in enumerate(users)]
    await asyncio.sleep(0.2)
    statuses.clear()
    begin = time.perf_counter()
    cpu = time.process_time()
    deadline_holder.append(begin + duration)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    cpu = time.process_time() - cpu
    if supported[0] is False:
        return {"supported": False, "error": probe_error[:1]}
    acknowledged = statuses.get("201", 0)
    return {
        "supported": True,
        "seconds": round(elapsed, 3),
        "client_cpu_s": round(cpu, 3),
        "acknowledged": acknowledged,
        "rate": round(acknowledged / elapsed, 1),
        "status": dict(statuses),
        "latency_ms": _percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    paced = sub.add_parser("paced", help="open-loop HTTP client at a fixed rate")
    paced.add_argument("--url", required=True)
    paced.add_argument("--requests", type=Path, required=True, help="requests file (server_wrk.lua format)")
    paced.add_argument("--rate", type=float, required=True, help="requests per second")
    paced.add_argument("--connections", type=int, default=64)
    paced.add_argument("--grace", type=float, default=10.0, help="seconds to wait for late answers")
    paced.add_argument(
        "--timeline", type=Path, help="write [due, sent, answered, status] per request here (JSON)"
    )
    ws = sub.add_parser("ws", help="pipelined WebSocket order entry")
    ws.add_argument("--url", required=True)
    ws.add_argument("--users", type=Path, required=True, help="JSON list of {api_key, api_secret} or {user}")
    ws.add_argument("--window", type=int, default=64, help="requests in flight per connection")
    ws.add_argument("--duration", type=float, default=10.0)
    ws.add_argument("--scenario", default="resting")
    args = parser.parse_args(argv)
    run: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    if args.mode == "paced":
        host = urlsplit(args.url).netloc
        timeline: list[tuple[float, float, float, int]] | None = [] if args.timeline else None
        requests = raw_requests(args.requests, host)
        with collector_off():
            result = run(_paced(args.url, requests, args.rate, args.connections, args.grace, timeline))
        if args.timeline and timeline is not None:
            args.timeline.write_text(json.dumps(sorted(timeline)))
    else:
        users = json.loads(args.users.read_text())
        with collector_off():
            result = run(_ws(args.url, users, args.window, args.duration, args.scenario))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
