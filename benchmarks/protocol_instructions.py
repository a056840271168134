"""N signed-order-shaped requests through an HTTP protocol class alone, for instruction counts of the
protocol's own per-request work (docs/performance.md, session 22 (h3))::

    python -m benchmarks.protocol_instructions N serving   # manticore serve's ServingProtocol
    python -m benchmarks.protocol_instructions N uvicorn   # uvicorn's HttpToolsProtocol
    python -m benchmarks.protocol_instructions 1000 serving --count  # both valgrind runs, the difference

Each request (a signed ``POST /api/orders``: 7 headers, an 82-byte body) arrives in one read on
``tests/api/memory_transport.py``'s transport under uvloop, one after the other on one keep-alive
connection; the app reads the body and answers 201 through ``ServingCycle.write_response`` (uvicorn's
two messages with uvicorn's cycle). No exchange, no auth: the figure is the protocol, its cycle and
task, and this harness (the same for every protocol). One thread, deterministic: run with
``PYTHONHASHSEED=0``; ``--count`` prints (I(2N) - I(N)) / N under callgrind.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.api.memory_transport import MemoryTransport

ANSWER = b'{"order_id":"o_1","status":"resting","symbol":"BTC/USD","side":"buy"}'
HEADERS = [(b"content-length", b"%d" % len(ANSWER)), (b"content-type", b"application/json")]
BODY = b'{"symbol":"BTC/USD","side":"buy","quantity":"0.1","price":"100","user_id":"alice"}'
REQUEST = (
    b"\r\n".join(
        [
            b"POST /api/orders HTTP/1.1",
            b"Host: 127.0.0.1:8000",
            b"Content-Type: application/json",
            b"X-MC-APIKEY: mc_0123456789abcdef0123456789abcdef",
            b"X-MC-TIMESTAMP: 1764960000000",
            b"X-MC-SIGNATURE: " + b"a" * 64,
            b"Content-Length: %d" % len(BODY),
        ]
    )
    + b"\r\n\r\n"
    + BODY
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body, answer 201 (whole when the cycle can write it so)."""
    await receive()
    write = getattr(send.__self__, "write_response", None)
    if write is None or not write(201, HEADERS, ANSWER):
        await send({"type": "http.response.start", "status": 201, "headers": HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})


async def run(count: int, protocol_class: Any) -> None:
    """``count`` requests through a fresh ``protocol_class`` connection."""
    config = uvicorn.Config(app, proxy_headers=False, access_log=False, log_config=None)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), (b"server", b"uvicorn")]
    answered: list[asyncio.Future[None]] = []

    class Protocol(protocol_class):  # type: ignore[misc,valid-type]
        def on_response_complete(self) -> None:
            super().on_response_complete()
            answered[0].set_result(None)

    loop = asyncio.get_running_loop()
    protocol = Protocol(config=config, server_state=state, app_state={}, _loop=loop)
    transport = MemoryTransport()
    protocol.connection_made(transport)
    for _ in range(count):
        answered[:] = [loop.create_future()]
        transport.written.clear()
        protocol.data_received(REQUEST)
        await answered[0]
        assert transport.written[0].startswith(b"HTTP/1.1 201"), transport.written
    protocol.connection_lost(None)


def _instructions(count: int, which: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "benchmarks.protocol_instructions", str(count), which]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction total in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    count = int(sys.argv[1])
    which = sys.argv[2]
    if "--count" in sys.argv[3:]:
        small, large = _instructions(count, which), _instructions(2 * count, which)
        print(f"{which}: {(large - small) / count:,.0f} instructions per request (N={count})")
        return
    if which == "uvicorn":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as protocol_class
    else:
        from manticore_api.protocol import ServingProtocol as protocol_class
    uvloop.run(run(count, protocol_class))


if __name__ == "__main__":
    main()
