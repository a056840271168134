""":class:`manticore_api.textsocket.TextSocket` against Starlette's ``WebSocket.receive_text`` /
``send_text``: hypothesis sequences of ASGI messages (text, binary, connect, disconnect with and without
a reason, unknown types), send outcomes (sent, ``OSError``, another error) and calls (receive, send,
accept, close) in every state; each call must return or raise the same, send the same ASGI messages and
leave the same states."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocket, WebSocketDisconnect

from manticore_api.textsocket import TextSocket

_SCOPE = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}

_MESSAGES = st.one_of(
    st.builds(lambda text: {"type": "websocket.receive", "text": text}, st.text(max_size=5)),
    st.builds(lambda data: {"type": "websocket.receive", "bytes": data}, st.binary(max_size=3)),
    st.just({"type": "websocket.connect"}),
    st.builds(
        lambda code: {"type": "websocket.disconnect", "code": code}, st.sampled_from([1000, 1001, 1006])
    ),
    st.builds(
        lambda code, reason: {"type": "websocket.disconnect", "code": code, "reason": reason},
        st.sampled_from([1000, 4000]),
        st.one_of(st.none(), st.text(max_size=4)),
    ),
    st.just({"type": "websocket.bogus"}),
)
_CALLS = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.none()),
        st.tuples(st.just("send"), st.text(max_size=4)),
        st.tuples(st.just("accept"), st.none()),
        st.tuples(st.just("close"), st.sampled_from([1000, 1013])),
    ),
    max_size=12,
)
_OUTCOMES = st.lists(st.sampled_from(["ok", "ok", "ok", "oserror", "error"]), max_size=12)


def _describe(exc: BaseException) -> tuple[Any, ...]:
    context = exc.__context__
    extra = (exc.code, exc.reason) if isinstance(exc, WebSocketDisconnect) else ()
    return (type(exc).__name__, exc.args, *extra, None if context is None else type(context).__name__)


async def _session(
    messages: list[dict[str, Any]],
    outcomes: list[str],
    calls: list[tuple[str, Any]],
    accepted: bool,
    direct: bool,
) -> list[Any]:
    inbox = list(messages)
    results = list(outcomes)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not inbox:
            raise LookupError("nothing more to receive")
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        outcome = results.pop(0) if results else "ok"
        if outcome == "oserror":
            raise ConnectionResetError("gone")
        if outcome == "error":
            raise RuntimeError("the server refused")
        sent.append(message)

    websocket: WebSocket = WebSocket(_SCOPE, receive, send)
    seen: list[Any] = []
    if accepted:
        inbox.insert(0, {"type": "websocket.connect"})
        results.insert(0, "ok")
        await websocket.accept()
    socket = TextSocket(websocket)
    for name, argument in calls:
        try:
            if name == "receive":
                value: Any = await (socket.receive_text() if direct else websocket.receive_text())
            elif name == "send":
                value = await (socket.send_text(argument) if direct else websocket.send_text(argument))
            elif name == "accept":
                value = await websocket.accept()
            else:
                value = await websocket.close(argument)
            seen.append(("returned", value))
        except Exception as exc:
            seen.append(("raised", _describe(exc)))
        seen.append((websocket.client_state, websocket.application_state, list(sent)))
    return seen


@settings(max_examples=400, deadline=None)
@given(
    messages=st.lists(_MESSAGES, max_size=8),
    outcomes=_OUTCOMES,
    calls=_CALLS,
    accepted=st.booleans(),
)
def test_text_socket_does_what_starlette_does(
    messages: list[dict[str, Any]], outcomes: list[str], calls: list[tuple[str, Any]], accepted: bool
) -> None:
    expected = asyncio.run(_session(messages, outcomes, calls, accepted, direct=False))
    assert asyncio.run(_session(messages, outcomes, calls, accepted, direct=True)) == expected


def test_the_common_path_is_one_asgi_call_each_way() -> None:
    """A text frame in and one out on an accepted socket: the ASGI messages Starlette would pass."""

    async def scenario() -> tuple[str, list[dict[str, Any]]]:
        inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": '{"op":"ping"}'}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        websocket: WebSocket = WebSocket(_SCOPE, receive, send)
        await websocket.accept()
        socket = TextSocket(websocket)
        text = await socket.receive_text()
        await socket.send_text('{"type":"pong"}')
        return text, sent[1:]

    pong = {"type": "websocket.send", "text": '{"type":"pong"}'}
    assert asyncio.run(scenario()) == ('{"op":"ping"}', [pong])
