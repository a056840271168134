"""Binance spot REST routes under ``/binance/api/v3`` (filled in by the following commits)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI

from ..service import ExchangeService
from .klines import Klines
from .markets import BinanceMarkets

__all__ = ["install_rest"]

PREFIX = "/binance/api/v3"


def install_rest(app: FastAPI, service: ExchangeService, markets: BinanceMarkets, klines: Klines) -> None:
    """Add the REST routes to ``app``."""
    router = APIRouter(prefix=PREFIX, tags=["binance"])

    @router.get("/ping")
    async def ping() -> dict[str, Any]:
        return {}

    @router.get("/time")
    async def server_time() -> dict[str, Any]:
        return {"serverTime": int(time.time() * 1000)}

    app.include_router(router)
