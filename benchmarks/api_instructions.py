"""N REST place + cancel pairs through the in-process ASGI app (no HTTP server, no auth, fsync off),
for instruction counts of the API's order path::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python -m benchmarks.api_instructions N

Run it with two values of N: (instructions(2N) - instructions(N)) / N is the cost of one pair (Python's
start-up and the set-up cancel out). Counts include the journal thread, whose batching varies from run
to run (about +-1%).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from typing import Any

from manticore_api.app import create_app
from manticore_api.server import ServerOptions, build_service

ORDER = {"symbol": "BTC/USD", "side": "buy", "quantity": "0.1", "price": "100", "user_id": "alice"}


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    """One HTTP request straight into the ASGI app: ``{"status", "body"}``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
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


async def run(pairs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        service = build_service(ServerOptions(data_dir=directory, require_auth=False, fsync=False))
        app = create_app(service)
        await service.start()
        receipt = service.exchange.deposit("alice", "USD", "100000000")
        service.exchange.wait_durable(receipt.position)
        body = json.dumps(ORDER).encode()
        for _ in range(pairs):
            placed = await _call(app, "POST", "/api/orders", body)
            assert placed["status"] == 201, placed
            order_id = json.loads(placed["body"])["order_id"]
            cancelled = await _call(app, "DELETE", f"/api/orders/{order_id}")
            assert cancelled["status"] == 200, cancelled
        await service.stop()
        service.auth.close()


def main() -> None:
    logging.disable(logging.WARNING)
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200))


if __name__ == "__main__":
    main()
