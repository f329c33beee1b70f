"""The sample-size table of report.html and of the Markdown tables
(:mod:`labral.bench.sample_size`)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from labral.bench import sample_size
from labral.report_html import table

TITLE = "Sample size for a target CI width"
NOTE = (
    "Units a study with this case mix, prevalence and model would need for a 95% CI of the "
    "given full width: n_now x (width_now / width_target)^2, from this run's patient-bootstrap "
    "intervals. An extrapolation; rough near 0 or 1 and on small suites."
)


def _needed(entry: dict[str, int] | None) -> str:
    """``"420 hips / 210 patients"``, or ``"n/a"``."""
    return " / ".join(f"{n} {unit}" for unit, n in entry.items()) if entry else "n/a"


def _width(row: dict[str, Any]) -> str:
    """The width now, with the reason where no count follows (no or zero-width interval)."""
    text = "n/a" if row["width_now"] is None else f"{row['width_now']:.3f}"
    return f"{text} ({row['note']})" if row.get("note") else text


def table_rows(block: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ``sample_size`` block (one row per model, level and metric)."""
    targets = [f"{t:g}" for t in block["target_widths"]]
    header = ["model", "level", "metric", "width now", "n now", *(f"width {t}" for t in targets)]
    rows = [
        [
            name,
            row["level"],
            row["metric"],
            _width(row),
            _needed(row["n_now"]),
            *(_needed(row["needed"][t]) for t in targets),
        ]
        for name, model_rows in block["per_model"].items()
        for row in model_rows
    ]
    return header, rows


def html_section(results: dict[str, Any]) -> list[str]:
    """The report's sample-size section."""
    header, rows = table_rows(results.get("sample_size") or sample_size.summary(results))
    return [f"<h2>{TITLE}</h2>", f"<p class='note'>{html.escape(NOTE)}</p>", table(header, rows)]


def markdown_section(
    results: dict[str, Any], labels: dict[str, str], row: Callable[[Sequence[Any]], str]
) -> list[str]:
    """The Markdown table of results.json's ``sample_size`` block (``row``: the Markdown row
    maker); nothing for a results.json written before the block existed."""
    if not results.get("sample_size"):
        return []
    header, rows = table_rows(results["sample_size"])
    rows = [[labels.get(r[0], r[0]), *r[1:]] for r in rows]
    return [f"{TITLE} (95% CI full width):", "", row(header), row(["---"] * len(header))] + [
        *(row(r) for r in rows),
        "",
    ]
