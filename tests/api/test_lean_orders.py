"""The lean order-entry routes answer exactly as the FastAPI routes they stand in for: the same status,
headers that matter and body, for good and bad requests; and the OpenAPI schema still documents them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from manticore_api import create_app
from manticore_api.routes.deps import LeanRoute
from manticore_api.server import ADMIN_CREDENTIALS, ServerOptions, build_service
from tests.api.support import SignedClient, new_user


def _app(data_dir: Path, *, lean: bool, require_auth: bool = True) -> FastAPI:
    service = build_service(ServerOptions(data_dir=data_dir, fsync=False, require_auth=require_auth))
    app = create_app(service)
    if not lean:
        app.router.routes[:] = [route for route in app.router.routes if not isinstance(route, LeanRoute)]
    return app


class _Side:
    """One app with its admin and a funded user ``alice``."""

    def __init__(self, http: TestClient, data_dir: Path) -> None:
        self.http = http
        credentials = json.loads((data_dir / ADMIN_CREDENTIALS).read_text())
        admin = SignedClient(http, credentials["api_key"], credentials["api_secret"])
        self.alice = new_user(admin, "alice", {"USD": "100000", "BTC": "10"})


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[_Side, _Side]]:
    with (
        TestClient(_app(tmp_path / "lean", lean=True)) as lean,
        TestClient(_app(tmp_path / "fastapi", lean=False)) as reference,
    ):
        yield _Side(lean, tmp_path / "lean"), _Side(reference, tmp_path / "fastapi")


_MASKED = ("timestamp", "created_at", "updated_at", "time", "expiry", "user_id")


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: ("<time>" if any(part in key for part in _MASKED) else _masked(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _answer(response: Any) -> tuple[int, str | None, str | None, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return (
        response.status_code,
        response.headers.get("content-type"),
        response.headers.get("allow"),
        _masked(body),
    )


def _send(side: _Side, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
    return side.http.request(method, path, content=body, headers=headers)


BODIES: list[bytes | None] = [
    b'{"side": "buy", "price": "100", "quantity": "1"}',
    b'{"side": "SELL", "price": 100.5, "quantity": 2, "client_order_id": "c-1"}',
    b'{"side": "buy", "quantity": "0.001"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "unknown_field": 1}',
    b'{"side": "sideways", "price": "100", "quantity": "1"}',
    b'{"side": "buy", "price": "100", "quantity": "-1"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "symbol": "NOPE/USD"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "time_in_force": "FOREVER"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "user_id": "somebody-else"}',
    b'{"side": "buy", "price": NaN, "quantity": "1"}',
    b'{"side": "buy", "price": 1e400, "quantity": "1"}',
    b'{"side": "buy", "price": "100", "quantity": 123456789012345678901234567890}',
    b'{"side": "buy", "price": "100", "quantity": "1", "client_order_id": "\\ud800"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "trail_is_percent": "yes"}',
    b'{"side": "buy", "side": "sell", "price": "100", "quantity": "1"}',
    b'{"side": "buy", "price": "100", "quantity": "1", "time_in_force": "GTD", "expiry_time": 1e300}',
    b'{"side": "buy", "price": "1", "quantity": "1", "time_in_force": "GTD", "expiry_time": '
    + b"9" * 21
    + b"}",
    b'{"side": "buy", ',
    b"[]",
    b'"not an object"',
    b"null",
    b"",
    None,
    b"\xff\xfe{",
    b'  {"side": "buy", "price": "100", "quantity": "1"}  ',
]


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.x+json; charset=utf-8", None])
def test_place_answers_match_fastapi(sides: tuple[_Side, _Side], content_type: str | None) -> None:
    for body in BODIES:
        answers = []
        for side in sides:
            headers = side.alice.headers("POST", "/api/orders", body or b"")
            if content_type is None:
                headers.pop("content-type", None)
            else:
                headers["content-type"] = content_type
            answers.append(_answer(_send(side, "POST", "/api/orders", body, headers)))
        assert answers[0] == answers[1], body


def test_text_plain_and_unauthenticated_answers_match_fastapi(sides: tuple[_Side, _Side]) -> None:
    for body in (b'{"side": "buy", "price": "100", "quantity": "1"}', b'{"side": ', b"", b"[]"):
        for headers in (
            {"content-type": "text/plain"},
            {"content-type": "application/json"},
            {"content-type": "application/json", "Authorization": "Basic xyz"},
            {"content-type": "application/json", "X-MC-APIKEY": "nope", "X-MC-TIMESTAMP": "1"},
        ):
            answers = [_answer(_send(side, "POST", "/api/orders", body, headers)) for side in sides]
            assert answers[0] == answers[1], (body, headers)


def test_modify_and_cancel_answers_match_fastapi(sides: tuple[_Side, _Side]) -> None:
    order = b'{"side": "buy", "price": "100", "quantity": "1", "client_order_id": "m-1"}'
    placed = []
    for side in sides:
        response = side.alice.http.post(
            "/api/orders", content=order, headers=side.alice.headers("POST", "/api/orders", order)
        )
        assert response.status_code == 201, response.text
        placed.append(response.json()["order_id"])
    assert placed[0] == placed[1]
    order_id = placed[0]
    requests: list[tuple[str, str, bytes | None]] = [
        ("PATCH", f"/api/orders/{order_id}", b'{"new_quantity": "2"}'),
        ("PATCH", f"/api/orders/{order_id}", b'{"new_price": "101", "new_quantity": "0.5"}'),
        ("PATCH", f"/api/orders/{order_id}", b"{}"),
        ("PATCH", f"/api/orders/{order_id}", b'{"new_price": "abc"}'),
        ("PATCH", f"/api/orders/{order_id}", b'{"extra": 1}'),
        ("PATCH", f"/api/orders/{order_id}", b"{broken"),
        ("PATCH", f"/api/orders/{order_id}", b""),
        ("PATCH", "/api/orders/MC-999999", b'{"new_quantity": "2"}'),
        ("DELETE", "/api/orders/MC-999999", None),
        ("DELETE", f"/api/orders/{order_id}", None),
        ("DELETE", f"/api/orders/{order_id}", None),
        ("PUT", "/api/orders", b"{}"),
        ("PUT", f"/api/orders/{order_id}", b"{}"),
        ("GET", f"/api/orders/{order_id}", None),
    ]
    for method, path, body in requests:
        answers = [
            _answer(_send(side, method, path, body, side.alice.headers(method, path, body or b"")))
            for side in sides
        ]
        assert answers[0] == answers[1], (method, path, body)
        unsigned = [_answer(_send(side, method, path, body, {})) for side in sides]
        assert unsigned[0] == unsigned[1], (method, path, body)


def test_open_mode_answers_match_fastapi(tmp_path: Path) -> None:
    with (
        TestClient(_app(tmp_path / "lean", lean=True, require_auth=False)) as lean,
        TestClient(_app(tmp_path / "fastapi", lean=False, require_auth=False)) as reference,
    ):
        for http in (lean, reference):
            deposit = {"user_id": "carol", "asset": "USD", "amount": "1000"}
            assert http.post("/api/deposits", json=deposit).status_code == 201
        for body in (
            {"side": "buy", "price": "100", "quantity": "1"},
            {"side": "buy", "price": "100", "quantity": "1", "user_id": "carol"},
            {"side": "buy", "price": "100", "quantity": "1", "user_id": "dave"},
        ):
            answers = [
                _answer(http.post("/api/orders", json=body, headers={"X-MC-User": "carol"}))
                for http in (lean, reference)
            ]
            assert answers[0] == answers[1], body


def test_json_response_falls_back_for_what_orjson_cannot_write() -> None:
    from decimal import Decimal

    from manticore_api.routes.deps import json_response

    assert json.loads(json_response({"a": 2**70, "b": Decimal("1.5")}).body) == {"a": 2**70, "b": "1.5"}
    assert json_response({"a": "é", "b": [1, None, True]}, 201).body == '{"a":"é","b":[1,null,true]}'.encode()


def test_the_lean_routes_serve_and_the_schema_is_unchanged(tmp_path: Path) -> None:
    lean_app = _app(tmp_path / "lean", lean=True)
    reference_app = _app(tmp_path / "fastapi", lean=False)
    lean_routes = [route for route in lean_app.router.routes if isinstance(route, LeanRoute)]
    assert {(route.path, *sorted(route.methods or ())) for route in lean_routes} == {
        ("/api/orders", "POST"),
        ("/api/orders/{order_id}", "PATCH"),
        ("/api/orders/{order_id}", "DELETE"),
    }
    routes = lean_app.router.routes
    for route in lean_routes:  # each stands right before the FastAPI route it replaces, so it answers
        following = routes[routes.index(route) + 1]
        assert isinstance(following, APIRoute)
        assert (following.path, following.methods) == (route.path, route.methods)
    with TestClient(lean_app) as lean, TestClient(reference_app) as reference:
        schema = lean.get("/openapi.json").json()
        assert schema == reference.get("/openapi.json").json()
        post = schema["paths"]["/api/orders"]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OrderIn")
        assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/OrderPlaced"
        )
        assert "patch" in schema["paths"]["/api/orders/{order_id}"]
        assert "delete" in schema["paths"]["/api/orders/{order_id}"]
        # the request metrics label the lean routes by their path template, as before
        lean.post("/api/orders", json={"side": "buy", "price": "1", "quantity": "1"})
        metrics = lean.get("/metrics").text
        assert 'route="/api/orders",status="401"' in metrics
