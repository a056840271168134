"""The order-entry fast path (:mod:`manticore_api.fastpath`) answers and counts exactly as the middleware
stack it skips: the same apps, one serving the lean routes directly and one through Starlette's stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware

from manticore_api import create_app
from manticore_api.app import MAX_BODY_BYTES
from manticore_api.fastpath import ExchangeApp
from manticore_api.server import ServerOptions, build_service
from tests.api.test_lean_orders import BODIES, _answer, _Side


def _app(data_dir: Path) -> ExchangeApp:
    return create_app(build_service(ServerOptions(data_dir=data_dir, fsync=False)))


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[_Side, _Side]]:
    fast_app, stack_app = _app(tmp_path / "fast"), _app(tmp_path / "stack")
    with TestClient(fast_app) as fast, TestClient(stack_app) as stack:
        assert fast_app.fast_path is not None
        stack_app.fast_path = None  # the same app, every request through the middleware stack
        yield _Side(fast, tmp_path / "fast"), _Side(stack, tmp_path / "stack")


def _request_counts(side: _Side) -> dict[str, float]:
    """The request counters of ``GET /metrics`` for the order routes (the scrape itself excluded)."""
    text = side.http.get("/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("manticore_http_requests_total{") and "/api/orders" in line
    }


def _both(sides: tuple[_Side, _Side], method: str, path: str, body: bytes | None, **kw: Any) -> list[Any]:
    answers = []
    for side in sides:
        headers = side.alice.headers(method, path, body or b"")
        headers.update(kw.get("headers", {}))
        for name in kw.get("drop", ()):
            headers.pop(name, None)
        answers.append(_answer(side.http.request(method, path, content=body, headers=headers)))
    return answers


def test_answers_and_metrics_match_the_middleware_stack(sides: tuple[_Side, _Side]) -> None:
    for body in BODIES:
        first, second = _both(sides, "POST", "/api/orders", body)
        assert first == second, body
    ids = [
        side.http.get("/api/orders", headers=side.alice.headers("GET", "/api/orders", b"")).json()["orders"][
            0
        ]["order_id"]
        for side in sides
    ]
    assert ids[0] == ids[1]
    order_id = ids[0]
    for method, path, body in (
        ("PATCH", f"/api/orders/{order_id}", b'{"new_quantity": "2"}'),
        ("PATCH", f"/api/orders/{order_id}", b"{broken"),
        ("PATCH", "/api/orders/MC-999999", b'{"new_quantity": "2"}'),
        ("DELETE", "/api/orders/MC-999999", None),
        ("DELETE", f"/api/orders/{order_id}", None),
        ("DELETE", f"/api/orders/{order_id}", None),
        ("POST", "/api/orders/", b"{}"),
        ("POST", "/api/orders?x=1", b'{"side": "buy", "price": "100", "quantity": "1"}'),
    ):
        first, second = _both(sides, method, path, body)
        assert first == second, (method, path, body)
        unsigned = [_answer(side.http.request(method, path, content=body)) for side in sides]
        assert unsigned[0] == unsigned[1], (method, path, body)
    assert _request_counts(sides[0]) == _request_counts(sides[1])
    assert any("201" in key for key in _request_counts(sides[0]))


def test_bodies_over_the_limit_and_chunked_bodies_are_answered_by_the_stack(
    sides: tuple[_Side, _Side],
) -> None:
    big = b'{"side": "buy", "price": "100", "quantity": "1", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    first, second = _both(sides, "POST", "/api/orders", big)
    assert first == second
    assert first[0] == 413 and first[3]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"side": "buy", "price": "100", '
        yield b'"quantity": "1"}'

    answers = []
    for side in sides:
        body = b'{"side": "buy", "price": "100", "quantity": "1"}'
        headers = side.alice.headers("POST", "/api/orders", body)
        answers.append(_answer(side.http.post("/api/orders", content=chunks(), headers=headers)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 201


def test_only_the_fast_path_serves_order_entry(tmp_path: Path) -> None:
    app = _app(tmp_path / "data")
    with TestClient(app) as http:
        side = _Side(http, tmp_path / "data")  # funds alice through the admin routes: the stack
        app.middleware_stack = None  # Starlette builds it again on the next request that needs it
        body = b'{"side": "buy", "price": "100", "quantity": "1"}'
        response = http.post(
            "/api/orders", content=body, headers=side.alice.headers("POST", "/api/orders", body)
        )
        assert response.status_code == 201, response.text
        order_id = response.json()["order_id"]
        path = f"/api/orders/{order_id}"
        assert http.delete(path, headers=side.alice.headers("DELETE", path, b"")).status_code == 200
        assert app.middleware_stack is None
        assert http.get("/api/health").status_code == 200
        assert app.middleware_stack is not None


def test_an_unhandled_error_is_a_500_and_raised_as_by_the_stack(
    sides: tuple[_Side, _Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failure no handler answers (a bug): injected, since no real request provokes one.
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("manticore_api.routes.orders.order_entry.place", broken)
    answers = []
    for side in sides:
        quiet = TestClient(side.http.app, raise_server_exceptions=False)
        body = b'{"side": "buy", "price": "100", "quantity": "1"}'
        response = quiet.post(
            "/api/orders", content=body, headers=side.alice.headers("POST", "/api/orders", body)
        )
        answers.append((response.status_code, response.text))
        with pytest.raises(RuntimeError, match="boom"):
            side.http.post(
                "/api/orders", content=body, headers=side.alice.headers("POST", "/api/orders", body)
            )
    assert answers[0] == answers[1] == (500, "Internal Server Error")
    assert _request_counts(sides[0]) == _request_counts(sides[1])


def test_no_fast_path_with_other_middleware(tmp_path: Path) -> None:
    app = _app(tmp_path / "data")

    async def passthrough(request: Any, call_next: Any) -> Any:
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=passthrough)
    with TestClient(app) as http:
        assert app.fast_path is None
        assert http.get("/api/health").status_code == 200


def test_the_apps_service_and_metrics_are_read_from_its_attributes_or_its_state(tmp_path: Path) -> None:
    """``service_of`` / ``metrics_of`` (and ``authenticate``) read the attributes ``create_app`` sets,
    the same objects as ``app.state``; an app without them is read through ``app.state``."""
    from starlette.requests import Request

    from manticore_api.routes.deps import metrics_of, service_of

    app = _app(tmp_path)
    try:
        assert app.exchange_service is app.state.service
        assert app.exchange_metrics is app.state.metrics
        request = Request({"type": "http", "app": app, "headers": []})
        assert service_of(request) is app.state.service
        assert metrics_of(request) is app.state.metrics
        bare = ExchangeApp()
        bare.state.service, bare.state.metrics = object(), object()
        request = Request({"type": "http", "app": bare, "headers": []})
        assert service_of(request) is bare.state.service  # type: ignore[comparison-overlap]
        assert metrics_of(request) is bare.state.metrics  # type: ignore[comparison-overlap]
    finally:
        app.state.service.exchange.close()
        app.state.service.auth.close()
