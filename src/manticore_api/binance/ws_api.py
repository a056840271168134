"""Binance's WebSocket API at ``/binance/ws-api/v3``: user data streams, session logon and order entry.

Requests are JSON ``{"id": id, "method": name, "params": {...}}``; each gets one response
``{"id": id, "status": 200, "result": ...}`` or ``{"id": id, "status": 4xx, "error": {"code", "msg"}}``
with Binance's error codes (web-socket-api.md). Methods:

- ``ping`` -> ``{}``; ``time`` -> ``{"serverTime": ms}``.
- ``session.logon`` (signed) authenticates the connection as the key's user; ``session.status`` and
  ``session.logout`` report and end it. (Binance accepts only Ed25519 keys here; Manticore's keys are
  HMAC, so the HMAC signature is accepted.)
- ``userDataStream.subscribe.signature`` (signed) or ``userDataStream.subscribe`` (after logon) start the
  user's data stream on this connection and answer ``{"subscriptionId": n}`` (0, 1, ... per connection);
  events then arrive as ``{"subscriptionId": n, "event": {...}}`` (:mod:`.user_feed`).
  ``userDataStream.unsubscribe`` (``subscriptionId`` or all) stops them.
- ``order.place`` and ``order.cancel`` take the REST parameters of ``POST``/``DELETE /api/v3/order`` and
  answer what REST answers, through the same code (risk, journal; answered once durable). They are
  signed, or unsigned on a logged-on connection.

Signed requests carry ``apiKey``, ``timestamp``, optional ``recvWindow`` and ``signature`` = hex
HMAC-SHA256 of the other parameters sorted by name as ``name=value&...`` (values as sent; percent-encoded
values as python-binance signs them are accepted too), checked with :func:`.signing.verify` like REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from manticore_auth import AuthError
from manticore_matching import ExchangeError

from .. import jsontext
from ..service import ExchangeService
from ..streams import StreamConnection
from .errors import BinanceError, from_auth_error, from_exchange_error
from .markets import BinanceMarkets
from .orders import cancel, place
from .signing import verify
from .streams import pump_then_close
from .user_feed import UserFeed

__all__ = ["install_ws_api"]

PATH = "/binance/ws-api/v3"
MAX_FRAME = 16 * 1024
_AUTH_PARAMS = frozenset({"apiKey", "signature", "timestamp", "recvWindow"})


class _Session:
    """One WebSocket API connection: who is logged on and which user data subscriptions it holds."""

    __slots__ = (
        "api_key",
        "authorized_ms",
        "connected_ms",
        "connection",
        "next_subscription",
        "subscriptions",
        "user_id",
    )

    def __init__(self, connection: StreamConnection) -> None:
        self.connection = connection
        self.user_id: str | None = None
        self.api_key: str | None = None
        self.connected_ms = _now_ms()
        self.authorized_ms: int | None = None
        self.subscriptions: dict[int, str] = {}
        self.next_subscription = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _service_loop(service: ExchangeService) -> asyncio.AbstractEventLoop | None:
    loop: asyncio.AbstractEventLoop | None = service._loop
    return loop


def _text(value: object) -> str:
    """A JSON parameter value as Binance reads it in the signed payload."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def install_ws_api(app: FastAPI, service: ExchangeService, markets: BinanceMarkets) -> None:
    """Add the WebSocket API endpoint to ``app`` (call while creating the app)."""
    feed = UserFeed(service.exchange, markets, lambda: _service_loop(service))
    app.state.binance_user_feed = feed

    @app.websocket(PATH)
    async def ws_api(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = StreamConnection(websocket.send_text)
        session = _Session(connection)
        sender = asyncio.create_task(pump_then_close(websocket, connection))
        try:
            while not connection.closed:
                text = await websocket.receive_text()
                connection.push(await _answer(text, session, service, markets, feed))
        except WebSocketDisconnect:
            pass
        finally:
            for subscription_id, user_id in list(session.subscriptions.items()):
                feed.unsubscribe(user_id, connection, subscription_id)
            session.subscriptions.clear()
            connection.closed = True
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender


def _signed_user(service: ExchangeService, params: dict[str, Any]) -> tuple[str, str]:
    """Verify a signed request's parameters; return (user id, api key)."""
    api_key = params.get("apiKey")
    signature = params.get("signature")
    if not isinstance(api_key, str) or not api_key:
        raise BinanceError(-1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
    if not isinstance(signature, str) or not signature:
        raise BinanceError(
            -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
        )
    pairs = sorted((key, _text(value)) for key, value in params.items() if key != "signature")
    timestamp = params.get("timestamp")
    recv_window = params.get("recvWindow")
    stamp = _text(timestamp) if timestamp is not None else None
    window = _text(recv_window) if recv_window is not None else None
    payload = "&".join(f"{key}={value}" for key, value in pairs)
    try:
        user = verify(service.auth, api_key, payload, signature, stamp, window)
    except BinanceError as exc:
        encoded = urlencode(pairs)
        if exc.code != -1022 or encoded == payload:
            raise
        user = verify(service.auth, api_key, encoded, signature, stamp, window)
    return user.user_id, api_key


def _session_result(session: _Session) -> dict[str, Any]:
    return {
        "apiKey": session.api_key,
        "authorizedSince": session.authorized_ms,
        "connectedSince": session.connected_ms,
        "returnRateLimits": False,
        "serverTime": _now_ms(),
        "userDataStream": bool(session.subscriptions),
    }


async def _answer(
    text: str, session: _Session, service: ExchangeService, markets: BinanceMarkets, feed: UserFeed
) -> dict[str, Any]:
    """The response to one request frame."""
    request_id: object = None
    try:
        if len(text) > MAX_FRAME:
            raise BinanceError(-1100, "Request frame too large.")
        try:
            request = jsontext.loads(text)
        except ValueError:
            raise BinanceError(-1100, "Malformed request: invalid JSON.") from None
        if not isinstance(request, dict):
            raise BinanceError(-1100, "Malformed request: send a JSON object.")
        request_id = request.get("id")
        if request_id is not None and (
            isinstance(request_id, bool) or not isinstance(request_id, (int, str))
        ):
            request_id = None
            raise BinanceError(-1100, "Malformed request: id must be an integer, a string or null.")
        method = request.get("method")
        params = request.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise BinanceError(-1100, "Malformed request: params must be an object.")
        result = await _dispatch(method, params, session, service, markets, feed)
        return {"id": request_id, "status": 200, "result": result}
    except BinanceError as exc:
        return {"id": request_id, "status": exc.status, "error": {"code": exc.code, "msg": exc.msg}}
    except ExchangeError as exc:
        error = from_exchange_error(exc)
        return {"id": request_id, "status": error.status, "error": {"code": error.code, "msg": error.msg}}
    except AuthError as exc:
        error = from_auth_error(exc)
        return {"id": request_id, "status": error.status, "error": {"code": error.code, "msg": error.msg}}


async def _dispatch(
    method: object,
    params: dict[str, Any],
    session: _Session,
    service: ExchangeService,
    markets: BinanceMarkets,
    feed: UserFeed,
) -> Any:
    if method == "ping":
        return {}
    if method == "time":
        return {"serverTime": _now_ms()}
    if method == "session.logon":
        session.user_id, session.api_key = _signed_user(service, params)
        session.authorized_ms = _now_ms()
        return _session_result(session)
    if method == "session.status":
        return _session_result(session)
    if method == "session.logout":
        session.user_id = session.api_key = session.authorized_ms = None
        return _session_result(session)
    if method in ("userDataStream.subscribe", "userDataStream.subscribe.signature"):
        if method == "userDataStream.subscribe.signature":
            user_id, _ = _signed_user(service, params)
        elif session.user_id is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        else:
            user_id = session.user_id
        subscription_id = session.next_subscription
        session.next_subscription += 1
        session.subscriptions[subscription_id] = user_id
        # The balances a new user's events start from, awaited (a gateway reads them from the shard),
        # read once the exchange builds the user's messages.
        with feed.following(user_id):
            known = None if feed.follows(user_id) else (await service.reads.balances(user_id))["balances"]
            feed.subscribe(user_id, session.connection, subscription_id, known)
        return {"subscriptionId": subscription_id}
    if method == "userDataStream.unsubscribe":
        wanted = params.get("subscriptionId")
        if wanted is None:
            targets = list(session.subscriptions)
        elif isinstance(wanted, int) and not isinstance(wanted, bool) and wanted in session.subscriptions:
            targets = [wanted]
        else:
            raise BinanceError(-2, "Not subscribed to the given subscriptionId.")
        for subscription_id in targets:
            feed.unsubscribe(session.subscriptions.pop(subscription_id), session.connection, subscription_id)
        return {}
    if method in ("order.place", "order.cancel"):
        if "signature" in params:
            user_id, _ = _signed_user(service, params)
        elif session.user_id is not None:
            user_id = session.user_id
        else:
            raise BinanceError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        order_params = {key: _text(value) for key, value in params.items() if key not in _AUTH_PARAMS}
        if method == "order.place":
            return await place(service, markets, user_id, order_params)
        return await cancel(service, markets, user_id, order_params)
    raise BinanceError(-1020, f"Unsupported method {str(method)[:64]!r}.")
