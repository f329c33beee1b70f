"""The benchmark's metric registry and cluster-bootstrap CIs, against independent computations.

The metrics themselves are tested in tests/test_metrics.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from labral.bench import bootstrap as M
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
    rate = M.rate_with_ci(hits, plan, np.array([True, True, True, False]), min_patients=1)
    assert rate["value"] == pytest.approx(2 / 3) and rate["n"] == 3
    assert rate["ci_low"] <= rate["value"] <= rate["ci_high"]


def test_fixed_seed_bootstrap_ci_matches_an_independent_computation() -> None:
    y, p, patients = _sample(25, seed=4)
    level, n_boot, seed = 0.90, 400, 11
    plan = M.ClusterBootstrap(patients, n=n_boot, seed=seed)
    block = M.metrics_with_ci(y, p, 0.5, plan, M.metric_functions(), level=level)["auroc"]
    # The reference, written out: patients in sorted order, the seed's generator draws
    # (n_boot, n_patients) patient indices with replacement, every clip of a drawn patient
    # enters the replicate, scikit-learn scores it, one-class replicates are dropped, and
    # the 90% percentile interval is numpy's 5th and 95th percentile.
    ids = sorted(set(patients))
    clips_of = {pid: [i for i, q in enumerate(patients) if q == pid] for pid in ids}
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n_boot, len(ids)))
    reference = []
    for draw in draws:
        idx = [i for k in draw for i in clips_of[ids[k]]]
        if 0 < y[idx].sum() < len(idx):
            reference.append(roc_auc_score(y[idx], p[idx]))
    low, high = np.percentile(reference, [5, 95])
    assert block["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert block["ci_low"] == pytest.approx(low, abs=1e-12)
    assert block["ci_high"] == pytest.approx(high, abs=1e-12)
    assert block["n_boot"] == len(reference)


def test_percentile_interval_at_a_known_level_by_hand() -> None:
    plan = M.ClusterBootstrap(["A", "A", "B", "B"], n=5, seed=0)
    plan.draws = np.array([[1, 1], [0, 1], [1, 0], [0, 0], [0, 0]])  # BB, AB, BA, AA, AA
    hits = np.array([True, True, False, False])  # A's two clips hit, B's two miss
    rate = M.rate_with_ci(hits, plan, np.ones(4, bool), level=0.8, min_patients=1)
    # replicate rates sorted: 0, 0.5, 0.5, 1, 1. An 80% interval is the 10th and 90th
    # percentile, at positions 0.1 * 4 = 0.4 and 0.9 * 4 = 3.6 (linear interpolation):
    # 0 + 0.4 * (0.5 - 0) = 0.2 and 1 + 0.6 * (1 - 1) = 1.0
    assert rate["value"] == 0.5 and rate["n_boot"] == 5
    assert rate["ci_low"] == pytest.approx(0.2) and rate["ci_high"] == pytest.approx(1.0)


def _coverage(sims: int, per_class: int, n_boot: int, seed: int, clips: int = 1) -> float:
    """Share of ``sims`` simulated suites whose 95% AUROC CI holds the true AUROC.

    Each suite has ``per_class`` negative and positive patients with ``clips`` clips each.
    A clip's score is patient effect + clip noise (variances 0.5 + 0.5 when clips > 1, else
    0 + 1), plus d for positives: every positive-negative pair is two independent N(., 1)
    scores d apart, so the true AUROC is Phi(d / sqrt(2)) = Phi(0.5) = 0.691 (d = 1 / sqrt(2)).
    """
    d = 1 / np.sqrt(2)
    true_auroc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(seed)
    patient_label = np.r_[np.zeros(per_class, int), np.ones(per_class, int)]
    patients = np.repeat(np.arange(2 * per_class), clips)
    y = patient_label[patients]
    between = np.sqrt(0.5) if clips > 1 else 0.0
    within = np.sqrt(1 - between**2)
    auroc = {"auroc": M.metric_functions()["auroc"]}
    covered = 0
    for sim in range(sims):
        effect = rng.normal(0, between, 2 * per_class)[patients]
        score = d * y + effect + rng.normal(0, within, y.size)
        plan = M.ClusterBootstrap(patients, n=n_boot, seed=sim)
        block = M.metrics_with_ci(y, score, 0.5, plan, auroc)["auroc"]
        covered += block["ci_low"] <= true_auroc <= block["ci_high"]
    return covered / sims


def test_95_ci_covers_the_true_auroc_in_95_percent_of_simulations() -> None:
    # 200 simulations: the binomial SD of the coverage is 1.5 points, so 93-97% fails a
    # 90% interval (the (1 - level) / 2 tails mixed up) or a 99% one with high probability
    assert 0.93 <= _coverage(sims=200, per_class=30, n_boot=250, seed=0) <= 0.97


@pytest.mark.slow
def test_95_ci_coverage_with_more_simulations_and_clustered_clips() -> None:
    # independent clips, 1,000 simulations (SD 0.7 points)
    assert 0.935 <= _coverage(sims=1000, per_class=40, n_boot=500, seed=1) <= 0.965
    # 3 correlated clips per patient: resampling clips instead of patients would give
    # too narrow intervals and cover well under 93%
    assert 0.93 <= _coverage(sims=400, per_class=20, n_boot=500, seed=2, clips=3) <= 0.97
