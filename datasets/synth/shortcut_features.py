"""What the shortcut study measures on one clip, seen as the model sees it.

:func:`model_view` resamples, crops and resizes a rendered clip the way the eval transform
does (``configs/transforms/default.yaml``); :func:`clip_feature_row` turns it into the
study's design-matrix rows: (a) one frame's regional features, (b) the same pooled over
frames, (c) order-free change features, (d) timing features against the loading (given or
estimated from the pixels) and (e) those plus the direction-aware features of
:mod:`labral.datasets.synth.shortcut_timing`. The study itself (classifiers,
cross-validation, tables) is :mod:`labral.datasets.synth.shortcuts`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

import labral.configs
from labral.datasets.synth.shortcut_timing import (
    cleft_profile,
    direction_features,
    pixel_loading,
    tracked_loading,
)
from labral.datasets.transforms.clip_transforms import (
    evenly_spaced_starts,
    resample_indices,
    resize_frames,
)


@dataclass
class ModelView:
    """A clip as the model sees it.

    Attributes:
        frames: float32 (T, h, w) frames of the eval window, 0..255.
        roi: (r0, r1, c0, c1) the cleft region in the resized frame (from the anatomy).
        loading: float32 (T,) the generator's loading trace on the same frames (0..1).
        axis: float32 (h, w) position along the cleft (0 joint side .. 1 capsular side, NaN
            outside it; :func:`~labral.datasets.synth.shortcut_timing.cleft_axis`), or
            ``None`` when not known (the direction features then need it).
    """

    frames: np.ndarray
    roi: tuple[int, int, int, int]
    loading: np.ndarray
    axis: np.ndarray | None = None


@functools.cache
def eval_spec() -> dict[str, Any]:
    """The eval transform spec of ``configs/transforms/default.yaml`` (frames, fps, size).

    Read once per process (every clip of a study uses it): the dict is shared, read it only.
    """
    path = Path(labral.configs.__file__).resolve().parent / "transforms" / "default.yaml"
    spec = OmegaConf.to_container(OmegaConf.load(path).eval, resolve=True)
    assert isinstance(spec, dict)
    return spec


def model_view(
    frames: np.ndarray, fps: float, roi_px: Sequence[int], loading: Sequence[float], spec: dict
) -> ModelView:
    """Resample (nearest frame) to the spec's rate, take its centre window, resize.

    Args:
        frames: uint8 (T, H, W) source frames.
        fps: source frame rate.
        roi_px: (r0, r1, c0, c1) of the cleft region in source pixels.
        loading: float (T,) the generator's loading trace of the source frames.
        spec: ``{"frames", "fps", "size"}`` of the eval transform.

    Returns:
        :class:`ModelView` with float32 (spec frames, h, w) frames.
    """
    index = resample_indices(frames.shape[0], fps, float(spec["fps"]))
    length = int(spec["frames"])
    start = evenly_spaced_starts(len(index), length, 1)[0]
    window = index[np.minimum(start + np.arange(length), len(index) - 1)]
    h, w = (int(v) for v in spec["size"])
    resized = resize_frames(frames[window], (h, w)).astype(np.float32)
    sy, sx = h / frames.shape[1], w / frames.shape[2]
    r0, r1, c0, c1 = roi_px
    roi = (
        int(r0 * sy),
        max(int(np.ceil(r1 * sy)), int(r0 * sy) + 1),
        int(c0 * sx),
        max(int(np.ceil(c1 * sx)), int(c0 * sx) + 1),
    )
    return ModelView(resized, roi, np.asarray(loading, np.float32)[window])


def _grid(f: np.ndarray, cells: int = 4) -> np.ndarray:
    t, h, w = f.shape
    return f[:, : h - h % cells, : w - w % cells].reshape(t, cells, h // cells, cells, w // cells)


def per_frame_features(view: ModelView) -> np.ndarray:
    """float32 (T, 37): grid means/stds (32) and cleft-region statistics (5) per frame."""
    f = view.frames
    grid = _grid(f)
    r0, r1, c0, c1 = view.roi
    roi = f[:, r0:r1, c0:c1]
    ring = f[:, max(r0 - 4, 0) : r1 + 4, max(c0 - 4, 0) : c1 + 4]
    cleft = np.stack(
        [
            roi.mean(axis=(1, 2)),
            roi.std(axis=(1, 2)),
            (roi < 50).mean(axis=(1, 2)),
            ring.mean(axis=(1, 2)),
            (ring < 50).mean(axis=(1, 2)),
        ],
        axis=1,
    )
    t = f.shape[0]
    feats = [grid.mean(axis=(2, 4)).reshape(t, -1), grid.std(axis=(2, 4)).reshape(t, -1), cleft]
    return np.concatenate(feats, axis=1).astype(np.float32)


def change_features(view: ModelView) -> np.ndarray:
    """float32 (T-1, 20): two-frame change features per consecutive pair (no order kept).

    Absolute difference per grid cell (16), in the cleft region, speckle decorrelation
    there (1 - correlation of the two frames) and flicker (share of its pixels changing by
    more than 40 grey levels), and the change in the cleft relative to the tissue above.
    """
    f = view.frames
    diff = np.abs(np.diff(f, axis=0))
    t1 = diff.shape[0]
    cells = _grid(diff).mean(axis=(2, 4)).reshape(t1, -1)
    r0, r1, c0, c1 = view.roi
    a, b = f[:-1, r0:r1, c0:c1].reshape(t1, -1), f[1:, r0:r1, c0:c1].reshape(t1, -1)
    a_c, b_c = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    denom = np.sqrt((a_c**2).sum(1) * (b_c**2).sum(1)) + 1e-6
    decorrelation = 1.0 - (a_c * b_c).sum(1) / denom
    roi_diff = diff[:, r0:r1, c0:c1]
    above = diff[:, max(r0 - 12, 0) : max(r0 - 4, 1), c0:c1]
    cleft = np.stack(
        [
            roi_diff.mean(axis=(1, 2)),
            decorrelation,
            (roi_diff > 40).mean(axis=(1, 2)),
            roi_diff.mean(axis=(1, 2)) / (above.mean(axis=(1, 2)) + 1.0),
        ],
        axis=1,
    )
    return np.concatenate([cells, cleft], axis=1).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


TIMING_FEATURES = (
    "darkness_vs_velocity",
    "darkness_vs_velocity_lag1",
    "darkness_vs_velocity_lead1",
    "darkness_vs_position",
    "change_vs_velocity",
    "change_vs_speed",
)


def timing_features(view: ModelView, loading: np.ndarray | None = None) -> np.ndarray:
    """float32 (6,): cleft darkness / change against the loading (order: TIMING_FEATURES).

    Args:
        view: the clip as the model sees it.
        loading: float (T,) loading to use; ``None`` = the generator's trace in ``view``.
    """
    f = view.frames
    r0, r1, c0, c1 = view.roi
    darkness = -f[:, r0:r1, c0:c1].mean(axis=(1, 2))
    position = view.loading if loading is None else np.asarray(loading, np.float32)
    velocity = np.gradient(position)
    change = np.abs(np.diff(f[:, r0:r1, c0:c1], axis=0)).mean(axis=(1, 2))
    return np.array(
        [
            _corr(darkness, velocity),
            _corr(darkness[1:], velocity[:-1]),
            _corr(darkness[:-1], velocity[1:]),
            _corr(darkness, position),
            _corr(change, velocity[1:]),
            _corr(change, np.abs(velocity[1:])),
        ],
        dtype=np.float32,
    )


def direction_row(view: ModelView, loading: np.ndarray | None = None) -> np.ndarray:
    """float32 (len(TIMING_FEATURES) + len(DIRECTION_FEATURES),): the timing features of
    :func:`timing_features` and the direction-aware ones of :mod:`shortcut_timing`.

    Args:
        view: the clip as the model sees it, with its cleft ``axis``.
        loading: float (T,) loading to use; ``None`` = the generator's trace in ``view``.
    """
    if view.axis is None:
        raise ValueError("the direction features need the cleft's axis (ModelView.axis)")
    position = view.loading if loading is None else np.asarray(loading, np.float32)
    profile = cleft_profile(view.frames, view.axis)
    return np.concatenate(
        [timing_features(view, loading), direction_features(profile, position)]
    ).astype(np.float32)


def clip_feature_row(view: ModelView, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The design-matrix rows of one clip for every classifier of the study."""
    per_frame = per_frame_features(view)
    change = change_features(view)
    estimated = pixel_loading(view.frames, view.roi)
    tracked = tracked_loading(view.frames, view.roi, float(eval_spec()["fps"]))
    return {
        "still_frame": per_frame[rng.integers(0, len(per_frame))],
        "order_free": np.concatenate(
            [per_frame.mean(0), per_frame.std(0), per_frame.min(0), per_frame.max(0)]
        ),
        "change_pooled": np.concatenate([change.mean(0), change.std(0), change.max(0)]),
        "timing": timing_features(view),
        "timing_pixels": timing_features(view, estimated),
        "direction": direction_row(view),
        "direction_pixels": direction_row(view, tracked),
    }
