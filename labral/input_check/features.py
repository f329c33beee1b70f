"""What the input check measures on a decoded clip, before the eval transform.

Two kinds of input, both cheap next to the model's forward pass:

- :func:`clip_statistics`: a handful of numbers about the image and its motion (length in
  seconds, brightness spread, saturation, repeated frames, anatomical structure, motion of
  the anatomy), each the statistic of one image-quality or manoeuvre rule;
- :func:`view_image`: a 3-channel summary image of the clip (temporal mean, temporal
  spread, middle frame) at :data:`VIEW_SIZE`, the input of the view network
  (:class:`labral.models.view_net.ViewNet`).

Every statistic is computed on the clip's own frames (uint8 (T, H, W), already cropped to
the tissue region by the reader), shrunk to :data:`WORK_SIZE` (a lattice of every ``s``-th
pixel, 2 x 2 of it averaged) and at most :data:`MAX_FRAMES` frames evenly spread, so a
600 x 800 x 200 DICOM costs about what a 128 x 128 x 32 synthetic clip does. Past the shrink
the arrays are a few thousand numbers, so the work is done in NumPy, whose calls
cost microseconds where a PyTorch call costs tens (the whole check must stay within 10% of
scoring time).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

#: Side of the square working image every statistic is measured on (area-averaged).
WORK_SIZE = 32
#: Side of the view network's input.
VIEW_SIZE = 32
#: At most this many frames (evenly spread) are shrunk and measured.
MAX_FRAMES = 16
#: A frame pair whose mean absolute difference is below this (grey levels) is a repeat.
REPEAT_LEVEL = 0.25
#: Side of the blocks whose displacement :func:`anatomy_motion` follows (working pixels).
MOTION_BLOCK = 8
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


def _lattice(n: int) -> slice:
    """Every ``s``-th of the central ``2 * WORK_SIZE * s`` pixels of a side of ``n``: 2 *
    WORK_SIZE of them, pairs of which :func:`working_frames` averages."""
    step = n // (2 * WORK_SIZE)
    start = (n - 2 * WORK_SIZE * step) // 2
    return slice(start, start + 2 * WORK_SIZE * step, step)


def working_frames(frames: np.ndarray) -> np.ndarray:
    """The clip shrunk for measuring.

    Args:
        frames: uint8 (T, H, W).

    Returns:
        float32 (T', WORK_SIZE, WORK_SIZE) in [0, 1], T' = min(T, MAX_FRAMES) evenly spread:
        a lattice of 2 * WORK_SIZE rows and columns (every ``H // (2 * WORK_SIZE)``-th pixel
        of the central part), each 2 x 2 of it averaged. Frames smaller than that lattice are
        area-averaged whole.
    """
    index = _evenly(frames.shape[0], MAX_FRAMES)
    if min(frames.shape[1:]) < 2 * WORK_SIZE:
        x = torch.from_numpy(np.ascontiguousarray(frames[index])).float().div_(255.0)
        return F.adaptive_avg_pool2d(x.unsqueeze(1), WORK_SIZE)[:, 0].numpy()
    lattice = frames[:, _lattice(frames.shape[1]), _lattice(frames.shape[2])]  # a view
    x = lattice[index].astype(np.float32)  # copies only the lattice of the picked frames
    x = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]
    return x * np.float32(1.0 / (4.0 * 255.0))


def repeated_fraction(frames: np.ndarray) -> float:
    """Share of consecutive frame pairs that are (near) identical: dropped or frozen frames.

    Args:
        frames: uint8 (T, H, W); every frame is compared, on an 8-pixel lattice.
    """
    if frames.shape[0] < 2:
        return 1.0
    lattice = frames[:, ::8, ::8].astype(np.int16)
    change = np.abs(np.diff(lattice, axis=0)).mean(axis=(1, 2))
    return float((change < REPEAT_LEVEL).mean())


@functools.lru_cache(maxsize=8)
def _block_matrix(n: int, block: int) -> np.ndarray:
    """float32 (n // block, n): row ``i`` averages pixels ``i * block`` to ``(i + 1) * block``."""
    out = np.zeros((n // block, n), np.float32)
    for i in range(n // block):
        out[i, i * block : (i + 1) * block] = 1.0 / block
    return out


def _per_block(a: np.ndarray, block: int) -> np.ndarray:
    """(..., h, w) -> (..., (h // block) * (w // block)): the mean of each block (as two
    matrix products, much cheaper than a reduction over two strided axes)."""
    h, w = a.shape[-2:]
    pooled = _block_matrix(h, block) @ a @ _block_matrix(w, block).T
    return pooled.reshape(*a.shape[:-2], -1)


def _upper_quartile(values: np.ndarray) -> float:
    """The 75th percentile (linear interpolation, as ``np.quantile``) of a 1-D array."""
    ordered = np.sort(values)
    position = 0.75 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (position - low) * (ordered[high] - ordered[low]))


def anatomy_motion(x: np.ndarray, block: int = MOTION_BLOCK) -> float:
    """How much the anatomy moves back and forth, in working pixels.

    Each block's displacement from the clip's mean frame is estimated on every frame by one
    Lucas-Kanade step (the block's gradients of the mean frame against the frame's difference
    from it). On the wrong-input suite's still hips and valid clips, the median frame
    separated them no better at three times the cost, and smoothing the reference 3 x 3
    before its gradients separated them less well. A manoeuvre moves the femur and rocks the
    probe in strokes of about a second; a still hip leaves only the probe's drift, which a
    straight line over the clip takes out, and tremor, which a 3-frame average takes out. The
    score is the 75th percentile over blocks of the root-mean-square of what remains (the
    femur moves under only part of the image).

    Args:
        x: float32 (T, h, w) working frames (:func:`working_frames`).

    Returns:
        The motion score in working pixels (fitted against valid clips at export).
    """
    reference = x.mean(axis=0)
    grad_y, grad_x = np.gradient(reference)
    change = x - reference
    gxx, gyy, gxy = _per_block(np.stack([grad_x**2, grad_y**2, grad_x * grad_y]), block)
    bx, by = _per_block(np.stack([grad_x * change, grad_y * change]), block)  # (T, n) each
    det = gxx * gyy - gxy**2 + 1e-9
    shift = np.stack([-(gxy * bx - gxx * by) / det, -(gyy * bx - gxy * by) / det])  # (2, T, n)
    t = np.linspace(-1.0, 1.0, shift.shape[1], dtype=np.float32)[None, :, None]
    shift = shift - shift.mean(axis=1, keepdims=True)
    shift = shift - t * (shift * t).sum(axis=1, keepdims=True) / (t * t).sum()
    if shift.shape[1] >= 3:  # a 3-frame average, the ends over the two frames they have
        inner = shift[:, :-2] + shift[:, 1:-1] + shift[:, 2:]
        ends = (shift[:, :2].sum(axis=1, keepdims=True), shift[:, -2:].sum(axis=1, keepdims=True))
        shift = np.concatenate([ends[0] / 2, inner / 3, ends[1] / 2], axis=1)
    return _upper_quartile(np.sqrt((shift**2).sum(axis=0).mean(axis=0)))


def clip_statistics(frames: np.ndarray, fps: float, x: np.ndarray) -> dict[str, float]:
    """The image-quality and manoeuvre statistics of one clip (see :data:`STATISTICS`).

    Args:
        frames: uint8 (T, H, W) decoded frames.
        fps: frames per second.
        x: the clip's :func:`working_frames` (made once per clip).

    Returns:
        ``duration_s`` (T / fps); ``intensity_std`` (grey-level spread over the whole clip,
        in [0, 1]: about 0 when blank); ``saturated_fraction`` (pixels at or above
        :data:`SATURATED_LEVEL`); ``repeated_fraction`` (:func:`repeated_fraction`);
        ``structure`` (spread of the time-averaged image on an 8 x 8 grid of cells over the
        per-frame spread: anatomy persists over frames, noise averages away, so noise alone
        gives about 0); ``motion`` (:func:`anatomy_motion`).
    """
    coarse_mean = _per_block(x.mean(axis=0), WORK_SIZE // 8)
    per_frame_spread = float(x.std(axis=(1, 2), ddof=1).mean())
    lattice = frames[:, ::8, ::8]
    return {
        "duration_s": float(frames.shape[0] / fps) if fps > 0 else 0.0,
        "intensity_std": float(x.std(ddof=1)),
        "saturated_fraction": float((lattice >= SATURATED_LEVEL).mean()),
        "repeated_fraction": repeated_fraction(frames),
        "structure": float(coarse_mean.std(ddof=1)) / (per_frame_spread + 1e-6),
        "motion": anatomy_motion(x),
    }


#: A clip's :func:`clip_statistics` and :func:`view_image` (float32 (3, h, w)).
Features = tuple[dict[str, float], torch.Tensor]


def clip_features(frames: np.ndarray, fps: float) -> Features:
    """:func:`clip_statistics` and :func:`view_image` of one clip, its frames shrunk once."""
    x = working_frames(frames)
    return clip_statistics(frames, fps, x), view_image(x)


def view_image(x: np.ndarray) -> torch.Tensor:
    """The view network's input: what the clip shows and where it moves.

    Args:
        x: the clip's :func:`working_frames`, float32 (T', h, w).

    Returns:
        float32 (3, VIEW_SIZE, VIEW_SIZE): the temporal mean, the temporal standard deviation
        (times 4, so it uses the same range) and the middle frame, each in about [0, 1].
    """
    if WORK_SIZE != VIEW_SIZE:
        x = F.adaptive_avg_pool2d(torch.from_numpy(x).unsqueeze(1), VIEW_SIZE)[:, 0].numpy()
    spread = np.clip(x.std(axis=0) * 4.0, 0.0, 1.0)
    image = np.stack([x.mean(axis=0), spread, x[x.shape[0] // 2]]).astype(np.float32)
    return torch.from_numpy(image)
