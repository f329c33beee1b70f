"""/healthz, /readyz and /metrics (no API key: probes and scrapers, see serve/README.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from labral.serve.http.deps import ServiceDep
from labral.serve.http.errors import InternalError, error_responses
from labral.serve.http.schemas import Health, Readiness

router = APIRouter(tags=["health"], responses=error_responses(InternalError))
PROMETHEUS_RESPONSE = {
    "description": f"Prometheus text exposition format (Content-Type: {CONTENT_TYPE_LATEST})",
    "content": {
        "text/plain": {
            "schema": {"type": "string"},
            "example": "# TYPE labral_requests_total counter\n"
            'labral_requests_total{route="/v1/predictions",status="200"} 1.0\n',
        }
    },
}


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "the bundle failed to load: restart me"}},
)
async def healthz(service: ServiceDep) -> JSONResponse:
    """Process alive (200) unless the bundle failed to load (503: restart me)."""
    if service.load_error:
        return JSONResponse({"status": "failed", "error": service.load_error}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "loading, the bundle failed to load, or the DICOM node is down",
        }
    },
)
async def readyz(service: ServiceDep, request: Request) -> JSONResponse:
    """200 once the model is loaded and warmed (and the DICOM node, if enabled, listens)."""
    node = request.app.state.stateful.node_status()
    extra = {} if node is None else {"dicom": node}
    node_down = node is not None and not node["up"]
    if service.ready.is_set() and not node_down:
        return JSONResponse({"status": "ready", "model": service.bundle.identity(), **extra})
    status = "failed" if service.load_error or node_down else "loading"
    error = service.load_error or (node["error"] if node_down else None)
    return JSONResponse({"status": status, "error": error, **extra}, status_code=503)


# response_class=Response (no media type of its own): 200 is documented as text/plain only,
# and the error answers keep their application/json schema
@router.get("/metrics", response_class=Response, responses={200: PROMETHEUS_RESPONSE})
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
