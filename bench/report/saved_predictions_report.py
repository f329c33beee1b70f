"""report.html of ``labral bench predictions=...``: the bundle report's sections that apply
to saved predictions (no speed, localisation, order controls or robustness), plus per fold
and the input check's refusals when the CSVs carry its verdicts.

The issue-25 sections come as in a bundle report: decision curves, subgroups (the grouping
columns the CSV carries), sample size and the TRIPOD+AI / CLAIM checklist; the failure cases
are a table of facts only (a CSV holds no frames and no relevance)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labral.bench import failure_cases
from labral.bench.bootstrap import format_with_ci as _ci
from labral.bench.report import (
    checklist,
    decision_curves,
    input_check,
    sample_size,
    subgroups,
)
from labral.bench.report import html_report as report
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


def failure_table(results: dict[str, Any], rows: Sequence[dict[str, str]], top: int) -> list[str]:
    """The first model's failure cases as a table (no frames: a CSV holds none).

    Args:
        rows: one per clip, in predictions.csv's columns for that model (``label``,
            ``patient``, ``p_<model>``, ``decision_<model>``, ``status_<model>``, ``fold``).
        top: cases of each kind (0: no section).
    """
    if not top:
        return []
    entry, salt = results["models"][0], results["suite"]["content_hash"]
    name = entry["name"]
    body = []
    for kind, indices in failure_cases.failures(rows, name, top).items():
        body += [
            [
                failure_cases.KINDS[kind],
                rank,
                failure_cases.pseudonym(rows[i]["patient"], salt),
                rows[i].get("fold") or "-",
                f"{float(rows[i][f'p_{name}']):.3f}",
            ]
            for rank, i in enumerate(indices, 1)
        ]
    note = (
        f"The most confident errors of {name} at threshold {entry['threshold']:.3f}: false "
        "positives highest probability first, false negatives lowest first; patients as "
        "pseudonyms. Saved predictions carry no frames or relevance: no key frames or maps."
    )
    return [
        "<h2>Failure cases</h2>",
        f"<p class='note'>{html.escape(note)}</p>",
        table(["kind", "#", "patient", "fold", "probability"], body)
        if body
        else "<p class='note'>None at this threshold.</p>",
    ]


def render(
    results: dict[str, Any],
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    failures: Sequence[str] = (),
) -> str:
    """report.html of saved predictions: the bundle report's sections that apply.

    Args:
        y: int (N,) labels. probabilities: model name -> float (N,) its probabilities.
        failures: the failure-case section (:func:`failure_table`).
    """
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
    parts += decision_curves.html_section(results) + subgroups.html_section(results)
    parts += input_check.html_section(results) + list(failures)
    parts += sample_size.html_section(results) + checklist.html_section(results)
    rows = [[m["name"], m["path"], m["sha256"], m["thresholds"]] for m in results["models"]]
    parts += ["<h2>Predictions</h2>", table(["name", "CSV", "sha256", "thresholds"], rows)]
    return "\n".join([*parts, "</body></html>"])
