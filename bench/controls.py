"""Order controls: every positive of a synthetic suite scored again time-reversed, with its
frames shuffled, and motionless (its middle frame repeated).

The sign labral learns is an ordered event (fluid pushed through the cleft *during* the
loading), so a model that reads it must score a positive's reversed, shuffled or motionless
copy lower; a model that only sees what is in the frames (the still-frame net, an order-free
pooling) scores the reversed and shuffled copies like the original. Per model and control:

- ``order_sensitivity``: AUROC of the positives (label 1) against their own altered copies
  (label 0): 1 = every copy scores below every original, 0.5 = order ignored;
- ``mean_probability_drop``: mean over positives of p(original) - p(copy), with a patient
  bootstrap CI;
- ``copies_detected``: the share of copies decided "detached" at the bundle's threshold
  (a motionless copy should not be), by the model alone;
- ``copies_refused`` and ``copies_reported_detached`` (a bundle with an input check): the
  share of copies the check refuses, and the share a clinician would be shown as "detached"
  (scored and decided detached: what every route reports).

Both are computed per suite part (``shift``: e.g. each level of ``synthetic-graded``) and
over the whole suite. A positive is a clip with label 1; the copies keep its fps and length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labral.bench import suite_scoring as scoring
from labral.bench.bootstrap import ClusterBootstrap, metrics_with_ci, rate_with_ci
from labral.bench.distributed import score_pass_distributed
from labral.bundle import Bundle
from labral.metrics import auroc, decision

#: The controls, in report order: perturbations of :mod:`labral.bench.perturb`.
CONTROLS = ("reversed", "shuffled", "motionless")


def score_controls(
    source: scoring.ClipSource,
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
    seed: int,
    progress: Callable[[int], Any] | None = None,
    **score: Any,
) -> dict[str, scoring.PassResult]:
    """Score the positives' altered copies: one pass per control (sharded over the ranks
    under torchrun, :func:`labral.bench.distributed.score_pass_distributed`).

    Args:
        source: the K positives (e.g. ``suite_source.subset(positives)``, which reuses the
            clips the clean pass decoded and kept).
        seed: seeds the shuffles (with each clip's index).
        score: ``batch_size``, ``workers`` as for :func:`scoring.score_pass`.

    Returns:
        control -> :class:`scoring.PassResult` over the K positives, in order.
    """
    return {
        control: score_pass_distributed(
            source,
            bundles,
            transforms,
            perturbation=(control, 0.0, seed),
            progress=progress,
            check=True,  # a copy a route would refuse is reported as refused
            **score,
        )
        for control in CONTROLS
    }


def order_control_block(
    original: np.ndarray,
    altered: np.ndarray,
    patients: Sequence[str],
    n_boot: int,
    seed: int,
    level: float,
    threshold: float | None = None,
    assessable: np.ndarray | None = None,
) -> dict[str, Any]:
    """Order sensitivity and mean probability drop of one model and control on some positives.

    Args:
        original: float (K,) probabilities of K positives. altered: float (K,) of their copies.
        patients: (K,) patient of each positive (the bootstrap resamples patients, each with
            its positives and their copies together).
        threshold: the bundle's operating threshold; None leaves ``copies_detected`` out.
        assessable: bool (K,) the input check let each copy through; None (no check) leaves
            ``copies_refused`` and ``copies_reported_detached`` out.

    Returns:
        ``{"n", "order_sensitivity": {value, ci...}, "mean_probability_drop": {value, ci...}}``
        and ``"copies_detected"`` when ``threshold`` is given, ``"copies_refused"`` and
        ``"copies_reported_detached"`` when ``assessable`` is given too.
    """
    k = len(original)
    if k == 0:
        nan = {"value": float("nan"), "ci_low": None, "ci_high": None, "n_boot": 0}
        return {"n": 0, "order_sensitivity": nan, "mean_probability_drop": nan}
    y = np.r_[np.ones(k, np.int64), np.zeros(k, np.int64)]
    p = np.r_[np.asarray(original, float), np.asarray(altered, float)]
    both = np.r_[np.asarray(patients, dtype=object), np.asarray(patients, dtype=object)]
    plan = ClusterBootstrap(both, n_boot, seed)
    functions = {"order_sensitivity": lambda y_true, y_score, t: auroc(y_true, y_score)}
    # both classes come from the same patients, so the patient minimum applies to K's patients
    sensitivity = metrics_with_ci(y, p, 0.5, plan, functions, None, level)["order_sensitivity"]
    drop = np.asarray(original, float) - np.asarray(altered, float)
    drop_plan = ClusterBootstrap(patients, n_boot, seed)
    block = rate_with_ci(drop, drop_plan, np.ones(k, bool), level)
    block.pop("n", None)
    out = {"n": k, "order_sensitivity": sensitivity, "mean_probability_drop": block}
    if threshold is None:
        return out
    detected = decision(np.asarray(altered, float), threshold)
    rates = {"copies_detected": detected}
    if assessable is not None:
        passed = np.asarray(assessable, bool)
        rates |= {"copies_refused": ~passed, "copies_reported_detached": detected & passed}
    for key, values in rates.items():
        out[key] = rate_with_ci(values.astype(float), drop_plan, np.ones(k, bool), level)
        out[key].pop("n", None)
    return out


def order_controls(
    records: Sequence[dict[str, Any]],
    positives: np.ndarray,
    original: np.ndarray,
    altered: dict[str, np.ndarray],
    n_boot: int,
    seed: int,
    level: float,
    threshold: float | None = None,
    assessable: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every control's block, over the suite and per part, for one model.

    Args:
        records: the suite's rows (N). positives: int (K,) indices of the positives scored.
        original: float (N,) the model's clean probabilities.
        altered: control -> float (K,) probabilities of the positives' copies.
        threshold: the bundle's operating threshold (for ``copies_detected``).
        assessable: control -> bool (K,) the input check let each copy through (a bundle
            with a check; for ``copies_refused``).

    Returns:
        ``{control: {"overall": block, "per_shift": {part: block}}}``.
    """
    patients = np.asarray([str(records[i]["patient"]) for i in positives], dtype=object)
    parts = np.asarray([str(records[i].get("shift") or "") for i in positives], dtype=object)
    out: dict[str, Any] = {}
    for control, probs in altered.items():
        passed = None if assessable is None else np.asarray(assessable[control], bool)

        def block(keep: np.ndarray, probs: np.ndarray = probs, passed: Any = passed) -> dict:
            return order_control_block(
                original[positives][keep],
                probs[keep],
                patients[keep],
                n_boot,
                seed,
                level,
                threshold,
                None if passed is None else passed[keep],
            )

        entry = {"overall": block(np.ones(len(positives), bool)), "per_shift": {}}
        if len(set(parts)) > 1:
            for part in sorted(set(parts)):
                entry["per_shift"][part] = block(parts == part)
        out[control] = entry
    return out
