"""Parameter and FLOP counts of a network, printed by ``labral train`` at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def describe_model(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """Count parameters and the FLOPs of one forward pass per clip.

    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as
    2; convolutions and matrix products only, norms and activations are not counted). The
    model is run once in eval mode on zeros of shape (1, *input_shape) with gradients off;
    its training mode is restored afterwards.

    Args:
        model: a labral network taking float32 (B, C, T, H, W).
        input_shape: one clip's shape (C, T, H, W), e.g. (1, 16, 96, 96).

    Returns:
        ``{"name", "input_shape", "params", "trainable_params", "flops_per_clip",
        "gflops_per_clip"}`` (ints, except the name, the shape list and the GFLOPs float).
    """
    shape = [int(s) for s in input_shape]
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        first = next(model.parameters())
        device, dtype = first.device, first.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape, device=device, dtype=dtype))
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    return {
        "name": type(model).__name__,
        "input_shape": shape,
        "params": int(params),
        "trainable_params": int(trainable),
        "flops_per_clip": flops,
        "gflops_per_clip": round(flops / 1e9, 4),
    }


def format_description(description: dict[str, Any]) -> str:
    """One log line, e.g. ``CompactVideoNet: 433,681 params, 0.81 GFLOPs per (1, 16, 96, 96) clip``.

    Args:
        description: the dict from ``describe_model``.
    """
    shape = ", ".join(str(s) for s in description["input_shape"])
    return (
        f"{description['name']}: {description['params']:,} params, "
        f"{description['gflops_per_clip']:.2f} GFLOPs per ({shape}) clip"
    )
