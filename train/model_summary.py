"""Parameter and FLOP count printed at the start of a run."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def summarize_model(model: torch.nn.Module, clip_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters and forward FLOPs (multiply-add = 2) of one clip.

    Uses ``labral.models.describe_model`` when MODELS provides it, else ``FlopCounterMode``.

    Args:
        model: a network taking float32 (B, 1, T, H, W).
        clip_shape: (C, T, H, W), one clip.

    Returns:
        ``{"params": int, "gflops": float}`` per clip.
    """
    try:
        from labral.models import describe_model  # type: ignore[attr-defined]
    except ImportError:
        describe_model = None
    if describe_model is not None:
        try:
            described = describe_model(model, clip_shape)
            return {
                "params": int(described["params"]),
                "gflops": float(described["gflops_per_clip"]),
            }
        except Exception:  # noqa: BLE001 - a description must never stop training
            pass
    params = sum(p.numel() for p in model.parameters())
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros((1, *clip_shape), device=device))
    model.train(was_training)
    return {"params": int(params), "gflops": counter.get_total_flops() / 1e9}
