"""Fixtures for the model tests: every network built from its Hydra config, small and fast."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

MODEL_CONFIGS = ("compact", "cleft", "still_frame", "r2plus1d_18", "r3d_18", "mc3_18")


def _build_from_config(name: str) -> torch.nn.Module:
    path = resources.files("labral.configs") / "model" / f"{name}.yaml"
    return instantiate(OmegaConf.load(str(path))).eval()


@pytest.fixture
def build_model() -> Callable[[str], torch.nn.Module]:
    """``build_model(name)`` instantiates ``configs/model/<name>.yaml`` in eval mode."""
    return _build_from_config


@pytest.fixture(params=MODEL_CONFIGS)
def model_name(request: pytest.FixtureRequest) -> str:
    """Each model config name in turn."""
    return request.param


@pytest.fixture
def clip_shape(model_name: str) -> tuple[int, int, int, int, int]:
    """(B, 1, T, H, W) small enough for the video ResNets to run in a fraction of a second."""
    big = model_name in ("r2plus1d_18", "r3d_18", "mc3_18")
    return (2, 1, 8, 32, 32) if big else (2, 1, 12, 48, 48)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
