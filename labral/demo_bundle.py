"""The toy bundle: a hand-written brightness scorer for demos, tests and the load benchmarks.

The model needs no training. By default (the demo bundle) logit = 30 * (brightest frame's
mean intensity - 0.25) and relevance = per-frame mean intensity: it exercises every part of
the service (eval transform, batching, calibration, relevance mapping) at negligible model
cost. Its knobs give the tests the other behaviours they assert on (a clip's mean, how much
one frame stands out, the contrast of a region), so every toy bundle is this one model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.bundle import input_spec_from, write_bundle
from labral.input_check.check import InputCheck
from labral.labels import CLASS_NAMES

DEMO_EVAL_SPEC = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 1}
DEMO_CARD = "# test bundle\n\nMean-intensity stand-in model for service tests; not a detector.\n"
#: How :class:`BrightnessScorer` summarises a clip's relevance (B, T) into one value (B,).
SUMMARIES = ("peak", "mean", "peak-mean")


class BrightnessScorer(torch.nn.Module):
    """forward(x float32 (B, 1, T, H, W)) -> (logits float32 (B,), relevance float32 (B, T)).

    relevance (B, T) is each frame's mean intensity over rows and columns ``window[0]:window[1]``
    (``window=None``: the whole frame), minus ``baseline``: a constant, or ``"frame"`` for the
    whole frame's mean (then relevance is the window's contrast and can be negative).

    logit = scale * (summary(relevance) - reference) - offset, where the summary (B,) is
    ``"peak"`` (the brightest frame), ``"mean"`` (the clip's mean) or ``"peak-mean"`` (how far
    the brightest frame stands out from the clip's mean).
    """

    # constants, so TorchScript and the ONNX export drop the branches a scorer does not take
    __constants__ = [
        "summary",
        "whole_frame",
        "window_start",
        "window_stop",
        "frame_baseline",
        "baseline",
        "scale",
        "reference",
        "offset",
    ]

    def __init__(
        self,
        summary: str = "peak",
        scale: float = 30.0,
        reference: float = 0.25,
        offset: float = 0.0,
        window: tuple[int, int] | None = None,
        baseline: float | str = 0.0,
    ) -> None:
        super().__init__()
        if summary not in SUMMARIES:
            raise ValueError(f"summary {summary!r} is not one of {SUMMARIES}")
        if isinstance(baseline, str) and baseline != "frame":
            raise ValueError(f"baseline {baseline!r} is neither a number nor 'frame'")
        self.summary = summary
        self.scale, self.reference, self.offset = float(scale), float(reference), float(offset)
        self.whole_frame = window is None
        self.window_start, self.window_stop = window if window is not None else (0, 0)
        self.frame_baseline = baseline == "frame"
        self.baseline = 0.0 if isinstance(baseline, str) else float(baseline)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = self.window_start, self.window_stop
        if self.whole_frame:
            relevance = x.mean(dim=(1, 3, 4))  # (B, T)
        else:
            relevance = x[:, 0, :, start:stop, start:stop].mean(dim=(2, 3))  # (B, T)
        if self.frame_baseline:
            relevance = relevance - x.mean(dim=(1, 3, 4))
        else:
            relevance = relevance - self.baseline
        if self.summary == "peak":
            summary = relevance.amax(dim=1)
        elif self.summary == "mean":
            summary = relevance.mean(dim=1)
        else:
            summary = relevance.amax(dim=1) - relevance.mean(dim=1)
        return self.scale * (summary - self.reference) - self.offset, relevance


def make_demo_bundle(
    folder: str | Path,
    scorer: BrightnessScorer | None = None,
    eval_transform: dict[str, Any] | None = None,
    card: str = DEMO_CARD,
    input_check: InputCheck | None = None,
    **metadata: Any,
) -> Path:
    """Write a toy bundle of ``scorer`` (default: the demo's mean-intensity scorer) to ``folder``.

    Args:
        folder: the bundle folder to write (model.ts, model.onnx, metadata.json, README.md).
        scorer: the model; None is ``BrightnessScorer()`` (logit = 30 * (peak - 0.25)).
        eval_transform: the eval transform spec; None is :data:`DEMO_EVAL_SPEC` (8 frames,
            10 fps, 32x32, one window). The ``input_spec`` follows it.
        card: the README.md model card.
        input_check: an input check to put in the bundle (None: a bundle without one, as
            exported before the check existed).
        metadata: bundle spec keys that replace the demo's (``model_name``, ``temperature``,
            ``threshold``, ...).

    Returns:
        The bundle folder.
    """
    eval_spec = dict(DEMO_EVAL_SPEC if eval_transform is None else eval_transform)
    spec = {
        "model_name": "mean-intensity-test",
        "model_version": "0.0.1",
        "class_names": list(CLASS_NAMES),
        "eval_transform": eval_spec,
        "input_spec": input_spec_from(eval_spec),
        "temperature": 1.0,
        "threshold": 0.5,
        **metadata,
    }
    spec.setdefault("threshold_rule", f"fixed {spec['threshold']} (demo bundle, not trained)")
    module = torch.jit.script(BrightnessScorer() if scorer is None else scorer)
    return write_bundle(folder, module, spec, card, input_check=input_check)


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
