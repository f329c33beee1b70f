"""Direction-aware timing features of the shortcut study: which way, and when, fluid crosses.

The sign is fluid travelling through the chondrolabral cleft from the joint side to the
capsular side while the joint is being loaded (:mod:`labral.datasets.synth.scenarios`). Its
look-alikes share the appearance and differ in the way the fluid moves (a backward pocket
enters on the capsular side and leaves on the joint side; fluid squeezed in by the probe fills
from the joint side and drains back) or in the time (the same forward burst on the unloading
stroke). A timing null that cannot see the direction cannot tell a positive from a backward
pocket whose timing overlaps it (``pocket_onset`` spans the whole cycle at ``hard`` and
``expert``), so these features look along the cleft's axis:

- :func:`cleft_axis`: where the cleft is in the model's frame, as the position along it
  (0 joint side .. 1 capsular side) of each pixel: the "cleft location" a detector is given;
- :func:`cleft_profile`: darkening per frame in bins along that axis, float32 (T, B);
- :func:`pixel_loading` (the study's first estimate, used by "timing from pixels") and
  :func:`tracked_loading` (the femoral head's rise, used by the direction features): the
  loading estimated from the pixels;
- :func:`loading_phase`: the loading cycle's phase per frame from a loading trace (the
  generator's, or one estimated from the pixels), in the generator's convention (the loading
  stroke is phase [0, pi));
- :func:`direction_features`: travel of the darkening's centroid from the joint side to the
  capsular side, correlated with the loading velocity at lags -4..4 frames, its phase
  against the loading, and matched filters for forward, backward and in-and-out packets
  made with the generator's own packet model (:func:`labral.datasets.synth.motion.packet_bounds`).

All arrays are per clip, in the model's view (frames resampled, windowed and resized).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from labral.datasets.synth.anatomy import render_tissue
from labral.datasets.synth.motion import EXTENT_POWER, packet_bounds
from labral.datasets.synth.warp import MARGIN

#: Bins along the cleft axis, joint side first.
AXIS_BINS = 5
#: The part of the cleft axis that is binned: its joint end lies in the cartilage, where the
#: femoral head's edge and shadow move in and out with the loading in every clip, and its
#: capsular end is rarely reached (bins and span chosen on 60 patients of ``hard``/``expert``).
AXIS_SPAN = (0.15, 0.95)
#: Lags (frames of the model view, 10 frames/s) at which travel and darkening are
#: correlated with the loading velocity: the harder levels put the burst 2-3 frames late.
MAX_LAG = 4
#: Packets of the matched filters (the generator's three ways for fluid to move).
PACKETS = ("forward", "reverse", "in_out")
#: Template onsets, strokes after the loading stroke starts (0 .. 2 = a whole cycle).
ONSETS = tuple(np.round(np.arange(0.0, 2.0, 0.25), 2))
#: Template burst lengths, fraction of a stroke.
DURATIONS = (0.4, 0.7, 1.0)
#: Loading periods the pixel estimate may fit, seconds (the generator draws 0.7 .. 1.3).
LOADING_PERIODS_S = np.linspace(0.7, 1.3, 13)
#: Largest shift, pixels, searched when tracking the femoral head.
TRACK_SHIFT = 4
#: Onsets counted as "on the loading stroke" (a positive's lag is at most half a stroke).
LOADING_ONSETS = 0.5


def _lag_names(stem: str) -> list[str]:
    return [f"{stem}_lag{k:+d}" for k in range(-MAX_LAG, MAX_LAG + 1)]


DIRECTION_FEATURES: tuple[str, ...] = (
    "travel_net",  # A-weighted centroid travel, joint -> capsular positive, over the clip
    "travel_share",  # the same divided by the total travel in either direction (-1..1)
    "arrival_lag",  # capsular side darkens after (+) or before (-) the joint side
    *_lag_names("travel_vs_velocity"),
    *_lag_names("darkness_vs_velocity"),
    "darkness_phase_cos",
    "darkness_phase_sin",
    "forward_phase_cos",
    "forward_phase_sin",
    "backward_phase_cos",
    "backward_phase_sin",
    *(f"filter_{p}_{when}" for p in PACKETS for when in ("loading", "other")),
)


@functools.lru_cache(maxsize=16)
def _source_axis(hip_json: str, height: int, width: int) -> np.ndarray:
    maps = render_tissue(json.loads(hip_json), height, width, MARGIN)
    return maps.cleft_s[MARGIN : MARGIN + height, MARGIN : MARGIN + width].copy()


def cleft_axis(
    hip: dict[str, Any], source_size: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """Position along the cleft of every pixel of the model's frame (the cleft's location).

    Taken from the hip's tissue maps at rest (no probe or femur motion): what a detector that
    is told where the cleft is, and which end is the joint, knows.

    Args:
        hip: the clip's ``params["anatomy"]``.
        source_size: (H, W) of the generated frames.
        size: (h, w) of the model's frames.

    Returns:
        float32 (h, w): 0 (joint side) .. 1 (capsular side) inside the cleft channel, NaN
        outside (nearest-pixel resampling of the source map).
    """
    height, width = (int(v) for v in source_size)
    source = _source_axis(json.dumps(hip, sort_keys=True), height, width)
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(int), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(int), width - 1)
    return source[np.ix_(rows, cols)].astype(np.float32)


def cleft_profile(frames: np.ndarray, axis: np.ndarray, bins: int = AXIS_BINS) -> np.ndarray:
    """Darkening along the cleft per frame: how much darker each bin is than usual.

    Args:
        frames: float32 (T, h, w) model frames, 0..255.
        axis: float32 (h, w) from :func:`cleft_axis` (NaN outside the cleft).
        bins: bins along the axis, joint side first.

    Returns:
        float32 (T, bins): (bin's 75th-percentile brightness over the clip - its brightness in
        the frame) / (that percentile + 1); > 0 where fluid (or a shadow) darkens the bin.
        A bin with no pixel stays 0.
    """
    edges = np.linspace(*AXIS_SPAN, bins + 1)
    out = np.zeros((frames.shape[0], bins), np.float32)
    for b in range(bins):
        inside = (axis >= edges[b]) & ((axis < edges[b + 1]) | (b == bins - 1) & (axis <= 1.0))
        if inside.any():
            mean = frames[:, inside].mean(axis=1)
            base = np.percentile(mean, 75)
            out[:, b] = (base - mean) / (base + 1.0)
    return out


def loading_phase(position: np.ndarray) -> np.ndarray:
    """float64 (T,) unwrapped phase of the loading cycle from a loading trace (T,).

    The generator's loading is ``0.5 - 0.5 cos(phase)``, loading while ``sin(phase) > 0``:
    the trace is scaled to 0..1 over the clip, ``cos = 1 - 2 L`` and the sign of ``sin`` is
    the sign of its slope. A trace estimated from the pixels gives the phase up to its errors
    (and half a cycle off if its sign is wrong).
    """
    p = np.asarray(position, np.float64)
    span = p.max() - p.min()
    if span < 1e-9:
        return np.zeros(len(p))
    cos = np.clip(1.0 - 2.0 * (p - p.min()) / span, -1.0, 1.0)
    slope = np.sign(np.gradient(p))
    phase = np.arctan2(np.sqrt(1.0 - cos**2) * np.where(slope == 0, 1.0, slope), cos)
    return np.unwrap(phase)


def femur_shift(frames: np.ndarray, roi: Sequence[int]) -> np.ndarray:
    """float32 (T,): how far the femoral neck cortex has moved (rows) since frame 0.

    The cortex is the strongest bright-to-shadow edge of each column in the right third of
    the image (the head-neck junction and neck, which swing as the femur rotates).
    """
    w = frames.shape[2]
    win = frames[:, max(roi[0] - 6, 0) :, (2 * w) // 3 :].astype(np.float32)
    win = (win[:, :, :-2] + win[:, :, 1:-1] + win[:, :, 2:]) / 3.0
    edge = win[:, :-4] + win[:, 1:-3] - win[:, 3:-1] - win[:, 4:]
    depth = edge.argmax(axis=1).astype(np.float32)
    return (depth - depth[0]).mean(axis=1).astype(np.float32)


def pixel_loading(frames: np.ndarray, roi: Sequence[int]) -> np.ndarray:
    """float32 (T,): the loading estimated from the pixels alone (no generator trace).

    The first temporal principal component of the region right of the cleft (which the
    femoral head-neck junction swings through), signed so that it rises with the neck
    cortex (:func:`femur_shift`).
    """
    t, h, _ = frames.shape
    r0, r1, _, c1 = roi
    region = frames[:, r0 : min(h, r0 + 3 * (r1 - r0)), c1:].astype(np.float32).reshape(t, -1)
    region = region - region.mean(axis=0)
    u, s, _ = np.linalg.svd(region, full_matrices=False)
    component = (u[:, 0] * s[0]).astype(np.float32)
    return component if _corr(component, -femur_shift(frames, roi)) >= 0 else -component


def _match_shift(reference: np.ndarray, image: np.ndarray, max_shift: int) -> float:
    """Rows (float) by which ``image``'s content sits lower than ``reference``'s (h, w each).

    Normalised cross-correlation over integer shifts up to ``max_shift`` in both directions,
    refined by a parabola through the best row shift and its neighbours.
    """
    h, w = reference.shape
    m = max_shift
    core = reference[m : h - m, m : w - m] - reference[m : h - m, m : w - m].mean()
    norm = np.sqrt((core**2).sum()) + 1e-6
    scores = np.full((2 * m + 1, 2 * m + 1), -1.0)
    for i in range(2 * m + 1):
        for j in range(2 * m + 1):
            window = image[i : i + h - 2 * m, j : j + w - 2 * m]
            window = window - window.mean()
            scores[i, j] = (core * window).sum() / (norm * (np.sqrt((window**2).sum()) + 1e-6))
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    if 0 < i < 2 * m:
        a, b, c = scores[i - 1, j], scores[i, j], scores[i + 1, j]
        step = 0.5 * (a - c) / (a - 2 * b + c) if abs(a - 2 * b + c) > 1e-9 else 0.0
    else:
        step = 0.0
    return float(i - m + step)


def fitted_cycle(
    trace: np.ndarray, fps: float, periods: np.ndarray = LOADING_PERIODS_S
) -> np.ndarray:
    """float32 (T,): the sinusoid (one of ``periods``, seconds) that best fits a trace (T,).

    Least squares on cos, sin, a constant and a linear drift per period; the best period's
    sinusoid is returned without the constant and the drift (the probe's slow drift).
    """
    t = np.arange(len(trace)) / fps
    best, fit = np.inf, np.zeros(len(trace))
    for period in periods:
        w = 2 * np.pi / period
        design = np.stack([np.cos(w * t), np.sin(w * t), np.ones_like(t), t - t.mean()], 1)
        coef, *_ = np.linalg.lstsq(design, trace, rcond=None)
        residual = float(((design @ coef - trace) ** 2).sum())
        if residual < best:
            best, fit = residual, design[:, :2] @ coef[:2]
    return fit.astype(np.float32)


def tracked_loading(frames: np.ndarray, roi: tuple[int, int, int, int], fps: float) -> np.ndarray:
    """float32 (T,): the loading estimated from the pixels by tracking the femoral head.

    The femoral head glides toward the probe as the joint is loaded (its rotation slides
    the round surface along itself, so the rise is what shows). The bright head surface
    beside the cleft's joint end (rows ``r1 - 6 .. r1 + 6``, columns ``c1 - 4 .. c1 + 28`` of
    the cleft region ``roi``) is matched against its median over the clip; its rise, fitted
    by one loading cycle (:func:`fitted_cycle`), is the estimate.

    Args:
        frames: float32 (T, h, w) model frames; roi: (r0, r1, c0, c1) the cleft region;
        fps: the frames' rate.
    """
    _, h, w = frames.shape
    _, r1, _, c1 = (int(v) for v in roi)
    region = frames[:, max(r1 - 6, 0) : min(h, r1 + 6), max(c1 - 4, 0) : min(w, c1 + 28)]
    if min(region.shape[1:]) <= 2 * TRACK_SHIFT + 2:
        return np.zeros(len(frames), np.float32)
    reference = np.median(region, axis=0)
    rise = np.array([-_match_shift(reference, f, TRACK_SHIFT) for f in region])
    return fitted_cycle(rise, fps)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lagged_corr(signal: np.ndarray, reference: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """float32 (2 max_lag + 1,): corr(signal(t), reference(t - k)) for k = -max_lag..max_lag.

    A positive k means the signal follows the reference by k frames.
    """
    out = []
    for k in range(-max_lag, max_lag + 1):
        if k >= 0:
            out.append(_corr(signal[k:], reference[: len(reference) - k]))
        else:
            out.append(_corr(signal[:k], reference[-k:]))
    return np.asarray(out, np.float32)


def centroid_travel(profile: np.ndarray) -> np.ndarray:
    """float32 (T-1,): travel of the darkening's centroid along the cleft between frames.

    Weighted by how much darkening both frames hold, so noise in an empty cleft adds little.
    Positive = towards the capsular side (the sign's way), negative = towards the joint.
    """
    dark = np.clip(profile, 0.0, None)
    centres = (np.arange(dark.shape[1]) + 0.5) / dark.shape[1]
    amount = dark.sum(axis=1)
    centroid = (dark * centres).sum(axis=1) / np.maximum(amount, 1e-6)
    return (np.sqrt(amount[1:] * amount[:-1]) * np.diff(centroid)).astype(np.float32)


def _phase_vector(weights: np.ndarray, phase: np.ndarray) -> tuple[float, float]:
    """Weighted mean of (cos, sin) of the phase: where in the cycle the weight lies."""
    total = float(np.abs(weights).sum())
    if total < 1e-9:
        return 0.0, 0.0
    return float((weights * np.cos(phase)).sum() / total), float(
        (weights * np.sin(phase)).sum() / total
    )


def packet_template(
    phase: np.ndarray, onset: float, duration: float, packet: str, bins: int
) -> np.ndarray:
    """float32 (T, bins): where the generator would put a packet, per frame and bin.

    One burst per cycle, ``onset`` strokes after the loading stroke starts, lasting
    ``duration`` of a stroke, shaped as the generator shapes it (``sin ** EXTENT_POWER``),
    full extent, no jitter; the packet model is the generator's :func:`packet_bounds`.
    The value is the share of each bin that the fluid covers.
    """
    shifted = phase - onset * np.pi
    u = (shifted - 2 * np.pi * np.floor(shifted / (2 * np.pi))) / (duration * np.pi)
    extent = np.where(u <= 1.0, np.sin(np.pi * np.clip(u, 0, 1)) ** EXTENT_POWER, 0.0)
    lo, hi = packet_bounds(extent.astype(np.float32), packet)
    edges = np.linspace(*AXIS_SPAN, bins + 1)  # the bins of :func:`cleft_profile`
    overlap = np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1])
    share = np.clip(overlap, 0.0, None) / (edges[1] - edges[0])
    return (share * (extent[:, None] > 0.04)).astype(np.float32)


def matched_filters(profile: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """float32 (2 len(PACKETS),): best template correlation per packet, on / off the loading.

    For each packet, the largest correlation of the (T, B) profile with a template
    (:func:`packet_template`) over durations and onsets on the loading stroke (onset <=
    ``LOADING_ONSETS``), then over the other onsets. Order: ``forward_loading``,
    ``forward_other``, ``reverse_loading``, ...
    """
    flat = profile.ravel()
    out = []
    for packet in PACKETS:
        best = {True: -1.0, False: -1.0}
        for onset in ONSETS:
            for duration in DURATIONS:
                template = packet_template(phase, onset, duration, packet, profile.shape[1])
                score = _corr(flat, template.ravel())
                on_loading = bool(onset <= LOADING_ONSETS)
                best[on_loading] = max(best[on_loading], score)
        out += [best[True], best[False]]
    return np.asarray(out, np.float32)


def direction_features(profile: np.ndarray, position: np.ndarray) -> np.ndarray:
    """float32 (len(DIRECTION_FEATURES),): which way and when the cleft's darkening moves.

    Args:
        profile: float32 (T, B) from :func:`cleft_profile`.
        position: float (T,) loading trace (the generator's, or estimated from the pixels).

    Returns:
        The features in the order of :data:`DIRECTION_FEATURES`.
    """
    phase = loading_phase(position)
    velocity = np.sin(phase)  # the loading velocity, normalised (1 = fastest loading)
    travel = centroid_travel(profile)
    amount = np.clip(profile, 0.0, None).sum(axis=1)
    mid_phase = 0.5 * (phase[1:] + phase[:-1])
    joint, capsular = profile[:, 0], profile[:, -1]
    arrival = lagged_corr(capsular, joint, 2)  # capsular follows joint by k frames
    feats = [
        float(travel.sum()),
        float(travel.sum() / max(np.abs(travel).sum(), 1e-6)),
        float(arrival[3:].sum() - arrival[:2].sum()),
        *lagged_corr(travel, velocity[1:]),
        *lagged_corr(amount, velocity),
        _corr(amount, np.cos(phase)),
        _corr(amount, velocity),
        *_phase_vector(np.clip(travel, 0.0, None), mid_phase),
        *_phase_vector(np.clip(-travel, 0.0, None), mid_phase),
        *matched_filters(profile, phase),
    ]
    return np.asarray(feats, np.float32)
