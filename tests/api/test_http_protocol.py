"""``manticore serve``'s uvicorn protocol frees a WebSocket connection's HTTP protocol by reference
counting: under the serving GC policy a cycle that outlives a refreeze is never collected, and uvicorn's
httptools protocol and its parser form one for as long as the upgraded connection lives."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.sync.client import connect

from manticore_api.server import WS_PROTOCOL, http_protocol, uvicorn_config
from tests.api.support import free_port


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app: a WebSocket that answers each text frame with the same text."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message["text"]})


def _left_after_three_connections(config: uvicorn.Config, protocol_class: type) -> int:
    """Instances of ``protocol_class`` still alive (no collection) after three WebSocket connections to
    a uvicorn server of ``config`` (serving :func:`_echo`) have come and gone."""

    def alive() -> int:
        return sum(issubclass(type(o), protocol_class) for o in gc.get_objects())

    gc.collect()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        before = alive()
        for _ in range(3):
            with connect(f"ws://127.0.0.1:{config.port}/") as ws:
                ws.send("ping")
                assert ws.recv(timeout=5) == "ping"
        time.sleep(0.5)  # the server's side of the closes
        return alive() - before
    finally:
        server.should_exit = True
        thread.join(10)


def _closed_connections_left(http: Any) -> int:
    """HTTP protocols still alive after three WebSocket connections have come and gone."""
    config = uvicorn.Config(_echo, host="127.0.0.1", port=free_port(), log_level="warning", http=http)
    return _left_after_three_connections(config, HttpToolsProtocol)


def test_the_upgraded_http_protocol_is_freed_without_the_collector(quiet_gc: None) -> None:
    assert _closed_connections_left(http_protocol()) == 0


def test_uvicorns_own_protocol_leaves_a_cycle_behind(quiet_gc: None) -> None:
    """The control: what the test above would see without the fix (the cycle exists)."""
    assert _closed_connections_left(HttpToolsProtocol) == 3


def _ws_protocols_left(ws: str) -> int:
    """WebSocket protocols of ``ws`` (uvicorn's name) still alive after three connections came and went,
    with ``manticore serve``'s HTTP protocol and no collection."""
    config = uvicorn_config(_echo, "127.0.0.1", free_port(), "warning")
    config.ws = ws
    config.load()
    protocol_class = config.ws_protocol_class
    assert protocol_class is not None
    return _left_after_three_connections(config, protocol_class)


def test_the_websocket_protocol_of_serve_is_freed_without_the_collector(quiet_gc: None) -> None:
    """The sans-I/O WebSocket protocol ``manticore serve`` runs (:data:`WS_PROTOCOL`) leaves no cycle
    behind a closed connection: nothing for a refreeze to make immortal."""
    assert WS_PROTOCOL == "websockets-sansio"
    assert _ws_protocols_left(WS_PROTOCOL) == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_uvicorns_default_websocket_protocol_leaves_a_cycle_behind(quiet_gc: None) -> None:
    """The control: uvicorn's asyncio ``websockets`` protocol (its default before) is left in a cycle
    per connection, which only the collector frees."""
    assert _ws_protocols_left("websockets") == 3
