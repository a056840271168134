"""The request and order counters of ``GET /metrics`` as plain tallies read at scrape time
(:class:`manticore_api.metrics.Metrics`): the exposition is byte for byte what prometheus_client's
``Counter`` objects gave for the same increments at the same times (the model below)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client import metrics as prometheus_metrics

from manticore_api.metrics import Metrics, _ExchangeCollector


class _Hub:
    connection_count = 3


class _Exchange:
    def statistics(self) -> dict[str, int]:
        return {
            "journal_appended": 7,
            "journal_durable": 6,
            "journal_batches": 2,
            "storage_pending": 1,
            "orders_resting": 4,
            "handler_errors": 0,
        }


class _Service:
    exchange = _Exchange()
    hub = _Hub()


SERVICE: Any = _Service()


class _Clock:
    """``time.time`` for both implementations: the test sets the time before each operation."""

    def __init__(self) -> None:
        self.now = 1_733_000_000.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    fake = _Clock()
    monkeypatch.setattr(time, "time", fake)
    yield fake


class _Model:
    """What the app registered before: two prometheus_client Counters and the exchange collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "manticore_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.orders_placed = Counter("manticore_orders_placed", "orders accepted", registry=self.registry)
        self.registry.register(_ExchangeCollector(SERVICE))

    def observe_request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


_REQUEST = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    st.sampled_from(["/api/orders", "/api/orders/{order_id}", "unmatched", '/odd"\\route\n']),
    st.sampled_from([200, 201, 400, 401, 404, 422, 500, 503]),
)
_OPERATION = st.one_of(
    st.tuples(st.just("request"), _REQUEST),
    st.tuples(st.just("placed"), st.integers(min_value=0, max_value=1_000)),
    st.tuples(st.just("render"), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(operations=st.lists(_OPERATION, max_size=40), created_off=st.booleans())
def test_exposition_matches_prometheus_counters(operations: list[tuple[str, Any]], created_off: bool) -> None:
    fake = _Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", fake)
        patch.setattr(prometheus_metrics, "_use_created", not created_off)
        tallies, model = Metrics(SERVICE), _Model()
        assert tallies.render()[0] == model.render()
        for step, (kind, argument) in enumerate(operations):
            fake.now = 1_733_000_000.25 + step * 0.5
            if kind == "request":
                tallies.observe_request(*argument)
                model.observe_request(*argument)
            elif kind == "placed":
                tallies.orders_placed.inc(argument)
                model.orders_placed.inc(argument)
            else:
                assert tallies.render()[0] == model.render()
        assert tallies.render()[0] == model.render()


def test_default_increment_and_refused_negative(clock: _Clock) -> None:
    tallies, model = Metrics(SERVICE), _Model()
    for _ in range(3):
        tallies.orders_placed.inc()
        model.orders_placed.inc()
    with pytest.raises(ValueError):
        tallies.orders_placed.inc(-1)
    assert tallies.render()[0] == model.render()
    assert b"manticore_orders_placed_total 3.0\n" in tallies.render()[0]


def test_scrape_while_new_series_appear() -> None:
    """The scrape runs on a worker thread while the loop counts new series: never an error."""
    tallies = Metrics(SERVICE)
    stop = threading.Event()
    failures: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                tallies.render()
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for index in range(20_000):
            tallies.observe_request("GET", f"/route/{index % 2_000}", 200 + index % 7)
    finally:
        stop.set()
        scraper.join()
    assert failures == []
    text = tallies.render()[0].decode()
    series = {(index % 2_000, index % 7) for index in range(20_000)}
    assert text.count("manticore_http_requests_total{") == len(series)
