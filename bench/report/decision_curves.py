"""The decision-curve section of report.html and of the Markdown tables.

The figure is one panel per level (clips, hips) and prevalence (the suite's, then each of
``prevalence=[...]``): every model's net benefit against the threshold probability, treat
all, treat none and the published tests' operating points. It is embedded as an SVG data
URI (self-contained like the report's PNGs; vector, so it prints sharply to PDF).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from labral.bench import decision_curves as dc  # noqa: E402
from labral.report_html import table  # noqa: E402

#: Line styles of the strategies that are not models.
STYLES = {dc.TREAT_ALL: ("grey", "--"), dc.TREAT_NONE: ("black", ":")}
REFERENCE_MARKERS = ("s", "^")

TITLE = "Decision curves (net benefit against threshold probability)"
NOTE = (
    "Net benefit = sensitivity x p - (1 - specificity) x (1 - p) x t / (1 - t), per case, at "
    "prevalence p and threshold probability t (the risk at which referral and no referral are "
    "equally acceptable). A model helps at t where its curve lies above both treat all and "
    "treat none. Published tests (ultrasound readers 0.66 / 0.82, MR arthrography 0.89 / "
    "0.69) are fixed operating points drawn with the same formula. Hips: max rule."
)


def svg(fig: plt.Figure) -> str:
    """The figure as an inline ``<img>`` (SVG, base64 data URI); closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="decision curves" src="data:image/svg+xml;base64,{encoded}">'


def _panels(results: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(level, prevalence source, prevalence) of every panel with both classes present."""
    names = [m["name"] for m in results["models"]]
    first = results["results"][names[0]].get("decision_curve") or {}
    user = results.get("settings", {}).get("prevalence", [])
    out = []
    for level in dc.LEVELS:
        points = first.get(level)
        if points and 0 < points["n_positive"] < points["n"]:
            out += [(level, "suite", points["prevalence"])]
            out += [(level, "user", float(p)) for p in user]
    return out


def figure(results: dict[str, Any]) -> str:
    """Every panel of :func:`_panels` side by side (rows: levels)."""
    names = [m["name"] for m in results["models"]]
    panels = _panels(results)
    cols = max(sum(1 for p in panels if p[0] == level) for level in dc.LEVELS)
    rows = len({p[0] for p in panels})
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    t = np.asarray(dc.THRESHOLDS)
    levels = sorted({p[0] for p in panels}, key=dc.LEVELS.index)
    for level, source, prevalence in panels:
        row = levels.index(level)
        col = [p for p in panels if p[0] == level].index((level, source, prevalence))
        ax = axes[row, col]
        ax.set_visible(True)
        for name in names:
            points = results["results"][name]["decision_curve"][level]
            ax.plot(t, dc.curves(points, prevalence)["model"], label=name)
        shared = dc.curves(results["results"][names[0]]["decision_curve"][level], prevalence)
        for strategy, (color, style) in STYLES.items():
            ax.plot(t, shared[strategy], style, color=color, label=strategy)
        for marker, name in zip(REFERENCE_MARKERS, dc.REFERENCE_TESTS, strict=True):
            ax.plot(t[4::10], shared[name][4::10], marker, ms=4, ls="-", lw=0.7, label=name)
        ax.set(
            xlabel="threshold probability",
            ylabel="net benefit",
            title=f"{level}s, prevalence {prevalence:.2f} ({source})",
            xlim=(0, 1),
            ylim=(-0.05, max(prevalence, 0.05) * 1.1),
        )
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return svg(fig)


def table_rows(block: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the net-benefit table from the ``decision_curves`` block."""
    header = ["level", "prevalence", "strategy", *(f"t = {t:g}" for t in block["thresholds"])]
    rows = [
        [
            row["level"],
            f"{row['prevalence']:.3f} ({row['prevalence_source']})",
            row["strategy"],
            *(f"{v:.3f}" for v in row["net_benefit"]),
        ]
        for row in block["rows"]
    ]
    return header, rows


def html_section(results: dict[str, Any]) -> list[str]:
    """The report's decision-curve section (a note where no level has both classes)."""
    block = results.get("decision_curves") or dc.summary(results)
    if not block["rows"]:
        return [
            f"<h2>{TITLE}</h2>",
            "<p class='note'>Not drawn: the suite has a single class at every level.</p>",
        ]
    return [f"<h2>{TITLE}</h2>", f"<p class='note'>{html.escape(NOTE)}</p>"] + [
        figure(results),
        table(*table_rows(block)),
    ]


def markdown_section(results: dict[str, Any], labels: dict[str, str], row: Any) -> Sequence[str]:
    """The Markdown table of results.json's ``decision_curves`` block (``row``: the Markdown
    row maker); nothing for a results.json written before the block existed."""
    block = results.get("decision_curves")
    if not block or not block["rows"]:
        return []
    header, rows = table_rows(block)
    rows = [[*r[:2], labels.get(r[2], r[2]), *r[3:]] for r in rows]
    return [
        "Decision curves (net benefit per case at threshold probability t):",
        "",
        row(header),
        row(["---"] * len(header)),
        *(row(r) for r in rows),
        "",
    ]
