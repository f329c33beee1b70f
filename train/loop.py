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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from labral import scoring
from labral.errors import TrainingDivergedError
from labral.train.auxiliary import weighted_auxiliary_loss

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


@dataclass
class EpochTally:
    """Running totals of one epoch: loss summed over clips, clips, batches, optimizer steps."""

    loss_sum: float = 0.0
    clips: int = 0
    batches: int = 0
    steps: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss_value: float, batch_size: int) -> None:
        """Count one micro-batch of ``batch_size`` clips with mean loss ``loss_value``."""
        self.loss_sum += loss_value * batch_size
        self.clips += batch_size
        self.batches += 1

    def mean_loss(self) -> float:
        """Mean loss per clip so far (0 before any clip)."""
        return self.loss_sum / max(self.clips, 1)

    def clips_per_s(self) -> float:
        """Clips per second since the epoch started."""
        return self.clips / max(time.perf_counter() - self.start, 1e-9)

    def summary(self) -> dict[str, float]:
        """``{"loss", "clips_per_s", "steps", "clips"}``: what :func:`train_one_epoch` returns."""
        return {
            "loss": self.mean_loss(),
            "clips_per_s": self.clips_per_s(),
            "steps": self.steps,
            "clips": self.clips,
        }


def _set_train_mode(model: torch.nn.Module, frozen: Sequence[torch.nn.Module]) -> None:
    """``model`` in training mode, but the ``frozen`` modules in eval mode (fixed BatchNorm)."""
    model.train()
    for module in frozen:
        module.eval()


def ends_accumulation(index: int, accum_steps: int, total_batches: int | None) -> bool:
    """Whether micro-batch ``index`` (0-based) ends its gradient-accumulation group: every
    ``accum_steps``-th micro-batch, and the epoch's last one (when the loader has a length)."""
    return (index + 1) % accum_steps == 0 or (
        total_batches is not None and index + 1 == total_batches
    )


def _gradient_sync(model: torch.nn.Module, ends_group: bool) -> contextlib.AbstractContextManager:
    """DDP all-reduces gradients only on the micro-batch that ends an accumulation group."""
    if not ends_group and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()


def _forward_loss(
    model: torch.nn.Module,
    image: torch.Tensor,
    label: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    auxiliary: tuple[Mapping[str, torch.Tensor], Mapping[str, float]] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (B,), loss)``: the classification loss, plus the weighted auxiliary losses
    when ``auxiliary`` = (the batch's targets, the weights) is given (the model's
    ``outputs(x)`` gives every head, :mod:`labral.train.auxiliary`)."""
    if auxiliary is None:
        logits = model(image)
        return logits, loss_fn(logits.float(), label)
    targets, weights = auxiliary
    net = getattr(model, "_orig_mod", model)  # torch.compile keeps the module here
    outputs = net.outputs(image)
    loss = loss_fn(outputs["logit"].float(), label)
    return outputs["logit"], loss + weighted_auxiliary_loss(outputs, targets, weights)


def _forward_backward(
    model: torch.nn.Module,
    image: torch.Tensor,
    label: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    position: dict[str, int],
    precision: str,
    accum_steps: int,
    auxiliary: tuple[Mapping[str, torch.Tensor], Mapping[str, float]] | None = None,
) -> float:
    """One micro-batch: forward (autocast in bf16), loss, the finiteness check, then the
    backward pass of ``loss / accum_steps``.

    Args:
        image: float32 (B, 1, T, H, W); label: float32 (B,).
        position: ``{"epoch", "step", "batch"}`` of this micro-batch, for the error.
        auxiliary: the batch's auxiliary targets and their weights (see :func:`_forward_loss`).

    Returns:
        The micro-batch's mean loss.

    Raises:
        TrainingDivergedError: the loss or a logit is not finite (nothing is backpropagated).
    """
    with autocast_context(image.device, precision):
        logits, loss = _forward_loss(model, image, label, loss_fn, auxiliary)
    # one device-to-host copy per micro-batch: the loss (the tally needs it anyway) together
    # with whether every logit is finite
    finite = torch.isfinite(logits.detach()).all().to(loss.dtype)
    loss_value, logits_finite = torch.stack([loss.detach(), finite]).tolist()
    what = None
    if not math.isfinite(loss_value):
        what = f"the loss is {loss_value}"
    elif not logits_finite:
        what = "some logits are not finite"
    if what is not None:
        raise diverged(what, **position, lr=optimizer.param_groups[0]["lr"])
    (loss / accum_steps).backward()
    return loss_value


def _optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip_norm: float | None,
) -> None:
    """Clip the global gradient norm (if set), step optimizer and scheduler, clear gradients."""
    if grad_clip_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _check_weights_finite(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int, step: int, batches: int
) -> None:
    """After an epoch of ``batches`` micro-batches: raise if a weight is not finite (the last
    optimizer step, ``step``, had no forward pass after it to show it).

    Raises:
        TrainingDivergedError: naming ``epoch`` and ``step``.
    """
    flags = [torch.isfinite(p.detach()).all() for p in model.parameters()]
    if batches and flags and not bool(torch.stack(flags).all()):
        raise diverged(
            "the weights are not finite after the epoch's last optimizer step",
            epoch=epoch,
            step=step,
            batch=batches,
            lr=optimizer.param_groups[0]["lr"],
        )


def _bar_options(progress: bool) -> dict[str, Any]:
    """tqdm options of the epoch bar: shown when ``progress``, cleared at the end."""
    return {"disable": not progress, "leave": False, "dynamic_ncols": True}


def _auxiliary_targets(
    batch: dict[str, Any], device: torch.device, weights: Mapping[str, float] | None
) -> tuple[dict[str, torch.Tensor], Mapping[str, float]] | None:
    """The batch's auxiliary targets on ``device`` with their loss weights, or None when the
    run has no weights or the batch no targets (see :func:`_forward_loss`)."""
    if not weights or "targets" not in batch:
        return None
    return {k: v.to(device) for k, v in batch["targets"].items()}, weights


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
    auxiliary: Mapping[str, float] | None = None,
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
        auxiliary: weights of the auxiliary losses (:mod:`labral.train.auxiliary`), used on
            batches that carry ``targets``; None or empty: the classification loss alone.

    Returns:
        ``{"loss": mean loss per clip, "clips_per_s", "steps": optimizer steps, "clips"}``.

    Raises:
        TrainingDivergedError: a non-finite loss or logit (before its backward pass), or
            non-finite weights at the end of the epoch; the message names epoch and step.
    """
    _set_train_mode(model, frozen)
    total_batches = len(loader) if hasattr(loader, "__len__") else None
    bar = tqdm(loader, total=total_batches, desc=f"epoch {epoch}", **_bar_options(progress))
    tally = EpochTally()
    optimizer.zero_grad(set_to_none=True)
    for index, batch in enumerate(bar):
        image, label = to_device(batch, device, channels_last)
        ends_group = ends_accumulation(index, accum_steps, total_batches)
        position = {"epoch": epoch, "step": global_step + tally.steps + 1, "batch": index + 1}
        extra = _auxiliary_targets(batch, device, auxiliary)
        with _gradient_sync(model, ends_group):
            loss_value = _forward_backward(
                model, image, label, loss_fn, optimizer, position, precision, accum_steps, extra
            )
        if ends_group:
            _optimizer_step(model, optimizer, scheduler, grad_clip_norm)
            tally.steps += 1
            if on_step is not None:
                lr = optimizer.param_groups[0]["lr"]
                on_step(global_step + tally.steps, {"train/loss": loss_value, "train/lr": lr})
        tally.add(loss_value, int(label.shape[0]))
        bar.set_postfix(loss=f"{tally.mean_loss():.4f}", clips_s=f"{tally.clips_per_s():.1f}")
    bar.close()
    _check_weights_finite(model, optimizer, epoch, global_step + tally.steps, tally.batches)
    return tally.summary()


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


def steps_per_epoch(num_batches: int, accum_steps: int) -> int:
    """Optimizer steps in an epoch of ``num_batches`` micro-batches."""
    return max(1, math.ceil(num_batches / max(1, accum_steps)))
