"""DeLong's test, the not-estimable rule, hip aggregation, order controls, replicate spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from labral.bench import bootstrap as M
from labral.bench import controls, stats


def test_delong_on_a_hand_worked_example() -> None:
    # positives a = .9 .8 .3, negatives a = .5 .2: placements V10 = 1, 1, .5 and V01 = 2/3, 1,
    # AUROC 5/6, var = S10/m + S01/n = (1/12)/3 + (1/18)/2 = 1/18. Model b: V10 = .5, .5, .5,
    # V01 = 1, 0, AUROC 1/2, var 0 + 0.5/2 = 1/4; cov = 0/3 + (-1/6)/2 = -1/12. So var(a - b)
    # = 1/18 + 1/4 + 1/6 = 17/36, z = (1/3) / sqrt(17/36) = 2 / sqrt(17).
    y = np.array([1, 1, 1, 0, 0])
    a = np.array([0.9, 0.8, 0.3, 0.5, 0.2])
    b = np.array([0.7, 0.6, 0.65, 0.1, 0.9])
    out = stats.delong_paired(y, a, b)
    assert out["auroc_a"] == pytest.approx(5 / 6) and out["auroc_b"] == pytest.approx(0.5)
    assert out["se"] == pytest.approx(math.sqrt(17 / 36))
    assert out["z"] == pytest.approx(2 / math.sqrt(17))
    assert out["p_value"] == pytest.approx(2 * norm.sf(2 / math.sqrt(17)))
    assert out["ci_low"] == pytest.approx(1 / 3 - 1.959964 * math.sqrt(17 / 36), abs=1e-5)


def _delong_by_definition(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Variance of AUROC(a) - AUROC(b) from the O(m n) kernel, written out."""

    def comps(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (a10, a01), (b10, b01) = comps(a), comps(b)
    m, n = a10.size, a01.size
    var_a = np.var(a10, ddof=1) / m + np.var(a01, ddof=1) / n
    var_b = np.var(b10, ddof=1) / m + np.var(b01, ddof=1) / n
    cov = np.cov(a10, b10)[0, 1] / m + np.cov(a01, b01)[0, 1] / n
    return var_a + var_b - 2 * cov


def test_delong_matches_the_kernel_definition_and_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    a = np.round(y * 0.8 + rng.normal(0, 1, 300), 1)  # rounded: many ties
    b = np.round(y * 0.3 + rng.normal(0, 1, 300), 1)
    out = stats.delong_paired(y, a, b)
    assert out["auroc_a"] == pytest.approx(roc_auc_score(y, a))
    assert out["auroc_b"] == pytest.approx(roc_auc_score(y, b))
    assert out["se"] ** 2 == pytest.approx(_delong_by_definition(y, a, b), rel=1e-9)
    assert out["p_value"] < 0.01  # 0.8 vs 0.3 SD separation on 300 clips
    same = stats.delong_paired(y, a, a)
    assert same["value"] == 0 and same["p_value"] == 1.0


def test_small_samples_are_not_estimable_never_zero_width() -> None:
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])  # perfectly separated, 3 patients
    plan = M.ClusterBootstrap(["a", "a", "b", "b", "c", "c"], n=100, seed=0)
    block = M.metrics_with_ci(y, p, 0.5, plan, M.metric_functions())["auroc"]
    assert block["value"] == 1.0 and block["ci_low"] is None and block["ci_high"] is None
    assert "not estimable: 3 patients with positive" in block["ci_note"]
    assert M.format_with_ci(block) == "1.000 [CI not estimable]"
    diff = M.paired_auroc_difference(y, p, p[::-1].copy(), plan)
    assert diff["ci_low"] is None and diff["p_value"] is None and "not estimable" in diff["ci_note"]
    rate = M.rate_with_ci(np.ones(6, bool), plan, np.ones(6, bool))
    assert rate["ci_low"] is None and "3 patients" in rate["ci_note"]
    # at the minimum an interval is estimated
    many = [f"p{i}" for i in range(20) for _ in range(2)]
    y2 = np.tile([1, 0], 20)
    enough = M.ClusterBootstrap(many, n=50, seed=0)
    block = M.metrics_with_ci(y2, y2 * 0.6 + 0.2, 0.5, enough, M.metric_functions())["auroc"]
    assert block["ci_low"] == 1.0 and "ci_note" not in block


def test_hip_scores_take_the_max_or_the_mean_of_a_hips_clips() -> None:
    hips = ["h2", "h1", "h2", "h1", "h3"]
    p = np.array([0.2, 0.9, 0.6, 0.1, 0.4])
    ids, top = stats.hip_scores(hips, p, "max")
    assert ids == ["h1", "h2", "h3"] and np.allclose(top, [0.9, 0.6, 0.4])
    _, mean = stats.hip_scores(hips, p, "mean")
    assert np.allclose(mean, [0.5, 0.4, 0.4])
    with pytest.raises(ValueError, match="hip rule"):
        stats.hip_scores(hips, p, "median")


def test_order_controls_separate_an_order_reader_from_an_order_blind_model() -> None:
    rng = np.random.default_rng(0)
    patients = [f"p{i}" for i in range(40)]
    original = rng.uniform(0.6, 0.95, 40)
    reader = controls.order_control_block(original, original - 0.4, patients, 200, 0, 0.95)
    assert reader["order_sensitivity"]["value"] > 0.95
    assert reader["mean_probability_drop"]["value"] == pytest.approx(0.4)
    blind = controls.order_control_block(
        original, original + rng.normal(0, 0.01, 40), patients, 200, 0, 0.95
    )
    assert 0.35 < blind["order_sensitivity"]["value"] < 0.65
    assert abs(blind["mean_probability_drop"]["value"]) < 0.01
    assert "copies_detected" not in blind  # no threshold given
    # at threshold 0.5 the reader's copies (0.2 .. 0.55) are mostly not detected, the blind
    # model's (0.6 .. 0.95) all are
    copies = original - 0.4
    read = controls.order_control_block(original, copies, patients, 200, 0, 0.95, 0.5)
    assert read["copies_detected"]["value"] == pytest.approx(np.mean(copies >= 0.5))
    blind_t = controls.order_control_block(original, original, patients, 200, 0, 0.95, 0.5)
    assert blind_t["copies_detected"]["value"] == 1.0


def test_replicate_spread_and_recipe_ignore_the_seed_only() -> None:
    spread = stats.replicate_spread([0.8, 0.9, float("nan")])
    assert spread["n"] == 2 and spread["mean"] == pytest.approx(0.85)
    assert spread["sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    base = {
        "model_name": "compact",
        "config": {
            "seed": 1,
            "model": {"widths": [8]},
            "trainer": {"max_epochs": 3, "num_threads": 2},
        },
    }
    other_seed = {
        "model_name": "compact",
        "config": {
            "seed": 2,
            "model": {"widths": [8]},
            "trainer": {"max_epochs": 3, "num_threads": 1},
        },
    }
    longer = {
        "model_name": "compact",
        "config": {"seed": 1, "model": {"widths": [8]}, "trainer": {"max_epochs": 9}},
    }
    assert stats.recipe_key(base) == stats.recipe_key(other_seed)
    newer_code = {
        **other_seed,
        "config": {
            **other_seed["config"],
            "data": {"_target_": "labral.train.data.X"},
            "logger": {"tensorboard": True},
        },
    }
    older_code = {**base, "config": {**base["config"], "data": {}}}
    assert stats.recipe_key(newer_code) == stats.recipe_key(older_code)
    assert stats.recipe_key(base) != stats.recipe_key(longer)


def test_order_controls_report_copies_the_input_check_refuses() -> None:
    patients = [f"p{i}" for i in range(20)]
    original = np.full(20, 0.9)
    copies = np.full(20, 0.8)  # every copy above the threshold: the model alone says detached
    passed = np.arange(20) >= 15  # the check refuses 15 of them
    block = controls.order_control_block(original, copies, patients, 100, 0, 0.95, 0.5, passed)
    assert block["copies_detected"]["value"] == 1.0
    assert block["copies_refused"]["value"] == pytest.approx(0.75)
    assert block["copies_reported_detached"]["value"] == pytest.approx(0.25)
    unchecked = controls.order_control_block(original, copies, patients, 100, 0, 0.95, 0.5)
    assert "copies_refused" not in unchecked
