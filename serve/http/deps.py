"""FastAPI dependencies: settings, the scoring service, bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated

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
    description="the service's api_key; checked on POST /v1/predictions whenever one is set",
)


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
    if not hmac.compare_digest(credentials.credentials.strip().encode(), settings.api_key.encode()):
        raise UnauthorizedError("wrong API key")


ServiceDep = Annotated[ScoringService, Depends(get_service)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
