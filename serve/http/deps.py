"""FastAPI dependencies: settings, the scoring service, bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from labral.serve.http.errors import UnauthorizedError
from labral.serve.service import ScoringService
from labral.serve.settings import ServeSettings


def get_settings(request: Request) -> ServeSettings:
    """The app's settings."""
    return request.app.state.settings


def get_service(request: Request) -> ScoringService:
    """The app's scoring service (loaded in the lifespan)."""
    return request.app.state.service


# Documents the scheme in OpenAPI (/docs gets an Authorize button); the check is ours, so a
# missing or wrong token answers 401 ``unauthorized`` in the service's error shape.
bearer = HTTPBearer(
    auto_error=False,
    description="the service's api_key; checked on scoring, results and DICOMweb before "
    "anything else in the request",
)


def document_security(schema: dict[str, Any], auth_required: bool) -> dict[str, Any]:
    """Make the OpenAPI document state the security of this configuration (in place).

    With an api_key every route that depends on :func:`require_api_key` keeps its bearer
    requirement and its 401 answer. Without one nothing is checked, so the document must not
    promise a check: the requirement, the 401 answers and the scheme itself are removed.

    Args:
        schema: the document FastAPI generated (``security`` on each keyed operation).
        auth_required: ``ServeSettings.auth_required``.

    Returns:
        ``schema``, changed in place (calling it twice changes nothing more).
    """
    if auth_required:
        return schema
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.pop("security", None) is not None:
                operation.get("responses", {}).pop(str(UnauthorizedError.http_status), None)
    schema.get("components", {}).pop("securitySchemes", None)
    return schema


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Check ``Authorization: Bearer <api_key>`` whenever a key is configured.

    Raises:
        UnauthorizedError: missing or wrong token.
    """
    settings: ServeSettings = request.app.state.settings
    if not settings.auth_required:
        return
    if credentials is None:
        raise UnauthorizedError("missing bearer token; send 'Authorization: Bearer <api key>'")
    if not key_matches(settings, credentials.credentials.strip()):
        raise UnauthorizedError("wrong API key")


def key_matches(settings: ServeSettings, given: str) -> bool:
    """Whether ``given`` is the configured API key (constant-time; every route checks here)."""
    return hmac.compare_digest(given.encode(), settings.api_key.encode())


ServiceDep = Annotated[ScoringService, Depends(get_service)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
