"""What the input check measures on a decoded clip, before the eval transform.

Two kinds of input, both cheap next to the model's forward pass:

- :func:`clip_statistics`: a handful of numbers about the image and its motion (length in
  seconds, brightness spread, saturation, repeated frames, anatomical structure, motion of
  the anatomy), each the statistic of one image-quality or manoeuvre rule;
- :func:`view_image`: a 3-channel summary image of the clip (temporal mean, temporal
  spread, middle frame) at :data:`VIEW_SIZE`, the input of the view network
  (:class:`labral.models.view_net.ViewNet`).

Every statistic is computed on the clip's own frames (uint8 (T, H, W), already cropped to
the tissue region by the reader), shrunk by area averaging to :data:`WORK_SIZE` and at most
:data:`MAX_FRAMES` frames evenly spread, so a 600 x 800 x 200 DICOM costs about what a
128 x 128 x 32 synthetic clip does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Side of the square working image every statistic is measured on (area-averaged).
WORK_SIZE = 64
#: Side of the view network's input.
VIEW_SIZE = 64
#: At most this many frames (evenly spread) are shrunk and measured.
MAX_FRAMES = 32
#: A frame pair whose mean absolute difference is below this (grey levels) is a repeat.
REPEAT_LEVEL = 0.25
#: Side of the blocks whose displacement :func:`anatomy_motion` follows (working pixels).
MOTION_BLOCK = 16
#: A pixel at or above this grey level is saturated.
SATURATED_LEVEL = 250

#: The statistics :func:`clip_statistics` returns, in order.
STATISTICS = (
    "duration_s",
    "intensity_std",
    "saturated_fraction",
    "repeated_fraction",
    "structure",
    "motion",
)


def _evenly(count: int, keep: int) -> np.ndarray:
    """int (min(count, keep),): indices of ``keep`` evenly spread frames of ``count``."""
    if count <= keep:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, keep)).astype(np.int64))


def working_frames(frames: np.ndarray) -> torch.Tensor:
    """The clip shrunk for measuring.

    Args:
        frames: uint8 (T, H, W).

    Returns:
        float32 (T', WORK_SIZE, WORK_SIZE) in [0, 1], T' = min(T, MAX_FRAMES) evenly spread.
    """
    picked = np.ascontiguousarray(frames[_evenly(frames.shape[0], MAX_FRAMES)])
    x = torch.from_numpy(picked).float().div_(255.0).unsqueeze(1)  # (T', 1, H, W)
    return F.adaptive_avg_pool2d(x, WORK_SIZE)[:, 0]


def repeated_fraction(frames: np.ndarray) -> float:
    """Share of consecutive frame pairs that are (near) identical: dropped or frozen frames.

    Args:
        frames: uint8 (T, H, W); every frame is compared, on a 4-pixel lattice.
    """
    if frames.shape[0] < 2:
        return 1.0
    lattice = frames[:, ::4, ::4].astype(np.int16)
    change = np.abs(np.diff(lattice, axis=0)).mean(axis=(1, 2))
    return float((change < REPEAT_LEVEL).mean())


def anatomy_motion(x: torch.Tensor, block: int = MOTION_BLOCK) -> float:
    """How much the anatomy moves back and forth, in working pixels.

    Each block's displacement from the clip's median frame is estimated on every frame by one
    Lucas-Kanade step (the block's gradients of the median frame against the frame's
    difference from it). A manoeuvre moves the femur and rocks the probe in strokes of about a
    second; a still hip leaves only the probe's drift, which a straight line over the clip
    takes out, and tremor, which a 3-frame average takes out. The score is the 75th percentile
    over blocks of the root-mean-square of what remains (the femur moves under only part of
    the image).

    Args:
        x: float32 (T, h, w) working frames (:func:`working_frames`).

    Returns:
        The motion score (about 0.1-0.3 for a still hip, 0.4 and more during a manoeuvre at
        the generator's levels).
    """
    smooth = F.avg_pool2d(x[:, None], 3, 1, 1)[:, 0]
    reference = smooth.median(dim=0).values
    grad_y, grad_x = torch.gradient(reference)
    change = smooth - reference

    def per_block(a: torch.Tensor) -> torch.Tensor:  # (..., h, w) -> (..., blocks)
        pooled = F.avg_pool2d(a.reshape(-1, 1, *a.shape[-2:]), block)
        return pooled.reshape(*a.shape[:-2], -1)

    gxx, gyy, gxy = (
        per_block(grad_x * grad_x),
        per_block(grad_y * grad_y),
        per_block(grad_x * grad_y),
    )
    bx, by = per_block(grad_x * change), per_block(grad_y * change)  # (T, blocks)
    det = gxx * gyy - gxy**2 + 1e-9
    shift = torch.stack([-(gxy * bx - gxx * by) / det, -(gyy * bx - gxy * by) / det], dim=-1)
    t = torch.linspace(-1.0, 1.0, shift.shape[0])[:, None, None]
    shift = shift - shift.mean(dim=0) - t * (shift * t).sum(dim=0) / (t * t).sum()
    series = shift.permute(1, 2, 0).reshape(-1, 1, shift.shape[0])  # (blocks * 2, 1, T)
    series = F.avg_pool1d(series, 3, 1, 1, count_include_pad=False).reshape(-1, 2, shift.shape[0])
    rms = series.pow(2).sum(dim=1).mean(dim=-1).sqrt()
    return float(torch.quantile(rms, 0.75))


def clip_statistics(
    frames: np.ndarray, fps: float, x: torch.Tensor | None = None
) -> dict[str, float]:
    """The image-quality and manoeuvre statistics of one clip (see :data:`STATISTICS`).

    Args:
        frames: uint8 (T, H, W) decoded frames.
        fps: frames per second.
        x: the clip's :func:`working_frames` when already made (they are made once per clip).

    Returns:
        ``duration_s`` (T / fps); ``intensity_std`` (grey-level spread over the whole clip,
        in [0, 1]: about 0 when blank); ``saturated_fraction`` (pixels at or above
        :data:`SATURATED_LEVEL`); ``repeated_fraction`` (:func:`repeated_fraction`);
        ``structure`` (spread of the time-averaged image at an 8-pixel scale over the
        per-frame spread: anatomy persists over frames, noise averages away, so noise alone
        gives about 0); ``motion`` (:func:`anatomy_motion`).
    """
    x = working_frames(frames) if x is None else x  # (T', 64, 64)
    spread = float(x.std())
    mean_image = x.mean(dim=0, keepdim=True).unsqueeze(0)  # (1, 1, 64, 64)
    coarse_mean = F.avg_pool2d(mean_image, 8)
    per_frame_spread = float(x.std(dim=(1, 2)).mean())
    structure = float(coarse_mean.std()) / (per_frame_spread + 1e-6)
    motion = anatomy_motion(x)
    lattice = frames[:, ::8, ::8]
    return {
        "duration_s": float(frames.shape[0] / fps) if fps > 0 else 0.0,
        "intensity_std": spread,
        "saturated_fraction": float((lattice >= SATURATED_LEVEL).mean()),
        "repeated_fraction": repeated_fraction(frames),
        "structure": structure,
        "motion": motion,
    }


#: A clip's :func:`clip_statistics` and :func:`view_image` (float32 (3, h, w)).
Features = tuple[dict[str, float], torch.Tensor]


def clip_features(frames: np.ndarray, fps: float) -> Features:
    """:func:`clip_statistics` and :func:`view_image` of one clip, its frames shrunk once."""
    x = working_frames(frames)
    return clip_statistics(frames, fps, x), view_image(frames, x)


def view_image(frames: np.ndarray, x: torch.Tensor | None = None) -> torch.Tensor:
    """The view network's input: what the clip shows and where it moves.

    Args:
        frames: uint8 (T, H, W).
        x: the clip's :func:`working_frames` when already made.

    Returns:
        float32 (3, VIEW_SIZE, VIEW_SIZE): the temporal mean, the temporal standard deviation
        (times 4, so it uses the same range) and the middle frame, each in about [0, 1].
    """
    x = working_frames(frames) if x is None else x
    if WORK_SIZE != VIEW_SIZE:
        x = F.adaptive_avg_pool2d(x.unsqueeze(1), VIEW_SIZE)[:, 0]
    middle = x[x.shape[0] // 2]
    return torch.stack([x.mean(dim=0), (x.std(dim=0, unbiased=False) * 4.0).clamp(0, 1), middle])
