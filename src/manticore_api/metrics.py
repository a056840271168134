"""Prometheus metrics: request counts by route and status, orders placed, and exchange gauges.

The two counters are plain tallies (:class:`Tally`) that the scrape reads (:class:`_TallyCollector`),
not prometheus_client ``Counter`` objects: a ``Counter.inc`` is two Python calls, an observability
check and a lock, twice per order request. The exposition is the same, byte for byte, as the
``Counter`` objects gave for the same increments (the ``_total`` and ``_created`` series, ``_created``
being when the series was first counted, or when the app started for ``orders_placed``; no
``_created`` lines when prometheus_client's created series are disabled;
tests/api/test_metrics_tally.py). Tallies are counted on the event loop's thread only (every caller
is a coroutine of the app); the scrape may read them from another thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .service import ExchangeService

__all__ = ["Metrics", "RequestCounter", "Tally"]


class Tally:
    """A counter's value and creation time (``time.time()`` when made). :meth:`inc` is called on one
    thread (the event loop's); a reader on another thread sees some recent value."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()

    def inc(self, amount: int = 1) -> None:
        """Add ``amount`` (ValueError if negative: counters only go up, as prometheus_client's)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class _TallyCollector(Collector):
    """The request counter (labelled method, route, status) and the orders counter, read at scrape
    time in the order and form of the prometheus_client ``Counter`` objects they replace."""

    def __init__(self, requests: dict[tuple[str, str, int], Tally], orders_placed: Tally) -> None:
        self._requests = requests
        self._orders_placed = orders_placed

    def collect(self) -> Iterator[CounterMetricFamily]:
        created = prometheus_metrics._use_created
        requests = CounterMetricFamily(
            "manticore_http_requests", "HTTP requests", labels=("method", "route", "status")
        )
        # dict.copy() is one step under the GIL: the loop thread may add series meanwhile.
        for (method, route, status), tally in self._requests.copy().items():
            requests.add_metric(
                (method, route, str(status)), float(tally.value), tally.created if created else None
            )
        yield requests
        placed = self._orders_placed
        yield CounterMetricFamily(
            "manticore_orders_placed",
            "orders accepted",
            value=float(placed.value),
            created=placed.created if created else None,
        )


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
        #: Requests by (method, route template, status), in the order first seen.
        self.requests: dict[tuple[str, str, int], Tally] = {}
        #: Orders accepted (``inc()`` per order, or ``inc(n)`` for n at once).
        self.orders_placed = Tally()
        self.registry.register(_TallyCollector(self.requests, self.orders_placed))
        self.registry.register(_ExchangeCollector(service))

    def observe_request(self, method: str, route: str, status: int) -> None:
        """Count one answered request (on the event loop's thread)."""
        key = (method, route, status)
        tally = self.requests.get(key)
        if tally is None:
            tally = self.requests[key] = Tally()
        tally.value += 1

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
