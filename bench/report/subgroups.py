"""The subgroup section of report.html and of the Markdown tables
(:mod:`labral.bench.subgroups`)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from labral.bench.bootstrap import format_with_ci
from labral.report_html import table

TITLE = "Subgroups (AUROC and ECE per manifest column)"
NOTE = (
    "One table row per group of each grouping column the suite's rows carry (numeric columns "
    "with more than 3 values in tertiles). Patient-bootstrap 95% CIs; a group with fewer than "
    "{min_n} clips or one class is not estimable. Heterogeneity: Cochran's Q over the "
    "estimable groups' AUROCs (weights 1 / bootstrap variance), p from chi-square with k - 1 "
    "degrees of freedom; groups sharing patients (both sides) make it anti-conservative."
)


def _p(value: float | None) -> str:
    return "n/a" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per model, column and group its n, AUROC, ECE, and per column Q."""
    header = ["model", "column", "group", "n (positive)", "AUROC", "ECE", "heterogeneity"]
    rows = []
    for model in results["models"]:
        block = results["results"][model["name"]].get("subgroups") or {}
        for column, entry in block.get("columns", {}).items():
            het = entry["heterogeneity"]
            q_text = het.get("note") or (
                f"Q = {het['q']:.2f}, df {het['df']}, p {_p(het['p_value'])}, I2 {het['i2']:.2f}"
            )
            for index, (name, group) in enumerate(entry["groups"].items()):
                estimable = group["estimable"]
                rows.append(
                    [
                        model["name"],
                        column,
                        name,
                        f"{group['n']} ({group['n_positive']})",
                        format_with_ci(group["auroc"]) if estimable else group["note"],
                        format_with_ci(group["ece"]) if estimable else "",
                        q_text if index == 0 else "",
                    ]
                )
    return header, rows


def html_section(results: dict[str, Any]) -> list[str]:
    """The report's subgroup section (a note where the rows carry no grouping column)."""
    header, rows = table_rows(results)
    first = results["results"][results["models"][0]["name"]].get("subgroups") or {}
    if not rows:
        return [
            f"<h2>{TITLE}</h2>",
            "<p class='note'>No subgroups: the suite's rows carry no grouping column with "
            "two or more values.</p>",
        ]
    note = NOTE.format(min_n=first.get("min_n"))
    return [f"<h2>{TITLE}</h2>", f"<p class='note'>{html.escape(note)}</p>", table(header, rows)]


def markdown_section(
    results: dict[str, Any], labels: dict[str, str], row: Callable[[Sequence[Any]], str]
) -> list[str]:
    """The Markdown table of every model's ``subgroups`` block (nothing without one)."""
    header, rows = table_rows(results)
    if not rows:
        return []
    rows = [[labels.get(r[0], r[0]), *r[1:]] for r in rows]
    return [f"{TITLE}:", "", row(header), row(["---"] * len(header)), *(row(r) for r in rows), ""]
