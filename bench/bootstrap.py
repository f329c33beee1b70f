"""The benchmark's metric registry and patient-level (cluster) bootstrap confidence intervals.

The metrics themselves are defined once, in :mod:`labral.metrics` (shared with training), with
its conventions: arguments ``(y_true, y_score[, threshold])``, NaN where a value is undefined.
This module names them for results.json and ``fail_under`` (:func:`metric_functions`, each a
``(y_true, y_score, threshold) -> float``), and adds what only the benchmark needs: the
bootstrap intervals of every metric (over :class:`labral.metrics.ClusterBootstrap`, the one
patient resampling plan, shared with cross-validation), the paired AUROC difference and the
localisation hit rates.

Intervals are percentile intervals of a cluster bootstrap: patients are drawn with
replacement, all clips of a drawn patient enter the replicate, so clips of one patient
never count as independent evidence. Replicates where a metric is undefined (e.g. one class
only) are dropped; the number kept is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labral.bench.stats import MIN_PATIENTS_PER_CLASS, estimability
from labral.metrics import (
    DEFAULT_ECE_BINS,
    ClusterBootstrap,
    auprc,
    auroc,
    brier,
    confusion_counts,
    ece,
    npv,
    percentile_interval,
    ppv,
    ratio,
    reweighted_npv,
    reweighted_ppv,
    sensitivity,
    specificity,
)

MetricFn = Callable[[np.ndarray, np.ndarray, float], float]

#: Prevalences at which PPV and NPV are re-weighted (domain.md section 1).
REWEIGHT_PREVALENCES = (0.25, 0.5)


def _at_prevalence(reweight: Callable[[float, float, float], float], prevalence: float) -> MetricFn:
    """``reweight`` (``reweighted_ppv`` or ``reweighted_npv``) as a metric at ``prevalence``,
    from one confusion count per call."""

    def metric(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> float:
        tp, fp, tn, fn = confusion_counts(y_true, y_score, threshold)
        return reweight(ratio(tp, tp + fn), ratio(tn, tn + fp), prevalence)

    return metric


def metric_functions(ece_bins: int = DEFAULT_ECE_BINS) -> dict[str, MetricFn]:
    """The headline metrics, by the names used in results.json and ``fail_under``."""
    functions: dict[str, MetricFn] = {
        "auroc": lambda y_true, y_score, t: auroc(y_true, y_score),
        "auprc": lambda y_true, y_score, t: auprc(y_true, y_score),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": ppv,
        "npv": npv,
    }
    for prevalence in REWEIGHT_PREVALENCES:
        functions[f"ppv_at_{round(prevalence * 100)}"] = _at_prevalence(reweighted_ppv, prevalence)
        functions[f"npv_at_{round(prevalence * 100)}"] = _at_prevalence(reweighted_npv, prevalence)
    functions["brier"] = lambda y_true, y_score, t: brier(y_true, y_score)
    functions["ece"] = lambda y_true, y_score, t: ece(y_true, y_score, ece_bins)
    return functions


#: Metrics where lower is better (the gate reads these as "fail above").
LOWER_IS_BETTER = frozenset({"brier", "ece"})


def point_estimates(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float, functions: dict[str, MetricFn]
) -> dict[str, float]:
    """Each metric on the full sample (NaN where undefined)."""
    return {name: fn(y_true, y_score, threshold) for name, fn in functions.items()}


def metrics_with_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    bootstrap: ClusterBootstrap,
    functions: dict[str, MetricFn],
    mask: np.ndarray | None = None,
    level: float = 0.95,
    min_patients: int = MIN_PATIENTS_PER_CLASS,
) -> dict[str, dict[str, float]]:
    """Point estimate and percentile CI of each metric on the clips selected by ``mask``.

    Args:
        y_true: int (N,) labels of the whole suite. y_score: float64 (N,) probabilities.
        threshold: decision threshold on ``y_score`` (the bundle's).
        bootstrap: the suite's resampling plan (indices refer to the same N clips).
        functions: name -> metric function.
        mask: bool (N,) subset (a hard-negative type, a shift setting); None = all clips.
        min_patients: patients needed in each class for an interval (else "not estimable").

    Returns:
        ``{metric: {"value", "ci_low", "ci_high", "n_boot"}}`` (NaN where undefined). With
        fewer than :data:`~labral.bench.stats.MIN_PATIENTS_PER_CLASS` patients in a class,
        ``ci_low``/``ci_high`` are None and ``ci_note`` says why (no bootstrap is run).
    """
    select = np.ones(y_true.size, bool) if mask is None else mask
    values = point_estimates(y_true[select], y_score[select], threshold, functions)
    note = estimability(y_true[select], bootstrap.patients[select], min_patients)
    if note is not None:
        return {
            name: {
                "value": values[name],
                "ci_low": None,
                "ci_high": None,
                "n_boot": 0,
                "ci_note": note,
            }
            for name in functions
        }
    reps = bootstrap.replicates(None if mask is None else select)
    out: dict[str, dict[str, float]] = {}
    for name, fn in functions.items():
        samples = np.array(
            [fn(y_true[idx], y_score[idx], threshold) if idx.size else np.nan for idx in reps]
        )
        low, high, kept = percentile_interval(samples, level)
        out[name] = {"value": values[name], "ci_low": low, "ci_high": high, "n_boot": kept}
    return out


def rate_with_ci(
    hits: np.ndarray,
    bootstrap: ClusterBootstrap,
    mask: np.ndarray,
    level: float = 0.95,
    min_patients: int = MIN_PATIENTS_PER_CLASS,
) -> dict[str, float]:
    """Fraction of True in ``hits`` over the clips in ``mask`` with a cluster-bootstrap CI.

    Args:
        hits: bool (N,) per-clip success (e.g. relevance peak on an extrusion frame).
        mask: bool (N,) clips that count (e.g. positives with ground-truth frames).

    Returns:
        ``{"value", "ci_low", "ci_high", "n_boot", "n"}``; with fewer than
        :data:`~labral.bench.stats.MIN_PATIENTS_PER_CLASS` patients among the counted clips
        the CI is None and ``ci_note`` says why.
    """
    n = int(mask.sum())
    value = float(hits[mask].mean()) if n else float("nan")
    n_patients = int(np.unique(bootstrap.patients[mask]).size)
    if n_patients < min_patients:
        note = f"not estimable: {n_patients} patients (a patient bootstrap needs >= "
        note += f"{min_patients})"
        return {
            "value": value,
            "ci_low": None,
            "ci_high": None,
            "n_boot": 0,
            "n": n,
            "ci_note": note,
        }
    reps = bootstrap.replicates(mask)
    samples = np.array([hits[idx].mean() if idx.size else np.nan for idx in reps])
    low, high, kept = percentile_interval(samples, level)
    return {"value": value, "ci_low": low, "ci_high": high, "n_boot": kept, "n": n}


def paired_auroc_difference(
    y_true: np.ndarray,
    y_score_a: np.ndarray,
    y_score_b: np.ndarray,
    bootstrap: ClusterBootstrap,
    level: float = 0.95,
    mask: np.ndarray | None = None,
    min_patients: int = MIN_PATIENTS_PER_CLASS,
) -> dict[str, Any]:
    """AUROC(a) - AUROC(b) on the same clips, with a paired patient-level bootstrap.

    Both models are evaluated on the same resampled patients in every replicate. The two-sided
    p-value is ``min(1, 2 * min(P(diff <= 0), P(diff >= 0)))`` over the replicates. Below the
    patient minimum (:func:`~labral.bench.stats.estimability`) CI and p-value are None, with
    ``ci_note``.

    Args:
        y_true: int (N,) labels. y_score_a, y_score_b: float (N,) the two models' scores.
        mask: bool (N,) clips to compare on (a part of the suite); None = all.
    """
    select = np.ones(y_true.size, bool) if mask is None else mask
    y, a, b = y_true[select], y_score_a[select], y_score_b[select]
    diff = auroc(y, a) - auroc(y, b)
    note = estimability(y, bootstrap.patients[select], min_patients)
    if note is not None:
        return {
            "value": float(diff),
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "n_boot": 0,
            "ci_note": note,
        }
    samples = np.array(
        [
            auroc(y_true[i], y_score_a[i]) - auroc(y_true[i], y_score_b[i])
            for i in bootstrap.replicates(None if mask is None else select)
        ]
    )
    low, high, kept = percentile_interval(samples, level)
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


#: a value and interval that all print as this sit at the metric's maximum: "1.000 (ceiling)"
CEILING_TEXT = "1.000"


def format_with_ci(block: dict[str, Any] | None) -> str:
    """``"0.912 [0.871, 0.950]"``; ``"1.000 (ceiling)"`` where every replicate is 1.000 (a
    zero-width interval at the maximum); ``"0.912 [CI not estimable]"`` below the patient
    minimum; ``"0.912"`` without an interval; ``"n/a"`` for an undefined value (the one text
    form of a metric, for the report, the terminal summary, the Markdown tables and the demo)."""
    value = (block or {}).get("value")
    if value is None or not np.isfinite(value):
        return "n/a"
    low, high = block.get("ci_low"), block.get("ci_high")
    if block.get("ci_note"):
        return f"{value:.3f} [CI not estimable]"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.3f}"
    shown = [f"{number:.3f}" for number in (value, low, high)]
    if shown == [CEILING_TEXT] * 3:
        return f"{CEILING_TEXT} (ceiling)"
    return f"{shown[0]} [{shown[1]}, {shown[2]}]"
