"""Markdown tables of a ``results.json``: what tells the models apart, per suite part.

    python -m labral.bench.markdown outputs/bench/<run>/results.json [--names a=compact,...]

Prints, for every model: AUROC per part and overall, hip-level AUROC (max rule), order
sensitivity to reversal and shuffling, temporal localisation beside its velocity null, the
pointing game beside chance, the paired tests of the first model against each other one
(patient bootstrap and DeLong), and the spread of replicate bundles. The README's results
tables are this script's output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labral.bench.bootstrap import format_with_ci as ci


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _p(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def tables(results: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """The Markdown text for ``results`` (``labels``: model name -> shorter name)."""
    names = [m["name"] for m in results["models"]]
    label = {n: (labels or {}).get(n, n) for n in names}
    per_model = results["results"]
    parts = sorted(per_model[names[0]]["per_shift"], key=_level_order)
    out = [
        f"Suite `{results['suite']['name']}` (hash {results['suite']['content_hash'][:12]}), "
        f"{results['suite']['n_clips']} clips, {results['suite']['n_patients']} patients.",
        "",
    ]
    rows = [
        [
            label[n],
            *(ci(per_model[n]["per_shift"][p]["auroc"]) for p in parts),
            ci(per_model[n]["overall"]["auroc"]),
        ]
        for n in names
    ]
    out += ["Clip-level AUROC [95% CI]:", "", *_table(["model", *parts, "all"], rows), ""]
    rows = []
    for n in names:
        cells = []
        for p in parts:
            hip = per_model[n]["per_shift"][p].get("hip_level") or {}
            cells.append(ci(hip.get("rules", {}).get("max", {}).get("auroc")))
        overall = (per_model[n].get("hip_level") or {}).get("rules", {}).get("max", {})
        rows.append([label[n], *cells, ci(overall.get("auroc"))])
    out += ["Hip-level AUROC (max rule) [95% CI]:", "", *_table(["model", *parts, "all"], rows), ""]
    if per_model[names[0]].get("order_controls"):
        rows = []
        for n in names:
            oc = per_model[n]["order_controls"]
            rows.append(
                [
                    label[n],
                    *(
                        f"{oc['reversed']['per_shift'][p]['order_sensitivity']['value']:.3f}"
                        for p in parts
                        if p in oc["reversed"]["per_shift"]
                    ),
                    ci(oc["reversed"]["overall"]["order_sensitivity"]),
                    ci(oc["shuffled"]["overall"]["order_sensitivity"]),
                    ci(oc["reversed"]["overall"]["mean_probability_drop"]),
                ]
            )
        header = [
            "model",
            *(f"reversed, {p}" for p in parts),
            "reversed, all",
            "shuffled, all",
            "probability drop, reversed",
        ]
        out += [
            "Order sensitivity (AUROC of positives against their altered copies):",
            "",
            *_table(header, rows),
            "",
        ]
    rows = []
    for n in names:
        loc = per_model[n]["localisation"]
        null, pg = loc.get("velocity_null"), loc.get("pointing_game")
        rows.append(
            [
                label[n],
                ci(loc),
                f"{loc['chance']:.3f}",
                ci(null) if null else "n/a",
                ci(loc.get("vs_velocity_null")) if null else "n/a",
                ci(pg) if pg else "n/a",
                f"{pg['chance']:.4f}" if pg else "n/a",
            ]
        )
    out += [
        "Localisation (temporal: peak within +-1 frame; spatial: pointing game):",
        "",
        *_table(
            [
                "model",
                "temporal hit",
                "uniform chance",
                "velocity null",
                "model - null",
                "pointing game",
                "chance",
            ],
            rows,
        ),
        "",
    ]
    rows = []
    for c in results.get("comparisons", []):
        for p in [*parts, None]:
            block = c if p is None else c["per_shift"][p]
            rows.append(
                [
                    f"{label[c['a']]} - {label[c['b']]}",
                    p or "all",
                    ci(block),
                    _p(block.get("p_value")),
                    _p(block["delong"].get("p_value")),
                ]
            )
    if rows:
        out += [
            "Paired AUROC differences (patient bootstrap [95% CI], its p, DeLong's p):",
            "",
            *_table(["pair", "part", "difference", "bootstrap p", "DeLong p"], rows),
            "",
        ]
    rows = [
        [
            ", ".join(label[m] for m in e["models"]),
            p,
            f"{sp['mean']:.3f} +- {sp['sd']:.3f} (n={sp['n']})",
        ]
        for e in results.get("replicates", {}).values()
        for p, sp in [
            *sorted(e["per_shift"].items(), key=lambda kv: _level_order(kv[0])),
            ("all", e["auroc"]),
        ]
    ]
    if rows:
        out += [
            "Replicates of one recipe (AUROC mean +- SD over seeds):",
            "",
            *_table(["bundles", "part", "AUROC"], rows),
            "",
        ]
    return "\n".join(out)


def _level_order(part: str) -> tuple[int, str]:
    """Suite parts that are generator levels first, easiest first (``known_levels``)."""
    from labral.datasets.synth.difficulty import known_levels

    order = known_levels()
    return (order.index(part), part) if part in order else (len(order), part)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables of a results.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--names", default="", help="short names: long=short,long=short")
    args = parser.parse_args(argv)
    labels = dict(item.split("=", 1) for item in args.names.split(",") if "=" in item)
    print(tables(json.loads(args.results.read_text()), labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
