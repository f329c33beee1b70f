"""Binary classification metrics: the one definition that training and the benchmark share.

``labral.train`` (validation AUROC, ``calibration.json``, ``test_metrics.json``) and
``labral.bench`` (results.json, bootstrap CIs) both import this module; it imports neither.

Conventions, for every metric function here:

- Arguments are ``(y_true, y_score)``, plus ``threshold`` for metrics of a decision:
  ``y_true`` int (N,) labels 0/1, ``y_score`` float (N,) scores, probabilities in [0, 1]
  where the metric needs them (Brier, log loss, ECE). The order is scikit-learn's.
- The decision at a threshold is :func:`decision`, ``y_score >= threshold``: the one
  definition of the bundle's rule, which :mod:`labral.scoring` applies to every clip.
- An undefined value is ``float("nan")``: AUROC with one class present, a ratio with a zero
  denominator, any metric of an empty sample. Metric functions never return None and never
  raise for these cases, so bootstrap replicates can be filtered with ``np.isfinite``.
  :func:`binary_metrics` builds JSON records, and JSON has no NaN: it writes undefined
  values as None (JSON null).

AUROC and average precision are computed here (rank statistics, vectorised) rather than by
scikit-learn, because the benchmark's 1,000 bootstrap replicates x dozens of groups through
scikit-learn's input validation would dominate a run; tests/test_metrics.py pins both to
scikit-learn on random data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

#: Equal-width bins used for the expected calibration error (ECE) and reliability diagram.
DEFAULT_ECE_BINS = 10
#: Probabilities are clipped to [eps, 1 - eps] before the log in :func:`log_loss`.
LOG_LOSS_EPS = 1e-7


def auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic with mid-ranks for ties.

    Equals scikit-learn's ``roc_auc_score`` (a tie between a positive and a negative counts
    one half). NaN when only one class is present.
    """
    y_true = np.asarray(y_true)
    n_pos = int(np.sum(y_true == 1))
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(y_score)
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Average precision: the step-wise area under the precision-recall curve, as
    scikit-learn's ``average_precision_score`` computes it. NaN without positives."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    n_pos = int(np.sum(y_true == 1))
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-y_score, kind="mergesort")
    ys, ps = (y_true[order] == 1).astype(np.int64), y_score[order]
    tps = np.cumsum(ys)
    fps = np.cumsum(1 - ys)
    last = np.r_[np.nonzero(np.diff(ps))[0], ys.size - 1]  # last index of each distinct score
    tp, fp = tps[last], fps[last]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def decision(y_score: np.ndarray | float, threshold: float) -> np.ndarray:
    """The decision rule: label 1 where ``y_score >= threshold`` (a score at the threshold is 1).

    Args:
        y_score: float (...) calibrated probabilities (or a single float).
        threshold: the operating threshold (``calibration.json``, the bundle's ``threshold``).

    Returns:
        bool (...) array, the same shape as ``y_score`` (0-d for a float).
    """
    return np.asarray(y_score) >= threshold


def confusion_counts(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float
) -> tuple[int, int, int, int]:
    """``(TP, FP, TN, FN)`` of labels ``y_true`` against :func:`decision` at ``threshold``."""
    positive = np.asarray(y_true) == 1
    decided = decision(y_score, threshold)
    tp = int(np.sum(decided & positive))
    fp = int(np.sum(decided & ~positive))
    tn = int(np.sum(~decided & ~positive))
    fn = int(np.sum(~decided & positive))
    return tp, fp, tn, fn


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0."""
    return float(numerator / denominator) if denominator > 0 else float("nan")


def sensitivity(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
    """TP / (TP + FN) at ``y_score >= threshold``."""
    tp, _, _, fn = confusion_counts(y_true, y_score, threshold)
    return ratio(tp, tp + fn)


def specificity(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
    """TN / (TN + FP) at ``y_score >= threshold``."""
    _, fp, tn, _ = confusion_counts(y_true, y_score, threshold)
    return ratio(tn, tn + fp)


def ppv(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
    """TP / (TP + FP): positive predictive value at the sample's own prevalence."""
    tp, fp, _, _ = confusion_counts(y_true, y_score, threshold)
    return ratio(tp, tp + fp)


def npv(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
    """TN / (TN + FN): negative predictive value at the sample's own prevalence."""
    _, _, tn, fn = confusion_counts(y_true, y_score, threshold)
    return ratio(tn, tn + fn)


def accuracy(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
    """(TP + TN) / N at ``y_score >= threshold``."""
    tp, fp, tn, fn = confusion_counts(y_true, y_score, threshold)
    return ratio(tp + tn, tp + fp + tn + fn)


def reweighted_ppv(sens: float, spec: float, prevalence: float) -> float:
    """PPV at another prevalence by Bayes: sens*pi / (sens*pi + (1 - spec)*(1 - pi))."""
    return ratio(sens * prevalence, sens * prevalence + (1 - spec) * (1 - prevalence))


def reweighted_npv(sens: float, spec: float, prevalence: float) -> float:
    """NPV at another prevalence by Bayes: spec*(1-pi) / (spec*(1-pi) + (1 - sens)*pi)."""
    return ratio(spec * (1 - prevalence), spec * (1 - prevalence) + (1 - sens) * prevalence)


def brier(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean squared error of the probabilities ``y_score`` against the labels."""
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.size == 0:
        return float("nan")
    return float(np.mean((y_score - np.asarray(y_true)) ** 2))


def log_loss(y_true: np.ndarray, y_score: np.ndarray, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood (nats) of the labels under the probabilities ``y_score``,
    clipped to [eps, 1 - eps]."""
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_true.size == 0:
        return float("nan")
    p = np.clip(np.asarray(y_score, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))


def reliability_bins(
    y_true: np.ndarray, y_score: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins of the probabilities on [0, 1] (the last bin closed at 1).

    Returns:
        ``(mean_probability, observed_rate, count)``, float64/float64/int64 (n_bins,);
        empty bins hold NaN rates and count 0.
    """
    y_score = np.asarray(y_score, dtype=np.float64)
    index = np.clip((y_score * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    sum_p = np.bincount(index, weights=y_score, minlength=n_bins)
    sum_y = np.bincount(index, weights=np.asarray(y_true, dtype=np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum_p / count, sum_y / count, count


def ece(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """Expected calibration error: sum over bins of (n_b / N) * |mean p_b - mean y_b|."""
    size = np.asarray(y_true).size
    if size == 0:
        return float("nan")
    mean_p, rate, count = reliability_bins(y_true, y_score, n_bins)
    keep = count > 0
    return float(np.sum(count[keep] / size * np.abs(mean_p[keep] - rate[keep])))


def binary_metrics(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5
) -> dict[str, float | int | None]:
    """The JSON record of a training run's split (``val_metrics``, ``test_metrics.json``).

    Args:
        y_true: int (N,) labels 0/1.
        y_score: float (N,) calibrated probabilities of class 1.
        threshold: the decision is ``y_score >= threshold``.

    Returns:
        ``auroc``, ``nll`` (:func:`log_loss`), ``brier``, ``accuracy``, ``sensitivity``,
        ``specificity``, ``ppv``, ``npv``, ``threshold``, ``n``, ``n_positive``; an undefined
        metric (NaN from its function) is None, so the record serialises to valid JSON.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=np.float64)
    values = {
        "auroc": auroc(y_true, y_score),
        "nll": log_loss(y_true, y_score),
        "brier": brier(y_true, y_score),
        "accuracy": accuracy(y_true, y_score, threshold),
        "sensitivity": sensitivity(y_true, y_score, threshold),
        "specificity": specificity(y_true, y_score, threshold),
        "ppv": ppv(y_true, y_score, threshold),
        "npv": npv(y_true, y_score, threshold),
    }
    record: dict[str, float | int | None] = {
        name: value if math.isfinite(value) else None for name, value in values.items()
    }
    record.update(
        threshold=float(threshold), n=int(y_true.size), n_positive=int(np.sum(y_true == 1))
    )
    return record


class ClusterBootstrap:
    """Patient-level resampling plan, drawn once and shared by every metric and model.

    Args:
        patients: (N,) patient id of every clip (any hashable values).
        n: number of bootstrap replicates.
        seed: seed of the NumPy generator; the same seed and patients give the same draws.
    """

    def __init__(self, patients: Sequence[Any], n: int, seed: int) -> None:
        ids = np.asarray([str(patient) for patient in patients])
        self.patients = ids.astype(object)
        unique, inverse = np.unique(ids, return_inverse=True)
        self.groups = [np.nonzero(inverse == k)[0] for k in range(unique.size)]
        rng = np.random.default_rng(seed)
        self.draws = rng.integers(0, unique.size, size=(n, unique.size)) if unique.size else None
        self.n, self.seed = n, seed

    def replicates(self, mask: np.ndarray | None = None) -> list[np.ndarray]:
        """Clip indices of every replicate, restricted to ``mask`` (bool (N,)) if given."""
        if self.draws is None:
            return []
        groups = self.groups
        if mask is not None:
            groups = [g[mask[g]] for g in groups]
        return [np.concatenate([groups[k] for k in draw]) for draw in self.draws]


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float, int]:
    """The ``level`` percentile interval of the finite ``samples`` and how many were finite
    (NaN bounds when none is)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high), int(finite.size)


def cluster_bootstrap_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    clusters: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float] = auroc,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, int]:
    """Percentile CI of ``metric`` under resampling whole clusters (patients) with replacement.

    Clips of one patient are correlated, so a clip-level bootstrap would understate the
    spread; every replicate draws as many patients as there are, with replacement, and
    keeps all their clips (:class:`ClusterBootstrap`, the benchmark's plan).

    Args:
        y_true: int (N,) labels 0/1.
        y_score: float (N,) scores.
        clusters: (N,) cluster (patient) id of each item, any values ``str()`` can key.
        metric: ``metric(y_true, y_score) -> float`` (NaN where undefined; such replicates
            are dropped).
        n_boot: replicates.
        seed: NumPy generator seed; the same inputs and seed give the same interval.
        level: coverage of the interval.

    Returns:
        ``(low, high, replicates with a finite value)``; NaN bounds when none is finite.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if len(clusters) == 0 or n_boot <= 0:
        return float("nan"), float("nan"), 0
    plan = ClusterBootstrap(clusters, n_boot, seed)
    values = np.array([metric(y_true[index], y_score[index]) for index in plan.replicates()])
    return percentile_interval(values, level)
