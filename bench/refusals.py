"""What the input check refused: refusal rates, its scores' separation, metrics on passing clips.

For one bundle on one suite (results.json ``results.<model>.input_check``), from the clips'
verdicts (:class:`~labral.bench.suite_scoring.ModelScores`) and the suite's columns
(:func:`labral.bench.evaluate.suite_arrays`):

- **wrong inputs** (rows with a ``wrong_input`` kind; label 0): per kind the *refusal rate*
  (share of its clips the check refused: should be high), the share refused for each reason
  and the main reason;
- **valid clips** (rows without one), per suite part (``shift``: a difficulty level): the
  *false-refusal rate* (share of valid clips refused: should be low), the reason shares,
  and the decision metrics (AUROC, sensitivity and specificity at the bundle's threshold) on
  the clips that pass beside those on all valid clips of the part;
- **check scores**: for each detector's continuous score, AUROC and the FPR at 95% TPR of
  wrong inputs (positive) against valid clips (negative), over every wrong input and over
  the held-out family alone (the honest out-of-distribution figure); "not estimable" when
  the suite lacks one side.

Every interval is the suite's patient bootstrap (:mod:`labral.bench.bootstrap`: the same plan
as every other figure of the run, the same "not estimable" rule below the patient minimum).
A bundle without an input check scores every clip: its rates are 0 and ``checked`` is false.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from labral.bench import bootstrap as M
from labral.bench.suite_scoring import ModelScores
from labral.errors import BadManifestError
from labral.input_check.verdict import NOT_ASSESSABLE, REASONS, SCORED

#: Between the reason codes of one clip in predictions.csv's ``reasons_<model>`` cells.
REASON_SEPARATOR = ";"
#: The share of wrong inputs a check score must catch where its false-positive rate is read.
TARGET_TPR = 0.95
#: Decision metrics compared on the clips that pass and on all valid clips of a part.
DECISION_METRICS = ("auroc", "sensitivity", "specificity")
#: The key of the valid clips of a suite without parts (every ``shift`` empty).
WHOLE_SUITE = "all"
#: What results.json and the report say for a bundle without an input check.
NO_CHECK_NOTE = (
    "this bundle has no input check (exported before it existed): every clip was scored, "
    "so every refusal rate is 0; re-export it with `labral export` to get one"
)


def read_verdict(row: dict[str, str], where: str) -> tuple[bool, list[str]]:
    """``(assessable, reasons)`` of a predictions CSV row's ``status`` and ``reasons`` cells
    (as :func:`labral.bench.outputs.write_predictions` writes them; no ``status``: scored).

    Raises:
        BadManifestError: an unknown status or reason code, naming ``where`` and the value.
    """
    status = (row.get("status") or SCORED).strip()
    if status not in (SCORED, NOT_ASSESSABLE):
        raise BadManifestError(f"{where}: status={status!r}; use {SCORED} or {NOT_ASSESSABLE}")
    reasons = [r.strip() for r in (row.get("reasons") or "").split(REASON_SEPARATOR) if r.strip()]
    unknown = [r for r in reasons if r not in REASONS]
    if unknown:
        raise BadManifestError(
            f"{where}: reasons={unknown[0]!r} is not a reason code; known: {', '.join(REASONS)}"
        )
    return status == SCORED, reasons


def fpr_at_tpr(is_wrong: np.ndarray, score: np.ndarray, target: float = TARGET_TPR) -> float:
    """The false-positive rate where a score first catches ``target`` of the wrong inputs.

    Args:
        is_wrong: bool (N,) wrong input (positive) or valid clip (negative).
        score: float (N,) the check score (higher = more likely wrong).
        target: the true-positive rate to reach.

    Returns:
        The smallest FPR over the ROC curve's points with TPR >= ``target`` (refusing clips
        with ``score >= t``); NaN without both classes.
    """
    is_wrong = np.asarray(is_wrong, bool)
    if is_wrong.all() or not is_wrong.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(is_wrong, score, drop_intermediate=False)
    return float(fpr[np.searchsorted(tpr, target, side="left")])


def reason_shares(reasons: list[list[str]], mask: np.ndarray) -> dict[str, float]:
    """Reason -> the share of the clips in ``mask`` refused for it (every reason of
    :data:`~labral.input_check.verdict.REASONS`; a clip refused for two counts in both)."""
    rows = np.flatnonzero(mask)
    if not rows.size:
        return dict.fromkeys(REASONS, float("nan"))
    return {r: float(np.mean([r in reasons[i] for i in rows])) for r in REASONS}


def main_reason(reasons: list[list[str]], mask: np.ndarray) -> str | None:
    """The reason that refused most of the clips in ``mask`` (ties: :data:`REASONS` order);
    None when none was refused."""
    counts = {r: sum(r in reasons[i] for i in np.flatnonzero(mask)) for r in REASONS}
    best = max(REASONS, key=lambda r: (counts[r], -REASONS.index(r)))
    return best if counts[best] else None


def _refusals(
    scores: ModelScores, mask: np.ndarray, plan: M.ClusterBootstrap, level: float
) -> dict[str, Any]:
    """Refusal rate with its CI, reason shares and the main reason of the clips in ``mask``."""
    refused = ~np.asarray(scores.assessable, bool)
    return {
        "n": int(mask.sum()),
        "n_refused": int((refused & mask).sum()),
        "rate": M.rate_with_ci(refused, plan, mask, level),
        "reasons": reason_shares(scores.reasons, mask),
        "main_reason": main_reason(scores.reasons, mask),
    }


def wrong_inputs(
    arrays: dict[str, np.ndarray], scores: ModelScores, plan: M.ClusterBootstrap, level: float
) -> dict[str, Any]:
    """Wrong-input kind -> ``{"family", "held_out", "settings", "n", "n_refused",
    "refusal_rate", "reasons", "main_reason"}``."""
    kinds = arrays["wrong_input"]
    out = {}
    for kind in sorted(set(kinds) - {""}):
        mask = kinds == kind
        block = _refusals(scores, mask, plan, level)
        out[kind] = {
            "family": str(arrays["wrong_family"][mask][0]) or None,
            "held_out": bool(arrays["held_out"][mask].any()),
            "settings": sorted({str(s) for s in arrays["shift"][mask]} - {""}),
            "n": block["n"],
            "n_refused": block["n_refused"],
            "refusal_rate": block["rate"],
            "reasons": block["reasons"],
            "main_reason": block["main_reason"],
        }
    return out


def _decisions(
    arrays: dict[str, np.ndarray],
    scores: ModelScores,
    threshold: float,
    plan: M.ClusterBootstrap,
    mask: np.ndarray,
    level: float,
) -> dict[str, Any]:
    """False-refusal rate, reason shares, and :data:`DECISION_METRICS` on all the clips in
    ``mask`` and on those of them that pass."""
    functions = {name: M.metric_functions()[name] for name in DECISION_METRICS}
    passing = mask & np.asarray(scores.assessable, bool)
    y, p = arrays["y"], scores.probability
    block = _refusals(scores, mask, plan, level)
    return {
        "n": block["n"],
        "n_refused": block["n_refused"],
        "n_passing": int(passing.sum()),
        "false_refusal_rate": block["rate"],
        "reasons": block["reasons"],
        "main_reason": block["main_reason"],
        "all_clips": M.metrics_with_ci(y, p, threshold, plan, functions, mask, level),
        "passing_clips": M.metrics_with_ci(y, p, threshold, plan, functions, passing, level),
    }


def valid_parts(
    arrays: dict[str, np.ndarray],
    scores: ModelScores,
    threshold: float,
    plan: M.ClusterBootstrap,
    level: float,
) -> dict[str, Any]:
    """Suite part (``shift``; :data:`WHOLE_SUITE` for a suite without parts) -> the valid
    clips' :func:`_decisions`."""
    valid = arrays["wrong_input"] == ""
    shifts = arrays["shift"]
    return {
        str(shift) or WHOLE_SUITE: _decisions(
            arrays, scores, threshold, plan, valid & (shifts == shift), level
        )
        for shift in sorted(set(shifts[valid]))
    }


def _separation(
    is_wrong: np.ndarray,
    score: np.ndarray,
    wrong: np.ndarray,
    valid: np.ndarray,
    plan: M.ClusterBootstrap,
    level: float,
) -> dict[str, Any]:
    """AUROC (with CI) and FPR at :data:`TARGET_TPR` of ``score``: the wrong inputs in
    ``wrong`` against the valid clips in ``valid`` (clips without the score left out)."""
    mask = (wrong | valid) & np.isfinite(score)
    n_wrong, n_valid = int((mask & wrong).sum()), int((mask & valid).sum())
    out: dict[str, Any] = {"n_wrong": n_wrong, "n_valid": n_valid}
    if not n_wrong or not n_valid:
        side = "wrong inputs" if not n_wrong else "valid clips"
        return {**out, "note": f"not estimable: no {side} with this score"}
    y = is_wrong.astype(np.int64)
    functions = {"auroc": M.metric_functions()["auroc"]}
    auroc = M.metrics_with_ci(y, score, 0.5, plan, functions, mask, level)["auroc"]
    return {**out, "auroc": auroc, "fpr_at_95_tpr": fpr_at_tpr(is_wrong[mask], score[mask])}


def score_separation(
    arrays: dict[str, np.ndarray], scores: ModelScores, plan: M.ClusterBootstrap, level: float
) -> tuple[dict[str, Any], str | None]:
    """Each check score's separation of wrong inputs from valid clips, over all wrong inputs
    (``all``) and the held-out family alone (``held_out``).

    Returns:
        ``({reason: {"all": block, "held_out": block}}, note)``: a block is ``{"n_wrong",
        "n_valid", "auroc" (with CI), "fpr_at_95_tpr"}`` or ``{"n_wrong", "n_valid", "note"}``;
        the scores are {} and ``note`` says why when the suite lacks wrong inputs or valid
        clips, or the bundle has no check.
    """
    is_wrong = arrays["wrong_input"] != ""
    if not scores.check_scores:
        return {}, "not estimable: the bundle's input check gave no scores"
    if is_wrong.all() or not is_wrong.any():
        lacking = "valid clips" if is_wrong.any() else "wrong inputs"
        return {}, f"not estimable: the suite has no {lacking} (a score's AUROC needs both)"
    held_out = is_wrong & arrays["held_out"]
    out = {}
    for reason in [r for r in REASONS if r in scores.check_scores]:
        score = scores.check_scores[reason]
        out[reason] = {
            "all": _separation(is_wrong, score, is_wrong, ~is_wrong, plan, level),
            "held_out": _separation(is_wrong, score, held_out, ~is_wrong, plan, level),
        }
    return out, None


def input_check_block(
    arrays: dict[str, np.ndarray],
    scores: ModelScores,
    threshold: float,
    plan: M.ClusterBootstrap,
    level: float = 0.95,
) -> dict[str, Any]:
    """results.json's ``input_check`` of one bundle on one suite.

    Args:
        arrays: the suite's columns (:func:`labral.bench.evaluate.suite_arrays`, N clips).
        scores: the bundle's scores and verdicts on them.
        threshold: the bundle's decision threshold.
        plan: the suite's patient bootstrap.

    Returns:
        ``{"checked", "note", "n_clips", "n_refused", "n_wrong_input", "n_valid",
        "wrong_input": {kind: ...}, "valid": {part: ...}, "valid_overall", "scores",
        "scores_note"}`` (docs: bench/README.md, "Input check").
    """
    checked = bool(np.asarray(scores.checked, bool).any())
    valid = arrays["wrong_input"] == ""
    parts = valid_parts(arrays, scores, threshold, plan, level)
    overall = _decisions(arrays, scores, threshold, plan, valid, level) if len(parts) > 1 else None
    separation, note = score_separation(arrays, scores, plan, level)
    return {
        "checked": checked,
        "note": None if checked else NO_CHECK_NOTE,
        "n_clips": int(valid.size),
        "n_refused": int((~np.asarray(scores.assessable, bool)).sum()),
        "n_wrong_input": int((~valid).sum()),
        "n_valid": int(valid.sum()),
        "wrong_input": wrong_inputs(arrays, scores, plan, level),
        "valid": parts,
        "valid_overall": overall,
        "scores": separation,
        "scores_note": note,
    }
