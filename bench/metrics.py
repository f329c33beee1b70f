"""Classification metrics with patient-level (cluster) bootstrap confidence intervals.

Every metric is a function ``(y, p, threshold) -> float`` on 1-D arrays: ``y`` int labels
(0/1), ``p`` float64 calibrated probabilities in [0, 1]. Point estimates of AUROC and AUPRC
come from scikit-learn; the bootstrap replicates use the vectorised equivalents below (same
numbers, checked in tests/bench/test_metrics.py) because 1,000 replicates x dozens of groups
through scikit-learn's input validation would dominate a benchmark run.

Intervals are percentile intervals of a cluster bootstrap: patients are drawn with
replacement, all clips of a drawn patient enter the replicate, so clips of one patient
never count as independent evidence. Replicates where a metric is undefined (e.g. one class
only) are dropped; the number kept is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

MetricFn = Callable[[np.ndarray, np.ndarray, float], float]

#: Equal-width bins used for the expected calibration error (ECE) and reliability diagram.
DEFAULT_ECE_BINS = 10
#: Prevalences at which PPV and NPV are re-weighted (domain.md section 1).
REWEIGHT_PREVALENCES = (0.25, 0.5)


def auroc_fast(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC via the Mann-Whitney U statistic with mid-ranks for ties; NaN with one class."""
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc_fast(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (step-wise area under the PR curve, as scikit-learn computes it)."""
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    tps = np.cumsum(ys)
    fps = np.cumsum(1 - ys)
    last = np.r_[np.nonzero(np.diff(ps))[0], ys.size - 1]  # last index of each distinct score
    tp, fp = tps[last], fps[last]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """``(TP, FP, TN, FN)`` of labels y (N,) 0/1 against the decision ``p >= threshold``."""
    decision = p >= threshold
    tp = int(np.sum(decision & (y == 1)))
    fp = int(np.sum(decision & (y == 0)))
    tn = int(np.sum(~decision & (y == 0)))
    fn = int(np.sum(~decision & (y == 1)))
    return tp, fp, tn, fn


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def sensitivity(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """TP / (TP + FN) at ``p >= threshold``."""
    tp, _, _, fn = confusion_counts(y, p, threshold)
    return _ratio(tp, tp + fn)


def specificity(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """TN / (TN + FP) at ``p >= threshold``."""
    _, fp, tn, _ = confusion_counts(y, p, threshold)
    return _ratio(tn, tn + fp)


def ppv(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """TP / (TP + FP): positive predictive value at the suite's own prevalence."""
    tp, fp, _, _ = confusion_counts(y, p, threshold)
    return _ratio(tp, tp + fp)


def npv(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """TN / (TN + FN): negative predictive value at the suite's own prevalence."""
    _, _, tn, fn = confusion_counts(y, p, threshold)
    return _ratio(tn, tn + fn)


def reweighted_ppv(sens: float, spec: float, prevalence: float) -> float:
    """PPV at another prevalence by Bayes: sens*pi / (sens*pi + (1 - spec)*(1 - pi))."""
    return _ratio(sens * prevalence, sens * prevalence + (1 - spec) * (1 - prevalence))


def reweighted_npv(sens: float, spec: float, prevalence: float) -> float:
    """NPV at another prevalence by Bayes: spec*(1-pi) / (spec*(1-pi) + (1 - sens)*pi)."""
    return _ratio(spec * (1 - prevalence), spec * (1 - prevalence) + (1 - sens) * prevalence)


def brier(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Mean squared error of the probabilities against the labels."""
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def reliability_bins(
    y: np.ndarray, p: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins on [0, 1] (the last bin closed at 1).

    Returns:
        ``(mean_probability, observed_rate, count)``, each float64/int64 (n_bins,);
        empty bins hold NaN rates and count 0.
    """
    index = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    sum_p = np.bincount(index, weights=p, minlength=n_bins)
    sum_y = np.bincount(index, weights=y.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum_p / count, sum_y / count, count


def ece(
    y: np.ndarray, p: np.ndarray, threshold: float = 0.5, n_bins: int = DEFAULT_ECE_BINS
) -> float:
    """Expected calibration error: sum over bins of (n_b / N) * |mean p_b - mean y_b|."""
    if y.size == 0:
        return float("nan")
    mean_p, rate, count = reliability_bins(y, p, n_bins)
    keep = count > 0
    return float(np.sum(count[keep] / y.size * np.abs(mean_p[keep] - rate[keep])))


def _at_prevalence(reweight: Callable[[float, float, float], float], prevalence: float) -> MetricFn:
    """``reweight`` (``reweighted_ppv`` or ``reweighted_npv``) as a metric at ``prevalence``,
    from one confusion count per call."""

    def metric(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
        tp, fp, tn, fn = confusion_counts(y, p, threshold)
        return reweight(_ratio(tp, tp + fn), _ratio(tn, tn + fp), prevalence)

    return metric


def metric_functions(ece_bins: int = DEFAULT_ECE_BINS) -> dict[str, MetricFn]:
    """The headline metrics, by the names used in results.json and ``fail_under``."""
    functions: dict[str, MetricFn] = {
        "auroc": lambda y, p, t: auroc_fast(y, p),
        "auprc": lambda y, p, t: auprc_fast(y, p),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": ppv,
        "npv": npv,
    }
    for prevalence in REWEIGHT_PREVALENCES:
        functions[f"ppv_at_{round(prevalence * 100)}"] = _at_prevalence(reweighted_ppv, prevalence)
        functions[f"npv_at_{round(prevalence * 100)}"] = _at_prevalence(reweighted_npv, prevalence)
    functions["brier"] = brier
    functions["ece"] = lambda y, p, t: ece(y, p, t, ece_bins)
    return functions


#: Metrics where lower is better (the gate reads these as "fail above").
LOWER_IS_BETTER = frozenset({"brier", "ece"})


def point_estimates(
    y: np.ndarray, p: np.ndarray, threshold: float, functions: dict[str, MetricFn]
) -> dict[str, float]:
    """Each metric on the full sample; AUROC/AUPRC via scikit-learn when both classes exist."""
    values = {name: fn(y, p, threshold) for name, fn in functions.items()}
    if "auroc" in values and 0 < y.sum() < y.size:
        values["auroc"] = float(roc_auc_score(y, p))
    if "auprc" in values and y.sum() > 0:
        values["auprc"] = float(average_precision_score(y, p))
    return values


class ClusterBootstrap:
    """Patient-level resampling plan, drawn once and shared by every metric and model.

    Args:
        patients: (N,) patient id of every clip (any hashable values).
        n: number of bootstrap replicates.
        seed: seed of the NumPy generator; the same seed and patients give the same draws.
    """

    def __init__(self, patients: Sequence[Any], n: int, seed: int) -> None:
        ids = np.asarray([str(patient) for patient in patients])
        unique, inverse = np.unique(ids, return_inverse=True)
        self.groups = [np.nonzero(inverse == k)[0] for k in range(unique.size)]
        rng = np.random.default_rng(seed)
        self.draws = rng.integers(0, unique.size, size=(n, unique.size)) if unique.size else None
        self.n = n

    def replicates(self, mask: np.ndarray | None = None) -> list[np.ndarray]:
        """Clip indices of every replicate, restricted to ``mask`` (bool (N,)) if given."""
        if self.draws is None:
            return []
        groups = self.groups
        if mask is not None:
            groups = [g[mask[g]] for g in groups]
        return [np.concatenate([groups[k] for k in draw]) for draw in self.draws]


def _interval(samples: np.ndarray, level: float) -> tuple[float, float, int]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high), int(finite.size)


def metrics_with_ci(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    bootstrap: ClusterBootstrap,
    functions: dict[str, MetricFn],
    mask: np.ndarray | None = None,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Point estimate and percentile CI of each metric on the clips selected by ``mask``.

    Args:
        y: int (N,) labels of the whole suite. p: float64 (N,) probabilities.
        threshold: decision threshold on ``p`` (the bundle's).
        bootstrap: the suite's resampling plan (indices refer to the same N clips).
        functions: name -> metric function.
        mask: bool (N,) subset (a hard-negative type, a shift setting); None = all clips.

    Returns:
        ``{metric: {"value", "ci_low", "ci_high", "n_boot"}}`` (NaN where undefined).
    """
    select = np.ones(y.size, bool) if mask is None else mask
    values = point_estimates(y[select], p[select], threshold, functions)
    reps = bootstrap.replicates(None if mask is None else select)
    out: dict[str, dict[str, float]] = {}
    for name, fn in functions.items():
        samples = np.array([fn(y[idx], p[idx], threshold) if idx.size else np.nan for idx in reps])
        low, high, kept = _interval(samples, level)
        out[name] = {"value": values[name], "ci_low": low, "ci_high": high, "n_boot": kept}
    return out


def rate_with_ci(
    hits: np.ndarray, bootstrap: ClusterBootstrap, mask: np.ndarray, level: float = 0.95
) -> dict[str, float]:
    """Fraction of True in ``hits`` over the clips in ``mask`` with a cluster-bootstrap CI.

    Args:
        hits: bool (N,) per-clip success (e.g. relevance peak on an extrusion frame).
        mask: bool (N,) clips that count (e.g. positives with ground-truth frames).
    """
    n = int(mask.sum())
    value = float(hits[mask].mean()) if n else float("nan")
    reps = bootstrap.replicates(mask)
    samples = np.array([hits[idx].mean() if idx.size else np.nan for idx in reps])
    low, high, kept = _interval(samples, level)
    return {"value": value, "ci_low": low, "ci_high": high, "n_boot": kept, "n": n}


def paired_auroc_difference(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    bootstrap: ClusterBootstrap,
    level: float = 0.95,
) -> dict[str, float]:
    """AUROC(a) - AUROC(b) on the same clips, with a paired patient-level bootstrap.

    Both models are evaluated on the same resampled patients in every replicate. The two-sided
    p-value is ``min(1, 2 * min(P(diff <= 0), P(diff >= 0)))`` over the replicates.
    """
    diff = auroc_fast(y, p_a) - auroc_fast(y, p_b)
    samples = np.array(
        [auroc_fast(y[i], p_a[i]) - auroc_fast(y[i], p_b[i]) for i in bootstrap.replicates()]
    )
    low, high, kept = _interval(samples, level)
    finite = samples[np.isfinite(samples)]
    if finite.size:
        p_value = min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0)))
    else:
        p_value = float("nan")
    return {
        "value": float(diff),
        "ci_low": low,
        "ci_high": high,
        "p_value": float(p_value),
        "n_boot": kept,
    }


def peak_hits_truth(relevance: np.ndarray, truth_frames: Sequence[int], tolerance: int) -> bool:
    """Whether the argmax of ``relevance`` (float (T_source,)) is within ``tolerance`` frames
    of any ground-truth extrusion frame."""
    if len(truth_frames) == 0 or relevance.size == 0 or not np.all(np.isfinite(relevance)):
        return False
    peak = int(np.argmax(relevance))
    return bool(np.min(np.abs(np.asarray(truth_frames) - peak)) <= tolerance)


def chance_hit_rate(num_frames: int, truth_frames: Sequence[int], tolerance: int) -> float:
    """Probability that a peak drawn uniformly over ``num_frames`` frames lies within
    ``tolerance`` frames of a ground-truth frame."""
    if num_frames <= 0 or len(truth_frames) == 0:
        return 0.0
    frames = np.arange(num_frames)[:, None]
    near = np.abs(frames - np.asarray(truth_frames)[None, :]).min(axis=1) <= tolerance
    return float(near.mean())
