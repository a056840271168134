"""What route handlers need: the service and the metrics from ``request.app.state`` (set by
``create_app``), read by plain calls (``service_of(request)``; a FastAPI dependency per handler would
cost several percent of a request), and the authenticated caller as a dependency (:data:`CurrentUser`).

For the hot order-entry endpoints, :class:`LeanRoute` and :func:`validated_body` do by hand what a
FastAPI route does (read and parse the JSON body, authenticate, validate the body model, answer JSON)
with the same answers and error bodies at a fraction of the cost; the FastAPI route stays declared
after it for the OpenAPI schema (see :mod:`manticore_api.routes.orders`)."""

from __future__ import annotations

import email.message
import json
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from manticore_auth import AuthError

from .. import jsontext
from ..metrics import Metrics
from ..security import Caller, authenticate
from ..service import ExchangeService

__all__ = [
    "CurrentUser",
    "JsonAnswer",
    "LeanRoute",
    "json_response",
    "metrics_of",
    "read_body",
    "read_json_body",
    "require_admin",
    "service_of",
    "validated_body",
]

T = TypeVar("T")


def service_of(request: Request) -> ExchangeService:
    """The app's :class:`~manticore_api.service.ExchangeService` (``app.state.service``; read from
    the app's plain attribute when ``create_app`` set one, which is cheaper)."""
    app = request.scope["app"]
    service: ExchangeService | None = getattr(app, "exchange_service", None)
    return service if service is not None else app.state.service


def metrics_of(request: Request) -> Metrics:
    """The app's metrics registry (``app.state.metrics``, as :func:`service_of` reads it)."""
    app = request.scope["app"]
    metrics: Metrics | None = getattr(app, "exchange_metrics", None)
    return metrics if metrics is not None else app.state.metrics


CurrentUser = Annotated[Caller, Depends(authenticate)]


def require_admin(caller: Caller) -> None:
    """AuthError ``forbidden`` unless the caller has the admin role."""
    if not caller.is_admin:
        raise AuthError("forbidden", "this needs the admin role")


class LeanRoute(Route):
    """A plain Starlette route that, like FastAPI's, records itself as ``scope["route"]`` (the request
    metrics label requests by the route's path template)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class _NoBody:
    """The body was empty (FastAPI then reports the body model as missing)."""


NO_BODY: Any = _NoBody()


def _is_json_content_type(value: str) -> bool:
    if value == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def read_body(request: Request) -> bytes:
    """``await request.body()``: the same bytes (kept on the request, where ``request.body()`` finds
    them again), the same ClientDisconnect when the client goes first, read from the ASGI messages
    without the async generator Starlette's ``body()`` goes through (a few µs per request)."""
    state = request.__dict__
    body: bytes | None = state.get("_body")
    if body is not None:
        return body
    if request._stream_consumed:
        return await request.body()  # what Starlette answers for a consumed stream
    chunks: list[bytes] = []
    receive = request.receive
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._stream_consumed = True
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    state["_body"] = body
    return body


def _content_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    """``request.headers.get("content-type")`` (the first one) without building Starlette's Headers."""
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


async def read_json_body(request: Request) -> Any:
    """The request body as a FastAPI body parameter receives it: parsed JSON when the content type is
    JSON (``application/json`` or ``application/*+json``), the raw bytes for another content type or
    none, :data:`NO_BODY` when empty. A body that is not valid JSON raises RequestValidationError
    (answered 400 ``invalid``, "<position>: JSON decode error", as FastAPI's); a body that cannot be
    read or decoded raises HTTPException 400. Parsed by :func:`manticore_api.jsontext.loads`, so exactly
    the documents FastAPI accepted are accepted, with the same values."""
    try:
        body = await read_body(request)
        if not body:
            return NO_BODY
        content_type = _content_type(request.scope["headers"])
        if content_type is None or not _is_json_content_type(content_type):
            return body
        return jsontext.loads(body)
    except json.JSONDecodeError as exc:
        problem = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([problem], body=exc.doc) from None
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def validated_body(adapter: TypeAdapter[T], body: Any) -> T:
    """``body`` (from :func:`read_json_body`) validated as FastAPI validates a required body model;
    RequestValidationError (400 ``invalid``) with the same messages otherwise."""
    if body is NO_BODY:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return adapter.validate_python(body, from_attributes=True)
    except ValidationError as exc:
        problems = [{**item, "loc": ("body", *item.get("loc", ()))} for item in exc.errors(include_url=False)]
        raise RequestValidationError(problems, body=body) from None


_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON answer serialized with orjson (compact UTF-8, as the FastAPI routes answer; a float may
    be spelled differently, e.g. ``1e+29`` there and ``1e29`` here, the same number). What orjson
    cannot serialize (an integer beyond 64 bits, a Decimal) is serialized by pydantic, as FastAPI
    would."""
    try:
        payload = orjson.dumps(content)
    except TypeError:
        payload = _ANY.dump_json(content)
    if status_code < 200 or status_code in (204, 304):  # no body, no Content-Length
        return Response(payload, status_code=status_code, media_type="application/json")
    return JsonAnswer(payload, status_code)


_JSON_TYPE = (b"content-type", b"application/json")


class JsonAnswer(Response):
    """``Response(payload, status_code, media_type="application/json")`` for a status that has a body:
    the same status, headers (``content-length``, ``content-type``, in that order) and body, built
    without Response's general header handling."""

    media_type = "application/json"

    def __init__(self, payload: bytes, status_code: int) -> None:
        self.status_code = status_code
        self.background = None
        self.body = payload
        self.raw_headers = [(b"content-length", b"%d" % len(payload)), _JSON_TYPE]
