"""Metrics and cluster-bootstrap CIs against hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from labral.bench import metrics as M


def test_auroc_hand_case() -> None:
    # positives 0.9, 0.4; negatives 0.8, 0.3, 0.4 (one tie).
    # pairs (pos > neg): 0.9 beats all 3; 0.4 beats 0.3, ties 0.4 (0.5), loses to 0.8 -> 4.5 / 6
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.8, 0.3, 0.4])
    assert M.auroc_fast(y, p) == pytest.approx(4.5 / 6)
    assert M.point_estimates(y, p, 0.5, M.metric_functions())["auroc"] == pytest.approx(0.75)


def test_fast_versions_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 60)
        p = np.round(rng.random(60), 1)  # many ties
        assert M.auroc_fast(y, p) == pytest.approx(roc_auc_score(y, p))
        assert M.auprc_fast(y, p) == pytest.approx(average_precision_score(y, p))


def test_threshold_metrics_hand_case() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.2, 0.3, 0.4])
    # at 0.5: TP 3, FN 1, FP 1, TN 5
    assert M.sensitivity(y, p, 0.5) == pytest.approx(0.75)
    assert M.specificity(y, p, 0.5) == pytest.approx(5 / 6)
    assert M.ppv(y, p, 0.5) == pytest.approx(0.75)
    assert M.npv(y, p, 0.5) == pytest.approx(5 / 6)


def test_ppv_npv_reweighting_hand_case() -> None:
    # sens 0.8, spec 0.9, prevalence 0.25: PPV = 0.2 / (0.2 + 0.075) = 0.72727...
    assert M.reweighted_ppv(0.8, 0.9, 0.25) == pytest.approx(0.2 / 0.275)
    # NPV = 0.675 / (0.675 + 0.05) = 0.93103...
    assert M.reweighted_npv(0.8, 0.9, 0.25) == pytest.approx(0.675 / 0.725)
    # at 50% prevalence with sens == spec, PPV == NPV == sens
    assert M.reweighted_ppv(0.7, 0.7, 0.5) == pytest.approx(0.7)
    assert M.reweighted_npv(0.7, 0.7, 0.5) == pytest.approx(0.7)


def test_ece_calibrated_and_miscalibrated() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert M.ece(y, p) < 0.01
    # all predictions 0.8 but half positive: one bin, |0.8 - 0.5| = 0.3
    assert M.ece(np.array([1, 0] * 50), np.full(100, 0.8)) == pytest.approx(0.3)
    # two bins: 0.1 with 50% positives (gap 0.4), 0.9 with 100% (gap 0.1), equal weight
    y2 = np.array([1, 0, 1, 0, 1, 1, 1, 1])
    p2 = np.array([0.1] * 4 + [0.9] * 4)
    assert M.ece(y2, p2) == pytest.approx(0.25)
    assert M.brier(y2, p2) == pytest.approx((2 * 0.81 + 2 * 0.01 + 4 * 0.01) / 8)


def _sample(n_patients: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    patients = [f"P{i}" for i in range(n_patients) for _ in range(3)]
    y = rng.integers(0, 2, len(patients))
    p = np.clip(0.5 * y + rng.normal(0.25, 0.25, y.size), 0, 1)
    return y, p, patients


def test_bootstrap_ci_contains_point_and_shrinks() -> None:
    widths = []
    for n_patients in (20, 320):
        y, p, patients = _sample(n_patients)
        plan = M.ClusterBootstrap(patients, n=300, seed=7)
        block = M.metrics_with_ci(y, p, 0.5, plan, M.metric_functions())["auroc"]
        assert block["ci_low"] <= block["value"] <= block["ci_high"]
        widths.append(block["ci_high"] - block["ci_low"])
    assert widths[1] < widths[0] / 2  # 16x the patients: about 1/4 the width


def test_bootstrap_resamples_whole_patients_and_is_seeded() -> None:
    patients = ["A", "A", "A", "B", "C", "C"]
    plan = M.ClusterBootstrap(patients, n=50, seed=1)
    for idx in plan.replicates():
        counts = np.bincount(idx, minlength=6)
        assert counts[0] == counts[1] == counts[2] and counts[4] == counts[5]
    again = M.ClusterBootstrap(patients, n=50, seed=1).replicates()
    assert all(np.array_equal(a, b) for a, b in zip(plan.replicates(), again, strict=True))


def test_paired_difference() -> None:
    y, p, patients = _sample(60)
    plan = M.ClusterBootstrap(patients, n=200, seed=2)
    same = M.paired_auroc_difference(y, p, p, plan)
    assert same["value"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    assert same["p_value"] == 1.0
    noisy = np.clip(p + np.random.default_rng(9).normal(0, 0.5, p.size), 0, 1)
    diff = M.paired_auroc_difference(y, p, noisy, plan)
    assert diff["value"] > 0 and diff["ci_low"] > 0 and diff["p_value"] < 0.05


def test_localisation_peak_tolerance() -> None:
    relevance = np.array([0.0, 0.1, 0.2, 1.0, 0.3, 0.0])
    assert M.peak_hits_truth(relevance, [4, 5], tolerance=1)
    assert not M.peak_hits_truth(relevance, [5], tolerance=1)
    assert M.peak_hits_truth(relevance, [5], tolerance=2)
    assert not M.peak_hits_truth(relevance, [], tolerance=3)
    assert M.chance_hit_rate(10, [4, 5], 1) == pytest.approx(0.4)  # frames 3, 4, 5, 6
    assert M.chance_hit_rate(10, [0], 0) == pytest.approx(0.1)
    hits = np.array([True, False, True, True])
    plan = M.ClusterBootstrap(["a", "b", "c", "d"], n=100, seed=0)
    rate = M.rate_with_ci(hits, plan, np.array([True, True, True, False]))
    assert rate["value"] == pytest.approx(2 / 3) and rate["n"] == 3
    assert rate["ci_low"] <= rate["value"] <= rate["ci_high"]
