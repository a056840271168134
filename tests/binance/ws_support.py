"""Helpers for the Binance WebSocket tests: client configuration, funded traders and order flow.

Everything runs against a real ``manticore serve`` subprocess (tests/api/support.py); traders are created
and funded through the native API, as an operator would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from tests.api.support import Server, SignedClient, new_user

T = TypeVar("T")

FUNDS = {"USD": "5000000", "BTC": "100", "ETH": "1000"}


def ccxt_config(server: Server, api_key: str | None = None, secret: str | None = None) -> dict[str, Any]:
    """The constructor dict that points ccxt (sync, async and pro) at ``server``'s Binance surface."""
    rest = f"{server.url}/binance"
    ws = f"ws://127.0.0.1:{server.port}/binance"
    config: dict[str, Any] = {
        "urls": {
            "api": {
                "public": rest + "/api/v3",
                "private": rest + "/api/v3",
                "v1": rest + "/api/v1",
                "sapi": rest + "/sapi/v1",
                "ws": {"spot": ws + "/ws", "margin": ws + "/ws", "ws-api": {"spot": ws + "/ws-api/v3"}},
            }
        },
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
        },
    }
    if api_key is not None:
        config["apiKey"] = api_key
        config["secret"] = secret
    return config


def traders(server: Server, http: httpx.Client, *names: str) -> list[SignedClient]:
    """New funded users (native API) named ``names``."""
    admin = server.admin(http)
    return [new_user(admin, name, FUNDS) for name in names]


def user_id_of(client: SignedClient) -> str:
    response = client.get("/api/me")
    assert response.status_code == 200, response.text
    return str(response.json()["user_id"])


def place(
    client: SignedClient, side: str, price: str, quantity: str, symbol: str = "BTC/USD"
) -> dict[str, Any]:
    """Place a limit order through the native API; the answer's JSON. Like a real client, it waits and
    sends again when the per-user order rate limit answers 429 (``Retry-After`` seconds)."""
    body = {"symbol": symbol, "side": side, "price": price, "quantity": quantity}
    response = client.post("/api/orders", body)
    for _ in range(5):
        if response.status_code != 429:
            break
        time.sleep(float(response.headers["Retry-After"]))
        response = client.post("/api/orders", body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def trade_randomly(alice: SignedClient, bob: SignedClient, orders: int, seed: int) -> int:
    """Two users place crossing limit orders around 30000 and cancel some; returns the orders placed."""
    rng = random.Random(seed)
    resting: list[tuple[SignedClient, str]] = []
    for _ in range(orders):
        who = rng.choice([alice, bob])
        price = Decimal("30000") + Decimal("0.5") * rng.randint(-30, 30)
        quantity = Decimal("0.001") * rng.randint(1, 300)
        placed = place(who, rng.choice(["buy", "sell"]), str(price), str(quantity))
        if placed["order"]["status"] in ("open", "partially_filled"):
            resting.append((who, placed["order_id"]))
        if resting and rng.random() < 0.25:
            owner, order_id = resting.pop(rng.randrange(len(resting)))
            assert owner.delete(f"/api/orders/{order_id}").status_code in (200, 404)
    return orders


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Call ``probe`` until ``accept`` holds for its result; the last result (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s; last value {value!r}"[:2000])
        await asyncio.sleep(0.05)


async def book_at(exchange: Any, symbol: str, nonce: int, timeout: float = 15.0) -> Any:
    """ccxt.pro's local book of ``symbol`` once it has reached update id ``nonce`` (it may pass it)."""
    deadline = time.monotonic() + timeout
    while True:
        book = exchange.orderbooks.get(symbol)
        if book is not None and book["nonce"] is not None and book["nonce"] >= nonce:
            return book
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the book of {symbol} did not reach update id {nonce}")
        try:
            await asyncio.wait_for(exchange.watch_order_book(symbol), remaining)
        except asyncio.TimeoutError:
            continue


async def until(read: Callable[[], T | None], accept: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Poll ``read`` (e.g. a ccxt.pro cache, which its connection keeps current) until ``accept`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None and accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s; last value {value!r}"[:2000])
        await asyncio.sleep(0.05)
