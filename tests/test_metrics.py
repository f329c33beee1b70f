"""labral.metrics against scikit-learn on random data and against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn import metrics as skm

from labral import metrics as M


def _random_cases(seed: int, count: int = 40):
    """(y_true, y_score) pairs: sizes 2-300, prevalence 5-95 %, continuous or heavily tied
    scores (rounded to 1 decimal, or integers), labels as int or bool."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        n = int(rng.integers(2, 300))
        y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.int64)
        y[0], y[-1] = 0, 1  # both classes
        score = 0.8 * y + rng.normal(0, 1, n)
        if k % 3 == 1:
            score = np.round(expit(score), 1)
        elif k % 3 == 2:
            score = np.round(score)
        yield (y.astype(bool) if k % 4 == 0 else y), score


def test_auroc_matches_sklearn_on_random_data() -> None:
    for y, score in _random_cases(seed=3):
        assert M.auroc(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_auprc_matches_sklearn_on_random_data() -> None:
    for y, score in _random_cases(seed=4):
        expected = skm.average_precision_score(y, score)
        assert M.auprc(y, score) == pytest.approx(expected, abs=1e-12)


def test_probability_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        n = int(rng.integers(5, 200))
        y = rng.integers(0, 2, n)
        p = rng.uniform(0.01, 0.99, n)  # away from the log-loss clipping
        assert M.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
        assert M.log_loss(y, p) == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=1e-12)
        for threshold in (0.2, 0.5, 0.8):
            decision = (p >= threshold).astype(int)
            tn, fp, fn, tp = skm.confusion_matrix(y, decision, labels=[0, 1]).ravel()
            assert M.confusion_counts(y, p, threshold) == (tp, fp, tn, fn)
            assert M.accuracy(y, p, threshold) == pytest.approx(skm.accuracy_score(y, decision))
            assert M.sensitivity(y, p, threshold) == pytest.approx(
                skm.recall_score(y, decision, zero_division=np.nan), nan_ok=True
            )
            assert M.ppv(y, p, threshold) == pytest.approx(
                skm.precision_score(y, decision, zero_division=np.nan), nan_ok=True
            )


def test_auroc_hand_case() -> None:
    # positives 0.9, 0.4; negatives 0.8, 0.3, 0.4 (one tie).
    # pairs (pos > neg): 0.9 beats all 3; 0.4 beats 0.3, ties 0.4 (0.5), loses to 0.8 -> 4.5 / 6
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.8, 0.3, 0.4])
    assert M.auroc(y, p) == pytest.approx(4.5 / 6)
    assert M.auroc(y, -p) == pytest.approx(1.5 / 6)  # the argument order matters


def test_threshold_metrics_hand_case() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.2, 0.3, 0.5])
    # at 0.5 (decision p >= 0.5, so the negative at exactly 0.5 is called positive):
    # TP 3, FN 1, FP 2, TN 4
    assert M.confusion_counts(y, p, 0.5) == (3, 2, 4, 1)
    assert M.sensitivity(y, p, 0.5) == pytest.approx(0.75)
    assert M.specificity(y, p, 0.5) == pytest.approx(4 / 6)
    assert M.ppv(y, p, 0.5) == pytest.approx(3 / 5)
    assert M.npv(y, p, 0.5) == pytest.approx(4 / 5)
    assert M.accuracy(y, p, 0.5) == pytest.approx(7 / 10)


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
    assert M.ece(y2, p2, n_bins=1) == pytest.approx(abs(0.5 - 0.75))
    assert M.brier(y2, p2) == pytest.approx((2 * 0.81 + 2 * 0.01 + 4 * 0.01) / 8)


def test_undefined_values_are_nan_never_none() -> None:
    one_class = (np.array([1, 1, 1]), np.array([0.2, 0.6, 0.9]))
    empty = (np.zeros(0, dtype=int), np.zeros(0))
    assert np.isnan(M.auroc(*one_class))
    assert np.isnan(M.auprc(np.array([0, 0]), np.array([0.1, 0.7])))
    assert np.isnan(M.specificity(*one_class, 0.5))  # no negatives
    assert np.isnan(M.ppv(*one_class, 0.95))  # nothing called positive
    assert np.isnan(M.npv(*one_class, 0.1))  # nothing called negative
    for fn in (M.auroc, M.auprc, M.brier, M.log_loss, M.ece):
        assert np.isnan(fn(*empty)), fn.__name__
    for fn in (M.sensitivity, M.specificity, M.ppv, M.npv, M.accuracy):
        assert np.isnan(fn(*empty, 0.5)), fn.__name__


def test_binary_metrics_record() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.8, 0.3, 0.9])
    m = M.binary_metrics(y, p, 0.5)
    assert m["auroc"] == pytest.approx(0.75)
    assert (m["sensitivity"], m["specificity"], m["ppv"], m["npv"]) == (0.5, 0.5, 0.5, 0.5)
    assert m["accuracy"] == 0.5 and (m["n"], m["n_positive"], m["threshold"]) == (4, 2, 0.5)
    assert m["brier"] == pytest.approx((0.01 + 0.64 + 0.49 + 0.01) / 4)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.3, 0.9])))


def test_binary_metrics_writes_undefined_values_as_json_null() -> None:
    m = M.binary_metrics(np.array([0, 0]), np.array([0.1, 0.2]), 0.5)
    assert m["auroc"] is None and m["sensitivity"] is None and m["ppv"] is None
    assert m["specificity"] == 1.0
    json.dumps(m, allow_nan=False)  # valid JSON: no NaN in the record
    empty = M.binary_metrics(np.zeros(0, dtype=int), np.zeros(0))
    assert all(empty[k] is None for k in ("auroc", "nll", "brier", "accuracy"))
    json.dumps(empty, allow_nan=False)
