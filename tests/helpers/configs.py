"""labral's real Hydra configs (``configs/<name>.yaml``) composed in a test, as a command would."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/<name>.yaml`` with ``overrides`` (Hydra's override syntax), no Hydra node."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
