"""Learning-rate schedules, built by Hydra with ``_partial_: true`` and finished in the loop."""

from __future__ import annotations

import math

import torch

from labral.errors import BadConfigError


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
    min_lr_ratio: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then cosine decay, stepped once per optimizer step.

    Args:
        optimizer: the optimizer whose learning rates are scaled.
        total_steps: optimizer steps over the whole run (epochs x steps per epoch).
        steps_per_epoch: optimizer steps per epoch (after gradient accumulation).
        warmup_epochs: epochs of linear warmup from ~0 to the base learning rate.
        min_lr_ratio: final learning rate as a fraction of the base one.

    Returns:
        A ``LambdaLR`` whose ``state_dict`` goes into the checkpoint.

    Raises:
        BadConfigError: non-positive step counts or a ratio outside [0, 1].
    """
    if total_steps <= 0 or steps_per_epoch <= 0:
        raise BadConfigError(
            f"scheduler: total_steps={total_steps} and steps_per_epoch={steps_per_epoch} must "
            "be positive; check data.batch_size against the size of the training split"
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise BadConfigError(f"scheduler.min_lr_ratio={min_lr_ratio} must be in [0, 1]")
    warmup = max(0, min(int(round(warmup_epochs * steps_per_epoch)), total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total_steps - warmup)
        progress = min(1.0, progress)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
