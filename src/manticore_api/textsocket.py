"""Text frames of an accepted Starlette WebSocket, straight through its ASGI ``receive`` and ``send``.

``WebSocket.receive_text()`` goes through ``receive()`` and ``send_text()`` through ``send()``: two
coroutines, message-type set look-ups and a ``cast`` per frame, for a state machine whose answer is
known once the socket is accepted. :class:`TextSocket` checks the two states and, when both are
connected, calls the ASGI callables itself; in every other state it hands the call to Starlette. It
returns, raises and records in the ``WebSocket``'s states exactly what Starlette's methods would, so the
``WebSocket`` itself stays usable beside it (``close()``, say).

Under ``manticore serve`` the ASGI ``receive`` is a bound method of the connection's
:class:`~manticore_api.protocol.ServingWebSocket`: a frame already queued is then taken without a
coroutine (:meth:`~manticore_api.protocol.ServingWebSocket.take_text`), and :meth:`TextSocket.write_queued`
writes the frames queued for the client in one transport write
(:meth:`~manticore_api.protocol.ServingWebSocket.write_texts`) when the protocol's ``send`` would write
each of them unchanged.
"""

from __future__ import annotations

from collections import deque
from types import MethodType

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .protocol import ServingWebSocket

__all__ = ["TextSocket"]

_CONNECTED = WebSocketState.CONNECTED


class TextSocket:
    """``receive_text`` / ``send_text`` of ``websocket`` with Starlette's contract (see the module doc)."""

    __slots__ = ("_protocol", "_receive", "_send", "websocket")

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        # The callables Starlette's methods end in (its private attributes; tests/api/test_text_socket.py
        # compares both ways on every state and message, so an upgrade that changes them shows there).
        self._receive = websocket._receive
        self._send = websocket._send
        receive = self._receive
        owner = receive.__self__ if type(receive) is MethodType else None
        self._protocol = owner if isinstance(owner, ServingWebSocket) else None

    async def receive_text(self) -> str:
        """The next text frame; :class:`WebSocketDisconnect` (the client's code and reason) once the
        client has gone; ``KeyError`` for a binary frame, as Starlette."""
        websocket = self.websocket
        if websocket.application_state is not _CONNECTED or websocket.client_state is not _CONNECTED:
            return await websocket.receive_text()
        protocol = self._protocol
        message = None if protocol is None else protocol.take_text()
        if message is None:
            message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text: str = message["text"]
            return text
        if kind == "websocket.disconnect":
            websocket.client_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(message["code"], message.get("reason"))
        raise RuntimeError(
            f'Expected ASGI message "websocket.receive" or "websocket.disconnect", but got {kind!r}'
        )

    async def send_text(self, data: str) -> None:
        """Send one text frame; a transport error (``OSError``) marks the socket disconnected and is
        :class:`WebSocketDisconnect` 1006, as Starlette."""
        websocket = self.websocket
        if websocket.application_state is not _CONNECTED:
            await websocket.send_text(data)
            return
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError:
            websocket.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(code=1006)  # noqa: B904 (Starlette's exception, chained as it does)

    def take_text(self) -> str | None:
        """The next text frame when :meth:`receive_text` would return it without waiting (the socket
        connected and served by a :class:`~manticore_api.protocol.ServingWebSocket` that has it queued),
        taken as :meth:`receive_text` takes it; None, having taken nothing, otherwise (await
        :meth:`receive_text` then)."""
        protocol = self._protocol
        if protocol is None:
            return None
        items = protocol.queue.items
        if not items:
            return None
        message = items[0]
        websocket = self.websocket
        if (
            message["type"] != "websocket.receive"
            or type(message.get("text")) is not str
            or websocket.application_state is not _CONNECTED
            or websocket.client_state is not _CONNECTED
        ):
            return None
        text: str = protocol.take_text()["text"]
        return text

    @property
    def writes_queued(self) -> bool:
        """Whether :meth:`write_queued` may ever write (the socket is served by a
        :class:`~manticore_api.protocol.ServingWebSocket`)."""
        return self._protocol is not None

    def write_queued(self, frames: deque[str | None]) -> int:
        """Send the text frames at the head of ``frames`` (up to the first ``None``) in one transport
        write and remove them, when :meth:`send_text` of each would send it without waiting (the
        socket connected, the protocol's ``send`` writing it unchanged: see the module doc); the
        number sent, 0 (nothing sent or removed) when :meth:`send_text` must send them."""
        protocol = self._protocol
        if protocol is None or self.websocket.application_state is not _CONNECTED:
            return 0
        texts: list[str] = []
        for frame in frames:
            if frame is None:
                break
            texts.append(frame)
        if not texts or not protocol.write_texts(texts):
            return 0
        count = len(texts)
        if count == len(frames):
            frames.clear()
        else:
            for _ in range(count):
                frames.popleft()
        return count
