""":func:`manticore_api.security.authenticate_read` (the lean order routes' caller, once the body is
read) answers as :func:`~manticore_api.security.authenticate` does, for every mix of credentials."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from manticore_api.security import Caller, authenticate, authenticate_read
from manticore_auth import AuthError
from manticore_auth.models import User


class _Auth:
    """Records what it was asked; refuses a signature or token spelled ``bad``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def authenticate_request(self, **parts: Any) -> User:
        self.calls.append(("request", parts))
        if parts["signature"] == "bad":
            raise AuthError("bad_signature", "signature does not match the request")
        return User("u_1", "alice", "trader", 0.0)

    def authenticate_session(self, token: str) -> User:
        self.calls.append(("session", token))
        if token == "bad":
            raise AuthError("bad_session", "no such session")
        return User("u_2", "bob", "admin", 0.0)


class _Service:
    def __init__(self, require_auth: bool) -> None:
        self.auth = _Auth()
        self.require_auth = require_auth


class _App:
    def __init__(self, require_auth: bool) -> None:
        self.exchange_service = _Service(require_auth)


def _request(app: _App, headers: list[tuple[bytes, bytes]], body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/orders",
        "query_string": b"",
        "headers": headers,
        "app": app,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _outcome(call: Any) -> Caller | str:
    try:
        return call()  # type: ignore[no-any-return]
    except AuthError as exc:
        return exc.code


_HEADERS = st.lists(
    st.sampled_from(
        [
            (b"authorization", b"Bearer t"),
            (b"authorization", b"Bearer bad"),
            (b"authorization", b"Basic x"),
            (b"authorization", b"Bearer "),
            (b"x-mc-apikey", b"k"),
            (b"x-mc-timestamp", b"1"),
            (b"x-mc-signature", b"s"),
            (b"x-mc-signature", b"bad"),
            (b"x-mc-user", b"carol"),
            (b"content-type", b"application/json"),
        ]
    ),
    max_size=5,
)


@given(headers=_HEADERS, body=st.binary(max_size=20), require_auth=st.booleans())
def test_authenticate_read_answers_as_authenticate(
    headers: list[tuple[bytes, bytes]], body: bytes, require_auth: bool
) -> None:
    async def both() -> tuple[Any, Any, Any, Any]:
        app_read, app_async = _App(require_auth), _App(require_auth)
        read = _request(app_read, headers, body)
        await read.body()
        by_read = _outcome(lambda: authenticate_read(read))
        request = _request(app_async, headers, body)
        try:
            by_async: Any = await authenticate(request)
        except AuthError as exc:
            by_async = exc.code
        return by_read, by_async, app_read.exchange_service.auth.calls, app_async.exchange_service.auth.calls

    by_read, by_async, calls_read, calls_async = asyncio.run(both())
    assert by_read == by_async
    assert calls_read == calls_async


def test_authenticate_read_needs_the_body_read() -> None:
    request = _request(_App(True), [(b"x-mc-apikey", b"k")], b"{}")
    with pytest.raises(RuntimeError):
        authenticate_read(request)
