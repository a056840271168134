"""The order-entry hot path past Starlette's middleware stack: :class:`ExchangeApp`.

A request to one of the lean order routes (``POST /api/orders``, ``PATCH`` / ``DELETE
/api/orders/{order_id}``: :data:`manticore_api.routes.orders.LEAN_ROUTES`) would pass, before its
handler, FastAPI's telemetry check, the server-error, request-counter, body-size-limit, exception and
exit-stack middlewares, the router and the route's exception wrapper: each a coroutine, most with a
closure per request. :class:`ExchangeApp` serves those requests by calling the lean handler directly and
doing itself, in one frame, what those layers do for them:

* an exception the handler raises is answered by the app's handler for it (looked up as Starlette's
  exception middleware does: by status code for an HTTPException, then along the exception's MRO);
  one without a handler is answered ``500 Internal Server Error`` (or by the app's handler for 500 /
  Exception) and raised again, as Starlette's server-error middleware does;
* the request is counted in the request metrics by method, route template and status;
* the answer: a :class:`~manticore_api.routes.deps.JsonAnswer` to a request of ``manticore serve``'s
  protocol is written by its cycle's :meth:`~manticore_api.protocol.ServingCycle.write_response` (the
  same bytes as its two ASGI messages through ``send``, in one write), any other by the response;
* the body size limit: only requests that declare a ``Content-Length`` within the limit (or, for a
  DELETE, whose handler reads no body) take this path; every other request goes through the stack.

Under ``manticore serve`` (:func:`manticore_api.server.uvicorn_config`, access log off) the app also
applies uvicorn's proxy-headers middleware itself (:meth:`ExchangeApp.trust_forwarded_headers`), to
every request but those the fast path answers: a coroutine and a header scan fewer per order. Nothing
those requests answer, count or log depends on the client address or scheme that middleware rewrites
(a handler on a lean route must not read ``request.client`` or the URL's scheme or host).

The fast path is only taken when it cannot change an answer: the app's middleware is exactly what
``create_app`` installs, no FastAPI telemetry is active (no OpenTelemetry provider configured, decided
when the app starts), debug is off, and no route before the lean one matches its path. Then the other
requests skip FastAPI's per-request telemetry check (three OpenTelemetry provider look-ups) and go
straight to Starlette's stack; otherwise :class:`ExchangeApp` is FastAPI.
``tests/api/test_fastpath.py`` compares both paths' answers and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType
from typing import Any

from fastapi import FastAPI
from starlette._utils import is_async_callable
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .limits import BodySizeLimit
from .metrics import Metrics, RequestCounter
from .protocol import ServingCycle
from .routes.deps import JsonAnswer, LeanRoute

__all__ = ["ExchangeApp", "FastPath"]

Handler = Callable[[Request, Exception], Any]

#: The middleware ``create_app`` installs, outermost first; any other set disables the fast path.
_EXPECTED_MIDDLEWARE = (RequestCounter, BodySizeLimit)

#: ``send`` of a :class:`~manticore_api.protocol.ServingCycle` (``manticore serve``'s protocol): a
#: :class:`~manticore_api.routes.deps.JsonAnswer` is then written by the cycle's ``write_response``
#: (the same bytes and cycle state as its two ASGI messages through ``send``), when it may.
_SERVING_SEND = ServingCycle.send
_write_response = ServingCycle.write_response


class FastPath:
    """The lean routes that can be served directly, and what serving them needs (built at start-up)."""

    def __init__(self, app: FastAPI, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.routes: dict[str, list[LeanRoute]] = {}
        routes = app.router.routes
        for index, route in enumerate(routes):
            if isinstance(route, LeanRoute) and not _shadowed(route, routes[:index]):
                for method in route.methods or ():
                    self.routes.setdefault(method, []).append(route)
        self.post_orders = next((r for r in self.routes.get("POST", ()) if r.path == "/api/orders"), None)
        # The exception middleware's table (HTTPException by status code, other handlers by class) and
        # the server-error middleware's handler, split as Starlette's build_middleware_stack splits them.
        handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
        table = ExceptionMiddleware(app.router, handlers=handlers)
        self._status_handlers: dict[int, Any] = table._status_handlers
        self._exception_handlers: dict[Any, Any] = table._exception_handlers
        self._error_handler: Handler | None = app.exception_handlers.get(500) or app.exception_handlers.get(
            Exception
        )

    def route_for(self, scope: Scope) -> tuple[LeanRoute, Scope] | None:
        """The lean route that the router would give ``scope`` and its child scope, when the fast path
        may serve it; None otherwise."""
        method = scope["method"]
        if scope.get("root_path"):
            return None
        if method != "DELETE":
            declared = _declared_length(scope["headers"])
            if declared is None or declared > self.max_body:
                return None  # chunked, unreadable or too large: the body size middleware answers
        if method == "POST":
            route = self.post_orders
            if route is None or scope["path"] != "/api/orders":
                return None
            return route, {"endpoint": route.endpoint, "path_params": {}, "route": route}
        for route in self.routes.get(method, ()):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
        return None

    async def serve(self, route: LeanRoute, child: Scope, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request as the middleware stack, router and route would."""
        scope.update(child)
        scope["app"] = self.app
        scope["router"] = self.app.router
        request = Request(scope, receive, send)
        status = 500
        sending = False
        try:
            try:
                response: Response = await route.endpoint(request)
            except Exception as exc:
                handler = self._handler_for(exc)
                if handler is None:
                    raise
                response = await _call(handler, request, exc)
                exc.__traceback__ = None
            status = response.status_code
            sending = True
            cycle: Any = getattr(send, "__self__", None)
            if not (
                type(response) is JsonAnswer
                and type(send) is MethodType
                and send.__func__ is _SERVING_SEND
                and response.background is None
                and _write_response(cycle, status, response.raw_headers, response.body)  # type: ignore[arg-type]
            ):
                await response(scope, receive, send)
        except Exception as exc:
            if not sending:
                # Starlette's server-error middleware: a 500 answer, then the exception goes on up.
                if self._error_handler is None:
                    answer: Response = PlainTextResponse("Internal Server Error", status_code=500)
                else:
                    answer = await _call(self._error_handler, Request(scope), exc)
                await answer(scope, receive, send)
            raise
        finally:
            self.metrics.observe_request(scope["method"], route.path, status)

    def _handler_for(self, exc: Exception) -> Handler | None:
        handler: Handler | None = None
        if isinstance(exc, HTTPException):
            handler = self._status_handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                if cls in self._exception_handlers:
                    handler = self._exception_handlers[cls]
                    break
        return handler


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    if is_async_callable(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length (the last one, as the body size middleware reads it), or None."""
    declared = None
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                return None
            if declared < 0:
                return None
    return declared


def _shadowed(route: LeanRoute, earlier: list[BaseRoute]) -> bool:
    """Whether a route before ``route`` fully matches one of its requests (the router takes the first
    full match; a partial one, the path with another method, only counts when nothing matches fully)."""
    path = route.path.replace("{order_id}", "o_1")
    for method in route.methods or ():
        probe = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        if any(other.matches(probe)[0] is Match.FULL for other in earlier):
            return True
    return False


class ExchangeApp(FastAPI):
    """FastAPI, with the lean order routes served by :class:`FastPath` once :meth:`enable_fast_path`
    found it safe (``create_app`` calls it when the app starts)."""

    fast_path: FastPath | None = None
    #: ``state.service`` and ``state.metrics`` as plain attributes (set by ``create_app``): reading
    #: ``app.state.x`` goes through Starlette's State.__getattr__ after a failed lookup, ~1 µs each,
    #: three times per order request (:func:`manticore_api.routes.deps.service_of`).
    exchange_service: Any = None
    exchange_metrics: Any = None
    #: uvicorn's proxy-headers middleware around the app's own dispatch, once
    #: :meth:`trust_forwarded_headers` was called; None: the server applies it, or nobody does.
    forwarded_headers: ProxyHeadersMiddleware | None = None

    def trust_forwarded_headers(self, trusted_hosts: list[str] | str) -> None:
        """Apply uvicorn's proxy-headers middleware (``X-Forwarded-For`` / ``-Proto`` from
        ``trusted_hosts``) to every request except those the fast path answers, instead of the
        server applying it to all: uvicorn's config must then have ``proxy_headers`` off."""
        dispatch: Any = self._dispatch  # Starlette's ASGI types, not uvicorn's (the same protocol)
        self.forwarded_headers = ProxyHeadersMiddleware(dispatch, trusted_hosts=trusted_hosts)

    def enable_fast_path(self, metrics: Metrics, max_body: int) -> bool:
        """Serve the lean routes directly from now on, if that cannot change an answer; say whether."""
        self.fast_path = None
        middleware: tuple[Any, ...] = tuple(m.cls for m in self.user_middleware)
        telemetry: Any = getattr(self, "_native_telemetry", None)
        if (
            middleware != _EXPECTED_MIDDLEWARE
            or self.debug
            or self.root_path
            or telemetry is None
            or telemetry.enabled()
        ):
            return False
        self.fast_path = FastPath(self, metrics, max_body)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and scope["type"] == "http":
            found = fast.route_for(scope)
            if found is not None:
                await fast.serve(found[0], found[1], scope, receive, send)
                return
        forwarded = self.forwarded_headers
        if forwarded is not None:
            await forwarded(scope, receive, send)  # type: ignore[arg-type]
        else:
            await self._dispatch(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request the fast path does not answer (and lifespan events)."""
        if self.fast_path is not None and scope["type"] in ("http", "websocket"):
            # What FastAPI.__call__ does for a request when its telemetry is off and no root_path is
            # set (both checked by enable_fast_path), without asking the OpenTelemetry API for its
            # providers again on every request.
            await Starlette.__call__(self, scope, receive, send)
            return
        await super().__call__(scope, receive, send)
