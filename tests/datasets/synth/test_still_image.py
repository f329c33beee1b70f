"""A still a sonographer would accept: shadow under bone, a bright labrum, layers, attenuation.

Measured on generated frames against the generator's own tissue maps (the image region of
the reference grid), at every difficulty level.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from labral.datasets.synth.anatomy import ECHO
from labral.datasets.synth.generate import MARGIN, _cached_tissue, draw_patient, generate_clip
from labral.datasets.synth.hips import draw_hip_truth, extrusion_visible

LEVELS = ["easy", "medium", "hard", "expert"]
PATIENTS = range(30, 38)


def regions(clip) -> dict[str, np.ndarray]:
    """bool (H, W) masks of the tissues in the clip's image (at rest)."""
    height, width = clip.frames.shape[1:]
    maps = _cached_tissue(json.dumps(clip.params["anatomy"], sort_keys=True), height, width)
    crop = (slice(MARGIN, MARGIN + height), slice(MARGIN, MARGIN + width))
    echo, labrum, sheet = maps.echo[crop], maps.labrum[crop], maps.sheet[crop]
    bone = echo == ECHO["bone_shadow"]
    # well under the cortex of the femoral head (which turns in place; the neck swings):
    # bone at least 5 rows deep, left of the head's centre
    shadow = ndimage.binary_erosion(bone, structure=np.ones((11, 3), bool))
    shadow[:, int(maps.pivot_mm[0] / maps.dx) :] = False
    # the labrum's neighbours other than bone and the (also bright) capsule
    ring = ndimage.binary_dilation(labrum, iterations=4) & ~labrum & ~bone & ~sheet
    ring &= echo < ECHO["bone_surface"]
    return {
        "shadow": shadow,
        "capsule": sheet & (echo == ECHO["capsule"]),
        "labrum": labrum,
        "ring": ring,
        "fat": echo == ECHO["fat"],
    }


@pytest.mark.parametrize("level", LEVELS)
def test_shadow_below_bone_is_dark(level: str) -> None:
    ratios = []
    for p in PATIENTS:
        clip = generate_clip(draw_patient(p), "normal", 1, difficulty=level)
        mask = regions(clip)
        frames = clip.frames.astype(np.float32)
        ratios.append(frames[:, mask["shadow"]].mean() / frames[:, mask["capsule"]].mean())
    assert max(ratios) < 0.10, ratios


@pytest.mark.parametrize("level", LEVELS)
def test_labrum_is_a_bright_triangle_over_its_surroundings(level: str) -> None:
    contrast = []
    for p in PATIENTS:
        clip = generate_clip(draw_patient(p), "normal", 1, difficulty=level)
        mask = regions(clip)
        rest = int(np.argmin(clip.params["traces"]["loading"]))  # the maps show the hip at rest
        mean = clip.frames[rest].astype(np.float32)
        assert mask["labrum"].sum() > 30  # a triangle of many pixels, not a speck
        contrast.append(mean[mask["labrum"]].mean() - mean[mask["ring"]].mean())
    assert min(contrast) > 5 and np.median(contrast) > 40, contrast


def test_layers_fat_darker_than_capsule_and_depth_attenuates() -> None:
    patient = draw_patient(31)
    clip = generate_clip(patient, "normal", 1, overrides={"tgc_error": 0.0})
    mask = regions(clip)
    frames = clip.frames.astype(np.float32)
    assert frames[:, mask["fat"]].mean() < frames[:, mask["capsule"]].mean() - 30
    # with too little time-gain compensation the same tissue is darker deeper down
    under = generate_clip(patient, "normal", 1, overrides={"tgc_error": -0.5})
    top, deep = slice(0, 8), slice(clip.frames.shape[1] // 3, clip.frames.shape[1] // 2)
    assert abs(under.frames[:, top].mean() - clip.frames[:, top].mean()) < 3
    assert under.frames[:, deep].mean() < clip.frames[:, deep].mean() - 5


def test_hip_truth_rule_and_plan() -> None:
    assert extrusion_visible(1, 0.6, 0.5) and not extrusion_visible(1, 0.4, 0.5)
    assert not extrusion_visible(0, 1.0, 0.0)  # an intact hip never extrudes
    rng = np.random.default_rng(0)
    mix = {"normal": 1.0, "incoherent_twin": 1.0}
    truth = draw_hip_truth([3] * 40, 0.5, (0.05, 0.55), mix, rng)
    hip_labels = [hip[0].hip_label for hip in truth]
    assert sum(hip_labels) == 20
    for hip in truth:
        assert (
            len({c.hip_label for c in hip}) == 1 and len({c.extrusion_threshold for c in hip}) == 1
        )
        for c in hip:
            assert c.label == int(
                extrusion_visible(c.hip_label, c.provocation, c.extrusion_threshold)
            )
    detached = [hip for hip in truth if hip[0].hip_label]
    assert any(c.label == 0 for hip in detached for c in hip)  # detached, not loaded enough
    assert all(c.label == 0 for hip in truth if not hip[0].hip_label for c in hip)
    negatives = [c.clip_type for hip in truth for c in hip if not c.label]
    assert abs(negatives.count("normal") - negatives.count("incoherent_twin")) <= 1
