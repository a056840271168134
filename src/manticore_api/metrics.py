"""Prometheus metrics: request counts by route and status, orders placed, and exchange gauges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .service import ExchangeService

__all__ = ["Metrics", "RequestCounter"]


class _ExchangeCollector(Collector):
    """Reads the exchange's counters at scrape time."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.service.exchange.statistics()
        for key, help_text in (
            ("journal_appended", "journal records appended"),
            ("journal_durable", "journal records on disk"),
            ("journal_batches", "journal group commits"),
            ("storage_pending", "events waiting for the storage writer"),
            ("orders_resting", "live orders in all books"),
            ("handler_errors", "event handlers that raised"),
        ):
            yield GaugeMetricFamily(f"manticore_{key}", help_text, value=float(stats[key]))
        yield GaugeMetricFamily(
            "manticore_stream_connections",
            "open WebSocket connections",
            value=float(self.service.hub.connection_count),
        )


class Metrics:
    """One registry per app (tests create many apps in one process)."""

    def __init__(self, service: ExchangeService) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "manticore_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.orders_placed = Counter("manticore_orders_placed", "orders accepted", registry=self.registry)
        self.registry.register(_ExchangeCollector(service))
        # The labelled child counter per (method, route, status): ``labels()`` validates and locks on
        # every call; the children it returns are stable, so look each up once.
        self._request_counters: dict[tuple[str, str, int], Any] = {}

    def observe_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        counter = self._request_counters.get(key)
        if counter is None:
            counter = self._request_counters[key] = self.requests.labels(method, route, str(status))
        counter.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestCounter:
    """ASGI middleware counting HTTP requests by method, route template and status (plain ASGI: the
    decorator-style middleware costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            self.metrics.observe_request(scope["method"], getattr(route, "path", "unmatched"), status)
