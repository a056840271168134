"""Error answers: ``{"status": "error", "code", "message"}`` with a 4xx (503 when the journal cannot
write), for the exchange's and auth's errors, request validation and HTTP errors; and the documented
error responses of every route (:data:`ERRORS`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from manticore_auth import AuthError
from manticore_matching import ExchangeError

from ..schemas import ErrorOut

__all__ = ["ERRORS", "error", "install_error_handlers", "order_not_found"]

#: The error responses every route documents.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "invalid request"),
        (401, "missing or invalid credentials"),
        (403, "not allowed for this user"),
        (404, "unknown order, market or user"),
        (409, "already exists"),
        (413, "request body too large"),
        (422, "refused by a risk check (code says which)"),
        (429, "rate_limited: too many orders; retry after the Retry-After header's seconds"),
        (503, "the command journal cannot make the command durable"),
    )
}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error answer."""
    return JSONResponse(
        {"status": "error", "code": code, "message": message}, status_code=status, headers=headers
    )


def order_not_found(order_id: str) -> JSONResponse:
    """404 ``order_not_found`` for ``order_id``."""
    return error(404, "order_not_found", f"Order {order_id[:64]} not found")


def install_error_handlers(app: FastAPI) -> None:
    """Answer ExchangeError, AuthError, request validation errors (400 ``invalid``) and HTTP errors
    with the error answer."""

    @app.exception_handler(ExchangeError)
    async def exchange_error(_request: Request, exc: ExchangeError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(AuthError)
    async def auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors()[:5]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return error(400, "invalid", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "error")
        return error(exc.status_code, code, str(exc.detail))
