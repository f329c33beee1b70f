"""A tiny self-contained bundle and clip for demos, tests and the load benchmark.

The "model" needs no training: logit = 30 * (brightest frame's mean intensity - 0.25),
relevance = per-frame mean intensity. It exercises every part of the service (eval
transform, batching, calibration, relevance mapping) at negligible model cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from labral.bundle import CLASS_NAMES, input_spec_from, write_bundle

DEMO_EVAL_SPEC = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 1}


class MeanIntensityNet(torch.nn.Module):
    """forward(x float32 (B,1,T,H,W)) -> (logits (B,), relevance (B,T))."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per_frame = x.mean(dim=(1, 3, 4))
        return 30.0 * (per_frame.amax(dim=1) - 0.25), per_frame


def make_demo_bundle(folder: str | Path) -> Path:
    """Write the mean-intensity bundle (eval transform 8 frames, 10 fps, 32x32) to ``folder``."""
    spec = {
        "model_name": "mean-intensity-test",
        "model_version": "0.0.1",
        "class_names": list(CLASS_NAMES),
        "eval_transform": DEMO_EVAL_SPEC,
        "input_spec": input_spec_from(DEMO_EVAL_SPEC),
        "temperature": 1.0,
        "threshold": 0.5,
        "threshold_rule": "fixed 0.5 (demo bundle, not trained)",
    }
    card = "# test bundle\n\nMean-intensity stand-in model for service tests; not a detector.\n"
    return write_bundle(folder, torch.jit.script(MeanIntensityNet()), spec, card)


def demo_frames(
    frames: int = 24, height: int = 48, width: int = 64, bright: bool = True
) -> np.ndarray:
    """uint8 (T, H, W): textured background, plus (``bright``) a blob peaking at frame T // 2."""
    rng = np.random.default_rng(frames * 7 + height)
    base = rng.integers(20, 60, (frames, height, width)).astype(np.float32)
    if bright:
        bump = np.exp(-0.5 * ((np.arange(frames) - frames // 2) / 2.0) ** 2)
        base[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] += (
            180.0 * bump[:, None, None] + 60.0
        )
    return np.clip(base, 0, 255).astype(np.uint8)
