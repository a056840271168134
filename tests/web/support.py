"""Helpers for the browser tests: the real server in a subprocess, signed API calls, the browser."""

from __future__ import annotations

from pathlib import Path

from tests.api.support import Server, SignedClient, free_port

__all__ = ["ARTIFACTS", "CHROMIUM", "SCREENSHOT", "Server", "create_user", "free_port"]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshot.png"


def create_user(
    admin: SignedClient, username: str, password: str, deposits: dict[str, str]
) -> dict[str, str]:
    """A funded trader with a password; returns the API's answer (user_id, api_key, api_secret)."""
    created = admin.post("/api/users", {"username": username, "password": password})
    assert created.status_code == 201, created.text
    user: dict[str, str] = created.json()
    for asset, amount in deposits.items():
        answer = admin.post("/api/deposits", {"user_id": user["user_id"], "asset": asset, "amount": amount})
        assert answer.status_code == 201, answer.text
    return user
