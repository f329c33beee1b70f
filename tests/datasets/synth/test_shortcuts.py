"""The shortcut study (datasets/synth/shortcuts.py) on small data: only the motion separates.

A smaller, faster run than the README's table (fewer patients, so wider margins than the
targets): at ``easy`` the handcrafted timing feature must work, which proves the features
see the sign; still-frame, order-free and two-frame-change classifiers must not, at any level.
The full table (every level, 160 patients) runs as a ``slow`` test.
"""

from __future__ import annotations

import numpy as np
import pytest

from labral.datasets.synth import shortcuts
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.transforms.clip_transforms import resample_indices


@pytest.fixture(scope="module")
def easy() -> dict:
    return shortcuts.study_level("easy", n_patients=36, seed=3, workers=2)


def test_easy_sign_is_seen_by_timing_and_by_nothing_static(easy: dict) -> None:
    assert easy["hips"] >= 50 and 0.2 < easy["positives"] / easy["clips"] < 0.5
    assert easy["timing_best"] >= 0.93, easy
    assert easy["still_frame"] <= 0.68, easy
    assert easy["order_free"] <= 0.70, easy
    assert easy["change_pooled"] <= 0.70, easy


def test_timing_fades_with_difficulty() -> None:
    expert = shortcuts.study_level("expert", n_patients=36, seed=3, workers=2)
    assert expert["timing_best"] <= 0.86, expert
    assert expert["order_free"] <= 0.70 and expert["change_pooled"] <= 0.70, expert


def test_model_view_follows_the_eval_transform() -> None:
    spec = shortcuts.eval_spec()
    clip = generate_clip(draw_patient(5), "positive", 1, frames=32, fps=20.0)
    loading = clip.params["traces"]["loading"]
    view = shortcuts.model_view(clip.frames, clip.fps, clip.params["cleft_roi_px"], loading, spec)
    assert view.frames.shape == (spec["frames"], *spec["size"])
    assert view.loading.shape == (spec["frames"],)
    r0, r1, c0, c1 = view.roi
    assert 0 <= r0 < r1 <= spec["size"][0] and 0 <= c0 < c1 <= spec["size"][1]
    # 20 fps -> 10 fps: the window is every other source frame, centred in the clip
    index = resample_indices(32, 20.0, spec["fps"])
    start = (len(index) - spec["frames"]) // 2
    expected = np.asarray(loading, np.float32)[index[start : start + spec["frames"]]]
    np.testing.assert_allclose(view.loading, expected)


@pytest.mark.slow
def test_readme_table_targets_per_level() -> None:
    for level in ("easy", "medium", "hard", "expert"):
        r = shortcuts.study_level(level, n_patients=160, seed=0, workers=2)
        for name in ("still_frame", "order_free", "change_pooled"):
            assert r[name] <= 0.62, r
        if level == "easy":
            assert r["timing_best"] >= 0.95, r
        if level in ("hard", "expert"):
            assert r["timing_best"] <= 0.80, r
