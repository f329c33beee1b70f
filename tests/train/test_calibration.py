"""Temperature scaling and threshold rules (binary_metrics is tested in tests/test_metrics.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from labral.errors import BadConfigError
from labral.metrics import binary_metrics
from labral.scoring import calibrated_probability
from labral.train.calibration import choose_threshold, fit_temperature


def overconfident_sample(n: int = 2000, scale: float = 4.0, seed: int = 0):
    """Labels drawn from sigmoid(z), logits reported as scale * z (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return scale * z, labels


def test_temperature_scaling_recovers_scale_and_reduces_nll():
    logits, labels = overconfident_sample()
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(4.0, rel=0.15)
    before = binary_metrics(labels, calibrated_probability(logits, 1.0))["nll"]
    after = binary_metrics(labels, calibrated_probability(logits, temperature))["nll"]
    assert after < before - 0.1


def test_temperature_of_calibrated_logits_stays_near_one():
    logits, labels = overconfident_sample(scale=1.0, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.15)


def test_sensitivity_rule_keeps_target_with_the_best_specificity():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 301)
    probs = np.clip(0.3 * labels + rng.random(301) * 0.7, 0, 1)
    threshold = choose_threshold(probs, labels, {"name": "sensitivity", "target": 0.9})
    metrics = binary_metrics(labels, probs, threshold)
    assert metrics["sensitivity"] >= 0.9
    # no threshold that keeps the target has a higher specificity
    best_spec = max(
        binary_metrics(labels, probs, t)["specificity"]
        for t in np.unique(probs)
        if binary_metrics(labels, probs, t)["sensitivity"] >= 0.9
    )
    assert metrics["specificity"] == pytest.approx(best_spec)


def test_sensitivity_rule_sits_in_the_gap_of_separated_scores():
    # perfectly separated, saturated scores: the threshold must fall between the classes,
    # not on the 90th-percentile positive (which would cost sensitivity on new data)
    probs = np.array([0.01, 0.02, 0.05, 0.9, 0.99, 0.999, 0.9999, 0.99999])
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    threshold = choose_threshold(probs, labels, {"name": "sensitivity", "target": 0.9})
    assert 0.05 < threshold < 0.9
    expected = 1 / (1 + np.exp(-(np.log(0.05 / 0.95) + np.log(0.9 / 0.1)) / 2))
    assert threshold == pytest.approx(expected)


def test_youden_and_fixed_rules():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])
    assert choose_threshold(probs, labels, {"name": "youden"}) == pytest.approx(0.4)
    assert choose_threshold(probs, labels, {"name": "fixed", "value": 0.3}) == 0.3
    with pytest.raises(BadConfigError, match="threshold_rule.name"):
        choose_threshold(probs, labels, {"name": "magic"})


def test_uninformative_logits_hit_the_upper_bound_not_infinity():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 400)
    logits = rng.normal(0, 3, 400)  # independent of the labels
    assert fit_temperature(logits, labels, max_temperature=50.0) == pytest.approx(50.0)
