"""The input check's figures in results.json (``bench.refusals``), pinned to hand computations.

Refusal and false-refusal rates and reason shares on hand-made verdicts; a check score's
AUROC and FPR at 95% TPR equal to scikit-learn's and to a brute-force sweep of thresholds;
"not estimable" where a suite lacks wrong inputs; the decision metrics on the passing clips
equal to the metrics of that subset computed by hand; the report tables read the block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from labral.bench import refusals
from labral.bench.evaluate import suite_arrays
from labral.bench.report import input_check
from labral.bench.suite_scoring import ModelScores
from labral.metrics import ClusterBootstrap

#: (wrong_input, family, held_out, shift, label, reasons) of each hand-made clip
CLIPS: list[tuple[str, str, bool, str, int, list[str]]] = [
    ("rotated_90", "orientation", False, "rotated_90", 0, ["not_hip_view"]),
    ("rotated_90", "orientation", False, "rotated_90", 0, ["not_hip_view", "out_of_distribution"]),
    ("rotated_90", "orientation", False, "rotated_90", 0, ["image_quality"]),
    ("rotated_90", "orientation", False, "rotated_90", 0, []),
    ("knee", "other_joint", True, "knee", 0, ["out_of_distribution"]),
    ("knee", "other_joint", True, "knee", 0, ["out_of_distribution"]),
    ("", "", False, "easy", 1, ["no_manoeuvre"]),
    ("", "", False, "easy", 1, []),
    ("", "", False, "easy", 0, []),
    ("", "", False, "easy", 0, []),
    ("", "", False, "hard", 1, []),
    ("", "", False, "hard", 0, []),
    ("", "", False, "hard", 1, []),
    ("", "", False, "hard", 0, []),
]


def _rows(clips: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Manifest rows, one patient per clip; a valid row has no wrong_input keys (CSV text for
    ``held_out`` on every other wrong row, as a user's CSV manifest holds it)."""
    rows = []
    for i, (kind, family, held_out, shift, label, _) in enumerate(clips):
        row = {"path": f"c{i}.dcm", "patient": f"P{i}", "label": label, "shift": shift}
        if kind:
            row |= {"wrong_input": kind, "wrong_family": family}
            row["held_out"] = ("true" if held_out else "false") if i % 2 else held_out
        rows.append(row)
    return rows


def _scores(
    probability: np.ndarray, reasons: list[list[str]], check: dict[str, np.ndarray] | None = None
) -> ModelScores:
    n = probability.size
    scores = ModelScores(
        np.zeros(n),
        probability,
        probability >= 0.5,
        assessable=np.array([not r for r in reasons]),
        reasons=reasons,
        checked=np.ones(n, bool),
    )
    scores.check_scores = check or {}
    return scores


def _block(
    clips: list[tuple[Any, ...]],
    probability: np.ndarray,
    check: dict[str, np.ndarray] | None = None,
    n_boot: int = 40,
) -> dict[str, Any]:
    rows = _rows(clips)
    plan = ClusterBootstrap([r["patient"] for r in rows], n_boot, 0)
    scores = _scores(probability, [list(c[-1]) for c in clips], check)
    return refusals.input_check_block(suite_arrays(rows), scores, 0.5, plan)


PROBABILITY = np.array([0.1, 0.9, 0.2, 0.3, 0.4, 0.6, 0.8, 0.7, 0.9, 0.2, 0.7, 0.6, 0.3, 0.1])


def test_refusal_rates_and_reason_shares_are_the_hand_counts() -> None:
    block = _block(CLIPS, PROBABILITY)
    assert block["checked"] and block["note"] is None
    assert (block["n_clips"], block["n_refused"], block["n_wrong_input"]) == (14, 6, 6)
    rotated, knee = block["wrong_input"]["rotated_90"], block["wrong_input"]["knee"]
    assert rotated["refusal_rate"]["value"] == 3 / 4 and rotated["n_refused"] == 3
    assert rotated["reasons"] == {
        "image_quality": 1 / 4,
        "no_manoeuvre": 0.0,
        "not_hip_view": 2 / 4,
        "out_of_distribution": 1 / 4,
        "check_failed": 0.0,
    }
    assert rotated["main_reason"] == "not_hip_view"
    assert (rotated["family"], rotated["held_out"], rotated["settings"]) == (
        "orientation",
        False,
        ["rotated_90"],
    )
    assert knee["refusal_rate"]["value"] == 1.0 and knee["main_reason"] == "out_of_distribution"
    tie = [["no_manoeuvre"], ["image_quality", "not_hip_view"], ["not_hip_view", "no_manoeuvre"]]
    assert refusals.main_reason(tie, np.ones(3, bool)) == "no_manoeuvre"  # first in REASONS
    assert knee["held_out"] is True  # "true" (CSV text) and True (JSONL) both read as yes
    easy, hard = block["valid"]["easy"], block["valid"]["hard"]
    assert easy["false_refusal_rate"]["value"] == 1 / 4 and easy["reasons"]["no_manoeuvre"] == 1 / 4
    assert hard["false_refusal_rate"]["value"] == 0.0 and hard["main_reason"] is None
    assert block["valid_overall"]["false_refusal_rate"]["value"] == 1 / 8
    # 4 patients in a group: below the patient minimum, the interval is not estimable
    assert easy["false_refusal_rate"]["ci_low"] is None
    assert "not estimable" in easy["false_refusal_rate"]["ci_note"]


def test_rates_get_a_patient_bootstrap_interval_with_enough_patients() -> None:
    reasons = [["image_quality"] if i % 4 else [] for i in range(40)]
    clips = [("blank", "image_fault", False, "blank", 0, r) for r in reasons]
    rate = _block(clips, np.zeros(40), n_boot=200)["wrong_input"]["blank"]["refusal_rate"]
    assert rate["value"] == 30 / 40 and rate["n"] == 40 and rate["n_boot"] == 200
    assert rate["ci_low"] < 0.75 < rate["ci_high"]


def test_check_score_auroc_and_fpr_at_95_tpr_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    n_wrong, n_valid = 60, 80
    clips = [
        ("knee" if i % 3 else "rotated_90", "f", i % 3 > 0, "w", 0, []) for i in range(n_wrong)
    ]
    clips += [("", "", False, "easy", i % 2, []) for i in range(n_valid)]
    is_wrong = np.r_[np.ones(n_wrong, bool), np.zeros(n_valid, bool)]
    score = rng.normal(0, 1, is_wrong.size) + 1.2 * is_wrong
    score[[3, 70]] = np.nan  # a clip the detector did not score (the check failed on it)
    block = _block(clips, rng.uniform(0, 1, is_wrong.size), {"not_hip_view": score})
    assert block["scores_note"] is None
    held = np.r_[np.array([i % 3 > 0 for i in range(n_wrong)]), np.zeros(n_valid, bool)]
    for part, positives in (("all", is_wrong), ("held_out", held)):
        entry = block["scores"]["not_hip_view"][part]
        keep = (positives | ~is_wrong) & np.isfinite(score)
        y, s = positives[keep], score[keep]
        assert entry["auroc"]["value"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert (entry["n_wrong"], entry["n_valid"]) == (int(y.sum()), int((~y).sum()))
        # brute force: refuse score >= t for every observed t; the least FPR with TPR >= 0.95
        best = min(
            np.mean(s[~y] >= t) for t in np.unique(s) if np.mean(s[y] >= t) >= refusals.TARGET_TPR
        )
        assert entry["fpr_at_95_tpr"] == pytest.approx(best)
        fpr, tpr, _ = roc_curve(y, s)
        assert entry["fpr_at_95_tpr"] == pytest.approx(fpr[tpr >= 0.95][0])
        assert entry["auroc"]["ci_low"] <= entry["auroc"]["value"] <= entry["auroc"]["ci_high"]


def test_scores_are_not_estimable_without_wrong_inputs() -> None:
    valid = [c for c in CLIPS if not c[0]]
    score = {"out_of_distribution": np.linspace(0, 1, len(valid))}
    block = _block(valid, PROBABILITY[: len(valid)], score)
    assert block["scores"] == {} and block["wrong_input"] == {}
    assert block["scores_note"].startswith("not estimable: the suite has no wrong inputs")
    assert input_check.wrong_input_table(block)[1] == []
    assert [row[0] for row in input_check.valid_table(block)[1]] == ["easy", "hard", "all valid"]
    # no held-out family in the suite: that column says so, the other is estimated
    wrong = [c for c in CLIPS if c[0] == "rotated_90"] + valid
    block = _block(wrong, PROBABILITY[: len(wrong)], {"out_of_distribution": np.arange(12.0)})
    entry = block["scores"]["out_of_distribution"]
    assert entry["held_out"]["note"].startswith("not estimable") and "auroc" in entry["all"]
    assert input_check.score_table(block)[1][0][3] == "not estimable"


def test_decision_metrics_on_passing_clips_equal_the_subset_by_hand() -> None:
    rng = np.random.default_rng(5)
    n = 48
    labels = np.arange(n) % 2
    probability = np.clip(labels * 0.3 + rng.uniform(0, 0.7, n), 0, 1)
    refused = rng.uniform(size=n) < 0.3
    reasons = [["image_quality"] if r else [] for r in refused]
    clips = [("", "", False, "medium", int(labels[i]), reasons[i]) for i in range(n)]
    clips += [("blank", "image_fault", False, "blank", 0, ["image_quality"])] * 4
    probability = np.r_[probability, np.full(4, 0.99)]  # wrong inputs never enter the metrics
    entry = _block(clips, probability)["valid"]["medium"]
    passing = ~refused
    y, p = labels[passing], probability[:n][passing]
    decided = p >= 0.5
    assert entry["n_passing"] == int(passing.sum()) and entry["n"] == n
    assert entry["passing_clips"]["auroc"]["value"] == pytest.approx(roc_auc_score(y, p))
    assert entry["passing_clips"]["sensitivity"]["value"] == pytest.approx(decided[y == 1].mean())
    assert entry["passing_clips"]["specificity"]["value"] == pytest.approx(
        1 - decided[y == 0].mean()
    )
    p_all = probability[:n]
    assert entry["all_clips"]["auroc"]["value"] == pytest.approx(roc_auc_score(labels, p_all))
    assert entry["false_refusal_rate"]["value"] == pytest.approx(refused.mean())


def test_a_bundle_without_a_check_is_said_to_have_none() -> None:
    rows = _rows(CLIPS)
    plan = ClusterBootstrap([r["patient"] for r in rows], 20, 0)
    scores = ModelScores(np.zeros(14), PROBABILITY, PROBABILITY >= 0.5)  # no verdicts at all
    block = refusals.input_check_block(suite_arrays(rows), scores, 0.5, plan)
    assert not block["checked"] and block["note"] == refusals.NO_CHECK_NOTE
    assert block["n_refused"] == 0 and block["wrong_input"]["knee"]["refusal_rate"]["value"] == 0
    assert block["scores"] == {} and "gave no scores" in block["scores_note"]
    results = {"models": [{"name": "m"}], "results": {"m": {"input_check": block}}}
    assert "no input check" in "\n".join(input_check.html_section(results))
