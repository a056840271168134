"""``deps.read_body`` reads a request body exactly as Starlette's ``request.body()`` does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import ClientDisconnect, Request

from manticore_api.routes.deps import read_body

_SCOPE = {"type": "http", "method": "POST", "path": "/api/orders", "headers": []}


def _receiver(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _messages(chunks: list[bytes], disconnect_after: int | None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index, chunk in enumerate(chunks):
        if disconnect_after == index:
            return [*messages, {"type": "http.disconnect"}]
        last = index == len(chunks) - 1
        message: dict[str, Any] = {"type": "http.request", "more_body": not last}
        if chunk or index % 2:  # sometimes no "body" key at all, as a server may send
            message["body"] = chunk
        messages.append(message)
    return messages


async def _outcome(read: Any, request: Request) -> tuple[str, bytes | None]:
    try:
        body = await read(request)
    except ClientDisconnect:
        return "disconnect", None
    again = await request.body()  # what later readers see (authenticate reads it again)
    assert again == body
    return "body", body


@given(
    st.lists(st.binary(max_size=20), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(0, 6)),
)
def test_read_body_answers_as_starlette(chunks: list[bytes], disconnect_after: int | None) -> None:
    messages = _messages(chunks, disconnect_after)

    async def both() -> None:
        ours = Request(_SCOPE, _receiver(messages))
        theirs = Request(_SCOPE, _receiver(messages))
        assert await _outcome(read_body, ours) == await _outcome(Request.body, theirs)
        assert ours._is_disconnected == theirs._is_disconnected

    asyncio.run(both())


def test_a_consumed_stream_is_refused_as_starlette_refuses_it() -> None:
    async def run() -> None:
        request = Request(_SCOPE, _receiver([{"type": "http.request", "body": b"x"}]))
        async for _ in request.stream():
            pass
        with pytest.raises(RuntimeError, match="Stream consumed"):
            await read_body(request)

    asyncio.run(run())
