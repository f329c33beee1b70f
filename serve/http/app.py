"""``create_app(settings)``: the FastAPI application of the scoring service.

The bundle is loaded in the lifespan, in a background thread, so /healthz answers at once
and /readyz turns 200 only when the model is loaded and warmed. The same lifespan opens the
results store and runs the DICOM node, the intake and the forwarder (``serve/stateful.py``),
and owns the live sessions' worker pools: at shutdown the rows of sessions still being
finished are stored (up to ``request_timeout_s``), then the pools are shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labral.serve.dicom import dicomweb
from labral.serve.http import health, predictions, results
from labral.serve.http.deps import document_security
from labral.serve.http.errors import install_error_handlers
from labral.serve.http.prometheus import ServeMetrics
from labral.serve.service import ScoringService
from labral.serve.settings import ServeSettings
from labral.serve.stateful import run_stateful
from labral.serve.stream.hub import StreamHub
from labral.serve.stream.route import install_stream

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
        hub: StreamHub = app.state.stream_hub
        hub.start()

        async def load() -> None:
            await asyncio.to_thread(service.load)
            service.start()

        loading = asyncio.create_task(load())
        try:
            async with run_stateful(settings, service) as stateful:
                app.state.stateful = stateful
                try:
                    yield
                finally:  # live sessions' rows need the batcher and the store: both still up
                    await hub.drain(settings.request_timeout_s)
        finally:
            if not loading.done():
                loading.cancel()
            await service.stop()
            hub.stop()

    app = FastAPI(
        title="labral scoring service",
        summary="Anterior hip labral detachment in cine ultrasound: research tool, not a diagnosis",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ServeMetrics()
    install_error_handlers(app)
    app.include_router(predictions.router)
    app.include_router(health.router)
    app.include_router(results.router)
    app.include_router(dicomweb.router)
    install_stream(app, settings.stream)  # WS /v1/stream and /v1/stream/watch (docs/streaming.md)
    hub: StreamHub = app.state.stream_hub
    app.state.metrics.stream_sessions.set_function(lambda: hub.open_sessions)
    _add_page(app, settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    app.add_middleware(MetricsAndHeaders, metrics=app.state.metrics)
    generated_openapi = app.openapi  # FastAPI's own, cached in app.openapi_schema

    def openapi() -> dict[str, Any]:
        return document_security(generated_openapi(), settings.auth_required)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class MetricsAndHeaders:
    """Pure ASGI middleware: request counts and latency per route, security headers."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = MutableHeaders(scope=message)
                path = getattr(scope.get("route"), "path", "")
                for key, value in SECURITY_HEADERS.items():
                    if key not in headers:
                        headers[key] = value
                if path.startswith(("/docs", "/redoc")):
                    headers["Content-Security-Policy"] = DOCS_CSP
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route=path, status=str(status["code"])).inc()
            self.metrics.latency.labels(route=path).observe(time.perf_counter() - start)


def _add_page(app: FastAPI, settings: ServeSettings) -> None:
    """The clinician page at / and its assets; optional read-only samples at /samples."""
    static = str(STATIC_DIR)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(f"{static}/index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    if settings.samples_dir is not None:
        app.mount("/samples", StaticFiles(directory=str(settings.samples_dir)), name="samples")
