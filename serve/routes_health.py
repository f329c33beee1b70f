"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from labral.serve.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(service: ServiceDep) -> JSONResponse:
    """Process alive (200) unless the bundle failed to load (503: restart me)."""
    if service.load_error:
        return JSONResponse({"status": "failed", "error": service.load_error}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    """200 once the model is loaded and warmed, 503 before (or after a failed load)."""
    if service.ready.is_set():
        return JSONResponse({"status": "ready", "model": service.bundle.identity()})
    status = "failed" if service.load_error else "loading"
    return JSONResponse({"status": status, "error": service.load_error}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
