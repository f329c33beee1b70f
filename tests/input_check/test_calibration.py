"""Calibration holds the false-refusal budget in every difficulty level, not only pooled.

The measurements are made up (no view network runs): 200 clips of a narrow level and 40 of
a wide one, as the run's easy validation clips outnumber the generated hard ones.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from labral.input_check.check import InputCheck, Measurement
from labral.input_check.fit import MIN_GROUP, calibrate
from labral.input_check.settings import InputCheckSettings
from tests.helpers.input_check import RULES, rule_check

STATS = {
    "duration_s": 2.0,
    "intensity_std": 0.3,
    "saturated_fraction": 0.0,
    "repeated_fraction": 0.0,
    "structure": 0.9,
    "motion": 1.0,
}


class _Measured(InputCheck):
    """A check whose measurements are given (``features`` are indices into them)."""

    def __init__(self, measurements: list[Measurement]) -> None:
        base = rule_check()
        super().__init__(base.view_net, replace(RULES), base.ood_mean, base.ood_precision)
        self.measurements = measurements

    def measure_features(self, measured):  # noqa: ANN001, ANN201 - the test's stand-in
        return [self.measurements[i] for i in measured]


def _clips() -> tuple[list[Measurement], list[str]]:
    rng = np.random.default_rng(0)
    narrow = [Measurement(STATS, float(v), 1.0) for v in rng.normal(0.0, 1.0, 200)]
    wide = [Measurement(STATS, float(v), 1.0) for v in rng.normal(0.0, 4.0, 40)]
    return narrow + wide, ["easy"] * 200 + ["hard"] * 40


def _refused(check: InputCheck, measurements: list[Measurement], groups: list[str], level: str):
    picked = [m for m, g in zip(measurements, groups, strict=True) if g == level]
    return np.mean([not check.verdict_of(m).assessable for m in picked])


def test_every_level_keeps_the_budget_where_the_pool_alone_would_not() -> None:
    measurements, groups = _clips()
    settings = InputCheckSettings(false_refusal=0.02, margin=0.0, cache_dir=None)
    index = list(range(len(measurements)))

    pooled = _Measured(measurements)
    calibrate(pooled, index, settings)
    assert _refused(pooled, measurements, groups, "hard") > 0.02  # the wide level pays

    per_level = _Measured(measurements)
    result = calibrate(per_level, index, settings, groups)
    assert set(result["per_group"]) == {"easy", "hard"} and MIN_GROUP <= 40
    for level in ("easy", "hard"):
        assert _refused(per_level, measurements, groups, level) <= 0.02
        assert result["per_group"][level] == _refused(per_level, measurements, groups, level)


def test_a_level_of_a_hundred_clips_gets_its_own_budget_not_the_pooled_one() -> None:
    # four levels of 100 clips alike: with the pooled 1% as every level's limit, one refused
    # clip more in any level drives the thresholds past every valid clip
    rng = np.random.default_rng(1)
    measurements = [Measurement(STATS, float(v), 1.0) for v in rng.normal(0.0, 1.0, 400)]
    groups = [level for level in ("easy", "medium", "hard", "expert") for _ in range(100)]
    index = list(range(len(measurements)))
    strict = InputCheckSettings(margin=0.0, group_false_refusal=0.01, cache_dir=None)
    collapsed = calibrate(_Measured(measurements), index, strict, groups)
    per_level = _Measured(measurements)
    result = calibrate(per_level, index, InputCheckSettings(margin=0.0, cache_dir=None), groups)
    assert result["level"] > collapsed["level"]
    assert 0.0 < result["false_refusal"] <= 0.01  # the pooled budget used, not abandoned
    assert max(result["per_group"].values()) <= 0.02
