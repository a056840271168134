"""Order requests through ``manticore serve``'s HTTP protocol
(:class:`~manticore_api.protocol.ServingProtocol`) are answered byte for byte as through uvicorn's own
httptools protocol: the order-entry fast path's JSON answers are written whole by the serving cycle
(:meth:`ServingCycle.write_response`), everything else by the ASGI messages. Two fresh servers get the
same requests, one per protocol."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from manticore_api import create_app
from manticore_api.protocol import ServingCycle, ServingProtocol
from manticore_api.server import ServerOptions, build_service, uvicorn_config
from manticore_auth import current_timestamp, sign_request
from tests.api.memory_transport import MemoryTransport
from tests.api.test_lean_orders import BODIES, _masked

#: (method, path, body) after the order bodies: a modify, cancels, a path the router redirects or
#: refuses, a query string (not the fast path).
_MORE: list[tuple[str, str, bytes | None]] = [
    ("PATCH", "/api/orders/MC-1", b'{"new_quantity": "2"}'),
    ("PATCH", "/api/orders/MC-1", b"{broken"),
    ("DELETE", "/api/orders/MC-999999", None),
    ("DELETE", "/api/orders/MC-1", None),
    ("POST", "/api/orders/", b"{}"),
    ("POST", "/api/orders?x=1", b'{"side": "buy", "price": "100", "quantity": "1"}'),
]


def _parts(written: bytes) -> tuple[bytes, list[bytes], Any]:
    """(status line, header lines but the content length, the body parsed and masked); the content
    length checked against the body."""
    head, _, body = written.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    lengths = [line for line in lines if line.startswith(b"content-length: ")]
    assert lengths == [b"content-length: %d" % len(body)], written
    try:
        parsed: Any = _masked(json.loads(body))
    except ValueError:
        parsed = body
    return status, [line for line in lines if line not in lengths], parsed


async def _serve(
    protocol_class: type[HttpToolsProtocol], data_dir: Path
) -> list[tuple[bytes, list[bytes], Any]]:
    service = build_service(ServerOptions(data_dir=data_dir, fsync=False))
    app = create_app(service)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    assert app.fast_path is not None
    user = service.auth.create_user("alice")
    key = service.auth.create_api_key(user.user_id)
    service.exchange.wait_durable(service.exchange.deposit(user.user_id, "USD", "100000").position)
    service.exchange.wait_durable(service.exchange.deposit(user.user_id, "BTC", "10").position)

    config = uvicorn_config(app, "127.0.0.1", 8000, "warning")
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 04 Dec 2026 20:00:00 GMT"), *config.encoded_headers]
    loop = asyncio.get_running_loop()
    http = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
    transport = MemoryTransport()
    http.connection_made(transport)
    answers = []
    requests = [("POST", "/api/orders", body) for body in BODIES] + _MORE
    for method, path, body in requests:
        stamp = current_timestamp()
        signature = sign_request(key["api_secret"], stamp, method, path.partition("?")[0], body or b"")
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1:8000"]
        if body is not None:
            lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        lines += [
            b"X-MC-APIKEY: " + key["api_key"].encode(),
            b"X-MC-TIMESTAMP: " + stamp.encode(),
            b"X-MC-SIGNATURE: " + signature.encode(),
        ]
        transport.written.clear()
        http.data_received(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        for _ in range(1000):
            if http.cycle is not None and http.cycle.response_complete:
                break
            await asyncio.sleep(0.001)
        assert http.cycle is not None and http.cycle.response_complete, (method, path, body)
        answers.append(_parts(b"".join(transport.written)))
    http.connection_lost(None)
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    service.auth.close()
    return answers


def test_served_order_answers_are_uvicorns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    original = ServingCycle.write_response

    def counting(self: ServingCycle, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        taken.append(original(self, status, headers, body))
        return taken[-1]

    theirs = asyncio.run(_serve(HttpToolsProtocol, tmp_path / "uvicorn"))
    monkeypatch.setattr(ServingCycle, "write_response", counting)
    monkeypatch.setattr("manticore_api.fastpath._write_response", counting)
    ours = asyncio.run(_serve(ServingProtocol, tmp_path / "serving"))
    assert ours == theirs
    statuses = [answer[0] for answer in ours]
    assert b"HTTP/1.1 201 Created" in statuses and b"HTTP/1.1 400 Bad Request" in statuses
    # Every answer of the fast path was written whole (the rest went through the middleware stack).
    assert taken and all(taken)
    assert len(taken) >= statuses.count(b"HTTP/1.1 201 Created")
