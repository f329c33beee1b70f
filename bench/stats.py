"""Statistics the benchmark reports beside its bootstrap: DeLong's test, when an interval
can be estimated at all, hip-level aggregation and the spread of replicate bundles.

- :func:`delong_paired`: DeLong, DeLong & Clarke-Pearson (1988) for two correlated AUROCs on
  the same clips, through the structural components (placements) of each score. Clips are
  treated as independent, so it is the textbook clip-level test; the paired *patient*
  bootstrap (:func:`labral.bench.bootstrap.paired_auroc_difference`) respects clustering and
  is reported beside it.
- :func:`estimability`: an interval needs at least :data:`MIN_PATIENTS_PER_CLASS` patients
  on each side; below that it is reported as not estimable, with the reason, never as a
  (zero-width) interval from a handful of resampled patients.
- :func:`hip_scores`: a hip's score from its clips, by the rules in :data:`HIP_RULES`.
- :func:`replicate_spread`: mean and sample SD of a metric over bundles of one recipe.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

#: Fewer patients than this in either class: a CI is "not estimable" (issue 10's minimum).
MIN_PATIENTS_PER_CLASS = 10
#: How a hip's clip probabilities become the hip's: the most suspicious clip, or the average.
HIP_RULES = ("max", "mean")


def _placements(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: V10 (m,) per positive, V01 (n,) per negative.

    V10[i] is the fraction of negatives scored below positive i (ties count one half), V01[j]
    the fraction of positives scored above negative j; both average to the AUROC.
    """
    pos, neg = y_score[y_true == 1], y_score[y_true == 0]
    m, n = pos.size, neg.size
    rank_all = rankdata(np.concatenate([pos, neg]))
    rank_pos, rank_neg = rankdata(pos), rankdata(neg)
    v10 = (rank_all[:m] - rank_pos) / n
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m
    return v10, v01


def delong_paired(
    y_true: np.ndarray, y_score_a: np.ndarray, y_score_b: np.ndarray, level: float = 0.95
) -> dict[str, float]:
    """DeLong's test of AUROC(a) - AUROC(b) for two scores of the same clips.

    Args:
        y_true: int (N,) labels 0/1. y_score_a, y_score_b: float (N,) the two models' scores.
        level: confidence level of the normal-approximation interval of the difference.

    Returns:
        ``{"auroc_a", "auroc_b", "value" (difference), "se", "z", "p_value" (two-sided),
        "ci_low", "ci_high"}``; NaN when a class is missing or the variance is 0 (identical
        placements: the test is undefined, and ``p_value`` is 1 when the scores rank the
        clips identically).
    """
    y_true = np.asarray(y_true)
    m, n = int(np.sum(y_true == 1)), int(np.sum(y_true == 0))
    nan = float("nan")
    if m < 2 or n < 2:
        keys = ("auroc_a", "auroc_b", "value", "se", "z", "p_value", "ci_low", "ci_high")
        return dict.fromkeys(keys, nan)
    v10 = np.stack([_placements(y_true, np.asarray(s, float))[0] for s in (y_score_a, y_score_b)])
    v01 = np.stack([_placements(y_true, np.asarray(s, float))[1] for s in (y_score_a, y_score_b)])
    aurocs = v10.mean(axis=1)
    cov = np.cov(v10) / m + np.cov(v01) / n  # (2, 2)
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aurocs[0] - aurocs[1])
    out = {"auroc_a": float(aurocs[0]), "auroc_b": float(aurocs[1]), "value": diff}
    if not variance > 1e-15:
        same = diff == 0
        return {
            **out,
            "se": 0.0,
            "z": nan,
            "p_value": 1.0 if same else nan,
            "ci_low": nan,
            "ci_high": nan,
        }
    se = math.sqrt(variance)
    z = diff / se
    half = float(norm.ppf(0.5 + level / 2)) * se
    return {
        **out,
        "se": se,
        "z": z,
        "p_value": float(2 * norm.sf(abs(z))),
        "ci_low": diff - half,
        "ci_high": diff + half,
    }


def patients_per_class(y_true: np.ndarray, patients: np.ndarray) -> tuple[int, int]:
    """Patients with at least one positive clip, and with at least one negative clip."""
    y_true, patients = np.asarray(y_true), np.asarray(patients, dtype=object)
    return (int(np.unique(patients[y_true == 1]).size), int(np.unique(patients[y_true == 0]).size))


def estimability(
    y_true: np.ndarray, patients: np.ndarray, minimum: int = MIN_PATIENTS_PER_CLASS
) -> str | None:
    """Why a class-dependent CI cannot be estimated here, or None when it can.

    Args:
        y_true: int (N,) labels of the clips the metric is computed on.
        patients: (N,) their patient ids.
        minimum: patients needed in each class.
    """
    n_pos, n_neg = patients_per_class(y_true, patients)
    if min(n_pos, n_neg) >= minimum:
        return None
    return (
        f"not estimable: {n_pos} patients with positive and {n_neg} with negative clips "
        f"(a patient bootstrap needs >= {minimum} in each class)"
    )


def hip_scores(
    hips: Sequence[str], probability: np.ndarray, rule: str
) -> tuple[list[str], np.ndarray]:
    """Each hip's probability from its clips' calibrated probabilities.

    Args:
        hips: (N,) hip id of every clip. probability: float (N,) clip probabilities.
        rule: ``"max"`` (the hip is as suspicious as its most suspicious clip: a detachment
            shows only in clips that load the hip enough) or ``"mean"``.

    Returns:
        The hip ids (sorted) and float64 (H,) their probabilities.
    """
    if rule not in HIP_RULES:
        raise ValueError(f"hip rule {rule!r}: use one of {HIP_RULES}")
    ids = np.asarray([str(h) for h in hips], dtype=object)
    unique, inverse = np.unique(ids, return_inverse=True)
    values = np.zeros(unique.size)
    reduce = np.maximum if rule == "max" else np.add
    start = -np.inf if rule == "max" else 0.0
    values[:] = start
    reduce.at(values, inverse, np.asarray(probability, dtype=np.float64))
    if rule == "mean":
        values /= np.bincount(inverse, minlength=unique.size)
    return [str(u) for u in unique], values


def replicate_spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample SD (ddof 1) of one metric over replicate bundles (NaNs dropped)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    sd = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return {
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "sd": sd,
        "n": int(finite.size),
    }


#: Config keys that differ between replicate runs of one recipe (not part of the recipe).
NON_RECIPE_KEYS = ("seed", "paths", "hydra", "task_name", "resume", "ckpt_path", "logger")
#: Trainer keys that say where a run ran, not how it trained.
NON_RECIPE_TRAINER_KEYS = ("num_threads", "progress", "device", "accelerator", "devices")


def _without_targets(value: Any) -> Any:
    """``value`` with every ``_target_`` key dropped: which class builds a part is the code's
    business, not the recipe's (runs of one recipe on two labral versions stay replicates)."""
    if isinstance(value, dict):
        return {k: _without_targets(v) for k, v in value.items() if k != "_target_"}
    if isinstance(value, list):
        return [_without_targets(v) for v in value]
    return value


def recipe_key(spec: dict[str, Any]) -> str:
    """What makes two bundles replicates of one recipe: the same model name and training
    config, apart from the seed and where and on what hardware it ran
    (:data:`NON_RECIPE_KEYS`). A short hash of that; bundles without a config are their own."""
    config = spec.get("config")
    if not isinstance(config, dict):  # no training config: the spec itself is the recipe
        config = {k: v for k, v in spec.items() if k not in ("files", "export_checks")}
    kept = _without_targets({k: v for k, v in config.items() if k not in NON_RECIPE_KEYS})
    if isinstance(kept.get("trainer"), dict):
        trainer = kept["trainer"]
        kept["trainer"] = {k: v for k, v in trainer.items() if k not in NON_RECIPE_TRAINER_KEYS}
    canonical = json.dumps({"model": spec.get("model_name"), **kept}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
