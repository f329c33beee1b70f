"""The benchmark's metric registry and cluster-bootstrap CIs, against independent computations.

The metrics themselves are tested in tests/test_metrics.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from labral.bench import metrics as M
from labral.metrics import ece, reweighted_npv, reweighted_ppv


def test_registry_names_the_shared_metrics() -> None:
    # positives 0.9, 0.4; negatives 0.8, 0.3, 0.4 (one tie): AUROC 4.5 / 6 (tests/test_metrics.py)
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.8, 0.3, 0.4])
    values = M.point_estimates(y, p, 0.5, M.metric_functions(ece_bins=5))
    assert values["auroc"] == pytest.approx(0.75)
    assert values["auprc"] == pytest.approx(average_precision_score(y, p))
    assert values["sensitivity"] == 0.5 and values["specificity"] == pytest.approx(2 / 3)
    assert values["ppv"] == 0.5 and values["npv"] == pytest.approx(2 / 3)
    assert values["ppv_at_25"] == pytest.approx(reweighted_ppv(0.5, 2 / 3, 0.25))
    assert values["npv_at_50"] == pytest.approx(reweighted_npv(0.5, 2 / 3, 0.5))
    assert values["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert values["ece"] == pytest.approx(ece(y, p, n_bins=5))
    assert M.LOWER_IS_BETTER <= set(values)


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
