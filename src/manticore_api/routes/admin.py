"""Administration (admin role): deposits, withdrawals, new markets, users and their API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from manticore_auth import AuthError, User
from manticore_matching import ConfigError, InvalidCommand, MarketConfig, Receipt

from ..schemas import DepositIn, MarketIn, UserIn
from ..service import ExchangeService
from .deps import CurrentUser, require_admin, service_of
from .errors import ERRORS

__all__ = ["router"]

router = APIRouter()


async def _transfer(service: ExchangeService, receipt: Receipt, user_id: str) -> dict[str, Any]:
    await service.durable(receipt.position)
    return {"status": "success", "user_id": user_id, **(await service.reads.balances(user_id))}


@router.post("/api/deposits", tags=["admin"], status_code=201, responses=ERRORS)
async def deposit(request: Request, body: DepositIn, caller: CurrentUser) -> dict[str, Any]:
    """Credit a user's balance (admin)."""
    service = service_of(request)
    require_admin(caller)
    receipt = service.exchange.deposit(body.user_id, body.asset, body.amount)
    return await _transfer(service, receipt, body.user_id)


@router.post("/api/withdrawals", tags=["admin"], status_code=201, responses=ERRORS)
async def withdraw(request: Request, body: DepositIn, caller: CurrentUser) -> dict[str, Any]:
    """Debit a user's available balance (admin)."""
    service = service_of(request)
    require_admin(caller)
    receipt = service.exchange.withdraw(body.user_id, body.asset, body.amount)
    return await _transfer(service, receipt, body.user_id)


@router.post("/api/markets", tags=["admin"], status_code=201, responses=ERRORS)
async def create_market(request: Request, body: MarketIn, caller: CurrentUser) -> dict[str, Any]:
    """Open a new market (admin)."""
    service = service_of(request)
    require_admin(caller)
    try:
        config = MarketConfig.from_dict(body.model_dump())
    except ConfigError as exc:
        raise InvalidCommand(str(exc)) from None
    receipt = service.exchange.create_market(config)
    await service.durable(receipt.position)
    return {"status": "success", "market": config.to_dict()}


@router.post("/api/users", tags=["admin"], status_code=201, responses=ERRORS)
async def create_user(request: Request, body: UserIn, caller: CurrentUser) -> dict[str, Any]:
    """Create a user with an API key (admin). The key's secret is in this answer only."""
    service = service_of(request)
    require_admin(caller)
    auth = service.auth
    user = auth.create_user(body.username, role=body.role)
    if body.password is not None:
        await run_in_threadpool(auth.set_password, user.user_id, body.password)
    credentials = auth.create_api_key(user.user_id)
    return {"user_id": user.user_id, "username": user.username, "role": user.role, **credentials}


def _find_user(service: ExchangeService, user: str) -> User:
    found = service.auth.get_user(user) or service.auth.get_user_by_name(user)
    if found is None:
        raise AuthError("unknown_user", f"no user is named {user[:64]!r} or has that id")
    return found


@router.get("/api/users/{user}", tags=["admin"], responses=ERRORS)
async def get_user(request: Request, user: str, caller: CurrentUser) -> dict[str, Any]:
    """A user by id or username (admin)."""
    service = service_of(request)
    require_admin(caller)
    found = _find_user(service, user)
    return {"user_id": found.user_id, "username": found.username, "role": found.role}


@router.post("/api/users/{user}/api-keys", tags=["admin"], status_code=201, responses=ERRORS)
async def create_user_api_key(request: Request, user: str, caller: CurrentUser) -> dict[str, Any]:
    """A new API key for a user given by id or username (admin). The secret is in this answer only."""
    service = service_of(request)
    require_admin(caller)
    found = _find_user(service, user)
    return {
        "user_id": found.user_id,
        "username": found.username,
        **service.auth.create_api_key(found.user_id),
    }
