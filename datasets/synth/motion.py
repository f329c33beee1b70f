"""Time courses of one clip: the provocative movement, probe nuisances and tongue extents.

All traces are float arrays of shape (T,) sampled at the clip's frame times. The loading
L(t) in [0, 1] is the joint angle of a symmetric flexion / internal-rotation cycle; the
femur moves with it in every frame, so the loading phase is visible in the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Power applied to the half-wave extent so that a burst is visible for most of its stroke.
EXTENT_POWER = 0.6


@dataclass
class MotionTraces:
    """Per-frame motion of one clip (all float32 arrays of shape (T,)).

    Attributes:
        loading: joint angle, 0 (rest) .. 1 (full flexion / internal rotation).
        loading_velocity: dL/dt normalised to [-1, 1] (1 = fastest loading).
        femur_rot_deg: rotation of the femur about the femoral head centre, degrees (the
            head surface stays in place, its cartilage slides and the head-neck junction
            and neck swing).
        probe_dx_mm, probe_dz_mm: probe shift (drift + tremor; dz > 0 = pressing in).
        probe_tilt_deg: probe rocking angle.
        probe_tilt_norm: the rocking component alone, normalised to [-1, 1].
        gain_db: per-frame gain changes.
        shown_frame: index of the frame actually shown (dropped frames repeat the previous).
    """

    loading: np.ndarray
    loading_velocity: np.ndarray
    femur_rot_deg: np.ndarray
    probe_dx_mm: np.ndarray
    probe_dz_mm: np.ndarray
    probe_tilt_deg: np.ndarray
    probe_tilt_norm: np.ndarray
    gain_db: np.ndarray
    shown_frame: np.ndarray


def draw_motion_params(rng: np.random.Generator, probe_scale: float) -> dict[str, Any]:
    """Draw the movement and nuisance parameters of one clip.

    Args:
        rng: the clip's generator.
        probe_scale: multiplies every probe-motion amplitude (the ``probe_motion`` shift knob
            and the ``probe_motion`` negative type use values > 1).

    Returns:
        JSON-ready dict of amplitudes (mm, degrees), periods (s) and phases (rad).
    """
    period = float(rng.uniform(0.7, 1.3))
    return {
        "movement": str(rng.choice(["flexion", "internal_rotation"])),
        "loading_period_s": period,
        "loading_phase": float(rng.uniform(0, 2 * np.pi)),
        "femur_rot_deg": float(rng.uniform(12.0, 18.0)),  # in-plane component of flexion/IR
        # the moving thigh rocks the probe once per two strokes (half the loading frequency)
        "rock_period_s": 2.0 * period,
        "rock_phase": float(rng.uniform(0, 2 * np.pi)),
        "rock_deg": float(rng.uniform(0.6, 1.5) * probe_scale),
        "drift_mm": [float(v) for v in rng.normal(0, 0.5 * probe_scale, 2)],
        "press_mm": float(abs(rng.normal(0, 0.3 * probe_scale))),
        "tremor_mm": float(rng.uniform(0.02, 0.08) * probe_scale),
        "gain_wobble_db": float(rng.uniform(0.0, 1.5)),
        "drop_rate": float(rng.choice([0.0, 0.0, 0.03, 0.06])),
    }


def make_traces(
    p: dict[str, Any], frames: int, fps: float, rng: np.random.Generator
) -> MotionTraces:
    """Sample the per-frame traces of a clip.

    Args:
        p: output of :func:`draw_motion_params`.
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
    rock = np.sin(rock_theta)
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
        femur_rot_deg=(p["femur_rot_deg"] * loading).astype(f32),
        probe_dx_mm=(p["drift_mm"][0] * tau + tremor[0]).astype(f32),
        probe_dz_mm=(p["press_mm"] * (0.5 - 0.5 * np.cos(np.pi * tau)) + tremor[1]).astype(f32),
        probe_tilt_deg=(p["rock_deg"] * rock + 4.0 * tremor[2]).astype(f32),
        probe_tilt_norm=rock.astype(f32),
        gain_db=gain.astype(f32),
        shown_frame=shown,
    )


def half_wave_extent(drive: np.ndarray) -> np.ndarray:
    """Tongue extent from a drive signal: positive half-wave, shaped by ``EXTENT_POWER``.

    Args:
        drive: float (T,) in [-1, 1] (loading velocity, its negative, or probe rocking).

    Returns:
        float32 (T,) in [0, 1]; 0 where ``drive <= 0``.
    """
    return (np.clip(drive, 0.0, 1.0) ** EXTENT_POWER).astype(np.float32)


def packet_bounds(extent: np.ndarray, forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where along the cleft (0 = joint side, 1 = capsular side) fluid sits in each frame.

    Fluid pushed through a cleft travels as a packet: in each burst (a run of frames with
    extent > 0) the front advances from the joint side while the extent grows, then the
    joint side clears first while it shrinks, so the packet leaves on the capsular side.
    ``forward=False`` gives the time-reversed sequence (enters on the capsular side, leaves
    on the joint side): the same set of per-frame shapes in an order no joint-driven flow
    produces.

    Args:
        extent: float (T,) fluid extent per frame in [0, 1].
        forward: True for flow from the joint toward the capsule.

    Returns:
        ``(lo, hi)``, float32 (T,) each: the fluid occupies ``lo <= s <= hi``.
    """
    extent = np.asarray(extent, np.float32)
    lo = np.zeros_like(extent)
    hi = extent.copy()
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
