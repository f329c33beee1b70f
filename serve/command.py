"""``labral serve bundle=<path> port=8000``: run the scoring service with uvicorn."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from labral.bundle import read_bundle_spec
from labral.serve.settings import ServeSettings

log = logging.getLogger("labral.serve")


def settings_from_config(cfg: DictConfig) -> ServeSettings:
    """Validate the ``serve`` config (minus Hydra's own keys) into settings.

    Raises:
        BadConfigError: a setting is wrong (named in the message).
    """
    values: dict[str, Any] = {}
    for key in cfg:
        if key in ("paths", "hydra"):
            continue
        value = cfg[key]  # resolves interpolations such as ${oc.env:LABRAL_API_KEY,null}
        values[str(key)] = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
    return ServeSettings.from_mapping(values)


def run(cfg: DictConfig) -> None:
    """Check the bundle cheaply, then serve until interrupted (uvicorn owns the loop).

    Raises:
        BadConfigError: bad settings (e.g. exposed host without api_key).
        IncompatibleBundleError: ``bundle`` is not a loadable bundle folder.
    """
    import uvicorn

    from labral.serve.http.app import create_app

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
