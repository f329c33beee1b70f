"""ASGI factory for running several uvicorn workers without Hydra (see serve/README.md).

    LABRAL_BUNDLE=/models/bundle uvicorn --factory labral.serve.asgi:create_app_from_env \
        --workers 4 --host 0.0.0.0 --port 8000

The variables are derived from ``ServeSettings``' fields, nothing is listed here: a field
``<name>`` is ``LABRAL_<NAME>`` (``LABRAL_API_KEY``, ``LABRAL_MAX_BATCH``) and a field of a
part is ``LABRAL_<PART>_<NAME>`` (``LABRAL_STORE_URL``, ``LABRAL_STORE_RETENTION_DAYS``); list
fields take comma-separated values. Two are left out: the ``dicom`` part (the DICOM node runs
under ``labral serve`` only: each uvicorn worker would bind its port) and
``store.pseudonym_key``, which is ``$LABRAL_PSEUDONYM_KEY`` for every command
(``serve/dicom/pseudonym.py`` reads it, and still the deprecated
``$LABRAL_STORE_PSEUDONYM_KEY``, with a warning).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from labral.errors import BadConfigError
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from labral.settings import settings_from_config

PREFIX = "LABRAL_"
#: settings that no variable sets (dotted paths into ServeSettings), and why: see above
NOT_FROM_ENV = ("dicom", "store.pseudonym_key")


def env_names(
    model: type[BaseModel] = ServeSettings, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """(variable name, path of the field, its annotation) for every field a variable sets."""
    for name, field in model.model_fields.items():
        where = (*path, name)
        if ".".join(where) in NOT_FROM_ENV:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from env_names(annotation, where)
        else:
            yield PREFIX + "_".join(where).upper(), where, annotation


def settings_from_env(environ: Mapping[str, str] | None = None) -> ServeSettings:
    """Build settings from ``LABRAL_*`` variables (unset ones keep the model's defaults).

    Raises:
        BadConfigError: ``LABRAL_BUNDLE`` missing or a value that does not validate.
    """
    env = os.environ if environ is None else environ
    if not env.get(PREFIX + "BUNDLE"):
        raise BadConfigError("LABRAL_BUNDLE is not set; point it at a bundle folder")
    values: dict[str, Any] = {}
    for variable, (*parts, name), annotation in env_names():
        raw = env.get(variable)
        if raw is None:
            continue
        node = values
        for part in parts:
            node = node.setdefault(part, {})
        node[name] = [item for item in raw.split(",") if item] if annotation == list[str] else raw
    return settings_from_config(ServeSettings, values)


def create_app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (one per worker process)."""
    return create_app(settings_from_env())
