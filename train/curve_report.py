"""The learning curve's figure (``curve.png``) and report (``curve.html``) from its payload."""

from __future__ import annotations

import html
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from labral.report_html import CSS, png, table  # noqa: E402
from labral.train.settings import CurveSettings  # noqa: E402

PLOT_NAME, REPORT_NAME = "curve.png", "curve.html"


def title(settings: CurveSettings) -> str:
    """The target domain in words: its level and every shifted generator value."""
    target, source = settings.target, settings.source
    shifts = ", ".join(f"{k}={v}" for k, v in target.overrides.items())
    return f"target: {target.difficulty} level, {shifts}; pretraining: {source.difficulty}"


def figure(summary: dict[str, Any], caption: str) -> plt.Figure:
    """AUROC mean +/- sd against hips (log x, a tick per size), one line per arm, chance 0.5."""
    fig, axes = plt.subplots(figsize=(6, 4), dpi=120)
    sizes: set[int] = set()
    lowest = 0.5
    for arm, cells in summary.items():
        hips = sorted(int(h) for h in cells if cells[h]["mean"] is not None)
        means = [cells[str(h)]["mean"] for h in hips]
        sds = [cells[str(h)]["sd"] for h in hips]
        axes.errorbar(hips, means, yerr=sds, marker="o", capsize=3, label=arm)
        sizes.update(hips)
        lowest = min([lowest, *(m - s for m, s in zip(means, sds, strict=True))])
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes.set_xscale("log", base=2)
    axes.set_xticks(sorted(sizes), [str(h) for h in sorted(sizes)])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("labelled target hips")
    axes.set_ylabel("target test AUROC (mean ± sd over seeds)")
    axes.set_ylim(min(0.3, lowest - 0.05), 1.0)
    axes.set_title("\n".join(textwrap.wrap(caption, 70)), fontsize=8)
    axes.legend()
    fig.tight_layout()
    return fig


def _cell(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("mean") is None:
        return "n/a"
    return f"{cell['mean']:.3f} ± {cell['sd']:.3f} (n={cell['n']})"


def write_figures(
    payload: dict[str, Any], settings: CurveSettings, png_path: Path, html_path: Path
) -> None:
    """Write ``curve.png`` and ``curve.html`` (figure, AUROC table, goal, timings)."""
    summary, caption = payload["summary"], title(settings)
    figure(summary, caption).savefig(png_path)
    plt.close("all")
    sizes = sorted({int(h) for cells in summary.values() for h in cells})
    rows = [[arm, *(_cell(cells.get(str(n))) for n in sizes)] for arm, cells in summary.items()]
    goal = payload.get("goal")
    verdict = (
        "not run"
        if goal is None
        else f"synthetic at {goal['synthetic']} hips {goal['synthetic_auroc']:.3f} vs scratch "
        f"at {goal['scratch']} hips {goal['scratch_auroc']:.3f}: "
        + ("met" if goal["met"] else "not met")
    )
    pretrain = payload.get("pretrain", {})
    body = [
        "<h1>labral learning curve</h1>",
        f"<p>{html.escape(caption)}</p>",
        png(figure(summary, caption)),
        "<h2>Target test AUROC, mean ± sd over seeds</h2>",
        table(["arm", *(f"{n} hips" for n in sizes)], rows),
        f"<p>Goal: {html.escape(verdict)}</p>",
        f"<p>Pretraining: in-domain test AUROC {pretrain.get('test_auroc')}, "
        f"{pretrain.get('seconds', 0):.0f} s; whole curve "
        f"{payload.get('seconds', 0) / 60:.1f} min, {len(payload.get('points', []))} runs.</p>",
    ]
    html_path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>labral curve</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
