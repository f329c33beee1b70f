"""A TRIPOD+AI / CLAIM reporting checklist for report.html, filled from results.json and the
bundles' metadata.json.

Each item is a reporting topic both guidelines ask for (data source, participants and
eligibility, reference standard, sample size, splits and overlap, missing data, model,
performance, calibration, subgroups, clinical utility, sample-size justification,
limitations, code availability, ethics and registration, intended use). What the tool knows
it fills; what it cannot know (eligibility criteria of a real cohort, ethics approval, the
intended clinical use) is marked plainly ``"not filled: <why>"``, never guessed. The item
names are topics, not the guidelines' item numbers: an author maps them when filing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from labral.bench.bootstrap import format_with_ci
from labral.bundle import read_bundle_spec
from labral.errors import LabralError
from labral.report_html import table

NOT_FILLED = "not filled: "


def bundle_specs(results: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Model name -> its bundle's spec (metadata.json), None where it cannot be read (saved
    predictions, a moved bundle)."""
    out: dict[str, dict[str, Any] | None] = {}
    for model in results["models"]:
        try:
            out[model["name"]] = read_bundle_spec(model["path"])
        except (LabralError, OSError, ValueError):
            out[model["name"]] = None
    return out


def _not(why: str) -> str:
    return NOT_FILLED + why


def _source(results: dict[str, Any], specs: dict[str, Any]) -> str:
    suite = results["suite"]
    kind = (
        "synthetic suite from labral's generator (no patients)"
        if suite.get("definition")
        else f"manifest {suite['manifest']}"
    )
    return f"{suite['name']}: {kind}; content hash {suite['content_hash'][:16]}"


def _eligibility(results: dict[str, Any], specs: dict[str, Any]) -> str:
    if results["suite"].get("definition"):
        return "synthetic patients drawn by the suite definition (every generated clip is used)"
    return _not("a manifest does not record how its patients were selected")


def _reference(results: dict[str, Any], specs: dict[str, Any]) -> str:
    if results["suite"].get("definition"):
        return "the generator's ground truth (label and hip_label of each simulated hip)"
    return _not("the manifest's label column does not say how the truth was established")


def _sample_size(results: dict[str, Any], specs: dict[str, Any]) -> str:
    block = results["results"][results["models"][0]["name"]]
    text = f"{block['n_clips']} clips ({block['n_positive']} positive), "
    text += f"{block['n_patients']} patients"
    hip = block.get("hip_level")
    if hip:
        text += f", {hip['n_hips']} hips ({hip['n_detached']} detached)"
    return text


def _splits(results: dict[str, Any], specs: dict[str, Any]) -> str:
    overlap = results.get("overlap") or {}
    mode = overlap.get("mode")
    recorded = [n for n, s in specs.items() if s and s.get("split_patients")]
    text = f"overlap with training patients: {mode or 'not checked'}"
    if recorded:
        text += f"; training splits recorded (salted hashes) in {', '.join(recorded)}"
    return text


def _missing(results: dict[str, Any], specs: dict[str, Any]) -> str:
    block = results["results"][results["models"][0]["name"]]
    check = block.get("input_check") or {}
    if not check.get("checked"):
        return _not("the bench records no missing values per column and no input check ran")
    return (
        f"{check['n_refused']} of {check['n_clips']} clips refused by the input check "
        "(scored, reported beside the valid ones); missing manifest cells are not counted"
    )


def _model(results: dict[str, Any], specs: dict[str, Any]) -> str:
    parts = []
    for model in results["models"]:
        spec = specs.get(model["name"])
        if spec is None:
            parts.append(f"{model['name']}: threshold {model['threshold']:.3f}")
            continue
        parts.append(
            f"{model['name']} {spec.get('model_version', '')}: threshold "
            f"{model['threshold']:.3f} ({spec.get('threshold_rule', 'rule not recorded')}), "
            f"temperature {spec.get('temperature', 'n/a')}, input {spec.get('input_spec', {})}"
        )
    return "; ".join(parts)


def _metric(name: str) -> Callable[[dict[str, Any], dict[str, Any]], str]:
    def fill(results: dict[str, Any], specs: dict[str, Any]) -> str:
        return "; ".join(
            f"{m['name']} {name} {format_with_ci(results['results'][m['name']]['overall'][name])}"
            for m in results["models"]
        )

    return fill


def _subgroups(results: dict[str, Any], specs: dict[str, Any]) -> str:
    block = results["results"][results["models"][0]["name"]].get("subgroups") or {}
    columns = list(block.get("columns", {}))
    if not columns:
        return _not("the suite's rows carry no grouping column (site, device, depth, ...)")
    return f"AUROC and ECE per group of {', '.join(columns)} (Subgroups section)"


def _utility(results: dict[str, Any], specs: dict[str, Any]) -> str:
    prevalences = results["settings"].get("prevalence") or []
    extra = f" and at prevalence {', '.join(f'{p:g}' for p in prevalences)}" if prevalences else ""
    return f"decision curves at the suite's prevalence{extra} (Decision curves section)"


def _limitations(results: dict[str, Any], specs: dict[str, Any]) -> str:
    known = ["clip-level CIs resample patients; hip and clip figures share them"]
    if results["suite"].get("definition"):
        known.insert(0, "synthetic clips: no figure here transfers to patients")
    return "; ".join(known) + "; the authors' own limitations are not written by the tool"


def _code(results: dict[str, Any], specs: dict[str, Any]) -> str:
    versions = results.get("versions", {})
    codes = {n: s.get("code_version") for n, s in specs.items() if s}
    text = f"labral {versions.get('labral', 'n/a')}; bundle sha256 "
    text += ", ".join(f"{m['name']} {m['sha256'][:12]}" for m in results["models"])
    if any(codes.values()):
        text += "; code " + ", ".join(f"{n} {c}" for n, c in codes.items() if c)
    return text


#: (topic, how it is filled) in report order.
ITEMS: tuple[tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]], ...] = (
    ("data source and provenance", _source),
    ("participants and eligibility criteria", _eligibility),
    ("outcome and reference standard", _reference),
    ("sample size (clips, patients, hips)", _sample_size),
    ("data splits and overlap with training", _splits),
    ("missing data", _missing),
    ("model, version and operating threshold", _model),
    ("discrimination with CIs (AUROC)", _metric("auroc")),
    ("calibration (ECE; Brier; reliability diagram above)", _metric("ece")),
    ("subgroups and fairness", _subgroups),
    ("clinical utility", _utility),
    ("sample-size justification", lambda r, s: "see Sample size for a target CI width"),
    ("limitations", _limitations),
    ("code and model availability", _code),
    ("ethics approval, consent and registration", lambda r, s: _not("outside the tool's data")),
    ("intended use and clinical setting", lambda r, s: _not("the authors state it")),
)


def checklist(results: dict[str, Any], specs: dict[str, Any] | None = None) -> list[list[str]]:
    """``[topic, text]`` per :data:`ITEMS` (``specs``: model -> bundle spec; read if None)."""
    specs = bundle_specs(results) if specs is None else specs
    return [[topic, fill(results, specs)] for topic, fill in ITEMS]


def html_section(results: dict[str, Any]) -> list[str]:
    """The report's checklist section."""
    rows = checklist(results)
    missing = sum(text.startswith(NOT_FILLED) for _, text in rows)
    note = (
        f"Reporting topics of TRIPOD+AI and CLAIM, filled from results.json and the bundles' "
        f"metadata; {missing} of {len(rows)} are marked 'not filled' with the reason."
    )
    return [
        "<h2>Reporting checklist (TRIPOD+AI / CLAIM)</h2>",
        f"<p class='note'>{html.escape(note)}</p>",
        table(["topic", "filled from this run"], rows),
    ]
