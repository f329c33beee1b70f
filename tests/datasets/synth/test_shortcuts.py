"""The static shortcuts stay closed on a small generated data set (bench/synth_shortcuts.py).

A smaller, faster version of the benchmark: patient-grouped cross-validation of a
still-frame, an order-free (pooled) and a motion-aware classifier on handcrafted features.
The margins are wider than the benchmark targets because the sample is small.
"""

from __future__ import annotations

import numpy as np
import pytest

from labral.bench.synth_shortcuts import (
    clip_features,
    feature_sets,
    grouped_auroc,
    make_clips,
)


@pytest.fixture(scope="module")
def small_set():
    clips, groups = make_clips(n_patients=48, clips_per_hip=2, frames=24, size=96, seed=3)
    y = np.array([c.label for c in clips])
    return feature_sets([clip_features(c) for c in clips], seed=3), y, groups


def test_data_set_is_grouped_and_mixed(small_set):
    sets, y, groups = small_set
    assert 0.3 < y.mean() < 0.7
    assert len(np.unique(groups)) == 48
    assert sets["still_frame"].shape[0] == sets["order_free"].shape[0] == len(y)
    assert sets["order_free"].shape[1] == 4 * sets["still_frame"].shape[1]


def test_motion_beats_pooling_beats_nothing(small_set):
    sets, y, groups = small_set
    auc = {name: grouped_auroc(x, y, groups, folds=4) for name, x in sets.items()}
    assert auc["still_frame"] <= 0.68, auc
    assert auc["order_free"] <= 0.72, auc
    assert auc["motion_aware"] >= 0.90, auc
    assert auc["motion_aware"] - auc["order_free"] >= 0.2, auc


def test_motion_features_see_the_timing():
    """Cleft darkness follows the measured femoral velocity in positives, opposes it in
    pocket twins (averaged over clips: one clip's tracking is noisy)."""
    from labral.datasets.synth.generate import draw_patient, generate_clip

    pos, pocket = [], []
    for patient_seed in (8, 9, 10):
        patient = draw_patient(patient_seed)
        pos += [clip_features(generate_clip(patient, "positive", s)).motion[0] for s in range(2)]
        twins = [generate_clip(patient, "incoherent_twin", s) for s in range(4)]
        pocket += [clip_features(c).motion[0] for c in twins if c.params["variant"] == "pocket"]
    assert len(pocket) >= 3
    assert np.mean(pos) > 0.0 > np.mean(pocket)
    assert np.mean(pos) - np.mean(pocket) > 0.3
