"""Shared fixtures for the synthetic data set I/O tests: a small fake clip and tiny configs.

The fake clip lets the writer tests run without the generator physics: it follows
``types.SynthClip`` exactly. Data set tests use the real ``generate`` module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from labral.datasets.synth.types import SynthClip


def make_fake_clip(
    frames: int = 8, height: int = 48, width: int = 40, fps: float = 20.0, seed: int = 0
) -> SynthClip:
    """A positive-looking clip: smooth gradient + noise, a dark blob in the middle frames.

    Returns a ``SynthClip`` with uint8 (T, H, W) frames, a bool (T, H, W) extrusion mask
    and the extrusion frame indices.
    """
    rng = np.random.default_rng(seed)
    rows = np.linspace(40, 200, height, dtype=np.float32)[:, None]
    base = np.broadcast_to(rows, (height, width))
    video = base[None] + rng.normal(0.0, 12.0, (frames, height, width))
    mask = np.zeros((frames, height, width), dtype=bool)
    active = list(range(frames // 3, 2 * frames // 3 + 1))
    for t in active:
        mask[t, height // 3 : height // 2, width // 3 : width // 2] = True
    video[mask] = 5.0
    return SynthClip(
        frames=np.clip(video, 0, 255).astype(np.uint8),
        label=1,
        clip_type="positive",
        fps=fps,
        spacing_mm=(0.35, 0.3),
        extrusion_mask=mask,
        extrusion_frames=active,
        params={"center_freq_mhz": 9.0, "side": "R"},
    )


@pytest.fixture
def fake_clip() -> SynthClip:
    """An 8-frame 48x40 positive-looking fake clip at 20 fps."""
    return make_fake_clip()


@pytest.fixture
def synth_cfg(tmp_path: Path) -> DictConfig:
    """The real ``configs/synth.yaml`` composed by Hydra, shrunk to a tiny fast data set."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose(
            config_name="synth",
            return_hydra_config=True,
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"out={tmp_path / 'synth'}",
                "n_patients=6",
                "clip.frames=8",
                "clip.height=48",
                "clip.width=48",
                "workers=1",
                "preview=false",
            ],
        )
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} in paths resolves
    GlobalHydra.instance().clear()
    return cfg
