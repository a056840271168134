"""The ASGI application: REST endpoints, the WebSocket stream, health, metrics and the web page.

Every error a client can cause is answered with a 4xx and ``{"status": "error", "code", "message"}``;
a command that fails changes nothing. Successful commands are answered only after the command journal
has made them durable. The routes live in :mod:`manticore_api.routes`, one module per area.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from fastapi.routing import APIRoute

from . import metrics
from .binance import mount_binance
from .fastpath import ExchangeApp
from .gcpolicy import GcPauseRecorder, GcPolicy
from .limits import BodySizeLimit
from .routes import account, admin, market_data, operations, orders, page, stream
from .routes.errors import install_error_handlers
from .service import ExchangeService

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024


def create_app(
    service: ExchangeService, *, gc_policy: GcPolicy | None = None, binance: bool = True
) -> ExchangeApp:
    """The application serving ``service`` (whose exchange is open; the app's lifespan starts the
    service's timers and stream hand-off, and closes the exchange at shutdown).

    ``gc_policy``: applied to the process once the service has started, just before serving, and kept
    (its refreezing) until shutdown (:meth:`GcPolicy.serving`; ``manticore serve`` passes one; tests
    that build many apps in one process do not). Either way the lifespan records the collector's pauses
    from then on, for ``GET /api/metrics/gc``.

    ``binance``: mount the Binance-compatible surface (default; a split-mode gateway, whose commands go
    to an account shard and reads to market shards, does not mount it yet: docs/scale-out.md)."""
    recorder = GcPauseRecorder()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        app.enable_fast_path(registry, MAX_BODY_BYTES)
        with gc_policy.serving() if gc_policy is not None else nullcontext():
            recorder.install()
            try:
                yield
            finally:
                recorder.uninstall()
                await service.stop()

    app = ExchangeApp(
        title="Manticore exchange API",
        version="0.1.0",
        description="Order entry, market data and account endpoints. Prices and quantities are "
        "exact decimal strings. Authenticate with a signed API key or a session token.",
        lifespan=lifespan,
        docs_url=None,  # served by routes.page from local files: no CDN
        redoc_url=None,
    )
    app.state.service = service
    app.state.metrics = registry = metrics.Metrics(service)
    app.exchange_service, app.exchange_metrics = service, registry
    app.state.gc_recorder = recorder
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    install_error_handlers(app)
    app.add_middleware(metrics.RequestCounter, metrics=registry)

    page.mount_docs_assets(app)
    # The routers' routes join the app's own list (in this order: it is the matching order), as
    # include_router would without prefixes or router dependencies; FastAPI 0.165's include_router
    # keeps each router as a lazily matched sub-router, which cost 14% more instructions per request
    # (POST /api/orders + GET /api/orderbook, measured under callgrind).
    for router in (
        page.docs_router,
        orders.router,
        market_data.router,
        account.router,
        admin.router,
        operations.router,
        stream.router,
        page.router,
    ):
        app.router.routes.extend(router.routes)
    _insert_lean_routes(app)
    if binance:
        mount_binance(app, service)  # the Binance-compatible surface on the same service: docs/binance.md
    page.mount_static(app)
    return app


def _insert_lean_routes(app: FastAPI) -> None:
    """Put each of :data:`orders.LEAN_ROUTES` right before the FastAPI route it stands in for: the lean
    one answers, the FastAPI one (never reached) keeps documenting the endpoint in the OpenAPI schema."""
    routes = app.router.routes
    for endpoint, lean in orders.LEAN_ROUTES:
        index = next(
            i for i, route in enumerate(routes) if isinstance(route, APIRoute) and route.endpoint is endpoint
        )
        routes.insert(index, lean)
