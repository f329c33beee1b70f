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


#: ``labral export`` overrides for a small input check (seconds, not a minute; no cache).
SMALL_CHECK = (
    "input_check.synthetic_valid_per_level=8",
    "input_check.wrong_per_kind=2",
    "input_check.epochs=2",
    "input_check.manifest_clips=8",
    "input_check.cache_dir=null",
)
#: ``labral export`` overrides for a bundle without an input check (tests of other things).
NO_CHECK = ("input_check.enabled=false",)
