"""Operations: health (503 when degraded) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .deps import AppMetrics, Service

__all__ = ["router"]

router = APIRouter()


@router.get("/api/health", tags=["operations"])
async def health(service: Service) -> JSONResponse:
    """``status`` ok or degraded, and each component's state (503 when degraded)."""
    report = await run_in_threadpool(service.health)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def prometheus_metrics(metrics: AppMetrics) -> Response:
    """Prometheus text exposition."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
