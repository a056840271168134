"""Helpers for the Binance REST tests: a real server with two funded traders, and client configurations
exactly as docs/binance.md gives them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.api.support import Server, SignedClient, new_user


@dataclass
class Trader:
    """A user created and funded through the native API, with its Manticore key (used for both surfaces)."""

    user_id: str
    api_key: str
    api_secret: str
    native: SignedClient

    def balances(self) -> dict[str, dict[str, str]]:
        """The native API's view of the user's balances: ``{asset: {"available", "held"}}``."""
        response = self.native.get("/api/balances")
        assert response.status_code == 200, response.text
        return dict(response.json()["balances"])


def make_trader(admin: SignedClient, username: str, deposits: dict[str, str]) -> Trader:
    client = new_user(admin, username, deposits)
    me = client.get("/api/me").json()
    return Trader(me["user_id"], client.api_key, client.api_secret, client)


def ccxt_config(base_url: str, trader: Trader | None = None) -> dict[str, Any]:
    """The ccxt constructor dict of docs/binance.md for a server at ``base_url`` (``http://host:port``)."""
    rest = f"{base_url}/binance"
    ws = rest.replace("http://", "ws://")
    config: dict[str, Any] = {
        "urls": {
            "api": {
                "public": f"{rest}/api/v3",
                "private": f"{rest}/api/v3",
                "v1": f"{rest}/api/v1",
                "sapi": f"{rest}/sapi/v1",
                "ws": {"spot": f"{ws}/ws", "margin": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}},
            }
        },
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
        },
    }
    if trader is not None:
        config["apiKey"] = trader.api_key
        config["secret"] = trader.api_secret
    return config


@dataclass
class Venue:
    """A running server, its admin client and two funded traders."""

    server: Server
    http: httpx.Client
    admin: SignedClient
    alice: Trader
    bob: Trader

    @property
    def url(self) -> str:
        return self.server.url


def start_venue(tmp: Path, extra: tuple[str, ...] = ()) -> Iterator[Venue]:
    """Start ``manticore serve`` on a fresh data directory and yield a :class:`Venue` (stopped after)."""
    server = Server(tmp / "data", extra)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            admin = server.admin(http)
            funds = {"USD": "1000000", "BTC": "100", "ETH": "1000"}
            alice = make_trader(admin, "alice", funds)
            bob = make_trader(admin, "bob", funds)
            yield Venue(server, http, admin, alice, bob)
    finally:
        server.stop()
