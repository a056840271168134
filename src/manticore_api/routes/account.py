"""The caller's own account: fills, balances, identity, API keys and the session."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from manticore_matching import InvalidCommand

from ..schemas import ApiKeyOut, LoginIn
from .deps import CurrentUser, service_of
from .errors import ERRORS

__all__ = ["router"]

router = APIRouter()


@router.get("/api/fills", tags=["account"], responses=ERRORS)
async def fills(
    request: Request,
    caller: CurrentUser,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The caller's fills, newest first: for each trade the caller was on, their own ``trade_id, symbol,
    order_id, client_order_id, side, role`` (maker/taker), ``price, quantity, fee`` (in ``fee_asset``,
    the market's quote asset) and ``timestamp``; never the counterparty's user or order."""
    service = service_of(request)
    if symbol is not None:
        await service.reads.require_market(symbol)
    return {"fills": await run_in_threadpool(service.exchange.fills, caller.user_id, symbol, limit)}


@router.get("/api/balances", tags=["account"], responses=ERRORS)
async def balances(request: Request, caller: CurrentUser) -> dict[str, Any]:
    """The caller's available and held amounts per asset."""
    service = service_of(request)
    return {"user_id": caller.user_id, **(await service.reads.balances(caller.user_id))}


@router.get("/api/me", tags=["account"], responses=ERRORS)
async def me(caller: CurrentUser) -> dict[str, Any]:
    return {"user_id": caller.user_id, "username": caller.username, "role": caller.role}


@router.post("/api/api-keys", tags=["account"], status_code=201, response_model=ApiKeyOut, responses=ERRORS)
async def create_api_key(request: Request, caller: CurrentUser) -> dict[str, Any]:
    """A new API key for the caller. The secret is in this answer only."""
    service = service_of(request)
    if not service.require_auth:
        raise InvalidCommand("API keys need authentication enabled")
    return dict(service.auth.create_api_key(caller.user_id))


@router.post("/api/session", tags=["account"], responses=ERRORS)
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    """Exchange a username and password for a session token (``Authorization: Bearer``)."""
    service = service_of(request)
    auth = service.auth
    token = await run_in_threadpool(auth.login, body.username, body.password)
    user = auth.get_user_by_name(body.username)
    assert user is not None
    return {"token": token, "user_id": user.user_id, "username": user.username, "role": user.role}


@router.delete("/api/session", tags=["account"], responses=ERRORS)
async def logout(request: Request, caller: CurrentUser) -> dict[str, Any]:
    service = service_of(request)
    _, _, token = request.headers.get("authorization", "").partition(" ")
    if token:
        service.auth.logout(token.strip())
    return {"status": "success"}
