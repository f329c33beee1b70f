"""Behaviour of the synthetic clip generator: determinism, classes, ground truth, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.motion import burst_extent, packet_bounds
from labral.datasets.synth.scenarios import CLIP_TYPES
from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE
from labral.errors import BadConfigError

SMALL = {"frames": 12, "height": 64, "width": 64}
SMALL_SIZE = {"height": 64, "width": 64}


def test_same_seed_gives_identical_clip_and_params():
    patient = draw_patient(11)
    a = generate_clip(patient, "positive", 3, **SMALL)
    b = generate_clip(draw_patient(11), "positive", 3, **SMALL)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.extrusion_mask, b.extrusion_mask)
    assert json.dumps(a.params, sort_keys=True) == json.dumps(b.params, sort_keys=True)


def test_different_seed_or_patient_differs():
    patient = draw_patient(11)
    a = generate_clip(patient, "normal", 3, **SMALL)
    b = generate_clip(patient, "normal", 4, **SMALL)
    c = generate_clip(draw_patient(12), "normal", 3, **SMALL)
    assert np.mean(a.frames != b.frames) > 0.3
    assert np.mean(a.frames != c.frames) > 0.3
    assert draw_patient(11) != draw_patient(12)


def test_same_patient_same_anatomy_across_clips_and_small_side_difference():
    patient = draw_patient(5)
    assert draw_patient(5) == patient
    a = generate_clip(patient, "normal", 1, **SMALL)
    b = generate_clip(patient, "sulcus", 2, **SMALL)
    assert a.params["anatomy"] == b.params["anatomy"]
    left = generate_clip(patient, "normal", 1, side="L", **SMALL).params["anatomy"]
    right = a.params["anatomy"]
    assert left != right
    for key in ("labrum_thick_mm", "capsule_mm", "fat_mm"):
        assert abs(left[key] / right[key] - 1.0) <= 0.085
    assert left["head_radius_mm"] == right["head_radius_mm"]


@pytest.mark.parametrize("clip_type", CLIP_TYPES)
def test_every_type_has_right_label_shapes_and_dtypes(clip_type):
    # 24 frames at 10 fps span more than one loading cycle, so a positive's burst is in view
    clip = generate_clip(
        draw_patient(2),
        clip_type,
        9,
        frames=24,
        fps=10.0,
        height=72,
        width=56,
        difficulty="easy",
    )
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (24, 72, 56)
    assert clip.extrusion_mask.dtype == bool and clip.extrusion_mask.shape == (24, 72, 56)
    assert clip.label == int(clip_type == POSITIVE_TYPE)
    assert clip.clip_type == clip_type
    assert clip.frames.std() > 20  # an image, not a flat field
    json.dumps(clip.params)  # JSON-ready
    if clip.label:
        assert clip.extrusion_frames and clip.extrusion_mask.any()
        assert clip.extrusion_frames == sorted(set(np.nonzero(clip.extrusion_mask.any((1, 2)))[0]))
    else:
        assert clip.extrusion_frames == [] and not clip.extrusion_mask.any()
    assert set(NEGATIVE_TYPES) | {POSITIVE_TYPE} == set(CLIP_TYPES)


def _drop(clip, roi, ext) -> float:
    """Mean cleft-ROI intensity outside minus inside the frames flagged ``ext``."""
    r0, r1, c0, c1 = roi
    means = clip.frames[:, r0:r1, c0:c1].astype(float).mean(axis=(1, 2))
    return float(means[~ext].mean() - means[ext].mean())


@pytest.mark.parametrize("patient_seed", [21, 22, 23])
def test_ground_truth_matches_pixels_only_positives_drop_in_extrusion_frames(patient_seed):
    patient = draw_patient(patient_seed)
    pos = generate_clip(patient, "positive", 1, frames=32, difficulty="easy")
    roi = pos.params["cleft_roi_px"]
    ext = np.zeros(pos.frames.shape[0], bool)
    ext[pos.extrusion_frames] = True
    assert ext.any() and (~ext).any()
    pos_drop = _drop(pos, roi, ext)
    assert pos_drop > 15
    r0, r1, c0, c1 = roi
    inside = pos.frames[pos.extrusion_mask].astype(float).mean()
    assert inside < pos.frames[:, r0:r1, c0:c1].astype(float).mean() - 20
    # negatives without a moving cleft shape: no comparable drop in those frames (femur,
    # probe and gain still move the ROI mean by some grey levels, hence the median)
    drops = [
        abs(_drop(generate_clip(patient, neg, seed, frames=32, difficulty="easy"), roi, ext))
        for neg in ("normal", "sulcus", "frozen_twin")
        for seed in (1, 2)
    ]
    assert np.median(drops) < 8 and np.median(drops) < pos_drop / 3


def test_overrides_take_effect():
    patient = draw_patient(4)
    base = generate_clip(patient, "normal", 1, **SMALL)
    deep = generate_clip(patient, "normal", 1, overrides={"depth_mm": 70.0}, **SMALL)
    assert deep.spacing_mm[0] == pytest.approx(70.0 / 64)
    assert deep.params["anatomy"]["depth_mm"] == 70.0
    low_f = generate_clip(patient, "normal", 1, overrides={"center_freq_mhz": 4.0}, **SMALL)
    assert (
        low_f.params["imaging"]["lateral_sigma_focus_mm"]
        > 2
        * base.params["imaging"]["lateral_sigma_focus_mm"]
        * base.params["anatomy"]["center_freq_mhz"]
        / 12.0
    )
    bright = generate_clip(patient, "normal", 1, overrides={"gain_db": 12.0}, **SMALL)
    dark = generate_clip(patient, "normal", 1, overrides={"gain_db": -12.0}, **SMALL)
    assert bright.frames.mean() > dark.frames.mean() + 20
    narrow = generate_clip(patient, "normal", 1, overrides={"dynamic_range_db": 30.0}, **SMALL)
    wide = generate_clip(patient, "normal", 1, overrides={"dynamic_range_db": 80.0}, **SMALL)
    # the display ceiling is fixed: a narrow range crushes more of the shadow to black and
    # shows soft tissue darker
    assert (narrow.frames == 0).mean() > (wide.frames == 0).mean() + 0.05
    assert wide.frames[:, :20].mean() > narrow.frames[:, :20].mean() + 20
    noisy = generate_clip(patient, "normal", 1, overrides={"noise_level": 0.2}, **SMALL)
    assert noisy.frames[:, -16:].mean() > base.frames[:, -16:].mean() + 20  # shadow filled
    still = generate_clip(patient, "normal", 1, overrides={"probe_motion": 0.0}, **SMALL)
    shaky = generate_clip(patient, "normal", 1, overrides={"probe_motion": 4.0}, **SMALL)
    assert still.params["motion"]["rock_deg"] == 0.0
    assert np.ptp(shaky.params["traces"]["probe_tilt_deg"]) > 5.0
    clip = generate_clip(patient, "normal", 1, frames=7, fps=33.0, height=64, width=64)
    assert clip.frames.shape[0] == 7 and clip.fps == 33.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"clip_type": "cyst"}, "clip_type"),
        ({"frames": 3}, "frames"),
        ({"height": 16}, "height"),
        ({"width": 8}, "width"),
        ({"fps": 0.0}, "fps"),
        ({"side": "X"}, "side"),
        ({"seed": -1}, "seed"),
        ({"overrides": {"colour": 1.0}}, "colour"),
        ({"overrides": {"depth_mm": 5.0}}, "depth_mm"),
    ],
)
def test_bad_arguments_raise_bad_config_naming_the_argument(kwargs, name):
    args = {"anatomy": draw_patient(1), "clip_type": "normal", "seed": 0, **SMALL, **kwargs}
    with pytest.raises(BadConfigError, match=name):
        generate_clip(**args)


def test_bad_patient_seed_raises():
    with pytest.raises(BadConfigError, match="seed"):
        draw_patient(-3)


def test_fluid_packet_travels_joint_to_capsule_and_twins_reverse_it() -> None:
    burst = np.array([0.0, 0.3, 0.6, 1.0, 0.6, 0.3, 0.0, 0.0], np.float32)
    lo, hi = packet_bounds(burst, "forward")
    # growing: the front advances from the joint side; shrinking: the joint side clears first
    np.testing.assert_allclose(lo[:4], 0.0)
    np.testing.assert_allclose(hi[1:4], [0.3, 0.6, 1.0])
    np.testing.assert_allclose(lo[4:6], [0.4, 0.7], atol=1e-6)
    np.testing.assert_allclose(hi[4:6], 1.0)
    # the reverse packet is the forward one played backwards (same shapes, other order)
    lo_r, hi_r = packet_bounds(burst[::-1].copy(), "reverse")
    np.testing.assert_allclose(lo_r, lo[::-1], atol=1e-6)
    np.testing.assert_allclose(hi_r, hi[::-1], atol=1e-6)
    # the midpoint of the packet moves toward the capsule in the forward case only
    mid = (lo + hi)[1:6] / 2
    assert np.all(np.diff(mid) > 0)


def test_a_positive_whose_burst_misses_the_clip_is_labelled_by_what_it_shows() -> None:
    # 6 frames at 30 fps (0.2 s) against a loading cycle of 0.7-1.3 s: some positives end
    # before their burst; those must say "no extrusion visible", never label 1 without one
    clips = [
        generate_clip(draw_patient(40 + i), "positive", i, frames=6, fps=30.0, **SMALL_SIZE)
        for i in range(12)
    ]
    missed = [c for c in clips if c.params["variant"] == "burst_outside_clip"]
    assert missed and len(missed) < len(clips)
    for clip in clips:
        assert clip.label == int(bool(clip.extrusion_frames))
        assert clip.clip_type == ("positive" if clip.label else "normal")


def test_bursts_follow_the_loading_stroke_with_lag_and_the_twin_the_unloading_one() -> None:
    clock = np.linspace(0, 4 * np.pi, 400, endpoint=False)  # two loading cycles
    cleft = {"extent_max": 0.8, "burst_fraction": 0.5, "lag": 0.2, "stroke_jitter": [0, 0, 0]}
    ext = burst_extent(clock, 0.2, cleft)
    local = np.mod(clock, 2 * np.pi) / np.pi  # strokes since the loading stroke started
    on = ext > 0
    assert on.any() and ext.max() <= 0.8 + 1e-6
    assert local[on].min() >= 0.2 - 1e-6 and local[on].max() <= 0.7 + 1e-2
    late = burst_extent(clock, 1.2, cleft) > 0
    assert local[late].min() >= 1.2 - 1e-6 and local[late].max() <= 1.7 + 1e-2
    # each cycle has its own onset jitter (cycles counted from the one the clip starts in)
    jittered = burst_extent(clock, 0.2, {**cleft, "stroke_jitter": [0.0, 0.2, 0.0]}) > 0
    first, second = jittered & (clock < 2 * np.pi), jittered & (clock >= 2 * np.pi)
    assert local[first].min() == pytest.approx(0.4, abs=0.02)
    assert local[second].min() == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize("level", ["easy", "medium", "hard", "expert"])
def test_every_level_is_deterministic_and_records_its_knobs(level: str) -> None:
    a = generate_clip(draw_patient(8), "positive", 2, difficulty=level, **SMALL)
    b = generate_clip(draw_patient(8), "positive", 2, difficulty=level, **SMALL)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.params == b.params and a.params["difficulty"]["level"] == level
    knobs = a.params["difficulty"]
    for name, value in a.params["cleft"].items():
        if name in knobs:
            low, high = knobs[name]
            assert low <= value <= high, (name, value)
    low, high = knobs["femur_rot_deg"]
    assert low <= a.params["motion"]["femur_rot_deg"] <= high
