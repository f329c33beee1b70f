"""Parameter and FLOP count printed at the start of a run (from ``labral.models``)."""

from __future__ import annotations

from typing import Any

import torch

from labral.models import describe_model


def summarize_model(model: torch.nn.Module, clip_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters and forward FLOPs (multiply-add = 2) of one clip, for the checkpoint.

    Args:
        model: a network taking float32 (B, 1, T, H, W).
        clip_shape: (C, T, H, W), one clip.

    Returns:
        ``{"params": int, "gflops": float}`` per clip (see :func:`labral.models.describe_model`).
    """
    described = describe_model(model, clip_shape)
    return {"params": int(described["params"]), "gflops": float(described["gflops_per_clip"])}
