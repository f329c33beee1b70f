"""``create_app(settings)``: the FastAPI application of the scoring service.

The bundle is loaded in the lifespan, in a background thread, so /healthz answers at once
and /readyz turns 200 only when the model is loaded and warmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from labral.serve import routes_health, routes_predict
from labral.serve.errors import install_error_handlers
from labral.serve.metrics import ServeMetrics
from labral.serve.service import ScoringService
from labral.serve.settings import ServeSettings

STATIC_DIR = resources.files("labral.serve") / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'",
}
DOCS_CSP = "frame-ancestors 'none'"  # Swagger UI pulls its assets from a CDN


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the app; nothing is loaded until the lifespan starts.

    Args:
        settings: validated settings (``bundle`` must point at a bundle folder).

    Returns:
        The FastAPI app, ready for uvicorn or ``TestClient``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = ScoringService(settings, app.state.metrics)
        app.state.service = service

        async def load() -> None:
            await asyncio.to_thread(service.load)
            service.start()

        loading = asyncio.create_task(load())
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            await service.stop()

    app = FastAPI(
        title="labral scoring service",
        summary="Anterior hip labral detachment in cine ultrasound: research tool, not a diagnosis",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ServeMetrics()
    install_error_handlers(app)
    app.include_router(routes_predict.router)
    app.include_router(routes_health.router)
    _add_page(app, settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.middleware("http")
    async def count_and_harden(request: Request, call_next) -> Response:  # noqa: ANN001
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.metrics.requests.labels(route=path, status=str(response.status_code)).inc()
        app.state.metrics.latency.labels(route=path).observe(time.perf_counter() - start)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if path.startswith("/docs") or path.startswith("/redoc"):
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    return app


def _add_page(app: FastAPI, settings: ServeSettings) -> None:
    """The clinician page at / and its assets; optional read-only samples at /samples."""
    static = str(STATIC_DIR)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(f"{static}/index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    if settings.samples_dir is not None:
        app.mount("/samples", StaticFiles(directory=str(settings.samples_dir)), name="samples")
