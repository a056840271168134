"""What route handlers need: the service and the metrics from ``request.app.state`` (set by
``create_app``), read by plain calls (``service_of(request)``; a FastAPI dependency per handler would
cost several percent of a request), and the authenticated caller as a dependency (:data:`CurrentUser`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from manticore_auth import AuthError

from ..metrics import Metrics
from ..security import Caller, authenticate
from ..service import ExchangeService

__all__ = ["CurrentUser", "metrics_of", "require_admin", "service_of"]


def service_of(request: Request) -> ExchangeService:
    """The app's :class:`~manticore_api.service.ExchangeService`."""
    service: ExchangeService = request.app.state.service
    return service


def metrics_of(request: Request) -> Metrics:
    """The app's metrics registry."""
    metrics: Metrics = request.app.state.metrics
    return metrics


CurrentUser = Annotated[Caller, Depends(authenticate)]


def require_admin(caller: Caller) -> None:
    """AuthError ``forbidden`` unless the caller has the admin role."""
    if not caller.is_admin:
        raise AuthError("forbidden", "this needs the admin role")
