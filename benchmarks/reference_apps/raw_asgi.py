"""A raw ASGI callable answering ``POST /api/orders``: reads the JSON body, parses it and answers 201
with a small JSON object echoing it (no framework, no validation). Anything else gets 404.

Run: ``python -m uvicorn benchmarks.reference_apps.raw_asgi:app --loop uvloop --http httptools
--no-access-log``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEADERS = [(b"content-type", b"application/json")]
_ids = itertools.count(1)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Send, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST" or scope["path"] != "/api/orders":
        await _answer(send, 404, {"status": "error", "code": "not_found"})
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        order = json.loads(b"".join(chunks))
    except ValueError:
        await _answer(send, 400, {"status": "error", "code": "invalid_json"})
        return
    await _answer(send, 201, {"status": "success", "order_id": f"R-{next(_ids)}", "order": order})
