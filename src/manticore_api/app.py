"""The ASGI application: REST endpoints, the WebSocket stream, health, metrics and the web page.

Every error a client can cause is answered with a 4xx and ``{"status": "error", "code", "message"}``;
a command that fails changes nothing. Successful commands are answered only after the command journal
has made them durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from manticore_auth import AuthError
from manticore_matching import ConfigError, ExchangeError, InvalidCommand, MarketConfig, Receipt

from . import metrics
from .limits import BodySizeLimit
from .schemas import ApiKeyOut, DepositIn, ErrorOut, LoginIn, MarketIn, ModifyIn, OrderIn, OrderPlaced, UserIn
from .security import Caller, authenticate
from .service import ExchangeService
from .streams import StreamConnection

__all__ = ["create_app"]

log = logging.getLogger("manticore_api")

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024
MAX_WS_FRAME = 16 * 1024
# The page runs only its own scripts and talks only to this server (its session token lives in
# sessionStorage, so no injected script may run next to it).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

CurrentUser = Annotated[Caller, Depends(authenticate)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "invalid request"),
        (401, "missing or invalid credentials"),
        (403, "not allowed for this user"),
        (404, "unknown order, market or user"),
        (409, "already exists"),
        (413, "request body too large"),
        (422, "refused by a risk check (code says which)"),
        (503, "the command journal cannot make the command durable"),
    )
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "code": code, "message": message}, status_code=status)


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise AuthError("forbidden", "this needs the admin role")


def create_app(service: ExchangeService) -> FastAPI:
    """The application serving ``service`` (whose exchange is open; the app's lifespan starts the
    service's timers and stream hand-off, and closes the exchange at shutdown)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Manticore exchange API",
        version="0.1.0",
        description="Order entry, market data and account endpoints. Prices and quantities are "
        "exact decimal strings. Authenticate with a signed API key or a session token.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: no CDN
        redoc_url=None,
    )
    _install_docs(app)
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    registry = metrics.Metrics(service)
    app.state.metrics = registry
    _install_error_handlers(app)

    app.add_middleware(metrics.RequestCounter, metrics=registry)

    exchange = service.exchange
    auth = service.auth

    # ------------------------------------------------------------------ orders

    @app.post("/api/orders", status_code=201, response_model=OrderPlaced, responses=_ERRORS, tags=["orders"])
    async def place_order(body: OrderIn, caller: CurrentUser) -> dict[str, Any]:
        """Place an order; answered when it is durable. 422 when risk refuses it (``code`` says why)."""
        if body.user_id is not None and service.require_auth and body.user_id != caller.user_id:
            raise InvalidCommand("user_id does not match the authenticated user")
        user_id = body.user_id if body.user_id is not None and not service.require_auth else caller.user_id
        receipt = exchange.place_order(
            user_id,
            body.symbol,
            body.side.lower(),
            body.quantity,
            price=body.price,
            order_type=body.order_type or ("limit" if body.price is not None else "market"),
            time_in_force=body.time_in_force,
            expiry_time=body.expiry_time,
            stop_price=body.stop_price,
            displayed_quantity=body.displayed_quantity,
            trail_value=body.trail_value,
            trail_is_percent=body.trail_is_percent,
            self_trade_prevention=body.self_trade_prevention,
            client_order_id=body.client_order_id,
        )
        await service.durable(receipt.position)
        registry.orders_placed.inc()
        return {"status": "success", "order_id": receipt.order_id, "order": receipt.order}

    @app.get("/api/orders", tags=["orders"], responses=_ERRORS)
    async def open_orders(
        caller: CurrentUser, symbol: Annotated[str | None, Query(max_length=40)] = None
    ) -> dict[str, Any]:
        """The caller's live orders (resting and untriggered stops)."""
        return {"orders": exchange.open_orders(caller.user_id, symbol)}

    @app.get("/api/orders/history", tags=["orders"], responses=_ERRORS)
    async def order_history(
        caller: CurrentUser,
        symbol: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The caller's orders of every status, newest first."""
        if symbol is not None:
            exchange.book(symbol)
        orders = await run_in_threadpool(exchange.order_history, caller.user_id, symbol, limit)
        return {"orders": orders}

    @app.get(
        "/api/orders/by-client-id/{client_order_id}", tags=["orders"], responses=_ERRORS, response_model=None
    )
    async def get_order_by_client_id(
        client_order_id: str, caller: CurrentUser
    ) -> dict[str, Any] | JSONResponse:
        """The caller's newest order with this ``client_order_id`` (live or finished); 404 if none. Other
        users' client order ids are never seen."""
        order = await run_in_threadpool(exchange.get_order_by_client_id, caller.user_id, client_order_id)
        if order is None:
            return _error(404, "order_not_found", f"no order with client_order_id {client_order_id[:64]!r}")
        return {"status": "success", "order": order}

    @app.delete("/api/orders/by-client-id/{client_order_id}", tags=["orders"], responses=_ERRORS)
    async def cancel_order_by_client_id(client_order_id: str, caller: CurrentUser) -> dict[str, Any]:
        """Cancel the caller's live order with this ``client_order_id``: 200, or 404 if there is none."""
        receipt = exchange.cancel_order_by_client_id(caller.user_id, client_order_id)
        await service.durable(receipt.position)
        return {
            "status": "success",
            "order_id": receipt.order_id,
            "client_order_id": client_order_id,
            "order": receipt.order,
            "message": f"Order {receipt.order_id} cancelled",
        }

    @app.get("/api/orders/{order_id}", tags=["orders"], responses=_ERRORS, response_model=None)
    async def get_order(order_id: str, caller: CurrentUser) -> dict[str, Any] | JSONResponse:
        """One of the caller's orders, live or finished."""
        order = exchange.get_order(None if caller.is_admin else caller.user_id, order_id)
        if order is None:
            return _not_found(order_id)
        return {"status": "success", "order": order}

    @app.patch("/api/orders/{order_id}", tags=["orders"], responses=_ERRORS)
    async def modify_order(order_id: str, body: ModifyIn, caller: CurrentUser) -> dict[str, Any]:
        """Change price, total quantity or expiry of a live order (see docs/orderbook.md for priority)."""
        receipt = exchange.modify_order(
            None if caller.is_admin else caller.user_id,
            order_id,
            new_price=body.new_price,
            new_quantity=body.new_quantity,
            new_expiry_time=body.new_expiry_time,
        )
        await service.durable(receipt.position)
        return {"status": "success", "order_id": order_id, "order": receipt.order}

    @app.delete("/api/orders/{order_id}", tags=["orders"], responses=_ERRORS)
    async def cancel_order(order_id: str, caller: CurrentUser) -> dict[str, Any]:
        """Cancel a live order: 200, or 404 if the caller has no such live order."""
        receipt = exchange.cancel_order(None if caller.is_admin else caller.user_id, order_id)
        await service.durable(receipt.position)
        return {"status": "success", "message": f"Order {order_id} cancelled"}

    # ------------------------------------------------------------------ market data

    @app.get("/api/orderbook", tags=["market data"], responses=_ERRORS)
    async def orderbook(
        symbol: Annotated[str, Query(max_length=40)] = "BTC/USD",
        depth: Annotated[int, Query(ge=0, le=10_000)] = 10,
    ) -> dict[str, Any]:
        """The book: bids and asks best first, with the sequence of the last event included
        (``depth=0`` is the whole book)."""
        return exchange.get_snapshot(symbol, depth or None)

    @app.get("/api/markets", tags=["market data"], responses=_ERRORS)
    async def markets() -> dict[str, Any]:
        """Every market with its tick size, lot size and fee rates."""
        return {"markets": [config.to_dict() for config in exchange.markets.values()]}

    @app.get("/api/trades", tags=["market data"], responses=_ERRORS)
    async def trades(
        symbol: Annotated[str, Query(max_length=40)] = "BTC/USD",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The market's recent trades, newest first."""
        return {"trades": exchange.recent_trades(symbol, limit)}

    # ------------------------------------------------------------------ account

    @app.get("/api/fills", tags=["account"], responses=_ERRORS)
    async def fills(
        caller: CurrentUser,
        symbol: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The caller's fills, newest first: for each trade the caller was on, their own ``trade_id, symbol,
        order_id, client_order_id, side, role`` (maker/taker), ``price, quantity, fee`` (in ``fee_asset``,
        the market's quote asset) and ``timestamp``; never the counterparty's user or order."""
        if symbol is not None:
            exchange.book(symbol)
        return {"fills": await run_in_threadpool(exchange.fills, caller.user_id, symbol, limit)}

    @app.get("/api/balances", tags=["account"], responses=_ERRORS)
    async def balances(caller: CurrentUser) -> dict[str, Any]:
        """The caller's available and held amounts per asset."""
        return {"user_id": caller.user_id, **exchange.balances(caller.user_id)}

    @app.get("/api/me", tags=["account"], responses=_ERRORS)
    async def me(caller: CurrentUser) -> dict[str, Any]:
        return {"user_id": caller.user_id, "username": caller.username, "role": caller.role}

    @app.post("/api/api-keys", tags=["account"], status_code=201, response_model=ApiKeyOut, responses=_ERRORS)
    async def create_api_key(caller: CurrentUser) -> dict[str, Any]:
        """A new API key for the caller. The secret is in this answer only."""
        if not service.require_auth:
            raise InvalidCommand("API keys need authentication enabled")
        return dict(auth.create_api_key(caller.user_id))

    @app.post("/api/session", tags=["account"], responses=_ERRORS)
    async def login(body: LoginIn) -> dict[str, Any]:
        """Exchange a username and password for a session token (``Authorization: Bearer``)."""
        token = await run_in_threadpool(auth.login, body.username, body.password)
        user = auth.get_user_by_name(body.username)
        assert user is not None
        return {"token": token, "user_id": user.user_id, "username": user.username, "role": user.role}

    @app.delete("/api/session", tags=["account"], responses=_ERRORS)
    async def logout(request: Request, caller: CurrentUser) -> dict[str, Any]:
        _, _, token = request.headers.get("authorization", "").partition(" ")
        if token:
            auth.logout(token.strip())
        return {"status": "success"}

    # ------------------------------------------------------------------ administration

    async def transfer(receipt: Receipt, user_id: str) -> dict[str, Any]:
        await service.durable(receipt.position)
        return {"status": "success", "user_id": user_id, **exchange.balances(user_id)}

    @app.post("/api/deposits", tags=["admin"], status_code=201, responses=_ERRORS)
    async def deposit(body: DepositIn, caller: CurrentUser) -> dict[str, Any]:
        """Credit a user's balance (admin)."""
        _require_admin(caller)
        return await transfer(exchange.deposit(body.user_id, body.asset, body.amount), body.user_id)

    @app.post("/api/withdrawals", tags=["admin"], status_code=201, responses=_ERRORS)
    async def withdraw(body: DepositIn, caller: CurrentUser) -> dict[str, Any]:
        """Debit a user's available balance (admin)."""
        _require_admin(caller)
        return await transfer(exchange.withdraw(body.user_id, body.asset, body.amount), body.user_id)

    @app.post("/api/markets", tags=["admin"], status_code=201, responses=_ERRORS)
    async def create_market(body: MarketIn, caller: CurrentUser) -> dict[str, Any]:
        """Open a new market (admin)."""
        _require_admin(caller)
        try:
            config = MarketConfig.from_dict(body.model_dump())
        except ConfigError as exc:
            raise InvalidCommand(str(exc)) from None
        receipt = exchange.create_market(config)
        await service.durable(receipt.position)
        return {"status": "success", "market": config.to_dict()}

    @app.post("/api/users", tags=["admin"], status_code=201, responses=_ERRORS)
    async def create_user(body: UserIn, caller: CurrentUser) -> dict[str, Any]:
        """Create a user with an API key (admin). The key's secret is in this answer only."""
        _require_admin(caller)
        user = auth.create_user(body.username, role=body.role)
        if body.password is not None:
            await run_in_threadpool(auth.set_password, user.user_id, body.password)
        credentials = auth.create_api_key(user.user_id)
        return {"user_id": user.user_id, "username": user.username, "role": user.role, **credentials}

    # ------------------------------------------------------------------ operations

    @app.get("/api/health", tags=["operations"])
    async def health() -> JSONResponse:
        """``status`` ok or degraded, and each component's state (503 when degraded)."""
        report = await run_in_threadpool(service.health)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition."""
        body, content_type = registry.render()
        return Response(body, media_type=content_type)

    # ------------------------------------------------------------------ stream

    @app.websocket("/ws")
    async def stream(websocket: WebSocket) -> None:
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

    # ------------------------------------------------------------------ web page

    @app.get("/", include_in_schema=False, response_model=None)
    async def index() -> Response:
        page = STATIC / "index.html"
        if page.exists():
            return FileResponse(page, headers=PAGE_HEADERS)
        return JSONResponse({"name": "Manticore", "docs": "/docs", "api": "/api/markets"})

    if STATIC.is_dir():  # the page's scripts and styles (docs/web.md)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its script and styles served by this server (the machines running
    it may have no internet). The assets come from the ``fastapi-swagger`` package."""
    assets = resources.files("fastapi_swagger") / "resources"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _not_found(order_id: str) -> JSONResponse:
    return _error(404, "order_not_found", f"Order {order_id[:64]} not found")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExchangeError)
    async def exchange_error(_request: Request, exc: ExchangeError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(AuthError)
    async def auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return _error(400, "invalid", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail))


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
