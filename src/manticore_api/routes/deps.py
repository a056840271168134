"""What route handlers depend on: the service, the metrics and the caller, from ``request.app.state``
(set by ``create_app``), as FastAPI dependencies that add nothing to the OpenAPI schema. They are
``async`` so that FastAPI calls them on the loop (a plain function would cost a thread-pool hop per
request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from manticore_auth import AuthError

from ..metrics import Metrics
from ..security import Caller, authenticate
from ..service import ExchangeService

__all__ = ["AppMetrics", "CurrentUser", "Service", "require_admin"]


async def service_of(request: Request) -> ExchangeService:
    """The app's :class:`~manticore_api.service.ExchangeService`."""
    service: ExchangeService = request.app.state.service
    return service


async def metrics_of(request: Request) -> Metrics:
    """The app's metrics registry."""
    metrics: Metrics = request.app.state.metrics
    return metrics


Service = Annotated[ExchangeService, Depends(service_of)]
AppMetrics = Annotated[Metrics, Depends(metrics_of)]
CurrentUser = Annotated[Caller, Depends(authenticate)]


def require_admin(caller: Caller) -> None:
    """AuthError ``forbidden`` unless the caller has the admin role."""
    if not caller.is_admin:
        raise AuthError("forbidden", "this needs the admin role")
