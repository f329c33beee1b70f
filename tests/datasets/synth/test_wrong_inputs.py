"""Wrong inputs from the generator (issue 22) and the suite that holds them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import ndimage

from labral.bench import suites
from labral.bench.suite_plan import clip_plan, generate_one
from labral.datasets.io.reader import read_cine
from labral.datasets.synth import wrong_inputs as W
from labral.datasets.synth.anatomy import ECHO
from labral.datasets.synth.generate import _cached_tissue, draw_patient, generate_clip
from labral.datasets.synth.other_views import VIEWS, render_view
from labral.datasets.synth.warp import MARGIN
from labral.errors import BadConfigError

SMALL = {"frames": 12, "height": 64, "width": 64}
#: Long enough for a movement cycle (0.7-1.3 s at 20 fps).
MOVING = {"frames": 24, "height": 96, "width": 96}


@pytest.fixture(scope="module")
def clips() -> dict[str, W.SynthClip]:
    return {kind: W.generate_wrong_input(kind, 7, **SMALL) for kind in W.WRONG_INPUT_KINDS}


def test_families_partition_the_kinds_and_training_leaves_out_the_held_out_family() -> None:
    listed = [k for kinds in W.WRONG_INPUT_FAMILIES.values() for k in kinds]
    assert len(listed) == len(set(listed)) and tuple(listed) == W.WRONG_INPUT_KINDS
    held_out = set(W.WRONG_INPUT_FAMILIES[W.HELD_OUT_FAMILY])
    assert held_out == {"knee", "shoulder"}
    assert set(W.TRAINING_KINDS) == set(W.WRONG_INPUT_KINDS) - held_out
    assert all(W.family_of(k) == f for f, ks in W.WRONG_INPUT_FAMILIES.items() for k in ks)
    assert not any("mirror" in k or "flip" in k for k in W.WRONG_INPUT_KINDS)  # a left hip


def test_every_kind_is_a_deterministic_label_0_clip(clips: dict) -> None:
    for kind, clip in clips.items():
        frames = clip.frames
        assert frames.dtype == np.uint8 and frames.ndim == 3, kind
        assert frames.shape[1:] == (64, 64), kind
        assert frames.shape[0] == (SMALL["frames"] if kind != "too_short" else frames.shape[0])
        assert clip.label == 0 and clip.clip_type == W.WRONG_INPUT_CLIP_TYPE, kind
        assert clip.extrusion_mask.shape == frames.shape and not clip.extrusion_mask.any()
        assert clip.extrusion_frames == []
        p = clip.params
        assert (p["wrong_input"], p["wrong_family"], p["seed"]) == (kind, W.family_of(kind), 7)
        assert p["frames"] == frames.shape[0] and p["fps"] == 20.0 and p["size"] == [64, 64]
        assert "center_freq_mhz" in p["anatomy"]  # the DICOM writer's transducer frequency
        json.dumps(p)
        again = W.generate_wrong_input(kind, 7, **SMALL)
        assert np.array_equal(again.frames, frames), kind
        assert json.dumps(again.params, sort_keys=True) == json.dumps(p, sort_keys=True)
        other = W.generate_wrong_input(kind, 8, **SMALL).frames
        assert other.shape != frames.shape or not np.array_equal(other, frames), kind


def test_kinds_differ_from_each_other(clips: dict) -> None:
    for (a, ca), (b, cb) in itertools.combinations(clips.items(), 2):
        if ca.frames.shape == cb.frames.shape:
            assert np.mean(ca.frames != cb.frames) > 0.3, (a, b)


def test_manoeuvre_one_is_bit_identical_and_zero_holds_the_hip_still() -> None:
    patient = draw_patient(4)
    for clip_type in ("positive", "probe_motion"):
        plain = generate_clip(patient, clip_type, 2, **SMALL)
        one = generate_clip(patient, clip_type, 2, overrides={"manoeuvre": 1.0}, **SMALL)
        assert np.array_equal(plain.frames, one.frames)
        assert np.array_equal(plain.extrusion_mask, one.extrusion_mask)
        assert plain.params["traces"] == one.params["traces"]
    still = generate_clip(patient, "normal", 2, overrides={"manoeuvre": 0.0}, **SMALL)
    moving = generate_clip(patient, "normal", 2, **SMALL)
    traces = still.params["traces"]
    assert not np.any(traces["femur_rot_deg"]) and not np.any(traces["femur_glide_mm"])
    assert still.params["motion"]["rock_deg"] == 0.0 and moving.params["motion"]["rock_deg"] > 0
    # the scaling comes after every draw: nothing else changes
    assert still.params["imaging"] == moving.params["imaging"]
    assert still.params["cleft"] == moving.params["cleft"]
    assert still.params["motion"]["drift_mm"] == moving.params["motion"]["drift_mm"]
    with pytest.raises(BadConfigError, match="manoeuvre"):
        generate_clip(patient, "normal", 2, overrides={"manoeuvre": -1.0}, **SMALL)


def test_image_faults_are_what_they_say(clips: dict) -> None:
    for fps in (8.0, 20.0, 50.0):
        short = W.generate_wrong_input("too_short", 3, fps=fps, **SMALL)
        assert 4 <= short.frames.shape[0] <= 9 and short.frames.shape[0] / fps < 1.0
    for seed in range(3):
        saturated = W.generate_wrong_input("saturated", seed, **SMALL).frames
        assert np.mean(saturated == 255) >= 0.35
    dropped = clips["dropped_frames"].frames
    repeats = np.mean([np.array_equal(dropped[t], dropped[t - 1]) for t in range(1, 12)])
    assert 0.35 <= repeats <= 0.7  # 40-60% dropped, plus the valid clip's own drops
    assert clips["blank"].frames.max() <= 4
    noise = clips["noise_only"].frames.astype(float)
    assert np.corrcoef(noise[3].ravel(), noise[4].ravel())[0, 1] < 0.5  # fresh every frame
    lifted = clips["probe_lifted"].frames.astype(float)
    assert lifted[:, :16].mean() > lifted[:, -16:].mean() + 10  # reverberations fade
    assert lifted.std(axis=2).mean() < lifted.std(axis=1).mean()  # horizontal lines
    gap = clips["gel_gap"].frames.astype(float)
    assert min(gap[..., :16].mean(), gap[..., -16:].mean()) < 20  # one side lost contact
    still = clips["no_manoeuvre"].params
    assert still["source"]["clip_type"] in W.STILL_TYPES
    assert not np.any(still["traces"]["femur_rot_deg"])
    turned = W.generate_wrong_input("rotated_90", 3, frames=6, height=64, width=48)
    assert turned.frames.shape == (6, 64, 48)


def _motion(frames: np.ndarray) -> float:
    """Temporal std of the speckle-smoothed clip, mean over pixels."""
    return float(ndimage.gaussian_filter(frames.astype(np.float32), (0, 2, 2)).std(axis=0).mean())


def test_other_views_look_like_the_hip_clips_but_are_not_the_hip(monkeypatch) -> None:
    seeds = range(4)
    valid = [generate_clip(draw_patient(s), "normal", s, **MOVING).frames for s in seeds]
    still = [W.generate_wrong_input("no_manoeuvre", s, **MOVING).frames for s in seeds]
    low, high = min(f.mean() for f in valid), max(f.mean() for f in valid)
    made = {v: [W.generate_wrong_input(v, s, **MOVING).frames for s in seeds] for v in VIEWS}
    make_traces = W.make_traces  # the same views with the bone held still
    monkeypatch.setattr(
        W,
        "make_traces",
        lambda m, *a: make_traces({**m, "femur_rot_deg": 0, "femur_glide_mm": 0}, *a),
    )
    for view, clips in made.items():
        assert 0.5 * low < np.mean([f.mean() for f in clips]) < 2.0 * high, view  # grey levels
        assert all(np.mean(f == 0) < 0.8 and np.mean(f == 255) < 0.05 for f in clips), view
        # they move like a manoeuvre (the still-hip check is not what refuses them), and the
        # bone's own movement shows
        moving = np.mean([_motion(f) for f in clips])
        assert moving > 0.7 * np.mean([_motion(f) for f in valid]), view
        assert moving > 1.4 * np.mean([_motion(f) for f in still]), view
        held = [W.generate_wrong_input(view, s, **MOVING).frames for s in seeds]
        assert moving > 1.05 * np.mean([_motion(f) for f in held]), view
        probe = {"depth_mm": 45.0, "fov_mm": 40.0}
        maps = render_view(view, probe, np.random.default_rng(1), 96, 96, MARGIN)
        assert not np.any(maps.echo == np.float32(ECHO["labrum"])), view  # no labrum
        assert maps.echo.shape == (96 + 2 * MARGIN,) * 2 and 0 <= maps.moves.min()
    hip = generate_clip(draw_patient(1), "normal", 1, **MOVING).params["anatomy"]
    hip_maps = _cached_tissue(json.dumps(hip, sort_keys=True), 96, 96)
    assert np.any(hip_maps.echo == np.float32(ECHO["labrum"]))  # the check above can fail


def test_kinds_made_from_a_valid_clip_are_that_clip_changed(clips: dict) -> None:
    def source(kind: str) -> np.ndarray:
        made = clips[kind].params
        return generate_clip(
            draw_patient(7),
            made["source"]["clip_type"],
            7,
            side=made["source"]["side"],
            overrides=made["source"]["overrides"] or None,
            **SMALL,
        ).frames

    assert np.array_equal(clips["upside_down"].frames, source("upside_down")[:, ::-1])
    turns = clips["rotated_90"].params["quarter_turns"]
    assert np.array_equal(clips["rotated_90"].frames, np.rot90(source("rotated_90"), turns, (1, 2)))
    assert clips["no_manoeuvre"].params["source"]["overrides"] == {"manoeuvre": 0.0}
    assert np.array_equal(clips["no_manoeuvre"].frames, source("no_manoeuvre"))
    kept = np.all(clips["gel_gap"].frames == source("gel_gap"), axis=(0, 1))
    assert 0.3 < kept.mean() < 0.75  # the side in contact is the clip; the rest is lost
    original = source("dropped_frames")
    dropped = clips["dropped_frames"].frames
    assert all(any(np.array_equal(f, g) for g in original) for f in dropped)


def test_unknown_kinds_are_refused_naming_the_key() -> None:
    with pytest.raises(BadConfigError, match="known kinds: transverse"):
        W.generate_wrong_input("elbow", 1)
    with pytest.raises(BadConfigError, match="wrong_input"):
        W.family_of("elbow")
    settings = [{"name": "bad", "wrong_input": "elbow"}]
    with pytest.raises(BadConfigError, match=r"settings\[0\]\.wrong_input='elbow'"):
        suites.load_definition("synthetic-wrong-input", {"settings": settings})
    with pytest.raises(BadConfigError, match="frames"):
        W.generate_wrong_input("knee", 1, frames=2)


def test_the_suite_plans_and_writes_wrong_inputs_the_reader_decodes(tmp_path) -> None:
    definition = suites.load_definition("synthetic-wrong-input", {"n_patients": 1})
    assert definition["version"] == 1
    everything = clip_plan(definition)
    wrong = [s for s in definition["settings"] if s.get("wrong_input")]
    assert [s["wrong_input"] for s in wrong] == list(W.WRONG_INPUT_KINDS)
    valid = [s for s in definition["settings"] if not s.get("wrong_input")]
    assert [s["difficulty"] for s in valid] == ["easy", "medium", "hard", "expert"]
    plan = [item for item in everything if item["wrong_input"]]
    assert {item["wrong_input"] for item in plan} == set(W.WRONG_INPUT_KINDS)
    assert all(i["label"] == 0 and i["hip_label"] == 0 for i in plan)
    assert {i["clip_type"] for i in plan} == {W.WRONG_INPUT_CLIP_TYPE}
    assert {i["shift"] for i in everything if not i["wrong_input"]} == {s["name"] for s in valid}
    small = {"frames": 8, "height": 64, "width": 64}
    picked = [next(i for i in plan if i["wrong_input"] == k) for k in ("knee", "noise_only")]
    for item in picked:
        row = generate_one({**item, **small}, definition["dicom"], tmp_path)
        family = W.family_of(item["wrong_input"])
        assert row["wrong_input"] == item["wrong_input"] and row["wrong_family"] == family
        assert row["held_out"] == (family == W.HELD_OUT_FAMILY)
        assert (row["label"], row["hip_label"], row["clip_type"]) == (0, 0, "wrong_input")
        assert ("loading_velocity" in row) == (item["wrong_input"] == "knee")  # a movement
        decoded = read_cine(tmp_path / row["path"])
        assert decoded.frames.shape[:3] == (8, 64, 64)
    valid = clip_plan(suites.load_definition("synthetic-id", {"n_patients": 1}))[0]
    row = generate_one({**valid, **small}, definition["dicom"], tmp_path / "valid")
    assert "wrong_input" not in row and "loading_velocity" in row  # valid rows unchanged
