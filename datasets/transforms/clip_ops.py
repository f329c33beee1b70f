"""Index and array helpers for clip transforms: frame resampling, windows, resizing, and
mapping model-frame relevance back onto the source frames.

Plain functions on numpy arrays (no data dict);
:mod:`labral.datasets.transforms.clip_transforms` builds its MONAI transforms on them and
re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Nearest source frame for every output time ``k / target_fps`` within the clip.

    Args:
        num_frames: T of the source clip (>= 1).
        source_fps: source frame rate (> 0).
        target_fps: wanted frame rate (> 0).

    Returns:
        int64 (T_out,) non-decreasing source indices, ``T_out = ceil(T * target / source)``.
    """
    ratio = source_fps / target_fps
    count = max(1, math.ceil(num_frames / ratio - 1e-9))
    index = np.floor(np.arange(count) * ratio + 0.5).astype(np.int64)
    return np.minimum(index, num_frames - 1)


def resample_selection(num_frames: int, source_fps: float, target_fps: float) -> slice | np.ndarray:
    """The frames :func:`resample_indices` names, as a slice (a view, not a copy) when they
    are evenly spaced; a whole-number rate ratio is that slice at once, with no index array.

    Returns:
        ``slice`` or int64 (T_out,) indices into the source frames.
    """
    ratio = source_fps / target_fps
    if ratio >= 1 and ratio == int(ratio):  # every k-th frame
        return slice(0, None, int(ratio))
    return as_slice(resample_indices(num_frames, source_fps, target_fps))


def as_slice(index: np.ndarray) -> slice | np.ndarray:
    """``index`` as a slice when it is evenly spaced and increasing (indexing then gives a
    view, not a copy), else unchanged.

    Args:
        index: int64 (N,) indices (a few dozen: checked as Python ints, cheaper than numpy
            calls at this size).
    """
    values = index.tolist()
    if not values:
        return index
    first = values[0]
    step = values[1] - first if len(values) > 1 else 1
    if step > 0 and values == list(range(first, first + step * len(values), step)):
        return slice(first, values[-1] + 1, step)
    return index


def window_indices(num_frames: int, length: int, starts: Sequence[int]) -> np.ndarray:
    """Indices of fixed-length windows; a clip shorter than ``length`` repeats its last frame.

    Args:
        num_frames: frames available (>= 1).
        length: frames per window.
        starts: first index of each window.

    Returns:
        int64 (len(starts), length) indices into the available frames.
    """
    offsets = np.arange(length, dtype=np.int64)
    rows = [np.minimum(int(start) + offsets, num_frames - 1) for start in starts]
    return np.stack(rows).astype(np.int64)


def evenly_spaced_starts(num_frames: int, length: int, windows: int) -> list[int]:
    """Starts of ``windows`` evenly spaced windows; one window is centred."""
    span = max(0, num_frames - length)
    if windows == 1:
        return [span // 2]
    return [int(round(v)) for v in np.linspace(0, span, windows)]


def resize_frames(frames: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize uint8 or float32 frames (..., H, W) to (..., h, w); dtype is kept.

    Antialiased bilinear (torch), so downscaling averages like an area filter. uint8 frames
    go four at a time through torch's vectorised 4-channel path: frames ``4g .. 4g+3``
    are the channels of image ``g`` (the last frame repeated to fill the final image), each
    channel is resized on its own, and image ``g``'s channels are frames ``4g .. 4g+3`` of
    the result again: the same values as one frame at a time, at about a third of the cost.
    One copy gathers any strided view (a crop, every other frame) into those images.
    """
    lead, (height, width) = frames.shape[:-2], frames.shape[-2:]
    if (height, width) == tuple(size):
        return frames
    flat = frames.reshape(-1, height, width)
    count = flat.shape[0]
    if flat.dtype == np.uint8 and count > 0:
        padded = -(-count // 4) * 4
        images = np.empty((padded, height, width), np.uint8)
        images[:count] = flat
        images[count:] = flat[-1]
        batch = torch.from_numpy(images).view(padded // 4, 4, height, width)
        out = F.interpolate(batch, size=tuple(size), mode="bilinear", antialias=True)
        return out.numpy().reshape(padded, *size)[:count].reshape(*lead, *size)
    tensor = torch.from_numpy(np.ascontiguousarray(flat))
    if tensor.dtype != torch.float32:
        tensor = tensor.float()
    out = F.interpolate(tensor.unsqueeze(1), size=tuple(size), mode="bilinear", antialias=True)
    return out.reshape(*lead, *size).numpy().astype(frames.dtype, copy=False)


def relevance_to_source_frames(
    relevance: np.ndarray | torch.Tensor,
    frame_index: np.ndarray | torch.Tensor,
    num_source_frames: int,
) -> np.ndarray:
    """Map model-frame relevance back onto the frames of the original clip.

    Args:
        relevance: float (N, T) (or (T,)) relevance of every model frame.
        frame_index: int (N, T) (or (T,)) source-frame index of every model frame.
        num_source_frames: T of the original clip.

    Returns:
        float32 (num_source_frames,): the max over windows (and repeats) where a source frame
        was sampled; elsewhere the value of the nearest sampled frame (ties: the earlier one).

    Raises:
        ValueError: shapes differ, or an index is outside [0, num_source_frames).
    """
    rel = np.asarray(torch.as_tensor(relevance).detach().cpu(), dtype=np.float32).reshape(-1)
    idx = np.asarray(torch.as_tensor(frame_index).cpu(), dtype=np.int64).reshape(-1)
    if rel.shape != idx.shape:
        raise ValueError(f"relevance {rel.shape} and frame_index {idx.shape} differ in size")
    if idx.size == 0 or idx.min() < 0 or idx.max() >= num_source_frames:
        raise ValueError(f"frame_index must lie in [0, {num_source_frames}); got {idx}")
    best = np.full(num_source_frames, -np.inf, dtype=np.float32)
    np.maximum.at(best, idx, rel)
    sampled = np.flatnonzero(np.isfinite(best))
    pos = np.searchsorted(sampled, np.arange(num_source_frames))
    left = sampled[np.clip(pos - 1, 0, len(sampled) - 1)]
    right = sampled[np.clip(pos, 0, len(sampled) - 1)]
    frames = np.arange(num_source_frames)
    nearest = np.where(np.abs(frames - left) <= np.abs(right - frames), left, right)
    return best[nearest]
