"""Time courses of one clip: the provocative movement, probe nuisances and tongue extents.

All traces are float arrays of shape (T,) sampled at the clip's frame times. The loading
L(t) in [0, 1] is the joint angle of a symmetric flexion / internal-rotation cycle; the
femur moves with it in every frame, so the loading phase is visible in the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Power applied to a burst's sine profile so that it is visible for most of its duration.
EXTENT_POWER = 0.6


@dataclass
class MotionTraces:
    """Per-frame motion of one clip (all float32 arrays of shape (T,)).

    Attributes:
        loading: joint angle, 0 (rest) .. 1 (full flexion / internal rotation).
        loading_velocity: dL/dt normalised to [-1, 1] (1 = fastest loading).
        loading_clock: phase of the loading cycle, radians, unwrapped (float64): the loading
            stroke is ``clock mod 2 pi`` in [0, pi), the unloading stroke [pi, 2 pi).
        femur_rot_deg: rotation of the femur about the femoral head centre, degrees (the
            head surface stays in place, its cartilage slides and the head-neck junction
            and neck swing).
        femur_glide_mm: how far the femoral head has glided toward the probe, mm.
        probe_dx_mm, probe_dz_mm: probe shift (drift + tremor; dz > 0 = pressing in).
        probe_tilt_deg: probe rocking angle.
        gain_db: per-frame gain changes.
        shown_frame: index of the frame actually shown (dropped frames repeat the previous).
    """

    loading: np.ndarray
    loading_velocity: np.ndarray
    loading_clock: np.ndarray
    femur_rot_deg: np.ndarray
    femur_glide_mm: np.ndarray
    probe_dx_mm: np.ndarray
    probe_dz_mm: np.ndarray
    probe_tilt_deg: np.ndarray
    gain_db: np.ndarray
    shown_frame: np.ndarray


def make_traces(
    p: dict[str, Any], frames: int, fps: float, rng: np.random.Generator
) -> MotionTraces:
    """Sample the per-frame traces of a clip.

    Args:
        p: the ``"motion"`` part of :func:`labral.datasets.synth.params.draw_clip_params`.
        frames: T.
        fps: frames per second.
        rng: the clip's generator (tremor, gain and dropped-frame draws).

    Returns:
        :class:`MotionTraces` of length T.
    """
    t = np.arange(frames) / fps
    theta = 2 * np.pi * t / p["loading_period_s"] + p["loading_phase"]
    loading = 0.5 - 0.5 * np.cos(theta)
    velocity = np.sin(theta)
    rock_theta = 2 * np.pi * t / p["rock_period_s"] + p["rock_phase"]
    rock = np.sin(rock_theta + np.pi / 2)  # tilt peaks as the rocking stroke starts
    tau = t / max(t[-1], 1e-6)
    tremor = rng.normal(0, p["tremor_mm"], (3, frames))
    gain = p["gain_wobble_db"] * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t + rng.uniform(0, 6))
    shown = np.arange(frames)
    drops = rng.random(frames) < p["drop_rate"]
    drops[0] = False
    for i in np.nonzero(drops)[0]:
        shown[i] = shown[i - 1]
    f32 = np.float32
    return MotionTraces(
        loading=loading.astype(f32),
        loading_velocity=velocity.astype(f32),
        loading_clock=theta,
        femur_rot_deg=(p["femur_rot_deg"] * loading).astype(f32),
        femur_glide_mm=(p["femur_glide_mm"] * loading).astype(f32),
        probe_dx_mm=(p["drift_mm"][0] * tau + tremor[0]).astype(f32),
        probe_dz_mm=(p["press_mm"] * (0.5 - 0.5 * np.cos(np.pi * tau)) + tremor[1]).astype(f32),
        probe_tilt_deg=(p["rock_deg"] * rock + 4.0 * tremor[2]).astype(f32),
        gain_db=gain.astype(f32),
        shown_frame=shown,
    )


def burst_extent(clock: np.ndarray, onset: float, cleft: dict[str, Any]) -> np.ndarray:
    """Tongue extent per frame: one burst per loading cycle, ``onset`` strokes after it starts.

    A stroke is half a loading cycle (``pi`` radians): the loading stroke is the first, the
    unloading stroke the second. In each cycle the burst starts ``onset`` + that cycle's
    jitter strokes after the loading stroke starts (wrapping round the cycle), lasts
    ``burst_fraction`` of a stroke and peaks at ``extent_max``, with the profile
    ``sin(pi u) ** EXTENT_POWER`` over the burst (u in [0, 1]).

    Args:
        clock: float (T,) unwrapped phase of the loading cycle, radians.
        onset: burst onset after the loading stroke starts, strokes (0 = with the loading).
        cleft: the ``"cleft"`` part of :func:`labral.datasets.synth.params.draw_clip_params`.

    Returns:
        float32 (T,) in [0, extent_max]; 0 outside bursts.
    """
    phase = np.asarray(clock, np.float64) - onset * np.pi
    cycles = np.floor(phase / (2 * np.pi))
    index = (cycles - cycles.min()).astype(np.int64)
    jitter = np.asarray(cleft["stroke_jitter"], np.float64)
    shift = jitter[np.minimum(index, len(jitter) - 1)]
    u = (phase - 2 * np.pi * cycles - shift * np.pi) / (cleft["burst_fraction"] * np.pi)
    inside = (u >= 0.0) & (u <= 1.0)
    profile = np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** EXTENT_POWER
    return np.where(inside, cleft["extent_max"] * profile, 0.0).astype(np.float32)


def packet_bounds(extent: np.ndarray, packet: str) -> tuple[np.ndarray, np.ndarray]:
    """Where along the cleft (0 = joint side, 1 = capsular side) fluid sits in each frame.

    Fluid pushed through a cleft travels as a packet: in each burst (a run of frames with
    extent > 0) the front advances from the joint side while the extent grows, then the
    joint side clears first while it shrinks, so the packet leaves on the capsular side
    (``"forward"``). ``"reverse"`` gives the time-reversed sequence (enters on the capsular
    side, leaves on the joint side): the same set of per-frame shapes in an order no
    joint-driven flow produces. ``"in_out"`` fills from the joint side and drains back
    (``lo = 0``, ``hi = extent``).

    Args:
        extent: float (T,) fluid extent per frame in [0, 1].
        packet: ``"forward"``, ``"reverse"`` or ``"in_out"``.

    Returns:
        ``(lo, hi)``, float32 (T,) each: the fluid occupies ``lo <= s <= hi``.
    """
    extent = np.asarray(extent, np.float32)
    lo = np.zeros_like(extent)
    hi = extent.copy()
    if packet == "in_out":
        return lo, hi
    forward = packet == "forward"
    active = extent > 0.04
    t, frames = 0, len(extent)
    while t < frames:
        if not active[t]:
            t += 1
            continue
        end = t
        while end < frames and active[end]:
            end += 1
        burst = extent[t:end]
        peak_at = int(np.argmax(burst))
        peak = float(burst[peak_at])
        # forward: growing -> [0, e], shrinking -> [peak - e, peak]; reverse swaps the two
        tail = np.arange(end - t) > peak_at if forward else np.arange(end - t) <= peak_at
        lo[t:end] = np.where(tail, peak - burst, 0.0)
        hi[t:end] = np.where(tail, peak, burst)
        t = end
    return lo, hi
