"""Markdown tables of a ``results.json``: what tells the models apart, per suite part.

    python -m labral.bench.markdown outputs/bench/<run>/results.json [--names a=compact,...]

Prints, for every model: AUROC per part and overall, hip-level AUROC (max rule), order
sensitivity to reversal and shuffling, temporal localisation beside its velocity null, the
pointing game beside chance, the paired tests of the first model against each other one
(patient bootstrap and DeLong), the spread of replicate bundles, the input check's
tables (wrong inputs, valid clips, check scores: :mod:`labral.bench.report.input_check`) and
net benefit at a few threshold probabilities (:mod:`labral.bench.report.decision_curves`)
the patients a study needs for a target CI width (:mod:`labral.bench.sample_size`),
AUROC / ECE per subgroup (:mod:`labral.bench.subgroups`) and the TRIPOD+AI / CLAIM
checklist (:mod:`labral.bench.checklist`).
The README's results tables are this script's output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labral.bench.bootstrap import format_with_ci as ci
from labral.bench.report import checklist, decision_curves, input_check, sample_size, subgroups
from labral.bench.report.input_check import level_order


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _p(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@dataclass(frozen=True)
class _Models:
    """What every table reads: the models in order, their printed labels and the suite parts."""

    names: list[str]
    label: dict[str, str]
    per_model: dict[str, Any]
    parts: list[str]


def tables(results: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """The Markdown text for ``results`` (``labels``: model name -> shorter name)."""
    names = [m["name"] for m in results["models"]]
    per_model = results["results"]
    models = _Models(
        names=names,
        label={n: (labels or {}).get(n, n) for n in names},
        per_model=per_model,
        parts=sorted(per_model[names[0]]["per_shift"], key=level_order),
    )
    suite = results["suite"]
    out = [
        f"Suite `{suite['name']}` (hash {suite['content_hash'][:12]}), "
        f"{suite['n_clips']} clips, {suite['n_patients']} patients.",
        "",
    ]
    out += _clip_auroc(models) + _hip_auroc(models) + _order_sensitivity(models)
    out += _altered_copies(models)
    out += _localisation(models) + _comparisons(models, results.get("comparisons", []))
    out += _replicates(models, results.get("replicates", {})) + _input_check(models)
    out += decision_curves.markdown_section(results, models.label, _row)
    out += sample_size.markdown_section(results, models.label, _row)
    out += subgroups.markdown_section(results, models.label, _row)
    out += checklist.markdown_section(results, _row)
    return "\n".join(out)


def _section(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A titled table and a blank line; nothing without rows."""
    return [title, "", *_table(header, rows), ""] if rows else []


def _clip_auroc(models: _Models) -> list[str]:
    """Clip-level AUROC per suite part and overall."""
    rows = []
    for n in models.names:
        block = models.per_model[n]
        per_part = [ci(block["per_shift"][p]["auroc"]) for p in models.parts]
        rows.append([models.label[n], *per_part, ci(block["overall"]["auroc"])])
    header = ["model", *models.parts, "all"]
    return _section("Clip-level AUROC [95% CI]:", header, rows)


def _hip_auroc(models: _Models) -> list[str]:
    """Hip-level AUROC (max rule) per suite part and overall."""

    def max_rule(block: dict[str, Any]) -> dict[str, Any]:
        return (block.get("hip_level") or {}).get("rules", {}).get("max", {})

    rows = []
    for n in models.names:
        block = models.per_model[n]
        per_part = [ci(max_rule(block["per_shift"][p]).get("auroc")) for p in models.parts]
        rows.append([models.label[n], *per_part, ci(max_rule(block).get("auroc"))])
    header = ["model", *models.parts, "all"]
    return _section("Hip-level AUROC (max rule) [95% CI]:", header, rows)


def _order_sensitivity(models: _Models) -> list[str]:
    """Order sensitivity to reversal per part and overall, to shuffling overall, the drop."""
    if not models.per_model[models.names[0]].get("order_controls"):
        return []
    rows = []
    for n in models.names:
        controls = models.per_model[n]["order_controls"]
        reversed_, shuffled = controls["reversed"], controls["shuffled"]
        motionless = controls.get("motionless")
        per_part = [
            f"{reversed_['per_shift'][p]['order_sensitivity']['value']:.3f}"
            for p in models.parts
            if p in reversed_["per_shift"]
        ]
        rows.append(
            [
                models.label[n],
                *per_part,
                ci(reversed_["overall"]["order_sensitivity"]),
                ci(shuffled["overall"]["order_sensitivity"]),
                ci(motionless["overall"]["order_sensitivity"]) if motionless else "-",
                ci(reversed_["overall"]["mean_probability_drop"]),
            ]
        )
    header = [
        "model",
        *(f"reversed, {p}" for p in models.parts),
        "reversed, all",
        "shuffled, all",
        "motionless, all",
        "probability drop, reversed",
    ]
    title = "Order sensitivity (AUROC of positives against their altered copies):"
    return _section(title, header, rows)


def _altered_copies(models: _Models) -> list[str]:
    """Per model and control: order sensitivity per part, and the share of copies decided
    detached by the model, refused by the input check and shown as detached."""
    if not models.per_model[models.names[0]].get("order_controls"):
        return []
    rows = []
    for n in models.names:
        for control, entry in models.per_model[n]["order_controls"].items():
            overall = entry["overall"]
            shares = [
                f"{overall[key]['value']:.3f}" if key in overall else "-"
                for key in ("copies_detected", "copies_refused", "copies_reported_detached")
            ]
            per_part = [
                f"{entry['per_shift'][p]['order_sensitivity']['value']:.3f}"
                if p in entry["per_shift"]
                else "-"
                for p in models.parts
            ]
            rows.append([models.label[n], control, *per_part, *shares])
    header = [
        "model",
        "control",
        *models.parts,
        "decided detached",
        "refused by the check",
        "shown as detached",
    ]
    title = (
        "Altered copies of the positives: order sensitivity per part; shares of all copies "
        "decided detached by the model, refused by the input check, shown as detached:"
    )
    return _section(title, header, rows)


def _localisation(models: _Models) -> list[str]:
    """Temporal hits beside uniform chance and the velocity null; the pointing game."""
    rows = []
    for n in models.names:
        loc = models.per_model[n]["localisation"]
        null, pointing = loc.get("velocity_null"), loc.get("pointing_game")
        rows.append(
            [
                models.label[n],
                ci(loc),
                f"{loc['chance']:.3f}",
                ci(null) if null else "n/a",
                ci(loc.get("vs_velocity_null")) if null else "n/a",
                ci(pointing) if pointing else "n/a",
                f"{pointing['chance']:.4f}" if pointing else "n/a",
            ]
        )
    header = [
        "model",
        "temporal hit",
        "uniform chance",
        "velocity null",
        "model - null",
        "pointing game",
        "chance",
    ]
    title = "Localisation (temporal: peak within +-1 frame; spatial: pointing game):"
    return _section(title, header, rows) + _temporal_per_part(models)


def _temporal_per_part(models: _Models) -> list[str]:
    """Temporal hit and its paired difference from the velocity null, per suite part."""
    rows = []
    for n in models.names:
        per_shift = models.per_model[n].get("per_shift", {})
        cells = []
        for part in models.parts:
            loc = per_shift.get(part, {}).get("localisation")
            if not loc or not loc.get("n"):
                cells.append("n/a")
                continue
            null = loc.get("vs_velocity_null")
            cells.append(f"{ci(loc)} ({ci(null)})" if null else ci(loc))
        if any(cell != "n/a" for cell in cells):
            rows.append([models.label[n], *cells])
    if not rows:
        return []
    title = "Temporal hit per part (model - velocity null in brackets):"
    return _section(title, ["model", *models.parts], rows)


def _comparisons(models: _Models, comparisons: Sequence[dict[str, Any]]) -> list[str]:
    """Paired AUROC differences per part and overall: bootstrap CI and p, DeLong's p."""
    rows = []
    for c in comparisons:
        for p in [*models.parts, None]:
            block = c if p is None else c["per_shift"][p]
            rows.append(
                [
                    f"{models.label[c['a']]} - {models.label[c['b']]}",
                    p or "all",
                    ci(block),
                    _p(block.get("p_value")),
                    _p(block["delong"].get("p_value")),
                ]
            )
    title = "Paired AUROC differences (patient bootstrap [95% CI], its p, DeLong's p):"
    return _section(title, ["pair", "part", "difference", "bootstrap p", "DeLong p"], rows)


def _replicates(models: _Models, replicates: dict[str, Any]) -> list[str]:
    """AUROC mean +- SD over the seeds of each recipe's replicate bundles."""
    rows = [
        [
            ", ".join(models.label[m] for m in entry["models"]),
            part,
            f"{spread['mean']:.3f} +- {spread['sd']:.3f} (n={spread['n']})",
        ]
        for entry in replicates.values()
        for part, spread in [
            *sorted(entry["per_shift"].items(), key=lambda kv: level_order(kv[0])),
            ("all", entry["auroc"]),
        ]
    ]
    title = "Replicates of one recipe (AUROC mean +- SD over seeds):"
    return _section(title, ["bundles", "part", "AUROC"], rows)


#: The input check's tables, each with its title (after "Input check of <model>, ").
INPUT_CHECK_TABLES = (
    ("wrong inputs (refusal rate)", input_check.wrong_input_table),
    ("valid clips (false-refusal rate, AUROC on all / passing clips)", input_check.valid_table),
    ("check scores, wrong inputs against valid clips", input_check.score_table),
)


def _input_check(models: _Models) -> list[str]:
    """Per model: the wrong-input, valid-clip and check-score tables of its input check."""
    out = []
    for n in models.names:
        block = models.per_model[n].get("input_check")
        if not block:
            continue
        label = models.label[n]
        if block["note"]:
            out += [f"Input check of {label}: {block['note']}.", ""]
        for title, make in INPUT_CHECK_TABLES:
            out += _section(f"Input check of {label}, {title}:", *make(block))
        if block["scores_note"]:
            out += [f"Input check of {label}, check scores: {block['scores_note']}.", ""]
    return out


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
