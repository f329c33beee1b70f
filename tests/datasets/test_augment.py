"""Ultrasound augmentation: seeded reproducibility, per-clip consistency, expected effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labral.datasets.io.clip import Clip
from labral.datasets.transforms.augment import (
    RandGaind,
    RandJPEGd,
    RandTemporalJitterd,
    RandTGCd,
    build_augmentations,
)
from labral.datasets.transforms.clip_transforms import build_train_transform
from labral.errors import BadConfigError

SPEC = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 1}
ALL_ON = {
    "temporal": {"prob": 1.0, "max_shift": 1, "drop_prob": 0.2},
    "depth_crop": {"prob": 1.0, "fraction": [0.1, 0.2]},
    "affine": {"prob": 1.0, "translate": 0.05, "rotate_deg": 5.0, "scale": [0.9, 1.1]},
    "gain": {"prob": 1.0, "db": [-6.0, 6.0]},
    "tgc": {"prob": 1.0, "db": [-6.0, 6.0]},
    "speckle": {"prob": 1.0, "sigma": [0.05, 0.1], "temporal_corr": 0.5},
    "jpeg": {"prob": 1.0, "quality": [40, 60]},
}


def textured_clip(static: bool = False, frames: int = 24) -> Clip:
    rng = np.random.default_rng(7)
    base = rng.integers(40, 200, (48, 48)).astype(np.uint8)
    if static:
        return Clip(np.repeat(base[None], frames, axis=0), 10.0)
    return Clip(rng.integers(40, 200, (frames, 48, 48)).astype(np.uint8), 10.0)


def run(seed: int, augment=ALL_ON, clip=None) -> dict:
    return build_train_transform(SPEC, augment, seed=seed)({"clip": clip or textured_clip()})


def test_same_seed_same_output_different_seed_differs():
    a, b, c = run(11), run(11), run(12)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["frame_index"], b["frame_index"])
    assert not torch.equal(a["image"], c["image"])
    assert a["image"].shape == (1, 8, 32, 32) and a["image"].dtype == torch.float32
    assert 0.0 <= float(a["image"].min()) and float(a["image"].max()) <= 1.0


def test_spatial_and_intensity_augmentation_identical_across_frames():
    # a static clip must stay static: gain, TGC, affine, depth crop and JPEG are per clip
    augment = {k: v for k, v in ALL_ON.items() if k != "speckle"}
    for seed in range(4):
        image = run(seed, augment, textured_clip(static=True))["image"][0]
        assert torch.equal(image, image[:1].expand_as(image)), seed
        plain = run(seed, {}, textured_clip(static=True))["image"][0]
        assert not torch.allclose(image[0], plain[0], atol=1e-3)  # it did change the frame


def test_speckle_static_part_follows_temporal_corr():
    clip = textured_clip(static=True)
    frozen = {"speckle": {"prob": 1.0, "sigma": [0.1, 0.1], "temporal_corr": 1.0}}
    moving = {"speckle": {"prob": 1.0, "sigma": [0.1, 0.1], "temporal_corr": 0.0}}
    still = run(5, frozen, clip)["image"][0]
    assert torch.allclose(still, still[:1].expand_as(still), atol=1e-6)
    flicker = run(5, moving, clip)["image"][0]
    assert float((flicker[1:] - flicker[:-1]).abs().mean()) > 0.01


def gray(value: float, frames: int = 4, size: int = 16) -> dict:
    return {"frames": np.full((frames, size, size), value, np.float32)}


def test_gain_scales_by_decibels():
    gain = RandGaind("frames", prob=1.0, db=(6.0, 6.0))
    out = gain(gray(0.25))["frames"]
    assert np.allclose(out, 0.25 * 10 ** (6 / 20), atol=1e-6)
    assert float(RandGaind("frames", 1.0, (20.0, 20.0))(gray(0.5))["frames"].max()) == 1.0


def test_tgc_is_a_depth_ramp():
    out = RandTGCd("frames", prob=1.0, db=(6.0, 6.0))(gray(0.25))["frames"]
    rows = out[0, :, 0]
    assert np.all(np.diff(rows) > 0)  # deeper rows gain more
    assert np.isclose(rows[-1] / rows[0], 10 ** (6 / 20), rtol=1e-4)
    assert np.array_equal(out[0], out[-1])


def test_prob_zero_and_prob_one():
    never = RandGaind("frames", prob=0.0, db=(6.0, 6.0))
    assert np.array_equal(never(gray(0.25))["frames"], gray(0.25)["frames"])


def test_temporal_jitter_keeps_order_and_source_indices():
    frames = np.arange(16, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    jitter = RandTemporalJitterd("frames", prob=1.0, max_shift=1, drop_prob=0.3)
    changed = 0
    for seed in range(10):
        jitter.set_random_state(seed)
        out = jitter({"frames": frames, "frame_index": np.arange(100, 116)})
        index = out["frame_index"]
        assert np.all(np.diff(index) >= 0) and index.min() >= 100 and index.max() <= 115
        assert np.array_equal(out["frames"][:, 0, 0], index - 100)  # frames follow the index
        changed += int(not np.array_equal(index, np.arange(100, 116)))
    assert changed >= 8


def test_jpeg_recompression_is_lossy_but_close():
    rng = np.random.default_rng(0)
    frames = rng.random((3, 32, 32)).astype(np.float32)
    out = RandJPEGd("frames", prob=1.0, quality=(30, 30))({"frames": frames})["frames"]
    err = np.abs(out - frames).mean()
    assert out.dtype == np.float32 and out.shape == frames.shape
    assert 0.005 < err < 0.3


@pytest.mark.parametrize(
    ("augment", "setting"),
    [
        ({"blur": {"prob": 1.0}}, "unknown"),
        ({"gain": {"prob": 1.5, "db": [0, 1]}}, r"augment\.gain\.prob"),
        ({"tgc": {"prob": 0.5, "db": [3, -3]}}, r"augment\.tgc\.db"),
        ({"jpeg": {"prob": 0.5}}, r"augment\.jpeg\.quality"),
        ({"speckle": {"prob": 0.5, "sigma": [0, 0.1], "temporal_corr": 2}}, "temporal_corr"),
    ],
)
def test_bad_augment_config_names_the_setting(augment, setting):
    with pytest.raises(BadConfigError, match=setting):
        build_augmentations(augment)


def test_default_config_builds():
    from importlib.resources import files

    import yaml

    cfg = yaml.safe_load((files("labral.configs") / "transforms" / "default.yaml").read_text())
    transforms = build_augmentations(cfg["augment"])
    assert len(transforms) == 8  # 7 augmentations + the scale to [0, 1]
    out = build_train_transform(cfg["eval"], cfg["augment"], seed=0)({"clip": textured_clip()})
    size = cfg["eval"]["size"]
    assert out["image"].shape == (1, cfg["eval"]["frames"], size[0], size[1])


def test_affine_shift_and_rotation_geometry():
    from labral.datasets.transforms.augment import affine_frames

    rng = np.random.default_rng(1)
    frames = rng.random((3, 20, 30)).astype(np.float32)
    shifted = affine_frames(frames, angle=0.0, zoom=1.0, dy=1.0, dx=2.0)
    assert np.allclose(shifted[:, 1:, 2:], frames[:, :-1, :-2], atol=1e-5)  # down 1, right 2
    assert shifted[:, :, :2].max() < 1e-5 and shifted[:, :1, :].max() < 1e-5  # zeros padding
    square = np.zeros((1, 21, 21), np.float32)
    square[0, 10, 15] = 1.0  # a dot right of the centre
    turned = affine_frames(square, angle=np.pi / 2, zoom=1.0, dy=0.0, dx=0.0)
    assert np.unravel_index(turned[0].argmax(), (21, 21)) == (15, 10)  # now below the centre
    assert np.allclose(affine_frames(frames, 0.0, 1.0, 0.0, 0.0), frames, atol=1e-5)
