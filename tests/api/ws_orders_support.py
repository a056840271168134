"""A WebSocket order-entry client for the tests of ``/ws`` (tests/api/test_ws_orders*.py)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.api.support import SignedClient

#: A market and risk limits that the order-entry tests can reach without tripping unrelated limits.
CONFIG = """
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"

[risk]
max_open_orders = 100000
rate_limit_orders = 1000000
rate_limit_window = 1
"""


def key(request_id: object) -> str:
    """A request id as a dict key that keeps 1 and "1" apart."""
    return json.dumps(request_id)


class WsTrader:
    """One ``/ws`` connection: sends requests, keeps each ``response`` by id and every other frame."""

    def __init__(self, url: str) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(url.replace("http", "ws", 1) + "/ws", max_size=None)
        )
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.frames: list[dict[str, Any]] = []

    def close(self) -> None:
        self._stack.close()

    def send(self, frame: dict[str, Any] | str) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def read(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next frame; a response is also filed under its id."""
        frame: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        if frame.get("type") == "response":
            self.responses.setdefault(key(frame["id"]), []).append(frame)
        else:
            self.frames.append(frame)
        return frame

    def next_other(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next frame that is not a response."""
        while True:
            frame = self.read(timeout)
            if frame.get("type") != "response":
                return frame

    def response(self, request_id: object, timeout: float = 20.0) -> dict[str, Any]:
        """The oldest response to ``request_id`` not yet taken, reading until one arrives (it is taken)."""
        deadline = time.monotonic() + timeout
        while not self.responses.get(key(request_id)):
            self.read(max(0.01, deadline - time.monotonic()))
        return self.responses[key(request_id)].pop(0)

    def call(self, op: str, request_id: object, **fields: Any) -> dict[str, Any]:
        """Send one request and return its response."""
        self.send({"op": op, "id": request_id, **fields})
        return self.response(request_id)

    def auth_signed(self, client: SignedClient) -> str:
        """Authenticate with ``client``'s API key; the user id."""
        timestamp = client.fresh_timestamp("GET", "/ws")
        signature = client.headers("GET", "/ws", timestamp=timestamp)["X-MC-SIGNATURE"]
        self.send({"op": "auth", "api_key": client.api_key, "timestamp": timestamp, "signature": signature})
        frame = self.next_other()
        assert frame["type"] == "authenticated", frame
        user_id: str = frame["user_id"]
        return user_id
