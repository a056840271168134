"""The WebSocket stream ``/ws``: subscribe to market data and, once authenticated, to one's own order
updates (see docs/api.md for the frames). A subscriber too slow to keep up is closed with 1013."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from manticore_auth import AuthError
from manticore_matching import ExchangeError

from ..service import ExchangeService
from ..streams import StreamConnection

__all__ = ["MAX_WS_FRAME", "router"]

#: The largest frame a client may send, in characters.
MAX_WS_FRAME = 16 * 1024

router = APIRouter()


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    service: ExchangeService = websocket.app.state.service
    await websocket.accept()
    connection = StreamConnection(websocket.send_text)
    service.hub.add(connection)
    sender = asyncio.create_task(connection.pump())
    try:
        await _serve_stream(websocket, connection, service)
    except WebSocketDisconnect:
        pass
    finally:
        service.hub.remove(connection)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        if connection.overflowed:
            with contextlib.suppress(Exception):
                await websocket.close(code=1013, reason="too slow: resubscribe")


async def _serve_stream(websocket: WebSocket, connection: StreamConnection, service: ExchangeService) -> None:
    hub = service.hub
    while not connection.closed:
        text = await websocket.receive_text()
        if len(text) > MAX_WS_FRAME:
            connection.push({"type": "error", "code": "too_large", "message": "frame too large"})
            continue
        try:
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError("send a JSON object")
            op = request.get("op")
            if op == "ping":
                connection.push({"type": "pong"})
            elif op == "auth":
                user = _stream_auth(service, request)
                connection.user_id = user
                connection.push({"type": "authenticated", "user_id": user})
            elif op == "subscribe":
                reply = hub.subscribe(connection, str(request.get("channel")), request.get("symbol"))
                if reply:
                    connection.push(reply)
            elif op == "unsubscribe":
                connection.push(
                    hub.unsubscribe(connection, str(request.get("channel")), request.get("symbol"))
                )
            else:
                raise ValueError("op must be ping, auth, subscribe or unsubscribe")
        except AuthError as exc:
            connection.push({"type": "error", "code": exc.code, "message": exc.message})
        except (ValueError, ExchangeError) as exc:
            connection.push({"type": "error", "code": "invalid", "message": str(exc)[:200]})


def _stream_auth(service: ExchangeService, request: dict[str, Any]) -> str:
    auth = service.auth
    token = request.get("token")
    if token is not None:
        if not isinstance(token, str):
            raise AuthError("malformed", "token must be a string")
        return auth.authenticate_session(token).user_id
    if "api_key" in request:
        user = auth.authenticate_request(
            api_key=request.get("api_key"),
            timestamp=request.get("timestamp"),
            signature=request.get("signature"),
            method="GET",
            path="/ws",
            body=b"",
        )
        return user.user_id
    if not service.require_auth:
        name = request.get("user")
        return name[:128] if isinstance(name, str) and name else "local"
    raise AuthError("missing_credentials", "send api_key, timestamp and signature, or token")
