"""Every number a clip is made from, drawn in one place: the generator's invariant.

**Invariant.** :func:`draw_clip_params` draws the same parameters, in the same order, from
the same distributions for every clip type; the clip type is used *after* the draws, only to
pick the scenario (what drives the cleft channel, see :mod:`scenarios`). Anatomy, imaging,
the movement, probe rocking (its phase too), anisotropy, effusion and the cleft event's size,
contrast, decorrelation and timing are therefore independent of the label: the one thing that
separates the classes is *when and which way* fluid moves through the cleft. The hip-level
truth (:mod:`hips`) adds the provocation and the hip's extrusion threshold, which decide the
clip label of a detached hip and are not rendered. ``tests/datasets/synth/test_invariant.py``
checks the invariant with two-sample tests over thousands of drawn clips.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labral.datasets.synth.difficulty import Difficulty
from labral.datasets.synth.scenarios import CLIP_TYPES

#: Clip-level parameters that ``overrides`` may replace (besides anatomy keys).
CLIP_KEYS = (
    "dynamic_range_db",
    "gain_db",
    "noise_level",
    "probe_motion",
    "tgc_error",
    "manoeuvre",
)
#: Overrides that scale the movement instead of replacing an imaging draw.
MOTION_KEYS = ("manoeuvre",)
#: What ``manoeuvre`` scales: the femur's movement and the rocking the moving thigh gives
#: the probe (drift and tremor of the sonographer's hand stay).
MANOEUVRE_SCALED = ("femur_rot_deg", "femur_glide_mm", "rock_deg")


def clip_rng(patient_seed: int, seed: int, clip_type: str) -> np.random.Generator:
    """The clip's random generator (draws here, then per-frame noise in the renderer)."""
    return np.random.default_rng(
        [int(patient_seed), int(seed), CLIP_TYPES.index(clip_type), 0xC11B]
    )


def _u(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def draw_clip_params(
    rng: np.random.Generator,
    difficulty: Difficulty,
    frames: int,
    fps: float,
    overrides: dict[str, float],
) -> dict[str, Any]:
    """Draw the imaging, motion, anisotropy and cleft-event parameters of one clip.

    Args:
        rng: from :func:`clip_rng`.
        difficulty: the checked level (ranges of the knobs).
        frames, fps: clip length and rate (how many loading strokes get a jitter draw).
        overrides: clip-level values replacing draws (``CLIP_KEYS``), already validated;
            ``manoeuvre`` (default 1.0, >= 0) multiplies ``MANOEUVRE_SCALED`` after every
            draw, so the draws themselves never change (0 = the hip stays still).

    Returns:
        JSON-ready ``{"imaging", "motion", "labrum_anisotropy", "cleft"}``; no entry depends on
        the clip type.
    """
    knobs = difficulty.ranges
    imaging = {
        "dynamic_range_db": float(rng.uniform(45.0, 58.0)),
        "gain_db": float(rng.uniform(-3.0, 3.0)),
        "noise_level": _u(rng, knobs["noise_level"]),
        "tgc_error": float(rng.normal(0.0, 0.12)),
        "tgc_wobble_db": float(rng.uniform(0.5, 2.5)),
        "tgc_wobble_phase": float(rng.uniform(0, 2 * np.pi)),
        "probe_motion": 1.0,
    }
    imaging.update(
        {k: float(v) for k, v in overrides.items() if k in CLIP_KEYS and k not in MOTION_KEYS}
    )
    probe_scale = _u(rng, knobs["probe_motion"]) * imaging["probe_motion"]
    period = float(rng.uniform(0.7, 1.3))
    loading_phase = float(rng.uniform(0, 2 * np.pi))
    motion = {
        "movement": str(rng.choice(["flexion", "internal_rotation"])),
        "loading_period_s": period,
        "loading_phase": loading_phase,
        "femur_rot_deg": _u(rng, knobs["femur_rot_deg"]),  # in-plane part of flexion / IR
        "femur_glide_mm": _u(rng, knobs["femur_glide_mm"]),  # the head rides up as it loads
        # the moving thigh rocks the probe once per cycle, at a phase of its own: uniform, so
        # the probe angle during a burst has one distribution whenever the burst comes
        "rock_period_s": period,
        "rock_phase": float(rng.uniform(0, 2 * np.pi)),
        "rock_deg": float(rng.uniform(0.6, 1.5) * probe_scale),
        "drift_mm": [float(v) for v in rng.normal(0, 0.5 * probe_scale, 2)],
        "press_mm": float(abs(rng.normal(0, 0.3 * probe_scale))),
        "tremor_mm": float(rng.uniform(0.02, 0.08) * probe_scale),
        "gain_wobble_db": float(rng.uniform(0.0, 1.5)),
        "drop_rate": float(rng.choice([0.0, 0.0, 0.03, 0.06])),
        "probe_scale": probe_scale,
    }
    manoeuvre = float(overrides.get("manoeuvre", 1.0))
    for key in MANOEUVRE_SCALED:
        motion[key] = float(motion[key] * manoeuvre)
    motion["manoeuvre"] = manoeuvre
    anisotropy = {"k": float(rng.uniform(2.0, 6.0)), "offset_deg": float(rng.uniform(-6.0, 6.0))}
    strokes = math.ceil(frames / fps / period) + 2
    jitter_sd = _u(rng, knobs["jitter"])
    cleft = {
        "extent_max": _u(rng, knobs["extent_max"]),
        "width_scale": _u(rng, knobs["width_scale"]),
        "fluid_contrast": _u(rng, knobs["fluid_contrast"]),
        "flow_rho": _u(rng, knobs["flow_rho"]),
        "burst_fraction": _u(rng, knobs["burst_fraction"]),
        "lag": _u(rng, knobs["lag"]),
        "pocket_onset": _u(rng, knobs["pocket_onset"]),
        "jitter": jitter_sd,
        "stroke_jitter": [round(float(v), 5) for v in rng.normal(0.0, jitter_sd, strokes)],
        "static_fraction": float(rng.uniform(0.6, 1.0)),  # extent of a static shape / max
        "sulcus_fraction": float(rng.uniform(0.35, 0.55)),  # a sulcus is partial, always
        "variant_draw": float(rng.random()),  # picks a look-alike's variant
    }
    return {"imaging": imaging, "motion": motion, "labrum_anisotropy": anisotropy, "cleft": cleft}
