"""``labral serve bundle=<path> port=8000``: run the scoring service with uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from omegaconf import DictConfig

import labral.settings
from labral.bundle import read_bundle_spec
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings

log = logging.getLogger("labral.serve")
#: ServeSettings' schema in Hydra's ConfigStore; configs/serve.yaml lists it first.
SCHEMA_NAME = "serve_schema"
#: composed keys that are not ServeSettings' (the paths group; ``hydra`` is always left out)
NOT_SETTINGS = ("paths",)

labral.settings.register_schema(SCHEMA_NAME, ServeSettings)


def settings_from_config(cfg: DictConfig) -> ServeSettings:
    """Validate the composed ``serve`` config into settings.

    Raises:
        BadConfigError: a setting is wrong (named in the message).
    """
    return labral.settings.settings_from_config(ServeSettings, cfg, ignore=NOT_SETTINGS)


def run(cfg: DictConfig) -> None:
    """Check the bundle cheaply, then serve until interrupted (uvicorn owns the loop).

    Raises:
        BadConfigError: bad settings (e.g. exposed host without api_key).
        IncompatibleBundleError: ``bundle`` is not a loadable bundle folder.
    """
    settings = settings_from_config(cfg)
    read_bundle_spec(settings.bundle)  # fail fast, before binding a port
    logging.basicConfig(level=settings.log_level.upper())
    log.info("serving %s on http://%s:%d", settings.bundle, settings.host, settings.port)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # access lines carry no identity, but keep logs lean
        timeout_graceful_shutdown=10,
    )
