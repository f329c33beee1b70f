"""report.html of ``labral bench predictions=...``: the bundle report's sections that apply
to saved predictions (no speed, localisation, order controls or robustness), plus per fold
and the input check's refusals when the CSVs carry its verdicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labral.bench.bootstrap import format_with_ci as _ci
from labral.bench.report import html_report as report
from labral.bench.report import input_check
from labral.bench.report import sections as report_sections
from labral.report_html import CSS, table

#: The threshold metrics reported again at each row's own (its fold's) threshold.
THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv")


def _grid(
    first: str, keys: Sequence[str], names: list[str], block: Callable[[str, str], Any]
) -> str:
    """A table: one row per key, one column per model, ``block(name, key)`` formatted."""
    rows = [[k, *(_ci(block(n, k)) for n in names)] for k in keys]
    return table([first, *names], rows)


def render(results: dict[str, Any], y: np.ndarray, probabilities: dict[str, np.ndarray]) -> str:
    """report.html of saved predictions: the bundle report's sections that apply."""
    names = [m["name"] for m in results["models"]]
    per_model, s, suite = results["results"], results["settings"], results["suite"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>labral bench: saved predictions"
        f"</title><style>{CSS}</style></head><body><h1>labral benchmark: saved predictions"
        f"</h1><p class='note'>{suite['n_clips']} clips, {suite['n_patients']} patients, no model "
        f"run; {s['ci_level']:.0%} CIs from a patient-level cluster bootstrap (n={s['bootstrap_n']}"
        f", seed {s['bootstrap_seed']}); {s['threshold_rule']}</p><h2>Models side by side</h2>",
        _grid("metric", report.HEADLINE, names, lambda n, k: per_model[n]["overall"][k]),
    ]
    own = [n for n in names if per_model[n].get("at_row_thresholds")]
    if own:
        parts += [
            "<h3>At each row's own (fold's) threshold</h3>",
            _grid(
                "metric", THRESHOLD_METRICS, own, lambda n, k: per_model[n]["at_row_thresholds"][k]
            ),
        ]
    folds = list(dict.fromkeys(f for n in names for f in per_model[n]["per_fold"]))
    if folds:
        get = lambda n, f: per_model[n]["per_fold"].get(f, {}).get("auroc")  # noqa: E731
        parts += ["<h2>Per fold (AUROC)</h2>", _grid("fold", folds, names, get)]
    parts += report_sections.comparison_section(results) + report_sections.hip_section(results)
    parts += ["<h2>ROC and precision-recall</h2>", report.curves_figure(y, probabilities)]
    parts += ["<h2>Calibration</h2>", report.reliability_figure(y, probabilities, s["ece_bins"])]
    parts += input_check.html_section(results)
    rows = [[m["name"], m["path"], m["sha256"], m["thresholds"]] for m in results["models"]]
    parts += ["<h2>Predictions</h2>", table(["name", "CSV", "sha256", "thresholds"], rows)]
    return "\n".join([*parts, "</body></html>"])
