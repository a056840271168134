"""Clients for the API tests: signed requests with an API key, for in-process and real servers."""

from __future__ import annotations

import json
from typing import Any

import httpx

from manticore_auth import current_timestamp, sign_request


class SignedClient:
    """Sends requests signed with one API key (``X-MC-*`` headers) through an httpx-style client."""

    def __init__(self, http: Any, api_key: str, api_secret: str) -> None:
        self.http = http
        self.api_key = api_key
        self.api_secret = api_secret

    def headers(
        self, method: str, path: str, body: bytes = b"", timestamp: str | None = None
    ) -> dict[str, str]:
        stamp = timestamp or current_timestamp()
        return {
            "X-MC-APIKEY": self.api_key,
            "X-MC-TIMESTAMP": stamp,
            "X-MC-SIGNATURE": sign_request(self.api_secret, stamp, method, path, body),
            "content-type": "application/json",
        }

    def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        return self.http.request(method, path, content=body, headers=self.headers(method, path, body))

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return self.request("POST", path, payload)

    def patch(self, path: str, payload: Any) -> httpx.Response:
        return self.request("PATCH", path, payload)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)


def new_user(admin: SignedClient, username: str, deposits: dict[str, str] | None = None) -> SignedClient:
    """Create a trader through the admin API, fund it, and return a client signed with its key."""
    created = admin.post("/api/users", {"username": username, "password": f"{username}-password"})
    assert created.status_code == 201, created.text
    data = created.json()
    for asset, amount in (deposits or {}).items():
        response = admin.post("/api/deposits", {"user_id": data["user_id"], "asset": asset, "amount": amount})
        assert response.status_code == 201, response.text
    return SignedClient(admin.http, data["api_key"], data["api_secret"])
