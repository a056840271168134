"""The WebSocket ``/ws``: market data and, once authenticated, one's own order updates and order entry
(see docs/api.md for the frames).

Order entry (``order.place``, ``order.modify``, ``order.cancel``) runs the same commands, validation and
error mapping as REST (:mod:`manticore_api.order_entry`). Each request is executed when its frame is
read, in the order the frames arrive, and answered with exactly one ``response`` frame carrying the
request's ``id``: a refusal at once (it changed nothing), an accepted command only once the journal has
made it durable. So a client may pipeline requests; answers are matched by ``id``. At most
:data:`MAX_IN_FLIGHT` accepted commands per connection wait for durability; past that the server stops
reading the connection until some are answered.

A client too slow to read its frames (more than the connection's queue holds) is closed with 1013, also
when it sends nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from manticore_auth import AuthError
from manticore_matching import ExchangeError

from .. import jsontext, order_entry
from ..metrics import Metrics
from ..plainorder import plain_fields
from ..security import Caller
from ..service import ExchangeService
from ..streams import StreamConnection
from ..textsocket import TextSocket

__all__ = ["MAX_IN_FLIGHT", "MAX_WS_FRAME", "router"]

log = logging.getLogger("manticore_api")

#: The largest frame a client may send, in characters.
MAX_WS_FRAME = 16 * 1024

#: Accepted order commands of one connection waiting for durability before the server stops reading it
#: (at most a quarter of the connection's queue, so that the answers released by one group commit, with
#: the private frames of the same commands, never make a client that reads promptly too slow).
MAX_IN_FLIGHT = 1024

_ORDER_OPS = frozenset({"order.place", "order.modify", "order.cancel"})
_CANCEL_KEYS = frozenset({"op", "id", "order_id", "client_order_id"})

router = APIRouter()


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    service: ExchangeService = websocket.app.state.service
    metrics: Metrics = websocket.app.state.metrics
    await websocket.accept()
    socket = TextSocket(websocket)
    connection = StreamConnection(socket.send_text, service.hub.max_queue)
    service.hub.add(connection)
    sender = asyncio.create_task(_pump_then_close(websocket, socket, connection))
    replies = _Replies(connection, service, metrics)
    replier = asyncio.create_task(replies.run())
    try:
        await _serve_stream(socket, connection, service, replies)
    except WebSocketDisconnect:
        pass
    finally:
        service.hub.remove(connection)
        for task in (replier, sender):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if connection.overflowed:
            with contextlib.suppress(Exception):
                await websocket.close(code=1013, reason="too slow: resubscribe")


async def _pump_then_close(websocket: WebSocket, socket: TextSocket, connection: StreamConnection) -> None:
    """Send the connection's frames; when it fell too far behind, close it with 1013 at once, so that a
    client that only listens (the reader is then waiting for a frame that never comes) is closed too."""
    await connection.pump(socket.write_queued if socket.writes_queued else None)
    if connection.overflowed:
        with contextlib.suppress(Exception):
            await websocket.close(code=1013, reason="too slow: resubscribe")


async def _serve_stream(
    socket: TextSocket, connection: StreamConnection, service: ExchangeService, replies: _Replies
) -> None:
    hub = service.hub
    caller: Caller | None = None
    while not connection.closed:
        if replies.full:
            await replies.room()
            continue
        text = socket.take_text()  # a frame already read, without a coroutine
        if text is None:
            text = await socket.receive_text()
        if len(text) > MAX_WS_FRAME:
            connection.push({"type": "error", "code": "too_large", "message": "frame too large"})
            continue
        try:
            request = jsontext.loads(text)
            if not isinstance(request, dict):
                raise ValueError("send a JSON object")
            op = request.get("op")
            if isinstance(op, str) and op in _ORDER_OPS:
                replies.submit(request, caller)
            elif op == "ping":
                connection.push({"type": "pong"})
            elif op == "auth":
                caller = _stream_auth(service, request)
                connection.user_id = caller.user_id
                connection.push({"type": "authenticated", "user_id": caller.user_id})
            elif op == "subscribe":
                reply = await hub.subscribe(connection, str(request.get("channel")), request.get("symbol"))
                if reply:
                    connection.push(reply)
            elif op == "unsubscribe":
                connection.push(
                    hub.unsubscribe(connection, str(request.get("channel")), request.get("symbol"))
                )
            else:
                raise ValueError(
                    "op must be ping, auth, subscribe, unsubscribe, order.place, order.modify or order.cancel"
                )
        except AuthError as exc:
            connection.push({"type": "error", "code": exc.code, "message": exc.message})
        except (ValueError, ExchangeError) as exc:
            connection.push({"type": "error", "code": "invalid", "message": str(exc)[:200]})


class _Replies:
    """The order requests of one connection: runs each command when its frame is read and answers it,
    refusals at once, accepted commands in journal order once durable (one waiter for the connection:
    the connection's commands are journaled in the order they run)."""

    __slots__ = ("_connection", "_limit", "_metrics", "_pending", "_room", "_service", "_wakeup", "full")

    def __init__(self, connection: StreamConnection, service: ExchangeService, metrics: Metrics) -> None:
        self._connection = connection
        self._service = service
        self._metrics = metrics
        self._limit = max(1, min(MAX_IN_FLIGHT, service.hub.max_queue // 4))
        #: (position, request id, the accepted command, is a placement), positions ascending.
        self._pending: deque[tuple[int, object, order_entry.Submitted, bool]] = deque()
        #: The replier's future while it waits for a first pending command (None while it has some).
        self._wakeup: asyncio.Future[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        #: Whether the in-flight limit of commands wait for durability (``len(_pending) >= _limit``).
        self.full = False

    async def room(self) -> None:
        """Wait until fewer than the in-flight limit of commands wait for durability."""
        await self._room.wait()

    def submit(self, request: dict[str, Any], caller: Caller | None) -> None:
        """Run one order request (never raises): queue its answer for durability, or answer at once."""
        request_id = request.get("id")
        try:
            submitted = self._run(request, request_id, caller)
        except Exception as exc:
            answer = order_entry.error_answer(exc)
            if answer is None:
                log.exception("WebSocket order request failed")
                answer = (500, {"code": "internal", "message": "internal error"})
            self._respond_error(request_id, *answer)
            return
        pending = self._pending
        pending.append((submitted.position, request_id, submitted, request["op"] == "order.place"))
        if len(pending) >= self._limit:
            self._room.clear()
            self.full = True
        wakeup = self._wakeup
        if wakeup is not None:  # the replier waits for this command
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    def _run(
        self, request: dict[str, Any], request_id: object, caller: Caller | None
    ) -> order_entry.Submitted:
        if request_id is None or isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            raise _Invalid("id is required: a string or an integer")
        if caller is None:
            raise AuthError("missing_credentials", 'authenticate first: send {"op": "auth", ...}')
        service = self._service
        op = request["op"]
        # The body is the request without "op" and "id" (both present here), in its order: a copy and
        # deletions cost less than a comprehension testing every key.
        if op == "order.place":
            fields = request.copy()
            del fields["op"], fields["id"]
            # A plain body's field values without order_fields' frame; anything else through it
            # (pydantic: the same values or errors).
            values = plain_fields(fields)
            if values is None:
                values = order_entry.order_fields(fields)
            return order_entry.place(service, caller, values)
        order_id = request.get("order_id")
        if op == "order.modify":
            if not isinstance(order_id, str):
                raise _Invalid("order_id: a string is required")
            fields = request.copy()
            del fields["op"], fields["id"], fields["order_id"]
            return order_entry.modify(service, caller, order_id, order_entry.parse_modify(fields))
        extra = sorted(key for key in request if key not in _CANCEL_KEYS)
        if extra:
            raise _Invalid(f"{str(extra[0])[:40]}: Extra inputs are not permitted")
        client_order_id = request.get("client_order_id")
        if (order_id is None) == (client_order_id is None):
            raise _Invalid("send order_id or client_order_id (one of them)")
        if client_order_id is not None:
            if not isinstance(client_order_id, str):
                raise _Invalid("client_order_id: a string is required")
            return order_entry.cancel_by_client_id(service, caller, client_order_id)
        if not isinstance(order_id, str):
            raise _Invalid("order_id: a string is required")
        return order_entry.cancel(service, caller, order_id)

    def _respond_error(self, request_id: object, status: int, error: dict[str, Any]) -> None:
        self._connection.push({"type": "response", "id": request_id, "status": status, "error": error})

    async def run(self) -> None:
        """Answer accepted commands as they become durable (run as a task until cancelled)."""
        pending = self._pending
        connection = self._connection
        service = self._service
        is_durable = service.is_durable
        loop = asyncio.get_running_loop()
        while True:
            if not pending:
                wakeup = self._wakeup = loop.create_future()
                await wakeup
                continue
            try:
                await service.durable(pending[0][0])
            except Exception as exc:  # the journal cannot write (503), or a gateway's shard refused it
                _, request_id, _, _ = pending.popleft()
                status, error = order_entry.error_answer(exc) or (
                    500,
                    {"code": "internal", "message": "internal error"},
                )
                self._respond_error(request_id, status, error)
            else:
                placed = 0
                while pending and is_durable(pending[0][0]):
                    _, request_id, submitted, is_placement = pending.popleft()
                    placed += is_placement
                    connection.push(
                        {
                            "type": "response",
                            "id": request_id,
                            "status": submitted.status,
                            "result": submitted.answer(submitted.receipt),  # its body, one call fewer
                        }
                    )
                if placed:
                    self._metrics.orders_placed.inc(placed)
            if len(pending) < self._limit:
                self.full = False
                self._room.set()


class _Invalid(ExchangeError):
    """A malformed order request: 400 ``invalid``, as REST answers a malformed body."""

    code = "invalid"


def _stream_auth(service: ExchangeService, request: dict[str, Any]) -> Caller:
    auth = service.auth
    token = request.get("token")
    if token is not None:
        if not isinstance(token, str):
            raise AuthError("malformed", "token must be a string")
        user = auth.authenticate_session(token)
        return Caller(user.user_id, user.username, user.role)
    if "api_key" in request:
        user = auth.authenticate_request(
            api_key=request.get("api_key"),
            timestamp=request.get("timestamp"),
            signature=request.get("signature"),
            method="GET",
            path="/ws",
            body=b"",
        )
        return Caller(user.user_id, user.username, user.role)
    if not service.require_auth:
        name = request.get("user")
        name = name[:128] if isinstance(name, str) and name else "local"
        return Caller(name, name, "admin")  # as REST without auth: the named user, with admin rights
    raise AuthError("missing_credentials", "send api_key, timestamp and signature, or token")
