"""Terminal summary of a benchmark run (rich tables), ending with where the report is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from labral.bench.bootstrap import format_with_ci
from labral.bench.report import input_check

SUMMARY_METRICS = ("auroc", "auprc", "sensitivity", "specificity", "ppv_at_25", "brier", "ece")


_fmt = format_with_ci


def _p_value(value: float | None) -> str:
    """A p-value to 4 decimals; "n/a" where it is not estimable (too few patients: None)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def print_summary(results: dict[str, Any], out: Path, console: Console | None = None) -> None:
    """Print metrics (95% CI) per model, the paired comparison, speed and the output paths."""
    console = console or Console()
    names = [m["name"] for m in results["models"]]
    suite = results["suite"]
    table = Table(
        title=f"labral bench: {suite['name']} ({suite['n_clips']} clips, "
        f"{suite['n_patients']} patients, hash {suite['content_hash'][:12]})"
    )
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    for metric in SUMMARY_METRICS:
        table.add_row(metric, *(_fmt(results["results"][n]["overall"][metric]) for n in names))
    table.add_row("localisation", *(_fmt(results["results"][n]["localisation"]) for n in names))
    table.add_row("clips/s", *(f"{results['speed'][n]['clips_per_s']:.1f}" for n in names))
    table.add_row("latency ms", *(f"{results['speed'][n]['latency_ms_median']:.1f}" for n in names))
    console.print(table)
    for comp in results.get("comparisons", []):
        console.print(
            f"AUROC {comp['a']} - {comp['b']}: {_fmt(comp)}, paired bootstrap "
            f"p={_p_value(comp.get('p_value'))}"
        )
    print_input_check(results, console)
    gate = results.get("gate") or {}
    if gate.get("thresholds"):
        console.print(
            "gate: " + ("passed" if gate["passed"] else "FAILED: " + "; ".join(gate["failed"]))
        )
    console.print(f"results: {out / 'results.json'}")
    console.print(f"report:  {out / 'report.html'}")


def _rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for index, column in enumerate(header):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_input_check(results: dict[str, Any], console: Console) -> None:
    """Per model: the wrong-input table and the valid-clip table of its input check (a line
    where the bundle has no check)."""
    for model in results["models"]:
        block = results["results"][model["name"]].get("input_check")
        if not block:
            continue
        if block["note"]:
            console.print(f"input check of {model['name']}: {block['note']}")
        for title, (header, rows) in (
            ("wrong inputs", input_check.wrong_input_table(block)),
            ("valid clips", input_check.valid_table(block)),
        ):
            if rows:
                console.print(_rich_table(f"input check of {model['name']}: {title}", header, rows))
