"""The report's sections on what separates models: hips, order controls, localisation
against its nulls (with the spatial maps drawn on key frames), paired tests, replicates and
the patient-overlap check. Each function returns HTML parts for :func:`report.render_report`.
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from labral.bench.bootstrap import format_with_ci as _ci  # noqa: E402
from labral.datasets.transforms.clip_ops import resize_frames  # noqa: E402
from labral.report_html import png, table  # noqa: E402


def _p(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4f}"


def hip_section(results: dict[str, Any]) -> list[str]:
    """Hip-level AUROC / sensitivity / specificity per rule, overall and per part."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    first = per_model[names[0]].get("hip_level")
    if not first:
        return [
            "<h2>Hip level</h2><p class='note'>The suite's rows carry no hip and "
            "hip_label, so no hip-level result.</p>"
        ]
    rows = []
    for rule in first["rules"]:
        for metric in first["rules"][rule]:
            rows.append(
                [
                    rule,
                    metric,
                    *(_ci(per_model[n]["hip_level"]["rules"][rule][metric]) for n in names),
                ]
            )
    parts = [
        "<h2>Hip level</h2>",
        f"<p class='note'>{first['n_hips']} hips ({first['n_detached']} detached). A hip's "
        "probability is the max (or the mean) of its clips'; its decision that probability at "
        "the bundle's threshold; its truth whether it is detached. CIs resample patients.</p>",
        table(["rule", "metric", *names], rows),
    ]
    shifts = sorted(per_model[names[0]].get("per_shift", {}))
    if shifts:
        rows = [
            [
                s,
                *(
                    _ci(
                        ((per_model[n]["per_shift"][s].get("hip_level") or {}).get("rules") or {})
                        .get("max", {})
                        .get("auroc")
                    )
                    for n in names
                ),
            ]
            for s in shifts
        ]
        parts += ["<h3>Hip-level AUROC (max rule) per part</h3>", table(["part", *names], rows)]
    return parts


def controls_section(results: dict[str, Any]) -> list[str]:
    """Order sensitivity and the probability drop of every model and control."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    if not per_model[names[0]].get("order_controls"):
        return []
    rows = []
    for control, entry in per_model[names[0]]["order_controls"].items():
        parts_ = ["overall", *sorted(entry["per_shift"])]
        for part in parts_:
            cells = []
            for n in names:
                block = per_model[n]["order_controls"][control]
                block = block["overall"] if part == "overall" else block["per_shift"][part]
                cell = f"{_ci(block['order_sensitivity'])} / {_ci(block['mean_probability_drop'])}"
                for key in ("copies_detected", "copies_refused", "copies_reported_detached"):
                    if key in block:
                        cell += f" / {_ci(block[key])}"
                cells.append(cell)
            rows.append([control, part, *cells])
    return [
        "<h2>Order controls</h2>",
        "<p class='note'>Every positive scored again time-reversed, frame-shuffled and "
        "motionless (its middle frame repeated). "
        "Order sensitivity = AUROC of the positives against their own altered copies (0.5: "
        "order ignored); then the mean drop in probability; then the share of copies "
        "decided detached at the bundle's threshold; with an input check, the share it "
        "refuses and the share a clinician is shown as detached (scored and decided "
        "detached).</p>",
        table(["control", "part", *names], rows),
    ]


def localisation_section(results: dict[str, Any]) -> list[str]:
    """Temporal hit rate beside chance and the velocity null; the pointing game."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    rows = []
    for n in names:
        loc = per_model[n]["localisation"]
        null = loc.get("velocity_null")
        rows.append(
            [
                n,
                _ci(loc),
                f"{loc['chance']:.3f}",
                _ci(null) if null else "n/a",
                _ci(loc.get("vs_velocity_null")) if null else "n/a",
                loc["n"],
            ]
        )
    tol = per_model[names[0]]["localisation"]["tolerance_frames"]
    parts = [
        f"<h2>Temporal localisation (relevance peak within +-{tol} frame of the extrusion)</h2>",
        "<p class='note'>Velocity null: relevance = the positive part of the femur's loading "
        "velocity from the generator's traces, no image. A model localises the extrusion "
        "itself only where model - null excludes 0.</p>",
        table(
            ["model", "hit rate", "uniform chance", "velocity null", "model - null", "positives"],
            rows,
        ),
    ]
    pointing = [(n, per_model[n]["localisation"].get("pointing_game")) for n in names]
    if any(p for _, p in pointing):
        rows = [[n, _ci(p), f"{p['chance']:.3f}", p["n"]] for n, p in pointing if p]
        parts += [
            "<h3>Spatial: pointing game on the key frame</h3>",
            "<p class='note'>Hit: the maximum of the spatial map (|d logit / d image|, the "
            "service's spatial map) on the frame with the largest extrusion lies in the "
            "extrusion mask; chance = the mask's share of the frame.</p>",
            table(["model", "hit rate", "chance", "positives"], rows),
        ]
    return parts


def key_frame_figure(examples: dict[str, list[dict[str, Any]]], source: Any) -> list[str]:
    """Each model's spatial map over the key frames of up to 3 positives (mask outlined)."""
    models = [n for n, ex in examples.items() if ex]
    if not models:
        return []
    cols = max(len(examples[n]) for n in models)
    fig, axes = plt.subplots(
        len(models), cols, figsize=(2.6 * cols, 2.7 * len(models)), squeeze=False
    )
    for row, name in enumerate(models):
        for col in range(cols):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(examples[name]):
                continue
            ex = examples[name][col]
            frame = source.get(ex["clip"]).frames[ex["frame"]]
            h, w = ex["map"].shape
            image = resize_frames(frame[None], (h, w))[0]
            ax.imshow(image, cmap="gray")
            ax.imshow(ex["map"], cmap="inferno", alpha=0.45)
            ax.contour(ex["mask"].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
            peak = np.unravel_index(int(np.argmax(ex["map"])), ex["map"].shape)
            ax.plot(peak[1], peak[0], "x", color="lime", ms=7)
            ax.set_title(f"{name}\nclip {ex['clip']}, frame {ex['frame']}", fontsize=7)
    fig.tight_layout()
    return [
        "<h3>Spatial maps on key frames</h3>",
        "<p class='note'>Spatial map (orange) over the key frame at model input size, the "
        "extrusion mask outlined in cyan, the map's maximum marked x.</p>",
        png(fig),
    ]


def comparison_section(results: dict[str, Any]) -> list[str]:
    """Paired tests of the AUROC difference: bootstrap and DeLong, overall and per part."""
    rows = []
    for c in results.get("comparisons", []):
        for part, block in [("overall", c), *sorted(c.get("per_shift", {}).items())]:
            d = block["delong"]
            rows.append(
                [
                    c["a"],
                    c["b"],
                    part,
                    _ci(block),
                    _p(block.get("p_value")),
                    f"{d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
                    if np.isfinite(d.get("ci_low", np.nan))
                    else "n/a",
                    _p(d.get("p_value")),
                ]
            )
    if not rows:
        return []
    return [
        "<h3>Paired tests of the AUROC difference</h3>",
        "<p class='note'>Paired patient bootstrap (clustered by patient) and DeLong's test "
        "(clips as independent), a - b.</p>",
        table(["a", "b", "part", "bootstrap [95% CI]", "p", "DeLong [95% CI]", "p"], rows),
    ]


def replicates_section(results: dict[str, Any]) -> list[str]:
    """Mean +- SD of AUROC over bundles of one recipe trained with other seeds."""
    rows = []
    for entry in results.get("replicates", {}).values():
        spread = entry["auroc"]
        rows.append(
            [
                ", ".join(entry["models"]),
                "overall",
                f"{spread['mean']:.3f} +- {spread['sd']:.3f} (n={spread['n']})",
            ]
        )
        for part, sp in sorted(entry["per_shift"].items()):
            rows.append(["", part, f"{sp['mean']:.3f} +- {sp['sd']:.3f} (n={sp['n']})"])
    if not rows:
        return []
    return [
        "<h3>Replicates of one recipe (AUROC mean +- SD over seeds)</h3>",
        table(["bundles", "part", "AUROC"], rows),
    ]


def overlap_section(results: dict[str, Any]) -> list[str]:
    """Which training patients the suite held, per bundle, and what was done."""
    overlap = results.get("overlap") or {}
    rows = [
        [
            name,
            "yes" if e["checked"] else f"no: {e['note']}",
            e.get("clips", ""),
            e.get("patients", ""),
        ]
        for name, e in (overlap.get("per_model") or {}).items()
    ]
    text = html.escape(str(overlap.get("mode", "")))
    parts = [f"<h3>Training patients in the suite</h3><p class='note'>rule: {text}"]
    if overlap.get("excluded_clips"):
        parts[0] += f"; {overlap['excluded_clips']} clips left out"
    parts[0] += "</p>"
    if rows:
        parts.append(table(["model", "checked", "clips seen in training", "patients"], rows))
    return parts
