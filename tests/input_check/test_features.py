"""The check's statistics, computed the fast way (shared moments, matrix products, integer
sums), against their plain definitions written out with NumPy's own functions.

A fast path that drifts from its definition would move every exported threshold's meaning
without any rule test noticing until a clip sits near a threshold; these tests catch it on
valid clips, still clips, noise and DICOM-sized frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.input_check import features


def _plain_working_frames(frames: np.ndarray) -> np.ndarray:
    """The shrink by its definition: the evenly spread frames, a lattice of every s-th pixel
    of the central part, each 2 x 2 of it averaged."""
    count = frames.shape[0]
    keep = np.arange(count)
    if count > features.MAX_FRAMES:
        spread = np.round(np.linspace(0, count - 1, features.MAX_FRAMES))
        keep = np.unique(spread.astype(np.int64))
    picked = frames[keep].astype(np.float64) / 255.0
    for axis in (1, 2):
        n = picked.shape[axis]
        step = n // (2 * features.WORK_SIZE)
        start = (n - 2 * features.WORK_SIZE * step) // 2
        lattice = np.arange(start, start + 2 * features.WORK_SIZE * step, step)
        picked = np.take(picked, lattice, axis=axis)
    h = w = features.WORK_SIZE
    return picked.reshape(len(keep), h, 2, w, 2).mean(axis=(2, 4))


def _plain_motion(x: np.ndarray, block: int = features.MOTION_BLOCK) -> float:
    """anatomy_motion by its docstring: one Lucas-Kanade step per block against the mean
    frame, mean and straight line removed per block, a 3-frame average, the 75th percentile
    over blocks of the root-mean-square shift."""
    reference = x.mean(axis=0)
    grad_y, grad_x = np.gradient(reference)
    change = x - reference
    count, h, w = x.shape

    def blocks(a: np.ndarray) -> np.ndarray:
        return a.reshape(*a.shape[:-2], h // block, block, w // block, block).mean(axis=(-3, -1))

    gxx, gyy, gxy = (blocks(g).ravel() for g in (grad_x**2, grad_y**2, grad_x * grad_y))
    bx = blocks(grad_x * change).reshape(count, -1)
    by = blocks(grad_y * change).reshape(count, -1)
    det = gxx * gyy - gxy**2 + 1e-9  # Cramer's rule, the determinant kept off 0
    shift = np.stack([(gxy * by - gyy * bx) / det, (gxy * bx - gxx * by) / det])  # (2, T, n)
    t = np.linspace(-1.0, 1.0, count)
    design = np.stack([np.ones(count), t], axis=1)
    fit = design @ np.linalg.lstsq(design, shift.transpose(1, 0, 2).reshape(count, -1))[0]
    rest = shift - fit.reshape(count, 2, -1).transpose(1, 0, 2)
    smooth = np.empty_like(rest)
    smooth[:, 1:-1] = (rest[:, :-2] + rest[:, 1:-1] + rest[:, 2:]) / 3.0
    smooth[:, 0] = rest[:, :2].mean(axis=1)
    smooth[:, -1] = rest[:, -2:].mean(axis=1)
    return float(np.quantile(np.sqrt((smooth**2).sum(axis=0).mean(axis=0)), 0.75))


def _plain_statistics(frames: np.ndarray, fps: float) -> dict[str, float]:
    x = _plain_working_frames(frames)
    lattice = frames[:, ::8, ::8].astype(np.float64)
    frame_change = np.abs(np.diff(lattice, axis=0)).mean(axis=(1, 2))
    coarse = x.mean(axis=0).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    return {
        "duration_s": frames.shape[0] / fps,
        "intensity_std": float(x.std(ddof=1)),
        "saturated_fraction": float((lattice >= features.SATURATED_LEVEL).mean()),
        "repeated_fraction": float((frame_change < features.REPEAT_LEVEL).mean()),
        "structure": float(coarse.std(ddof=1) / (x.std(axis=(1, 2), ddof=1).mean() + 1e-6)),
        "motion": _plain_motion(x),
    }


def _clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    made = generate_clip(draw_patient(7), "positive", 7, difficulty="hard").frames
    noise = rng.integers(0, 256, (40, 300, 420), dtype=np.uint8)
    noise[::7] = noise[1::7][: len(noise[::7])]  # some repeated frames
    # a frozen frame with faint flicker: pairs that change 10% of pixels by one grey level
    # (mean change 0.1: repeats) beside pairs that change 40% (0.4: not repeats)
    share = np.where(np.arange(30) % 3 == 0, 0.4, 0.1)[:, None, None]
    flicker = (rng.random((30, 128, 128)) < share).astype(np.int16).cumsum(axis=0) % 2
    return {
        "faint flicker": (made[10].astype(np.int16) + flicker).clip(0, 255).astype(np.uint8),
        "generated": made,
        "still": np.repeat(made[10:11], 24, axis=0),
        "noise, DICOM-sized, repeats": noise,
        "saturated": np.clip(made.astype(np.int16) * 3, 0, 255).astype(np.uint8),
    }


@pytest.mark.parametrize("name", list(_clips()))
def test_fast_statistics_match_their_definitions(name: str) -> None:
    frames = _clips()[name]
    measured, image = features.clip_features(frames, fps=20.0)
    expected = _plain_statistics(frames, fps=20.0)
    assert list(measured) == list(features.STATISTICS)
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    x = _plain_working_frames(frames)
    np.testing.assert_allclose(features.working_frames(frames), x, atol=1e-6)
    spread = np.minimum(x.std(axis=0) * 4.0, 1.0)
    plain_image = np.stack([x.mean(axis=0), spread, x[x.shape[0] // 2]])
    np.testing.assert_allclose(image.numpy(), plain_image, atol=1e-5)


def test_motion_separates_a_manoeuvre_from_a_still_hip() -> None:
    clips = _clips()
    moving, _ = features.clip_features(clips["generated"], fps=20.0)
    still, _ = features.clip_features(clips["still"], fps=20.0)
    assert still["motion"] < 1e-6 < moving["motion"]
    assert still["repeated_fraction"] == 1.0 > moving["repeated_fraction"]
