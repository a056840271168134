"""Operations: health (503 when degraded), Prometheus metrics and the garbage collector's pauses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..gcpolicy import GcPauseRecorder
from .deps import metrics_of, service_of

__all__ = ["router"]

router = APIRouter()


@router.get("/api/health", tags=["operations"])
async def health(
    request: Request,
) -> JSONResponse:
    """``status`` ok or degraded, and each component's state (503 when degraded)."""
    service = service_of(request)
    report = await run_in_threadpool(service.health)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def prometheus_metrics(
    request: Request,
) -> Response:
    """Prometheus text exposition."""
    metrics = metrics_of(request)
    # The exchange's counters are read at scrape time: a remote exchange's read must not block the loop.
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type)


@router.get("/api/metrics/gc", tags=["operations"])
async def gc_metrics(request: Request) -> dict[str, Any]:
    """The cyclic garbage collector since the server started serving: ``collections`` per generation,
    ``pauses`` (one per collection), ``total_pause_ms``, ``max_pause_ms``, ``pauses_over_10ms``, and
    the process's ``frozen_objects`` (see ``gc.freeze``) and ``thresholds``. Public, like /metrics."""
    recorder: GcPauseRecorder = request.app.state.gc_recorder
    return recorder.snapshot()
