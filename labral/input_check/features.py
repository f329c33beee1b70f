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
import math

import numpy as np
import torch
import torch.nn.functional as F

#: Side of the square working image every statistic is measured on (area-averaged).
WORK_SIZE = 32
#: Side of the view network's input: the working size (the view image is made from the
#: working frames as they are).
VIEW_SIZE = WORK_SIZE
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


@functools.lru_cache(maxsize=64)
def _evenly(count: int, keep: int) -> np.ndarray:
    """int (min(count, keep),): indices of ``keep`` evenly spread frames of ``count`` (cached,
    read-only)."""
    index = np.arange(count)
    if count > keep:
        index = np.unique(np.round(np.linspace(0, count - 1, keep)).astype(np.int64))
    index.flags.writeable = False
    return index


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
    # copy only the lattice of the picked frames, then sum each 2 x 2 in integers (row
    # pairs, then column pairs) and convert the quarter-size sums: the cheapest order measured
    picked = lattice[index].reshape(-1, 2, WORK_SIZE, 2)
    rows = np.add(picked[:, 0], picked[:, 1], dtype=np.uint16)
    x = (rows[..., 0] + rows[..., 1]).astype(np.float32)
    x *= np.float32(1.0 / (4.0 * 255.0))
    return x.reshape(len(index), WORK_SIZE, WORK_SIZE)


def _lattice_statistics(frames: np.ndarray) -> tuple[float, float]:
    """``saturated_fraction`` and ``repeated_fraction`` of every frame, on an 8-pixel lattice.

    Args:
        frames: uint8 (T, H, W).

    Returns:
        The share of lattice pixels at or above :data:`SATURATED_LEVEL`, and the share of
        consecutive frame pairs that are (near) identical (mean absolute difference below
        :data:`REPEAT_LEVEL`): dropped or frozen frames (1.0 for a single frame).
    """
    lattice = frames[:, ::8, ::8].astype(np.int16).reshape(frames.shape[0], -1)
    saturated = np.count_nonzero(lattice >= SATURATED_LEVEL) / lattice.size
    if frames.shape[0] < 2:
        return saturated, 1.0
    change = np.abs(lattice[1:] - lattice[:-1]).sum(axis=1)
    repeats = np.count_nonzero(change < REPEAT_LEVEL * lattice.shape[1])
    return saturated, repeats / (frames.shape[0] - 1)


@functools.lru_cache(maxsize=8)
def _block_matrix(n: int, block: int) -> np.ndarray:
    """float32 (n // block, n): row ``i`` averages pixels ``i * block`` to ``(i + 1) * block``."""
    out = np.zeros((n // block, n), np.float32)
    for i in range(n // block):
        out[i, i * block : (i + 1) * block] = 1.0 / block
    return out


@functools.lru_cache(maxsize=8)
def _gradient_matrix(n: int) -> np.ndarray:
    """float32 (n, n): ``D @ a`` is ``np.gradient(a, axis=0)`` (central differences inside,
    one-sided at the two ends) as one matrix product."""
    out = np.zeros((n, n), np.float32)
    out[0, :2] = (-1.0, 1.0)
    out[-1, -2:] = (-1.0, 1.0)
    for i in range(1, n - 1):
        out[i, i - 1], out[i, i + 1] = -0.5, 0.5
    return out


@functools.lru_cache(maxsize=8)
def _oscillation_matrix(count: int) -> np.ndarray:
    """float32 (count, count): ``M @ s`` keeps what oscillates in a series of ``count`` frames.

    It takes out the mean and a straight line (the probe's drift), then averages over 3
    frames (tremor), the two ends over the two frames they have; all of it linear, so one
    matrix product.
    """
    if count < 3:  # a mean and a line fit two frames exactly: nothing oscillates
        return np.zeros((count, count), np.float32)
    t = np.linspace(-1.0, 1.0, count)
    keep = np.eye(count) - 1.0 / count - np.outer(t, t) / (t @ t)
    smooth = np.zeros((count, count))
    for i in range(1, count - 1):
        smooth[i, i - 1 : i + 2] = 1.0 / 3.0
    smooth[0, :2] = smooth[-1, -2:] = 0.5
    return (smooth @ keep).astype(np.float32)


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


def anatomy_motion(reference: np.ndarray, change: np.ndarray, block: int = MOTION_BLOCK) -> float:
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
        reference: float32 (h, w) the mean of the working frames (:func:`working_frames`).
        change: float32 (T, h, w) each working frame minus ``reference``.

    Returns:
        The motion score in working pixels (fitted against valid clips at export).
    """
    h, w = reference.shape
    grad_y = _gradient_matrix(h) @ reference
    grad_x = reference @ _gradient_matrix(w).T
    gxx, gyy, gxy = _per_block(np.stack([grad_x**2, grad_y**2, grad_x * grad_y]), block)
    bx, by = _per_block(np.stack([grad_x * change, grad_y * change]), block)  # (T, n) each
    det = gxx * gyy - gxy**2 + 1e-9
    shift = np.stack([-(gxy * bx - gxx * by) / det, -(gyy * bx - gxy * by) / det])  # (2, T, n)
    shift = _oscillation_matrix(shift.shape[1]) @ shift
    return _upper_quartile(np.sqrt(np.einsum("ktn,ktn->n", shift, shift) / shift.shape[1]))


def clip_statistics(
    frames: np.ndarray, fps: float, x: np.ndarray, reference: np.ndarray, change: np.ndarray
) -> dict[str, float]:
    """The image-quality and manoeuvre statistics of one clip (see :data:`STATISTICS`).

    Args:
        frames: uint8 (T, H, W) decoded frames.
        fps: frames per second.
        x: float32 (T', h, w) the clip's :func:`working_frames` (made once per clip).
        reference: float32 (h, w) their mean over frames; change: float32 (T', h, w)
            ``x - reference`` (made once, shared with :func:`view_image`).

    Returns:
        ``duration_s`` (T / fps); ``intensity_std`` (grey-level spread over the whole clip,
        in [0, 1]: about 0 when blank); ``saturated_fraction`` (pixels at or above
        :data:`SATURATED_LEVEL`); ``repeated_fraction`` (consecutive frames (near)
        identical); ``structure`` (spread of the time-averaged image on an 8 x 8 grid of
        cells over the per-frame spread: anatomy persists over frames, noise averages away,
        so noise alone gives about 0); ``motion`` (:func:`anatomy_motion`).
    """
    count = x.shape[0]
    pixels = x[0].size
    flat = x.reshape(count, pixels)
    centred = flat - flat.mean(axis=1, keepdims=True)
    frame_spread = np.sqrt(np.einsum("ij,ij->i", centred, centred) / max(pixels - 1, 1))
    # whole-clip sum of squares = within each pixel over time + between the pixels' means
    mean_centred = reference - reference.mean()
    total = float(np.vdot(change, change)) + count * float(np.vdot(mean_centred, mean_centred))
    saturated, repeated = _lattice_statistics(frames)
    coarse_mean = _per_block(reference, WORK_SIZE // 8)
    coarse_mean -= coarse_mean.mean()
    return {
        "duration_s": float(frames.shape[0] / fps) if fps > 0 else 0.0,
        "intensity_std": math.sqrt(total / max(x.size - 1, 1)),
        "saturated_fraction": float(saturated),
        "repeated_fraction": float(repeated),
        "structure": math.sqrt(float(np.vdot(coarse_mean, coarse_mean)) / (coarse_mean.size - 1))
        / (float(frame_spread.mean()) + 1e-6),
        "motion": anatomy_motion(reference, change),
    }


#: A clip's :func:`clip_statistics` and :func:`view_image` (float32 (3, h, w)).
Features = tuple[dict[str, float], torch.Tensor]


def clip_features(frames: np.ndarray, fps: float) -> Features:
    """:func:`clip_statistics` and :func:`view_image` of one clip, its frames shrunk once.

    Args:
        frames: uint8 (T, H, W) decoded frames.
        fps: frames per second.
    """
    x = working_frames(frames)
    reference = x.mean(axis=0)
    change = x - reference
    return clip_statistics(frames, fps, x, reference, change), view_image(x, reference, change)


def view_image(x: np.ndarray, reference: np.ndarray, change: np.ndarray) -> torch.Tensor:
    """The view network's input: what the clip shows and where it moves.

    Args:
        x: float32 (T', h, w) the clip's :func:`working_frames`.
        reference: float32 (h, w) their mean over frames; change: float32 (T', h, w)
            ``x - reference``.

    Returns:
        float32 (3, VIEW_SIZE, VIEW_SIZE): the temporal mean, the temporal standard deviation
        (times 4, so it uses the same range) and the middle frame, each in about [0, 1].
    """
    spread = np.sqrt(np.einsum("tij,tij->ij", change, change) / x.shape[0])
    image = np.stack([reference, np.minimum(spread * 4.0, 1.0), x[x.shape[0] // 2]])
    return torch.from_numpy(image.astype(np.float32, copy=False))
