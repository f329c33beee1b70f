"""What the synthetic generator produces for one clip (pixels plus ground truth)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Named hard-negative types. ``"positive"`` marks a positive clip's type.
NEGATIVE_TYPES = (
    "normal",  # plain intact labrum under the same motion
    "sulcus",  # sublabral sulcus: regular partial cleft, no flow
    "anisotropy",  # intact labrum that looks hypoechoic at some probe angles
    "probe_motion",  # probe pressure squeezing a paralabral pocket, timed by the probe
    "frozen_twin",  # the extrusion shape present but static
    "incoherent_twin",  # the positive's burst on the unloading stroke
)
POSITIVE_TYPE = "positive"


@dataclass
class SynthClip:
    """One generated clip with its ground truth.

    Attributes:
        frames: uint8 (T, H, W) B-mode frames, H = depth (rows), W = lateral (columns).
        label: 1 = fluid extrudes through the chondrolabral cleft in this clip, 0 = it does
            not (the hip itself may still be detached: see :mod:`hips`).
        clip_type: ``"positive"`` or one of ``NEGATIVE_TYPES``.
        fps: frame rate in frames per second.
        spacing_mm: (row, column) pixel size in millimetres.
        extrusion_mask: bool (T, H, W), True where fluid is extruding through the cleft
            (all False in negatives).
        extrusion_frames: sorted frame indices where extrusion is present (empty in negatives).
        params: every generator parameter used (anatomy, imaging, motion, nuisances),
            JSON-serialisable.
    """

    frames: np.ndarray
    label: int
    clip_type: str
    fps: float
    spacing_mm: tuple[float, float]
    extrusion_mask: np.ndarray
    extrusion_frames: list[int]
    params: dict[str, Any] = field(default_factory=dict)
