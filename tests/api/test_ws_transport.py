"""The WebSocket transport of a real ``manticore serve``: compression only when asked for
(``--ws-compression``), and frames read and written the same whatever JSON library reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.api.support import Server


def _started(directory: Path, *extra: str) -> Iterator[Server]:
    running = Server(directory / "data", extra=extra)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _started(Path(tmp_path_factory.mktemp("ws-plain")))


@pytest.fixture(scope="module")
def compressing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _started(Path(tmp_path_factory.mktemp("ws-deflate")), "--ws-compression")


def _ws_url(server: Server) -> str:
    return server.url.replace("http", "ws", 1) + "/ws"


def test_compression_is_declined_by_default(server: Server) -> None:
    with connect(_ws_url(server)) as ws:  # the client offers permessage-deflate, as browsers do
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        ws.send(json.dumps({"op": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def test_compression_is_agreed_with_the_flag(compressing: Server) -> None:
    with connect(_ws_url(compressing)) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        ws.send(json.dumps({"op": "subscribe", "channel": "book", "symbol": "BTC/USD"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"


def test_a_request_id_beyond_64_bits_is_echoed_exactly(server: Server) -> None:
    """The frame parser falls back to the standard library for what orjson refuses."""
    with connect(_ws_url(server)) as ws:
        huge = 2**70
        ws.send(json.dumps({"op": "order.place", "id": huge, "side": "buy", "price": "1", "quantity": "1"}))
        answer = json.loads(ws.recv(timeout=10))
    assert answer["type"] == "response" and answer["id"] == huge
    assert answer["status"] == 401  # not authenticated: refused, with the id it was sent with


@pytest.mark.parametrize("frame", ["[1, 2]", "not json", '{"op": "nope"}', '{"op": NaN}'])
def test_a_bad_frame_is_answered_with_an_error_and_the_connection_stays(server: Server, frame: str) -> None:
    with connect(_ws_url(server)) as ws:
        ws.send(frame)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["code"] == "invalid", error
        ws.send(json.dumps({"op": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
