"""HTTP errors of the service and the ONE place that maps every error to a JSON response.

Every error leaves as ``{"error": {"code": <stable string>, "message": <what to do>}}`` with
the status carried by the error class (``labral.errors`` for input problems, the classes
below for HTTP-level ones). ``error_responses`` documents the same mapping in OpenAPI:
routes list the error classes they can answer with, and nothing else states a status.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labral.errors import (
    CorruptPixelDataError,
    LabralError,
    NotACineError,
    NotDicomError,
    NotUltrasoundError,
    OverLimitError,
    UnsupportedMediaError,
    UnsupportedTransferSyntaxError,
)
from labral.serve.http.schemas import ErrorBody

log = logging.getLogger("labral.serve")


class PayloadTooLargeError(LabralError):
    """The request body is larger than ``max_upload_bytes``."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaTypeError(LabralError):
    """The request's Content-Type is not one the endpoint accepts."""

    code = "unsupported_media_type"
    http_status = 415


class UnauthorizedError(LabralError):
    """Missing or wrong bearer token."""

    code = "unauthorized"
    http_status = 401


class RequestTimeoutError(LabralError):
    """The prediction took longer than ``request_timeout_s``."""

    code = "timeout"
    http_status = 503


class MissingFileError(LabralError):
    """A multipart request without a ``file`` part, or an empty body."""

    code = "missing_file"
    http_status = 400


class NotReadyError(LabralError):
    """The model is still loading or warming up."""

    code = "not_ready"
    http_status = 503


class BusyError(LabralError):
    """More requests in progress than ``max_pending``; the client should retry."""

    code = "busy"
    http_status = 503


class SrNeedsDicomError(LabralError):
    """``format=sr`` was asked for a video upload."""

    code = "sr_needs_dicom"
    http_status = 422


class SrSourceError(LabralError):
    """The DICOM source lacks what a Structured Report must copy (patient/study module)."""

    code = "sr_source_incomplete"
    http_status = 422


class InvalidRequestError(LabralError):
    """Query or form parameters that do not validate."""

    code = "invalid_request"
    http_status = 422


class StoreUnavailableError(LabralError):
    """The results store refused the row of this request; nothing is answered without it."""

    code = "store_unavailable"
    http_status = 503


class InternalError(LabralError):
    """A failure on the service side (the model raised); the message hides the internals."""

    code = "internal_error"
    http_status = 500


# What labral.datasets.io.reader.read_cine raises for a bad upload (its Raises: sections).
READER_ERRORS: tuple[type[LabralError], ...] = (
    NotDicomError,
    UnsupportedMediaError,
    UnsupportedTransferSyntaxError,
    NotUltrasoundError,
    NotACineError,
    CorruptPixelDataError,
    OverLimitError,
)
RETRY_AFTER_S = 5
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
# The headers an error answer carries, with their OpenAPI description.
_HEADERS: dict[type[LabralError], dict[str, tuple[str, str]]] = {
    UnauthorizedError: {"WWW-Authenticate": ("Bearer", "the authentication scheme to use")},
    **{
        cls: {"Retry-After": (str(RETRY_AFTER_S), "seconds to wait before retrying")}
        for cls in (RequestTimeoutError, NotReadyError, BusyError, StoreUnavailableError)
    },
}


def error_headers(error: type[LabralError]) -> dict[str, str]:
    """The headers sent with an error of this class (``WWW-Authenticate``, ``Retry-After``)."""
    return {name: value for name, (value, _) in _HEADERS.get(error, {}).items()}


def error_response(
    code: str, message: str, status: int, headers: dict | None = None
) -> JSONResponse:
    """The one JSON shape of every error."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def response_for(error: LabralError) -> JSONResponse:
    """Map a typed error to its response (status from the class, code stable)."""
    return error_response(
        error.code, error.message, error.http_status, error_headers(type(error)) or None
    )


def _summary(error: type[LabralError]) -> str:
    return (error.__doc__ or error.code).strip().splitlines()[0].replace("``", "`")


def error_responses(*errors: type[LabralError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route can answer with.

    One entry per status: the JSON error schema (``ErrorBody``), a description listing
    each stable code, one example per code and the headers those errors carry.

    Args:
        errors: the error classes the route raises (status and code come from the class).

    Returns:
        A mapping for the ``responses=`` argument of a FastAPI route or router.
    """
    by_status: dict[int, list[type[LabralError]]] = {}
    for error in dict.fromkeys(errors):
        by_status.setdefault(error.http_status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        examples = {
            e.code: {
                "summary": _summary(e),
                "value": {"error": {"code": e.code, "message": _summary(e)}},
            }
            for e in group
        }
        headers = {
            name: {"description": text, "schema": {"type": "string"}, "example": value}
            for e in group
            for name, (value, text) in _HEADERS.get(e, {}).items()
        }
        responses[status] = {
            "model": ErrorBody,
            "description": "\n".join(f"- `{e.code}`: {_summary(e)}" for e in group),
            "content": {"application/json": {"examples": examples}},
            **({"headers": headers} if headers else {}),
        }
    return responses


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; routes raise typed errors and never build error JSON."""

    async def on_labral(request: Request, exc: LabralError) -> JSONResponse:
        app.state.metrics.errors.labels(code=exc.code).inc()
        return response_for(exc)

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        error = InvalidRequestError(f"{where}: {first.get('msg', 'invalid request')}")
        return await on_labral(request, error)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        app.state.metrics.errors.labels(code=code).inc()
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = f"{message}: {request.method} {request.url.path}; the API is listed at /docs"
        # keep the exception's headers: a 405 carries the Allow header Starlette computed
        return error_response(code, message, exc.status_code, exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # last resort (Starlette still logs the traceback); routes map known failures first
        app.state.metrics.errors.labels(code=InternalError.code).inc()
        return response_for(InternalError("unexpected server error; it was logged"))

    app.add_exception_handler(LabralError, on_labral)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
