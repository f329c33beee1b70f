"""Turn per-clip scores into the metric blocks of results.json (all with cluster-bootstrap CIs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labral.bench import bootstrap as M
from labral.bench import decision_curves, refusals, stats, subgroups
from labral.bench.localisation import temporal
from labral.bench.suite_scoring import ModelScores

#: Metrics reported per hard-negative type (on positives + that type only).
PER_TYPE_METRICS = ("auroc", "specificity")
#: Metrics reported per shift setting and per robustness point.
PER_SETTING_METRICS = ("auroc", "auprc", "sensitivity", "specificity", "brier", "ece")
#: Metrics reported per hip (a hip's probability from its clips: stats.HIP_RULES).
HIP_METRICS = ("auroc", "sensitivity", "specificity")


#: Manifest values of ``held_out`` that mean yes (a CSV holds text, JSONL a bool or 0/1).
TRUE_TEXT = ("1", "true", "yes")


def _flag(value: Any) -> bool:
    """A manifest's yes/no cell as a bool (missing or empty: no)."""
    return str(value).strip().lower() in TRUE_TEXT if value is not None else False


def suite_arrays(records: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """A suite's columns as arrays, one entry per clip.

    Returns:
        ``y`` int64 (N,) labels; object (N,) ``clip_type``, ``shift`` (the suite part, "" for
        none) and ``patient``; for the input check: ``wrong_input`` (the wrong-input kind,
        "" for a valid clip), ``wrong_family`` ("" for none) and ``held_out`` bool (N,) (the
        family the check never trained on).
    """
    return {
        "wrong_input": np.array([str(r.get("wrong_input") or "") for r in records], dtype=object),
        "wrong_family": np.array([str(r.get("wrong_family") or "") for r in records], dtype=object),
        "held_out": np.array([_flag(r.get("held_out")) for r in records], dtype=bool),
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


def evaluate_model(
    records: Sequence[dict[str, Any]],
    scores: ModelScores,
    threshold: float,
    bootstrap: M.ClusterBootstrap,
    *,
    ece_bins: int,
    tolerance: int,
    level: float = 0.95,
    subgroup_min_n: int = subgroups.MIN_N,
) -> dict[str, Any]:
    """Overall metrics, per hard-negative type, per shift setting, localisation and the input
    check's refusals (:mod:`labral.bench.refusals`) of one model.

    Args:
        records: the suite's manifest rows (N). scores: that model's scores on them.
        threshold: the bundle's decision threshold on the calibrated probability.
        bootstrap: the suite's shared resampling plan.
        subgroup_min_n: clips a subgroup needs to be estimable (``subgroup_min_n`` setting).

    Returns:
        ``{"overall": {...}, "per_type": {...}, "per_shift": {...}, "localisation": {...},
        "hip_level": {...}, "input_check": {...}, "decision_curve": {...}}``, each metric as
        ``{"value", "ci_low", "ci_high", "n_boot"}``; ``decision_curve`` the operating points
        of :func:`labral.bench.decision_curves.model_block` (clips, hips by the max rule);
        ``subgroups`` of :func:`labral.bench.subgroups.subgroups_block`. Each part of
        ``per_shift`` also has its ``hip_level`` and temporal ``localisation``.
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
            per_shift[shift] = {
                "n": int(mask.sum()),
                **block,
                "hip_level": hip_level(records, p, threshold, bootstrap, level, mask),
                "localisation": temporal(records, scores, bootstrap, tolerance, level, mask),
            }
    result["per_shift"] = per_shift
    result["localisation"] = temporal(records, scores, bootstrap, tolerance, level)
    result["hip_level"] = hip_level(records, scores.probability, threshold, bootstrap, level)
    result["input_check"] = refusals.input_check_block(arrays, scores, threshold, bootstrap, level)
    hips = hip_truth(records)
    hip_curve = None
    if hips is not None:
        ids, hip_y, _ = hips
        order, values = stats.hip_scores([str(r["hip"]) for r in records], p, "max")
        assert order == ids, "stats.hip_scores must return hips in sorted order"
        hip_curve = (hip_y, values)
    result["decision_curve"] = decision_curves.model_block((y, p), hip_curve)
    result["subgroups"] = subgroups.subgroups_block(
        records, y, p, threshold, bootstrap, ece_bins=ece_bins, level=level, min_n=subgroup_min_n
    )
    return result


def hip_truth(
    records: Sequence[dict[str, Any]], mask: np.ndarray | None = None
) -> tuple[list[str], np.ndarray, dict[str, str]] | None:
    """The hips of the clips in ``mask`` (None = all): sorted ids, int64 (H,) their
    ``hip_label`` and hip -> patient; None when a row lacks ``hip`` or ``hip_label``."""
    keep = np.ones(len(records), bool) if mask is None else mask
    rows = np.flatnonzero(keep)
    missing = (None, "")
    if not rows.size or any(
        records[i].get("hip") in missing or records[i].get("hip_label") in missing for i in rows
    ):
        return None
    truth = {str(records[i]["hip"]): int(records[i]["hip_label"]) for i in rows}
    patient_of = {str(records[i]["hip"]): str(records[i]["patient"]) for i in rows}
    ids = sorted(truth)  # the order stats.hip_scores returns, the same for every rule
    return ids, np.array([truth[h] for h in ids], dtype=np.int64), patient_of


def hip_level(
    records: Sequence[dict[str, Any]],
    probability: np.ndarray,
    threshold: float,
    bootstrap: M.ClusterBootstrap,
    level: float = 0.95,
    mask: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """Hip-level AUROC, sensitivity and specificity for each rule of :data:`stats.HIP_RULES`.

    A hip's probability is the max (or mean) of its clips' calibrated probabilities, its
    decision that probability >= the bundle's threshold, its truth the manifest's
    ``hip_label`` (the hip is detached, whether or not a clip showed it). CIs resample
    patients (with all their hips), using the suite bootstrap's seed and size.

    Args:
        records: the suite's rows (N). probability: float (N,) the model's clip probabilities.
        mask: bool (N,) clips to use (e.g. one part of the suite); None = all.

    Returns:
        ``{"n_hips", "n_detached", "rules": {rule: {metric: block}}}``, or None when the rows
        carry no ``hip`` and ``hip_label`` (a manifest without hip truth).
    """
    keep = np.ones(len(records), bool) if mask is None else mask
    rows = np.flatnonzero(keep)
    hips_truth = hip_truth(records, keep)
    if hips_truth is None:
        return None
    ids, y, patient_of = hips_truth
    hips = [str(records[i]["hip"]) for i in rows]
    plan = M.ClusterBootstrap([patient_of[h] for h in ids], bootstrap.n, bootstrap.seed)
    functions = {name: M.metric_functions()[name] for name in HIP_METRICS}
    out: dict[str, Any] = {"n_hips": int(y.size), "n_detached": int(y.sum()), "rules": {}}
    for rule in stats.HIP_RULES:
        order, values = stats.hip_scores(hips, probability[rows], rule)
        assert order == ids, "stats.hip_scores must return hips in sorted order"
        out["rules"][rule] = M.metrics_with_ci(y, values, threshold, plan, functions, None, level)
    return out


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
    """AUROC(first model) - AUROC(each other model): the paired patient bootstrap
    (``value``, ``ci_low``, ``ci_high``, ``p_value``) and DeLong's test (``delong``), over the
    suite and per part (``per_shift``, when the suite has several)."""
    arrays = suite_arrays(records)
    y, shifts = arrays["y"], sorted(set(arrays["shift"]))

    def block(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> dict[str, Any]:
        select = np.ones(y.size, bool) if mask is None else mask
        diff = M.paired_auroc_difference(y, a, b, bootstrap, level, mask)
        return {**diff, "delong": stats.delong_paired(y[select], a[select], b[select], level)}

    out = []
    for other in range(1, len(scores)):
        a, b = scores[0].probability, scores[other].probability
        entry = {
            "a": names[0],
            "b": names[other],
            "metric": "auroc_difference",
            **block(a, b, None),
        }
        entry["per_shift"] = (
            {s: block(a, b, arrays["shift"] == s) for s in shifts} if len(shifts) > 1 else {}
        )
        out.append(entry)
    return out
