"""How many patients (and hips) a study needs for a target CI width, from this run's CIs.

A bootstrap interval's width shrinks as one over the square root of the number of
independent units (patients: the bootstrap resamples them), so a study with the same case
mix, prevalence and model needs::

    n_needed = n_now * (width_now / width_target) ** 2

units for a full width of ``width_target`` (:func:`needed`, the one statement). ``width_now``
is the width of the run's patient-bootstrap interval (``ci_high - ci_low``), ``n_now`` its
patients (clip-level metrics) or hips (hip level, max rule; the hips' patients are given
too). It is an extrapolation: a metric near 0 or 1, or a suite with few patients, makes it
rough; a metric without an interval ("not estimable") has no answer.
"""

from __future__ import annotations

import math
from typing import Any

#: Full widths of the 95% CI a study is sized for.
TARGET_WIDTHS = (0.10, 0.05)
#: The metrics sized, at clip level (overall) and hip level (max rule).
SIZED_METRICS = ("auroc", "sensitivity", "specificity")


def needed(n_now: int, width_now: float, width_target: float) -> int:
    """Units needed for a CI of full width ``width_target``: ``ceil(n_now * (width_now /
    width_target) ** 2)`` (rounded to 6 decimals first, so 0.9 - 0.7 counts as 0.2)."""
    return math.ceil(round(n_now * (width_now / width_target) ** 2, 6))


def _width(block: dict[str, Any] | None) -> float | None:
    """``ci_high - ci_low`` of a metric block; None without a finite interval."""
    low, high = (block or {}).get("ci_low"), (block or {}).get("ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return float(high - low)


def _row(level: str, metric: str, block: dict[str, Any] | None, units: dict[str, int]) -> dict:
    """One metric's sizing: its width now and, per target, each unit's count needed."""
    width = _width(block)
    row: dict[str, Any] = {"level": level, "metric": metric, "width_now": width, "n_now": units}
    row["needed"] = {
        f"{target:g}": (
            {unit: needed(n, width, target) for unit, n in units.items()}
            if width is not None and width > 0
            else None
        )
        for target in TARGET_WIDTHS
    }
    if width is None:
        row["note"] = (block or {}).get("ci_note") or "no interval"
    elif width == 0:
        row["note"] = "zero-width interval (a ceiling): no extrapolation"
    return row


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The top-level ``sample_size`` block: per model, rows of :func:`_row`.

    Returns:
        ``{"target_widths", "ci_level", "per_model": {model: [{"level", "metric",
        "width_now", "n_now": {unit: n}, "needed": {target: {unit: n} | None}[, "note"]}]}}``.
    """
    per_model = {}
    for model in results["models"]:
        block = results["results"][model["name"]]
        patients = {"patients": int(block["n_patients"])}
        rows = [_row("clip", m, block["overall"].get(m), patients) for m in SIZED_METRICS]
        hip = block.get("hip_level")
        if hip:
            units = {"hips": int(hip["n_hips"]), **patients}
            rules = hip["rules"]["max"]
            rows += [_row("hip (max rule)", m, rules.get(m), units) for m in SIZED_METRICS]
        per_model[model["name"]] = rows
    return {
        "target_widths": list(TARGET_WIDTHS),
        "ci_level": results["settings"].get("ci_level"),
        "per_model": per_model,
    }
