"""N order requests through the in-process ASGI app (no HTTP server, fsync off), for instruction counts
of the API's order paths::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python -m benchmarks.api_instructions N
    python -m benchmarks.api_instructions N --mode signed      # signed POST /api/orders (API key)
    python -m benchmarks.api_instructions N --mode ws          # WebSocket order.place (authenticated)
    python -m benchmarks.api_instructions N --mode http        # signed POST /api/orders through uvicorn
    python -m benchmarks.api_instructions N --mode wsserve     # order.place through uvicorn's WebSocket
    python -m benchmarks.api_instructions N --mode wsclient    # wsserve's client alone (its share)
    python -m benchmarks.api_instructions --count --mode signed  # both valgrind runs, the difference

Modes:

* ``open`` (default, the first figure of this benchmark): N pairs of REST place + cancel, no auth;
* ``signed``: N signed ``POST /api/orders`` (resting orders, the request ``benchmarks.server``'s
  ``signed_resting`` target sends: API key headers, HMAC over the body), each answered 201;
* ``ws``: N ``order.place`` requests on one authenticated ``/ws`` connection, pipelined with at most
  :data:`WS_WINDOW` unanswered (as the server benchmark's client), every answer 201;
* ``http``: the requests of ``signed`` as bytes, one after the other on one keep-alive connection,
  through the HTTP protocol and uvicorn config of ``manticore serve`` (``uvicorn_config``: httptools
  parsing, uvicorn's request cycle and proxy-headers middleware, the response written out) on an
  in-memory transport: everything the server does per request but the socket's system calls;
* ``wsserve``: the requests of ``ws`` as masked WebSocket frames, through the HTTP protocol's upgrade
  and the WebSocket protocol of ``manticore serve`` (``uvicorn_config``) on an in-memory transport:
  frame parsing and writing, uvicorn's ASGI queue and read pausing, as the server runs them (``ws``
  calls the app's ASGI callables directly). The transport delivers what the client sent on the next
  loop iteration, everything sent meanwhile in one ``data_received`` (as a socket read would), and
  holds it while the protocol has paused reading. The client side (building the frames, reading the
  answers) runs on the same thread: it is in the count, the same for every server tree;
* ``wsclient``: that client alone, against a stand-in server that answers every frame at once with a
  canned 201 answer of the served answer's length (GC policy as served): ``wsserve`` minus
  ``wsclient`` is the server's own work per order (session 24: the client is about a third of
  ``wsserve``'s figure).

``--loop uvloop`` runs the event loop ``manticore serve`` runs (uvicorn's ``auto`` picks uvloop); the
default stays asyncio's, for figures comparable with earlier sessions.

The app is started as under ``manticore serve``, through its lifespan: the service, the fast path of
the lean order routes, the serving GC policy (before session 14 this benchmark started only the
service, and measured the order routes through Starlette's middleware stack and the default GC).

Run it with two values of N: (instructions(2N) - instructions(N)) / N is the cost of one request
(Python's start-up and the set-up cancel out); ``--count`` does that under valgrind and prints it, for
the event loop's thread (the request path: HTTP/WebSocket handling, auth, the command on the exchange,
the acknowledgement) and for all threads. Compare changes by the loop thread's figure: the journal and
storage threads' work per request depends on how their rounds batch, which the machine's load moves.
Counts include the journal and storage writer threads, whose batching varies from run to run (about
+-1%). What the server does by the wall clock is switched off (the GTD expiry sweep, the API key
cache's expiry): valgrind's slow-down would otherwise count it in proportion to the run's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from uvicorn.server import ServerState

from manticore_api.app import create_app
from manticore_api.gcpolicy import GcPolicy, start_refreezing
from manticore_api.server import ServerOptions, build_service, uvicorn_config
from manticore_auth import current_timestamp, sign_request
from manticore_risk import RiskLimits

ORDER = {"symbol": "BTC/USD", "side": "buy", "quantity": "0.1", "price": "100", "user_id": "alice"}
MODES = ("open", "signed", "ws", "http", "wsserve", "wsclient")
LOOPS = ("asyncio", "uvloop")
#: Unanswered ``order.place`` requests in flight on the WebSocket (as ``benchmarks.server``'s client).
WS_WINDOW = 64


def _scope(method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


async def _call(
    app: Any, method: str, path: str, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    """One HTTP request straight into the ASGI app: ``{"status", "body"}``."""
    scope = _scope(method, path, body, headers or [])
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def _resting(i: int) -> dict[str, Any]:
    """A buy that rests (below every other order), its price varying so the book grows levels."""
    return {"symbol": "BTC/USD", "side": "buy", "quantity": "0.001", "price": f"{90 + i % 500 / 100:.2f}"}


async def _open(app: Any, pairs: int) -> None:
    body = json.dumps(ORDER).encode()
    for _ in range(pairs):
        placed = await _call(app, "POST", "/api/orders", body)
        assert placed["status"] == 201, placed
        order_id = json.loads(placed["body"])["order_id"]
        cancelled = await _call(app, "DELETE", f"/api/orders/{order_id}")
        assert cancelled["status"] == 200, cancelled


async def _signed(app: Any, count: int, api_key: str, secret: str) -> None:
    for i in range(count):
        body = json.dumps(_resting(i), separators=(",", ":")).encode()
        placed = await _call(app, "POST", "/api/orders", body, _signed_headers(api_key, secret, body))
        assert placed["status"] == 201, placed


def _signed_headers(api_key: str, secret: str, body: bytes) -> list[tuple[bytes, bytes]]:
    stamp = current_timestamp()
    return [
        (b"x-mc-apikey", api_key.encode()),
        (b"x-mc-timestamp", stamp.encode()),
        (b"x-mc-signature", sign_request(secret, stamp, "POST", "/api/orders", body).encode()),
    ]


class _Transport(asyncio.Transport):
    """An open connection from 127.0.0.1 whose writes are kept in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _http(app: Any, count: int, api_key: str, secret: str) -> None:
    config = uvicorn_config(app, "127.0.0.1", 8000, "warning")
    config.load()  # as uvicorn.Server does: the app wrapped in uvicorn's proxy-headers middleware
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), *config.encoded_headers]
    answered: list[asyncio.Future[None]] = []

    class Protocol(config.http_protocol_class):  # type: ignore[misc,name-defined]
        def on_response_complete(self) -> None:
            super().on_response_complete()
            answered[0].set_result(None)

    loop = asyncio.get_running_loop()
    protocol = Protocol(config=config, server_state=state, app_state={}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)
    for i in range(count):
        body = json.dumps(_resting(i), separators=(",", ":")).encode()
        lines = [b"POST /api/orders HTTP/1.1", b"Host: 127.0.0.1:8000", b"Content-Type: application/json"]
        lines += [name + b": " + value for name, value in _signed_headers(api_key, secret, body)]
        lines.append(b"Content-Length: %d" % len(body))
        answered[:] = [loop.create_future()]
        transport.written.clear()
        protocol.data_received(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await answered[0]
        status = transport.written[0][:12]
        assert status == b"HTTP/1.1 201", b"".join(transport.written)
    protocol.connection_lost(None)


class _ClientTransport(_Transport):
    """The server's end of a WebSocket connection in memory: what the client sends is delivered to the
    protocol on a later loop iteration (all of it sent by then in one ``data_received``, as one socket
    read would), never while the protocol has paused reading; what the server writes goes to
    ``on_write``."""

    def __init__(self, on_write: Any) -> None:
        super().__init__()
        self.on_write = on_write
        self.incoming: list[bytes] = []
        self.paused = False
        self.scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.on_write(data)

    def send(self, data: bytes) -> None:
        """The client sends ``data``."""
        self.incoming.append(data)
        self._schedule()

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
        self._schedule()

    def _schedule(self) -> None:
        if not self.scheduled and not self.paused and self.incoming:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self.scheduled = False
        if self.paused or not self.incoming:
            return
        data = b"".join(self.incoming)
        self.incoming.clear()
        protocol: Any = self.protocol
        protocol.data_received(data)


_MASK = b"\x37\xfa\x21\x3d"


def _client_frame(text: str) -> bytes:
    """``text`` as a client's (masked) WebSocket text frame."""
    from websockets.speedups import apply_mask

    payload = text.encode()
    length = len(payload)
    head = bytes((0x81, 0x80 | length)) if length < 126 else b"\x81\xfe" + length.to_bytes(2, "big")
    return head + _MASK + apply_mask(payload, _MASK)


class _ServerFrames:
    """The server's (unmasked) frames, split out of what it writes; text frames' JSON to ``on_frame``."""

    def __init__(self, on_frame: Any) -> None:
        self.buffer = b""
        self.on_frame = on_frame
        self.handshake = b""

    def __call__(self, data: bytes | bytearray | memoryview) -> None:
        import orjson

        buffer = self.buffer + bytes(data)
        if not self.handshake:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            self.handshake, buffer = buffer[: end + 4], buffer[end + 4 :]
            assert self.handshake.startswith(b"HTTP/1.1 101"), self.handshake
        at, size = 0, len(buffer)  # an offset, not a slice per frame (the copies would be quadratic)
        while size - at >= 2:
            length = buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 4], "big"), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 10], "big"), at + 10
            if size < start + length:
                break
            if buffer[at] & 0x0F == 1:
                self.on_frame(orjson.loads(buffer[start : start + length]))
            at = start + length
        self.buffer = buffer[at:]


async def _wsserve(app: Any, count: int, api_key: str, secret: str, window: int = WS_WINDOW) -> None:
    config = uvicorn_config(app, "127.0.0.1", 8000, "warning")
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), *config.encoded_headers]
    loop = asyncio.get_running_loop()
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    transport = _ClientTransport(_ServerFrames(frames.put_nowait))
    protocol_class: Any = config.http_protocol_class
    protocol = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    protocol.data_received(upgrade)
    stamp = current_timestamp()
    signature = sign_request(secret, stamp, "GET", "/ws", b"")
    auth = {"op": "auth", "api_key": api_key, "timestamp": stamp, "signature": signature}
    transport.send(_client_frame(json.dumps(auth)))
    assert (await frames.get())["type"] == "authenticated"
    await _ws_orders(transport, frames, count, window)
    transport.send(b"\x88\x82" + _MASK + bytes(a ^ b for a, b in zip(b"\x03\xe8", _MASK[:2], strict=True)))
    for _ in range(100):
        if transport.closing:
            break
        await asyncio.sleep(0)
    assert transport.closing
    transport.get_protocol().connection_lost(None)
    await asyncio.sleep(0)


async def _ws_orders(
    transport: _ClientTransport, frames: asyncio.Queue[dict[str, Any]], count: int, window: int
) -> None:
    """The client of ``wsserve``: ``count`` ``order.place`` frames sent on ``transport``, at most
    ``window`` unanswered, until every answer (a 201 ``response``) has come through ``frames``."""
    slots = asyncio.Semaphore(window)

    async def read() -> None:
        answered = 0
        while answered < count:
            answer = await frames.get()
            if answer.get("type") == "response":
                assert answer["status"] == 201, answer
                answered += 1
                slots.release()

    reader = asyncio.create_task(read())
    for i in range(count):
        await slots.acquire()
        request = json.dumps({"op": "order.place", "id": i, **_resting(i)}, separators=(",", ":"))
        transport.send(_client_frame(request))
    await reader


#: What ``wsclient``'s stand-in server answers to every frame: an order placed, as ``manticore serve``
#: answers a resting order of ``wsserve`` (the same keys and length, 672 bytes).
_CANNED_ANSWER = (
    b'{"type":"response","id":0,"status":201,"result":{"status":"success","order_id":"MC-1","order":'
    b'{"order_id":"MC-1","client_order_id":null,"symbol":"BTC/USD","side":"buy","price":"90.00",'
    b'"quantity":"0.00100","filled_quantity":"0.00000","remaining_quantity":"0.00100",'
    b'"visible_quantity":"0.00100","displayed_quantity":null,"order_type":"LIMIT","time_in_force":"GTC",'
    b'"expiry_time":null,"user_id":"u_ec240c105f7d54d296978d7b","timestamp":1796518388.3076322,'
    b'"stop_price":null,"trail_value":null,"trail_is_percent":false,"trail_reference_price":null,'
    b'"self_trade_prevention":"none","triggered":false,"status":"open","priority":1,'
    b'"order_timestamp":1796518388.3076322,"sequence":1}}}'
)


class _CannedServer(asyncio.Protocol):
    """``wsclient``'s server: answers every frame of a delivery with :data:`_CANNED_ANSWER`, in one
    write (frames counted by their heads: the client's frames are short text frames)."""

    def __init__(self, transport: _ClientTransport) -> None:
        self.transport = transport
        self.frame = b"\x81\x7e" + len(_CANNED_ANSWER).to_bytes(2, "big") + _CANNED_ANSWER

    def data_received(self, data: bytes) -> None:
        at = count = 0
        while at < len(data):
            length = data[at + 1] & 0x7F
            at += 6 + length if length < 126 else 8 + int.from_bytes(data[at + 2 : at + 4], "big")
            count += 1
        self.transport.write(self.frame * count)


async def _wsclient(count: int, window: int = WS_WINDOW) -> None:
    """``wsserve``'s client alone (its own work, which ``wsserve`` counts on the same thread) against
    :class:`_CannedServer`: subtract it from ``wsserve``'s figure for the server's."""
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    transport = _ClientTransport(_ServerFrames(frames.put_nowait))
    transport.set_protocol(_CannedServer(transport))
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    await _ws_orders(transport, frames, count, window)


async def _ws(app: Any, count: int, api_key: str, secret: str, window: int = WS_WINDOW) -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
    }
    await inbox.put({"type": "websocket.connect"})
    server = asyncio.create_task(app(scope, inbox.get, outbox.put))

    async def frame() -> dict[str, Any]:
        while True:
            message = await outbox.get()
            if message["type"] == "websocket.send":
                parsed: dict[str, Any] = json.loads(message["text"])
                return parsed
            assert message["type"] == "websocket.accept", message

    stamp = current_timestamp()
    signature = sign_request(secret, stamp, "GET", "/ws", b"")
    auth = {"op": "auth", "api_key": api_key, "timestamp": stamp, "signature": signature}
    await inbox.put({"type": "websocket.receive", "text": json.dumps(auth)})
    assert (await frame())["type"] == "authenticated"
    slots = asyncio.Semaphore(window)

    async def read() -> None:
        answered = 0
        while answered < count:
            answer = await frame()
            if answer.get("type") == "response":
                assert answer["status"] == 201, answer
                answered += 1
                slots.release()

    reader = asyncio.create_task(read())
    for i in range(count):
        await slots.acquire()
        request = json.dumps({"op": "order.place", "id": i, **_resting(i)}, separators=(",", ":"))
        await inbox.put({"type": "websocket.receive", "text": request})
    await reader
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await server


class _Lifespan:
    """The app's lifespan, run through the ASGI lifespan protocol as uvicorn runs it."""

    def __init__(self, app: Any) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, self.inbox.get, self.outbox.put)
        )

    async def step(self, event: str) -> None:
        await self.inbox.put({"type": f"lifespan.{event}"})
        answer = await self.outbox.get()
        assert answer["type"] == f"lifespan.{event}.complete", answer


async def _start(app: Any) -> _Lifespan:
    """Start the app as ``manticore serve`` does: the service, the fast path of the lean order routes,
    the serving process's GC policy (``create_app``'s lifespan)."""
    lifespan = _Lifespan(app)
    await lifespan.step("startup")
    assert app.fast_path is not None
    return lifespan


async def _stop(lifespan: _Lifespan) -> None:
    await lifespan.step("shutdown")
    await lifespan.task


async def run(count: int, mode: str = "open", window: int = WS_WINDOW) -> None:
    """``count`` requests of ``mode`` (see the module docstring) against a fresh server's app;
    ``window``: unanswered WebSocket requests at most (``ws`` and ``wsserve``)."""
    if mode == "wsclient":
        GcPolicy().apply()  # as the server's lifespan applies it in wsserve
        start_refreezing(1)
        await _wsclient(count, window)
        return
    with tempfile.TemporaryDirectory() as directory:
        options = ServerOptions(data_dir=Path(directory), require_auth=mode != "open", fsync=False)
        if mode != "open":  # only the transport is measured: no risk limit refuses the orders
            options.risk_limits = RiskLimits(
                max_open_orders=10_000_000, rate_limit_orders=10_000_000, rate_limit_window=1.0
            )
        service = build_service(options)
        # Work that runs by the wall clock would be counted in proportion to the run's duration, which
        # valgrind stretches ~50x (and the machine's load varies): no GTD sweep timer, and the API key
        # stays cached (its cache re-reads a key from the database every 5 s: ~1M instructions).
        service.expiry_interval = 3600.0
        service.auth._keys.ttl_seconds = float("inf")
        app = create_app(service, gc_policy=GcPolicy())
        lifespan = await _start(app)
        if mode == "open":
            receipt = service.exchange.deposit("alice", "USD", "100000000")
            service.exchange.wait_durable(receipt.position)
            await _open(app, count)
        else:
            user = service.auth.create_user("bench")
            key = service.auth.create_api_key(user.user_id)
            receipt = service.exchange.deposit(user.user_id, "USD", "100000000")
            service.exchange.wait_durable(receipt.position)
            if mode == "signed":
                await _signed(app, count, key["api_key"], key["api_secret"])
            elif mode == "http":
                await _http(app, count, key["api_key"], key["api_secret"])
            elif mode == "wsserve":
                await _wsserve(app, count, key["api_key"], key["api_secret"], window)
            else:
                await _ws(app, count, key["api_key"], key["api_secret"], window)
        await _stop(lifespan)
        service.auth.close()


_TOTAL = re.compile(r"(?:Collected|I\s+refs):\s*([\d,]+)")
_SUMMARY = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _instructions(count: int, mode: str, loop: str, window: int, keep: Path | None) -> tuple[int, int]:
    """(instructions of the event loop's thread, of all threads) for ``count`` requests of ``mode``;
    with ``keep``, callgrind's file of the loop's thread is copied there."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "cg.out"
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}"]
        command += [sys.executable, "-m", "benchmarks.api_instructions", str(count), "--mode", mode]
        command += ["--loop", loop, "--window", str(window)]
        # One hash seed for both runs: with random seeds, start-up's dict probing differs between the N
        # and 2N runs by millions of instructions (tens of thousands per request at N=100).
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        loop_thread = (Path(directory) / "cg.out-01").read_text()
        if keep is not None:
            keep.write_text(loop_thread)
        main_thread = _SUMMARY.search(loop_thread)
    totals = _TOTAL.findall(done.stderr)
    if not totals or main_thread is None:
        raise SystemExit(f"no instruction total in valgrind's output:\n{done.stderr[-2000:]}")
    return int(main_thread.group(1)), int(totals[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=200, help="requests (pairs for open)")
    parser.add_argument("--mode", choices=MODES, default="open")
    parser.add_argument(
        "--window", type=int, default=WS_WINDOW, help=f"ws/wsserve: requests in flight (default {WS_WINDOW})"
    )
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop (default asyncio)")
    parser.add_argument(
        "--count",
        dest="measure",
        action="store_true",
        help="run N and 2N under valgrind, print the difference",
    )
    parser.add_argument(
        "--callgrind-out",
        type=Path,
        default=None,
        metavar="PREFIX",
        help="with --count: keep the loop thread's callgrind files as PREFIX.N and PREFIX.2N",
    )
    args = parser.parse_args()
    if args.measure:
        prefix = args.callgrind_out
        small, large = (
            _instructions(
                n, args.mode, args.loop, args.window, None if prefix is None else Path(f"{prefix}.{n}")
            )
            for n in (args.count, 2 * args.count)
        )
        loop, every = ((b - a) / args.count for a, b in zip(small, large, strict=True))
        print(
            f"{args.mode} ({args.loop}): {loop:,.0f} instructions per request on the event loop's thread,"
            f" {every:,.0f} in all threads (N={args.count})"
        )
        return
    logging.disable(logging.WARNING)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(run(args.count, args.mode, args.window))
    else:
        asyncio.run(run(args.count, args.mode, args.window))


if __name__ == "__main__":
    main()
