"""Turn per-clip scores into the metric blocks of results.json (all with cluster-bootstrap CIs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labral.bench import metrics as M
from labral.bench.scoring import ModelScores

#: Metrics reported per hard-negative type (on positives + that type only).
PER_TYPE_METRICS = ("auroc", "specificity")
#: Metrics reported per shift setting and per robustness point.
PER_SETTING_METRICS = ("auroc", "auprc", "sensitivity", "specificity", "brier", "ece")


def suite_arrays(records: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Labels int64 (N,), clip types, shift tags and patients (object (N,)) of a suite."""
    return {
        "y": np.array([int(r["label"]) for r in records], dtype=np.int64),
        "clip_type": np.array(
            [
                str(r.get("clip_type") or ("positive" if int(r["label"]) else "negative"))
                for r in records
            ],
            dtype=object,
        ),
        "shift": np.array([str(r.get("shift") or "") for r in records], dtype=object),
        "patient": np.array([str(r["patient"]) for r in records], dtype=object),
    }


def _subset(functions: dict[str, M.MetricFn], names: Sequence[str]) -> dict[str, M.MetricFn]:
    return {name: functions[name] for name in names}


def localisation(
    records: Sequence[dict[str, Any]],
    scores: ModelScores,
    bootstrap: M.ClusterBootstrap,
    tolerance: int,
    level: float,
) -> dict[str, float]:
    """Fraction of positives with ground-truth ``extrusion_frames`` whose relevance peak lies
    within ``tolerance`` source frames of one of them, with its CI, and the ``chance`` rate of
    a peak drawn uniformly over the clip's frames (long extrusions make hits easy)."""
    has_truth = np.array(
        [int(r["label"]) == 1 and bool(r.get("extrusion_frames")) for r in records], dtype=bool
    )
    hits = np.array(
        [
            truth and M.peak_hits_truth(rel, r.get("extrusion_frames") or [], tolerance)
            for r, rel, truth in zip(records, scores.relevance, has_truth, strict=True)
        ],
        dtype=bool,
    )
    out = M.rate_with_ci(hits, bootstrap, has_truth, level)
    out["tolerance_frames"] = tolerance
    # hit rate of a peak placed uniformly at random: frames within tolerance of the truth / T
    chance = [
        M.chance_hit_rate(rel.size, r["extrusion_frames"], tolerance)
        for r, rel, truth in zip(records, scores.relevance, has_truth, strict=True)
        if truth
    ]
    out["chance"] = float(np.mean(chance)) if chance else float("nan")
    return out


def evaluate_model(
    records: Sequence[dict[str, Any]],
    scores: ModelScores,
    threshold: float,
    bootstrap: M.ClusterBootstrap,
    *,
    ece_bins: int,
    tolerance: int,
    level: float = 0.95,
) -> dict[str, Any]:
    """Overall metrics, per hard-negative type, per shift setting and localisation of one model.

    Args:
        records: the suite's manifest rows (N). scores: that model's scores on them.
        threshold: the bundle's decision threshold on the calibrated probability.
        bootstrap: the suite's shared resampling plan.

    Returns:
        ``{"overall": {...}, "per_type": {...}, "per_shift": {...}, "localisation": {...}}``,
        each metric as ``{"value", "ci_low", "ci_high", "n_boot"}``.
    """
    arrays = suite_arrays(records)
    y, p = arrays["y"], scores.probability
    functions = M.metric_functions(ece_bins)
    result: dict[str, Any] = {
        "n_clips": int(y.size),
        "n_positive": int(y.sum()),
        "n_patients": int(np.unique(arrays["patient"]).size),
        "overall": M.metrics_with_ci(y, p, threshold, bootstrap, functions, None, level),
    }
    per_type = {}
    for clip_type in sorted(set(arrays["clip_type"][y == 0])):
        mask = (y == 1) | (arrays["clip_type"] == clip_type)
        block = M.metrics_with_ci(
            y, p, threshold, bootstrap, _subset(functions, PER_TYPE_METRICS), mask, level
        )
        per_type[clip_type] = {"n": int(np.sum(arrays["clip_type"] == clip_type)), **block}
    result["per_type"] = per_type
    shifts = sorted(set(arrays["shift"]))
    per_shift = {}
    if len(shifts) > 1:
        for shift in shifts:
            mask = arrays["shift"] == shift
            block = M.metrics_with_ci(
                y, p, threshold, bootstrap, _subset(functions, PER_SETTING_METRICS), mask, level
            )
            per_shift[shift] = {"n": int(mask.sum()), **block}
    result["per_shift"] = per_shift
    result["localisation"] = localisation(records, scores, bootstrap, tolerance, level)
    return result


def evaluate_robustness_point(
    records: Sequence[dict[str, Any]],
    scores: ModelScores,
    threshold: float,
    bootstrap: M.ClusterBootstrap,
    *,
    ece_bins: int,
    level: float = 0.95,
) -> dict[str, Any]:
    """``PER_SETTING_METRICS`` with CIs for one (perturbation, level) pass."""
    y = suite_arrays(records)["y"]
    functions = _subset(M.metric_functions(ece_bins), PER_SETTING_METRICS)
    return M.metrics_with_ci(y, scores.probability, threshold, bootstrap, functions, None, level)


def compare_models(
    records: Sequence[dict[str, Any]],
    names: Sequence[str],
    scores: Sequence[ModelScores],
    bootstrap: M.ClusterBootstrap,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """Paired patient-level bootstrap of AUROC(first model) - AUROC(each other model)."""
    y = suite_arrays(records)["y"]
    out = []
    for other in range(1, len(scores)):
        diff = M.paired_auroc_difference(
            y, scores[0].probability, scores[other].probability, bootstrap, level
        )
        out.append({"a": names[0], "b": names[other], "metric": "auroc_difference", **diff})
    return out
