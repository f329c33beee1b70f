"""ASGI factory for running several uvicorn workers without Hydra (see serve/README.md).

    LABRAL_BUNDLE=/models/bundle uvicorn --factory labral.serve.asgi:create_app_from_env \
        --workers 4 --host 0.0.0.0 --port 8000

Every ``ServeSettings`` field can be set as ``LABRAL_<FIELD>`` (e.g. ``LABRAL_API_KEY``,
``LABRAL_MAX_BATCH``); list fields take comma-separated values. The fields of the ``store``
settings are ``LABRAL_STORE_<FIELD>`` (``LABRAL_STORE_URL``, ``LABRAL_STORE_PSEUDONYM_KEY``).
The DICOM node runs under ``labral serve`` only: each uvicorn worker would bind its port.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from fastapi import FastAPI
from pydantic import BaseModel

from labral.errors import BadConfigError
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings, StoreSettings

PREFIX = "LABRAL_"


def settings_from_env(environ: dict[str, str] | None = None) -> ServeSettings:
    """Build settings from ``LABRAL_*`` variables.

    Raises:
        BadConfigError: ``LABRAL_BUNDLE`` missing or a value that does not validate.
    """
    env = dict(os.environ if environ is None else environ)
    if not env.get(PREFIX + "BUNDLE"):
        raise BadConfigError("LABRAL_BUNDLE is not set; point it at a bundle folder")
    values = _fields_from_env(ServeSettings, env, PREFIX, skip={"store", "dicom"})
    store = _fields_from_env(StoreSettings, env, PREFIX + "STORE_")
    if store:
        values["store"] = store
    return ServeSettings.from_mapping(values)


def _fields_from_env(
    model: type[BaseModel], env: dict[str, str], prefix: str, skip: Collection[str] = ()
) -> dict[str, object]:
    """``LABRAL_<FIELD>`` values for the flat fields of ``model`` (not validated yet)."""
    values: dict[str, object] = {}
    for name, field in model.model_fields.items():
        raw = env.get(prefix + name.upper())
        if raw is None or name in skip:
            continue
        values[name] = [v for v in raw.split(",") if v] if field.annotation == list[str] else raw
    return values


def create_app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (one per worker process)."""
    return create_app(settings_from_env())
