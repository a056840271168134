"""Public market data: the book, the markets and recent trades."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from .deps import service_of
from .errors import ERRORS

__all__ = ["router"]

router = APIRouter()


@router.get("/api/orderbook", tags=["market data"], responses=ERRORS)
async def orderbook(
    request: Request,
    symbol: Annotated[str, Query(max_length=40)] = "BTC/USD",
    depth: Annotated[int, Query(ge=0, le=10_000)] = 10,
) -> dict[str, Any]:
    """The book: bids and asks best first, with the sequence of the last event included
    (``depth=0`` is the whole book)."""
    service = service_of(request)
    return await service.reads.get_snapshot(symbol, depth or None)


@router.get("/api/markets", tags=["market data"], responses=ERRORS)
async def markets(
    request: Request,
) -> dict[str, Any]:
    """Every market with its tick size, lot size and fee rates."""
    service = service_of(request)
    return {"markets": [config.to_dict() for config in (await service.reads.markets()).values()]}


@router.get("/api/trades", tags=["market data"], responses=ERRORS)
async def trades(
    request: Request,
    symbol: Annotated[str, Query(max_length=40)] = "BTC/USD",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The market's recent trades, newest first."""
    service = service_of(request)
    return {"trades": await service.reads.recent_trades(symbol, limit)}
