"""The training loop as plain functions: one epoch of training, and evaluation.

Evaluation scores clips through the scoring contract (:mod:`labral.scoring`), as ``labral
bench`` and the service score the exported bundle: one model call per batch gives every
window's logit (:func:`labral.scoring.window_logits_of`), a clip's logit is their mean
(:func:`labral.scoring.clip_logits`), and its probability is
:func:`labral.scoring.calibrated_probability` of that logit once the run's temperature is fitted.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from labral import scoring
from labral.errors import TrainingDivergedError

#: What the message of a :class:`~labral.errors.TrainingDivergedError` suggests.
DIVERGENCE_ADVICE = (
    "Try a lower learning rate (optim.lr), gradient clipping (trainer.gradient_clip_val, e.g. "
    "1.0), precision 32 instead of bf16, and check the inputs for NaN or inf pixels; "
    "checkpoints/last.pt holds the weights of the last finished epoch."
)


def diverged(what: str, *, epoch: int, step: int, batch: int, lr: float) -> TrainingDivergedError:
    """The error that stops a run whose loss, logits or weights stopped being finite.

    Args:
        what: what is not finite (e.g. ``"the loss is nan"``).
        epoch: the epoch (0-based, as the progress bar and the run log count).
        step: the optimizer step the batch belonged to (1-based over the run, the step
            number of the TensorBoard scalars).
        batch: the micro-batch of the epoch (1-based).
        lr: the learning rate of the first parameter group at that step.
    """
    return TrainingDivergedError(
        f"training diverged in epoch {epoch} at optimizer step {step} (batch {batch} of the "
        f"epoch, learning rate {lr:.3g}): {what}. {DIVERGENCE_ADVICE}"
    )


def _parameters_finite(model: torch.nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (one device sync)."""
    flags = [torch.isfinite(p.detach()).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bf16 when ``precision == "bf16"``, else a no-op context."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(
    batch: dict[str, Any], device: torch.device, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a batch to ``device``.

    Args:
        batch: ``{"image": float32 or uint8 (B, 1, T, H, W), "label": (B,) 0/1, ...}``;
            uint8 images are scaled to [0, 1] on the device (cheap host-to-device copies).
        device: target device.
        channels_last: convert the image to ``torch.channels_last_3d``.

    Returns:
        ``(image float32 (B, 1, T, H, W), label float32 (B,))``.
    """
    image = batch["image"].to(device, non_blocking=True)
    if image.dtype == torch.uint8:
        image = image.float().div_(255.0)
    if channels_last and image.ndim == 5:
        image = image.contiguous(memory_format=torch.channels_last_3d)
    label = torch.as_tensor(batch["label"]).to(device, non_blocking=True).float()
    return image, label


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    *,
    epoch: int,
    accum_steps: int = 1,
    precision: str = "32",
    channels_last: bool = False,
    grad_clip_norm: float | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    global_step: int = 0,
    frozen: Sequence[torch.nn.Module] = (),
) -> dict[str, float]:
    """Train for one pass over ``loader``.

    Args:
        model: returns logits float (B,) for images float32 (B, 1, T, H, W).
        loader: yields ``{"image", "label"}`` batches (see :func:`to_device`).
        optimizer: stepped every ``accum_steps`` micro-batches (and at the end of the epoch).
        scheduler: stepped after every optimizer step.
        loss_fn: ``loss_fn(logits (B,), labels float (B,)) -> scalar``.
        device: where the model lives.
        epoch: epoch number, for the progress bar.
        accum_steps: micro-batches per optimizer step (gradient accumulation).
        precision: ``"bf16"`` (autocast) or ``"32"``.
        channels_last: feed images in ``channels_last_3d``.
        grad_clip_norm: clip the global gradient norm to this value if set.
        progress: show a tqdm bar with loss and clips/s (tqdm shows the ETA).
        on_step: called as ``on_step(global_step, {"train/loss", "train/lr"})`` after each
            optimizer step (TensorBoard logging).
        global_step: optimizer steps taken before this epoch.
        frozen: modules kept in eval mode while the rest trains (a frozen backbone, see
            :mod:`labral.train.finetune`: its BatchNorm statistics stay fixed).

    Returns:
        ``{"loss": mean loss per clip, "clips_per_s", "steps": optimizer steps, "clips"}``.

    Raises:
        TrainingDivergedError: a non-finite loss or logit (before its backward pass), or
            non-finite weights at the end of the epoch; the message names epoch and step.
    """
    model.train()
    for module in frozen:
        module.eval()
    total_batches = len(loader) if hasattr(loader, "__len__") else None
    bar = tqdm(
        loader,
        total=total_batches,
        desc=f"epoch {epoch}",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    loss_sum, clips, steps = 0.0, 0, 0
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    for index, batch in enumerate(bar):
        image, label = to_device(batch, device, channels_last)
        last_of_group = (index + 1) % accum_steps == 0 or (
            total_batches is not None and index + 1 == total_batches
        )
        sync = contextlib.nullcontext()
        if not last_of_group and hasattr(model, "no_sync"):
            sync = model.no_sync()
        with sync:
            with autocast_context(device, precision):
                logits = model(image)
            loss = loss_fn(logits.float(), label)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value) or not bool(torch.isfinite(logits).all()):
                what = f"the loss is {loss_value}" if not math.isfinite(loss_value) else ""
                raise diverged(
                    what or "some logits are not finite",
                    epoch=epoch,
                    step=global_step + steps + 1,
                    batch=index + 1,
                    lr=optimizer.param_groups[0]["lr"],
                )
            (loss / accum_steps).backward()
        if last_of_group:
            if grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            if on_step is not None:
                on_step(
                    global_step + steps,
                    {
                        "train/loss": loss_value,
                        "train/lr": optimizer.param_groups[0]["lr"],
                    },
                )
        batch_size = int(label.shape[0])
        loss_sum += loss_value * batch_size
        clips += batch_size
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{loss_sum / clips:.4f}", clips_s=f"{clips / elapsed:.1f}")
    bar.close()
    if clips and not _parameters_finite(model):
        raise diverged(
            "the weights are not finite after the epoch's last optimizer step",
            epoch=epoch,
            step=global_step + steps,
            batch=index + 1,
            lr=optimizer.param_groups[0]["lr"],
        )
    elapsed = max(time.perf_counter() - start, 1e-9)
    return {
        "loss": loss_sum / max(clips, 1),
        "clips_per_s": clips / elapsed,
        "steps": steps,
        "clips": clips,
    }


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    *,
    precision: str = "32",
    channels_last: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Collect the logits and labels of a whole split.

    Args:
        model: returns logits (B,) for images float32 (B, 1, T, H, W).
        loader: yields ``{"image", "label"}`` batches in a fixed order; images (B, 1, T, H, W)
            or (B, N, 1, T, H, W) with N windows per clip (their logits are averaged).
        device: where the model lives.
        precision: ``"bf16"`` (autocast) or ``"32"``.
        channels_last: feed images in ``channels_last_3d``.

    Returns:
        ``(logits float64 (N,), labels int64 (N,))``.

    Raises:
        TrainingDivergedError: a clip's logit is NaN or infinite.
    """
    model.eval()
    all_logits, all_labels = [], []
    for batch in loader:
        image, label = to_device(batch, device, channels_last)
        with autocast_context(device, precision):
            windows = scoring.window_logits_of(model, image)  # (B, N)
        all_logits.append(torch.from_numpy(scoring.clip_logits(windows)))
        all_labels.append(label.reshape(-1).cpu())
    if not all_logits:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    logits = torch.cat(all_logits).double().numpy()
    labels = torch.cat(all_labels).round().long().numpy()
    bad = int(np.count_nonzero(~np.isfinite(logits)))
    if bad:
        raise TrainingDivergedError(
            f"evaluation gave non-finite logits for {bad} of {logits.size} clips: the weights "
            f"or the inputs hold NaN or inf values. {DIVERGENCE_ADVICE}"
        )
    return logits, labels


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Deprecated name, kept only until ``train/command.py`` and ``train/cv.py`` call
    :func:`labral.scoring.calibrated_probability` (what this returns: scaled logits clipped
    to [-60, 60], then expit; not a bare sigmoid). Add no callers."""
    return scoring.calibrated_probability(logits, temperature)


def steps_per_epoch(num_batches: int, accum_steps: int) -> int:
    """Optimizer steps in an epoch of ``num_batches`` micro-batches."""
    return max(1, math.ceil(num_batches / max(1, accum_steps)))
