"""The self-contained report.html: matplotlib (Agg) figures embedded as base64 PNG + tables.

Readable from a file:// URL with no server and no network (no scripts, no external CSS).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from labral.bench.bootstrap import format_with_ci  # noqa: E402
from labral.bench.perturb import UNITS  # noqa: E402
from labral.bench.report import (  # noqa: E402
    checklist,
    decision_curves,
    input_check,
    sample_size,
    sections,
    subgroups,
)
from labral.metrics import reliability_bins  # noqa: E402
from labral.report_html import CSS, png, table  # noqa: E402

#: domain.md section 1: human readers on real patients, for context only.
CLINICAL_ANCHORS = (
    ("Troelsen et al., Acta Orthop 2009 (18 hips)", "MR arthrography", "sensitivity 94%, PPV 94%"),
    ("Hip Pelvis 2013 (58 hips)", "arthroscopy", "sensitivity 89.6%, PPV 100%"),
    (
        "Beijing Da Xue Xue Bao 2017 (102 patients)",
        "arthroscopy",
        "sens 65.9%, spec 81.8% (MRI 76.9% / 63.6%)",
    ),
    ("195-patient arthroscopy series", "arthroscopy", "sens 68.5%, spec 81.8% (MRI 84.8% / 63.6%)"),
    (
        "Zhang 2022 meta-analysis (22 studies, 1,670 patients)",
        "arthroscopy",
        "MR arthrography 0.89 / 0.69; MRI 0.80 / 0.77",
    ),
)
HEADLINE = (
    "auroc",
    "auprc",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "ppv_at_25",
    "npv_at_25",
    "ppv_at_50",
    "npv_at_50",
    "brier",
    "ece",
)


_ci = format_with_ci
_png, _table = png, table


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def curves_figure(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> str:
    """ROC and PR curves of every model, side by side."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, p in probabilities.items():
        if 0 < y.sum() < y.size:
            fpr, tpr, _ = roc_curve(y, p)
            roc_ax.plot(fpr, tpr, label=name)
            precision, recall, _ = precision_recall_curve(y, p)
            pr_ax.step(recall, precision, where="post", label=name)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    pr_ax.axhline(y.mean() if y.size else 0, ls=":", color="grey")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if ax.get_legend_handles_labels()[0]:  # no curves on a one-class suite (wrong inputs)
            ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=8)
    return _png(fig)


def reliability_figure(y: np.ndarray, probabilities: dict[str, np.ndarray], n_bins: int) -> str:
    """Reliability diagram (equal-width bins) of every model."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, p in probabilities.items():
        mean_p, rate, count = reliability_bins(y, p, n_bins)
        keep = count > 0
        ax.plot(mean_p[keep], rate[keep], "o-", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed positive rate",
        title=f"Reliability ({n_bins} equal-width bins)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8)
    return _png(fig)


def robustness_figure(
    robustness: dict[str, Any], clean: dict[str, float], metric: str = "auroc"
) -> str:
    """One panel per perturbation: ``metric`` vs level with CI bands, clean value dotted."""
    names = list(robustness)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.3 * rows), squeeze=False)
    flat = axes.ravel()
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(flat, names, strict=False):
        for model, points in robustness[name].items():
            levels = [pt["level"] for pt in points]
            values = [pt["metrics"][metric]["value"] for pt in points]
            low = [_nan_if_none(pt["metrics"][metric]["ci_low"]) for pt in points]
            high = [_nan_if_none(pt["metrics"][metric]["ci_high"]) for pt in points]
            line = ax.plot(levels, values, "o-", label=model)[0]
            ax.fill_between(levels, low, high, alpha=0.15, color=line.get_color())
            if model in clean:
                ax.axhline(clean[model], ls=":", color=line.get_color())
        ax.set(title=name, xlabel=UNITS.get(name, "level"), ylabel=metric, ylim=(0, 1.02))
    flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def render_report(
    results: dict[str, Any],
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    examples: dict[str, list[dict[str, Any]]] | None = None,
    source: Any = None,
    failures: Sequence[str] = (),
) -> str:
    """The whole report as one HTML string.

    Args:
        results: the results.json content. y: int (N,) labels of the suite.
        probabilities: model name -> float64 (N,) calibrated probabilities.
        examples: model name -> pointing-game examples (key frame, spatial map, mask), drawn
            over the key frames when ``source`` (the suite's :class:`ClipSource`) is given.
        failures: the failure-case section's HTML (:func:`labral.bench.failure_cases.
            html_section`; none when empty).
    """
    parts = _head(results)
    parts += sections.comparison_section(results) + sections.replicates_section(results)
    parts += sections.hip_section(results) + sections.controls_section(results)
    parts += [
        "<h2>ROC and precision-recall</h2>",
        curves_figure(y, probabilities),
        "<h2>Calibration</h2>",
        reliability_figure(y, probabilities, results["settings"]["ece_bins"]),
    ]
    parts += decision_curves.html_section(results)
    parts += _per_type_section(results) + _per_shift_section(results)
    parts += subgroups.html_section(results)
    parts += input_check.html_section(results)
    parts += _robustness_section(results) + sections.localisation_section(results)
    if examples and source is not None:
        parts += sections.key_frame_figure(examples, source)
    parts += list(failures)
    parts += sample_size.html_section(results) + checklist.html_section(results)
    parts += _speed_section(results) + _closing_sections(results)
    return "\n".join(parts)


def _head(results: dict[str, Any]) -> list[str]:
    """The document head, the suite and statistics note, and the headline metrics table."""
    names = [m["name"] for m in results["models"]]
    per_model, suite, settings = results["results"], results["suite"], results["settings"]
    return [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>labral bench: {html.escape(suite['name'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>labral benchmark: {html.escape(suite['name'])}</h1>",
        f"<p class='note'>suite hash {suite['content_hash'][:16]}..., {suite['n_clips']} clips, "
        f"{suite['n_patients']} patients; 95% CIs from a patient-level cluster bootstrap "
        f"(n={settings['bootstrap_n']}, seed {settings['bootstrap_seed']}); "
        f"ECE with {settings['ece_bins']} equal-width bins; thresholds are each "
        f"bundle's own.</p>",
        "<h2>Models side by side</h2>",
        _table(
            ["metric", *names],
            [[m, *(_ci(per_model[n]["overall"][m]) for n in names)] for m in HEADLINE],
        ),
    ]


def _per_type_section(results: dict[str, Any]) -> list[str]:
    """Specificity and AUROC against each hard-negative type (nothing without types)."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    types = sorted({t for n in names for t in per_model[n]["per_type"]})
    if not types:
        return []
    rows = [
        [
            t,
            per_model[names[0]]["per_type"][t]["n"],
            *(
                f"{_ci(per_model[n]['per_type'][t]['specificity'])} / "
                f"{_ci(per_model[n]['per_type'][t]['auroc'])}"
                for n in names
            ),
        ]
        for t in types
    ]
    return [
        "<h2>Per hard-negative type</h2>",
        "<p class='note'>specificity on that type / AUROC of all positives vs that type</p>",
        _table(["type", "n", *names], rows),
    ]


def _per_shift_section(results: dict[str, Any]) -> list[str]:
    """AUROC per suite part (shift setting or generator level; nothing without parts)."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    shifts = sorted({s for n in names for s in per_model[n]["per_shift"]})
    if not shifts:
        return []
    rows = [
        [
            s,
            per_model[names[0]]["per_shift"][s]["n"],
            *(_ci(per_model[n]["per_shift"][s]["auroc"]) for n in names),
        ]
        for s in shifts
    ]
    return ["<h2>Per shift setting (AUROC)</h2>", _table(["setting", "n", *names], rows)]


def _robustness_section(results: dict[str, Any]) -> list[str]:
    """The robustness figure (nothing without a sweep)."""
    if not results.get("robustness"):
        return []
    names = [m["name"] for m in results["models"]]
    clean = {n: results["results"][n]["overall"]["auroc"]["value"] for n in names}
    return [
        "<h2>Robustness (AUROC vs perturbation level; dotted = clean)</h2>",
        robustness_figure(results["robustness"], clean),
    ]


def _speed_section(results: dict[str, Any]) -> list[str]:
    """Throughput and latency of every model, and the machine they were measured on."""
    speed, hw = results["speed"], results["hardware"]
    rows = [
        [
            m["name"],
            f"{speed[m['name']]['clips_per_s']:.2f}",
            f"{speed[m['name']]['model_clips_per_s']:.2f}",
            f"{speed[m['name']]['latency_ms_median']:.1f}",
        ]
        for m in results["models"]
    ]
    header = [
        "model",
        "clips/s (whole pass, all models)",
        "clips/s (model only)",
        "latency ms/clip (median, end to end)",
    ]
    return [
        "<h2>Speed</h2>",
        _table(header, rows),
        f"<p class='note'>{html.escape(hw['cpu_model'])}, {hw['cpu_count']} cores, "
        f"torch {html.escape(hw['torch'])} with {hw['torch_threads']} threads, "
        f"{html.escape(hw['platform'])}</p>",
    ]


def _closing_sections(results: dict[str, Any]) -> list[str]:
    """Clinical anchors, the training overlap, the models' identities, the document end."""
    return [
        "<h2>Clinical anchors (context only)</h2>",
        "<p class='note'>Human readers on real patients (domain.md section 1); a synthetic "
        "benchmark cannot be compared number for number.</p>",
        _table(["study", "reference", "ultrasound"], CLINICAL_ANCHORS),
        *sections.overlap_section(results),
        "<h2>Models</h2>",
        _table(
            ["name", "sha256", "threshold", "temperature"],
            [[m["name"], m["sha256"], m["threshold"], m["temperature"]] for m in results["models"]],
        ),
        "</body></html>",
    ]
