"""Order entry and order reads: ``/api/orders...``. Commands are answered once they are durable.

Placing, modifying and cancelling an order by id are the hot path: :data:`LEAN_ROUTES` serve them as
plain Starlette routes (body parsed with orjson, validated by a cached pydantic TypeAdapter of the same
model, the caller authenticated by the same function, the answer serialized with orjson), which
``create_app`` puts just before the FastAPI routes below. Those stay declared, unreached, so that the
OpenAPI schema documents the endpoints as before; the answers, status codes and error bodies are the
same (tests/api/test_lean_orders.py compares the two paths).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import order_entry
from ..plainorder import plain_fields
from ..schemas import ModifyIn, OrderIn, OrderPlaced
from ..security import Caller, authenticate
from .deps import (
    CurrentUser,
    LeanRoute,
    json_response,
    metrics_of,
    read_json_body,
    service_of,
    validated_body,
)
from .errors import ERRORS, error, order_not_found

__all__ = ["LEAN_ROUTES", "router"]

router = APIRouter()


@router.post("/api/orders", status_code=201, response_model=OrderPlaced, responses=ERRORS, tags=["orders"])
async def place_order(request: Request, body: OrderIn, caller: CurrentUser) -> dict[str, Any]:
    """Place an order; answered when it is durable. 422 when risk refuses it (``code`` says why)."""
    return await _place(request, body, caller)


async def _place(request: Request, body: OrderIn | dict[str, Any], caller: Caller) -> dict[str, Any]:
    service = service_of(request)
    submitted = order_entry.place(service, caller, body)
    await service.durable(submitted.position)
    metrics_of(request).orders_placed.inc()
    return submitted.body


@router.get("/api/orders", tags=["orders"], responses=ERRORS)
async def open_orders(
    request: Request, caller: CurrentUser, symbol: Annotated[str | None, Query(max_length=40)] = None
) -> dict[str, Any]:
    """The caller's live orders (resting and untriggered stops)."""
    service = service_of(request)
    return {"orders": await service.reads.open_orders(caller.user_id, symbol)}


@router.get("/api/orders/history", tags=["orders"], responses=ERRORS)
async def order_history(
    request: Request,
    caller: CurrentUser,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The caller's orders of every status, newest first."""
    service = service_of(request)
    if symbol is not None:
        await service.reads.require_market(symbol)
    orders = await run_in_threadpool(service.exchange.order_history, caller.user_id, symbol, limit)
    return {"orders": orders}


@router.get(
    "/api/orders/by-client-id/{client_order_id}", tags=["orders"], responses=ERRORS, response_model=None
)
async def get_order_by_client_id(
    request: Request, client_order_id: str, caller: CurrentUser
) -> dict[str, Any] | JSONResponse:
    """The caller's newest order with this ``client_order_id`` (live or finished); 404 if none. Other
    users' client order ids are never seen."""
    service = service_of(request)
    order = await run_in_threadpool(service.exchange.get_order_by_client_id, caller.user_id, client_order_id)
    if order is None:
        return error(404, "order_not_found", f"no order with client_order_id {client_order_id[:64]!r}")
    return {"status": "success", "order": order}


@router.delete("/api/orders/by-client-id/{client_order_id}", tags=["orders"], responses=ERRORS)
async def cancel_order_by_client_id(
    request: Request, client_order_id: str, caller: CurrentUser
) -> dict[str, Any]:
    """Cancel the caller's live order with this ``client_order_id``: 200, or 404 if there is none."""
    service = service_of(request)
    submitted = order_entry.cancel_by_client_id(service, caller, client_order_id)
    await service.durable(submitted.position)
    return submitted.body


@router.get("/api/orders/{order_id}", tags=["orders"], responses=ERRORS, response_model=None)
async def get_order(request: Request, order_id: str, caller: CurrentUser) -> dict[str, Any] | JSONResponse:
    """One of the caller's orders, live or finished."""
    service = service_of(request)
    order = await service.reads.get_order(None if caller.is_admin else caller.user_id, order_id)
    if order is None:
        return order_not_found(order_id)
    return {"status": "success", "order": order}


@router.patch("/api/orders/{order_id}", tags=["orders"], responses=ERRORS)
async def modify_order(
    request: Request, order_id: str, body: ModifyIn, caller: CurrentUser
) -> dict[str, Any]:
    """Change price, total quantity or expiry of a live order (see docs/orderbook.md for priority)."""
    return await _modify(request, order_id, body, caller)


async def _modify(request: Request, order_id: str, body: ModifyIn, caller: Caller) -> dict[str, Any]:
    service = service_of(request)
    submitted = order_entry.modify(service, caller, order_id, body)
    await service.durable(submitted.position)
    return submitted.body


@router.delete("/api/orders/{order_id}", tags=["orders"], responses=ERRORS)
async def cancel_order(request: Request, order_id: str, caller: CurrentUser) -> dict[str, Any]:
    """Cancel a live order: 200, or 404 if the caller has no such live order."""
    return await _cancel(request, order_id, caller)


async def _cancel(request: Request, order_id: str, caller: Caller) -> dict[str, Any]:
    service = service_of(request)
    submitted = order_entry.cancel(service, caller, order_id)
    await service.durable(submitted.position)
    return submitted.body


# ---------------------------------------------------------------------- the lean hot path

_ORDER_IN: TypeAdapter[OrderIn] = TypeAdapter(OrderIn)
_MODIFY_IN: TypeAdapter[ModifyIn] = TypeAdapter(ModifyIn)


async def _place_order_lean(request: Request) -> Response:
    # FastAPI's order: the body is read and parsed first (400 for broken JSON), then the caller is
    # authenticated (401), then the body validated (400).
    raw = await read_json_body(request)
    caller = await authenticate(request)
    # A plain body's field values as pydantic would hold them (no model built: order_entry.place reads
    # the fields); anything else validated by pydantic.
    fields = plain_fields(raw)
    if fields is None:
        fields = validated_body(_ORDER_IN, raw).__dict__
    return json_response(await _place(request, fields, caller), 201)


async def _modify_order_lean(request: Request) -> Response:
    raw = await read_json_body(request)
    caller = await authenticate(request)
    body = validated_body(_MODIFY_IN, raw)
    return json_response(await _modify(request, request.path_params["order_id"], body, caller))


async def _cancel_order_lean(request: Request) -> Response:
    caller = await authenticate(request)
    return json_response(await _cancel(request, request.path_params["order_id"], caller))


#: (the FastAPI endpoint it stands in for, the lean route): ``create_app`` puts each lean route
#: right before its FastAPI route, so that routing (and the 405 answers' Allow header) is unchanged.
LEAN_ROUTES: tuple[tuple[Any, LeanRoute], ...] = (
    (place_order, LeanRoute("/api/orders", _place_order_lean, methods=["POST"])),
    (modify_order, LeanRoute("/api/orders/{order_id}", _modify_order_lean, methods=["PATCH"])),
    (cancel_order, LeanRoute("/api/orders/{order_id}", _cancel_order_lean, methods=["DELETE"])),
)
