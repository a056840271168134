"""The lean routes' JSON answer is Starlette's ``Response(..., media_type="application/json")``, byte for
byte: the same ASGI messages for every status and payload."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from manticore_api.routes.deps import JsonAnswer, json_response

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _messages(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("an answer reads nothing")

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    return sent


@given(json_values, st.integers(100, 599))
def test_the_same_messages_as_starlettes_response(content: Any, status: int) -> None:
    answer = json_response(content, status)
    expected = Response(answer.body, status_code=status, media_type="application/json")
    assert _messages(answer) == _messages(expected)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"


def test_a_status_with_a_body_takes_the_short_construction() -> None:
    assert type(json_response({"status": "success"}, 201)) is JsonAnswer
    assert type(json_response({"status": "success"}, 204)) is Response
