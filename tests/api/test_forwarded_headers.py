"""uvicorn's proxy-headers middleware under ``manticore serve``'s config: applied by the app itself past
the order-entry fast path (access log off), by uvicorn around everything (access log on); either way
every other request sees the forwarded client and scheme."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from manticore_api import create_app
from manticore_api.fastpath import ExchangeApp
from manticore_api.server import ServerOptions, build_service, uvicorn_config


def _app(data_dir: Path) -> ExchangeApp:
    app = create_app(build_service(ServerOptions(data_dir=data_dir, fsync=False, require_auth=False)))

    async def probe(request: Request) -> JSONResponse:
        client = request.client
        return JSONResponse({"client": client.host if client else None, "scheme": request.url.scheme})

    app.router.routes.insert(0, Route("/probe", probe))
    return app


def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> Any:
    """One request from 127.0.0.1 straight into the ASGI app: (status, headers, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"exchange.test"), (b"content-length", b"%d" % len(body)), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"], answer["headers"] = message["status"], dict(message["headers"])
        else:
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["headers"], answer["body"]


FORWARDED = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"203.0.113.7")]


@pytest.mark.parametrize("access_log", [False, True])
def test_requests_past_the_fast_path_see_the_forwarded_client_and_scheme(
    tmp_path: Path, access_log: bool
) -> None:
    app = _app(tmp_path)
    config = uvicorn_config(app, "127.0.0.1", 8000, "warning", access_log=access_log)
    config.load()
    if access_log:  # uvicorn's middleware around everything, as uvicorn configures it by default
        assert config.proxy_headers and isinstance(config.loaded_app, ProxyHeadersMiddleware)
        assert app.forwarded_headers is None
    else:  # the app applies it itself
        assert not config.proxy_headers and config.loaded_app is app
        assert app.forwarded_headers is not None
    status, _, body = _call(config.loaded_app, "GET", "/probe", FORWARDED)
    assert (status, body) == (200, b'{"client":"203.0.113.7","scheme":"https"}')
    # Starlette's trailing-slash redirect names the scheme the client used.
    status, headers, _ = _call(config.loaded_app, "GET", "/api/orders/", FORWARDED)
    assert (status, headers[b"location"]) == (307, b"https://exchange.test/api/orders")
    # Without forwarded headers: the connection's own.
    status, _, body = _call(config.loaded_app, "GET", "/probe", [])
    assert (status, body) == (200, b'{"client":"127.0.0.1","scheme":"http"}')


def test_forwarded_headers_from_an_untrusted_client_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    app = _app(tmp_path)
    config = uvicorn_config(app, "127.0.0.1", 8000, "warning")
    config.load()
    status, _, body = _call(config.loaded_app, "GET", "/probe", FORWARDED)
    assert (status, body) == (200, b'{"client":"127.0.0.1","scheme":"http"}')
