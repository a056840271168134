"""Binance market streams: ``/binance/ws``, ``/binance/ws/<anything>`` and ``/binance/stream?streams=a/b``.

As on Binance (web-socket-streams.md):

- ``/binance/ws/<stream>[/<stream>...]`` opens raw streams named in the path (python-binance); a path
  segment without ``@`` (ccxt.pro appends ``/0``, ``/1``...) opens a connection with no stream yet.
- ``/binance/stream?streams=<a>/<b>`` opens combined streams: every payload is wrapped as
  ``{"stream": <name>, "data": <payload>}``.
- On any connection the client may send ``{"method": "SUBSCRIBE", "params": [names], "id": id}``,
  ``UNSUBSCRIBE`` (same shape), ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY ["combined", bool]`` and
  ``GET_PROPERTY ["combined"]``; the answer is ``{"result": null | [...] | bool, "id": id}``, or
  ``{"error": {"code", "msg"}, "id": id}`` (code 2: invalid request or unknown stream, 3: invalid JSON).
  Subscribing again to a stream already subscribed is acknowledged again (ccxt does so to resync a book).
  ``id`` is a 64-bit integer, an alphanumeric string of at most 36 characters, or null.

See :mod:`.stream_names` for the stream names and :mod:`.market_feed` for the payloads. A client that
does not read fast enough is disconnected (close code 1013), as on the native ``/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from .. import jsontext
from ..service import ExchangeService
from ..streams import StreamConnection
from .errors import BinanceError
from .market_feed import MarketFeed
from .markets import BinanceMarkets
from .stream_names import StreamSpec, parse_stream

__all__ = ["BinanceStreamConnection", "install_streams", "pump_then_close"]

MAX_FRAME = 16 * 1024
MAX_STREAMS = 1024
_ID_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_INT64 = 2**63


class BinanceStreamConnection(StreamConnection):
    """A market stream connection: its streams and whether payloads are wrapped (combined)."""

    __slots__ = ("combined", "streams")

    def __init__(self, send: Any, combined: bool) -> None:
        super().__init__(send)
        self.combined = combined
        self.streams: dict[str, StreamSpec] = {}


def _service_loop(service: ExchangeService) -> asyncio.AbstractEventLoop | None:
    loop: asyncio.AbstractEventLoop | None = service._loop
    return loop


def install_streams(app: FastAPI, service: ExchangeService, markets: BinanceMarkets) -> None:
    """Add the market stream endpoints to ``app`` (call while creating the app, before the service takes
    commands: a gateway's books are mirrored from their state now; a local exchange's book is mirrored
    from the first subscription of a stream that reads it, see :class:`.market_feed.MarketFeed`)."""
    feed = MarketFeed(service.exchange, markets, app.state.binance_klines, lambda: _service_loop(service))
    app.state.binance_feed = feed

    async def serve(websocket: WebSocket, combined: bool, names: list[str]) -> None:
        await websocket.accept()
        connection = BinanceStreamConnection(websocket.send_text, combined)
        sender = asyncio.create_task(pump_then_close(websocket, connection))
        try:
            try:
                specs = [parse_stream(name, markets) for name in names[: MAX_STREAMS + 1]]
                if len(specs) > MAX_STREAMS:
                    raise BinanceError(2, f"Invalid request: more than {MAX_STREAMS} streams")
            except BinanceError as exc:
                await websocket.close(code=1008, reason=exc.msg[:120])
                return
            for spec in specs:
                connection.streams[spec.name] = spec
                feed.subscribe(connection, spec)
            while not connection.closed:
                text = await websocket.receive_text()
                reply = _handle(text, connection, feed, markets)
                if reply is not None:
                    connection.push(reply)
        except WebSocketDisconnect:
            pass
        finally:
            for name in list(connection.streams):
                feed.unsubscribe(connection, name)
            connection.streams.clear()
            connection.closed = True
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @app.websocket("/binance/ws")
    async def raw_streams(websocket: WebSocket) -> None:
        await serve(websocket, False, [])

    @app.websocket("/binance/ws/{path:path}")
    async def raw_streams_path(websocket: WebSocket, path: str) -> None:
        names = [part for part in path.split("/") if "@" in part or part.startswith("!")]
        await serve(websocket, False, names)

    @app.websocket("/binance/stream")
    async def combined_streams(websocket: WebSocket) -> None:
        streams = websocket.query_params.get("streams", "")
        await serve(websocket, True, [name for name in streams.split("/") if name])


async def pump_then_close(websocket: WebSocket, connection: StreamConnection) -> None:
    """Send the connection's frames; when it fell too far behind, close it (code 1013) so that the client
    notices at once and resubscribes, instead of waiting on a stream that no longer sends."""
    await connection.pump()
    if connection.overflowed:
        with contextlib.suppress(Exception):
            await websocket.close(code=1013, reason="too slow: resubscribe")


def _error(code: int, msg: str, request_id: object = None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    return isinstance(value, str) and bool(_ID_TEXT.match(value))


def _handle(
    text: str, connection: BinanceStreamConnection, feed: MarketFeed, markets: BinanceMarkets
) -> dict[str, Any] | None:
    """Answer one client frame (None: nothing to answer)."""
    if len(text) > MAX_FRAME:
        return _error(2, "Invalid request: frame too large")
    try:
        request = jsontext.loads(text)
    except ValueError as exc:
        return _error(3, f"Invalid JSON: {str(exc)[:120]}")
    if not isinstance(request, dict):
        return _error(2, "Invalid request: send a JSON object")
    request_id = request.get("id")
    if not _valid_id(request_id):
        return _error(2, "Invalid request: request ID must be an unsigned integer")
    method = request.get("method")
    params = request.get("params")
    try:
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not params:
                raise BinanceError(2, "Invalid request: params must be a list of stream names")
            if method == "SUBSCRIBE":
                specs = [parse_stream(name, markets) for name in params[: MAX_STREAMS + 1]]
                if len(set(connection.streams) | {spec.name for spec in specs}) > MAX_STREAMS:
                    raise BinanceError(2, f"Invalid request: more than {MAX_STREAMS} streams")
                for spec in specs:
                    connection.streams[spec.name] = spec
                    feed.subscribe(connection, spec)
            else:
                for name in params:
                    spec = parse_stream(name, markets)
                    if connection.streams.pop(spec.name, None) is not None:
                        feed.unsubscribe(connection, spec.name)
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(connection.streams), "id": request_id}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                return {"code": 0, "msg": "Unknown property", "id": request_id}
            if method == "GET_PROPERTY":
                return {"result": connection.combined, "id": request_id}
            if len(params) != 2 or not isinstance(params[1], bool):
                return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": request_id}
            connection.combined = params[1]
            return {"result": None, "id": request_id}
        raise BinanceError(
            2,
            "Invalid request: unknown method; expected one of SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, "
            "SET_PROPERTY, GET_PROPERTY",
        )
    except BinanceError as exc:
        return _error(exc.code, exc.msg, request_id)
