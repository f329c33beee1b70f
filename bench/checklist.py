"""A TRIPOD+AI / CLAIM reporting checklist of a ``labral bench`` run, filled from its
results and the bundles' metadata.json (results.json ``checklist``; report.html's section,
:mod:`labral.bench.report.checklist`).

Each item is a topic of :data:`labral.reporting_topics.TOPICS` (data source, participants
and eligibility, reference standard, sample size, splits and overlap, missing data, model,
performance, calibration, subgroups, clinical utility, sample-size justification,
limitations, code availability, ethics and registration, intended use), the same topics the
bundle's model card is written under. What the run knows it fills; what it cannot know
(eligibility criteria of a real cohort, ethics approval, the intended clinical use) is
marked plainly ``"not filled: <why>"``, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labral.bench.bootstrap import format_with_ci
from labral.bundle import read_bundle_spec
from labral.errors import LabralError
from labral.reporting_topics import NOT_FILLED, TOPICS, not_filled

__all__ = ["NOT_FILLED", "bundle_specs", "checklist", "checklist_block"]


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


_not = not_filled
#: a fill function: (results, model name -> bundle spec or None) -> the topic's text
Fill = Callable[[dict[str, Any], dict[str, Any]], str]


def _source(results: dict[str, Any], specs: dict[str, Any]) -> str:
    suite = results["suite"]
    if results.get("source") == "saved_predictions":
        return (
            f"saved predictions {suite['manifest']} (scored before this run, which loaded no "
            f"model and read no clip); content hash {suite['content_hash'][:16]}"
        )
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


#: topic key (:data:`labral.reporting_topics.TOPICS`) -> how the run fills it
FILLS: dict[str, Fill] = {
    "source": _source,
    "eligibility": _eligibility,
    "reference": _reference,
    "sample_size": _sample_size,
    "splits": _splits,
    "missing": _missing,
    "model": _model,
    "discrimination": _metric("auroc"),
    "calibration": lambda r, s: (
        f"{_metric('ece')(r, s)}; {_metric('brier')(r, s)} "
        "(reliability diagram in the Calibration section)"
    ),
    "subgroups": _subgroups,
    "utility": _utility,
    "sample_size_justification": lambda r, s: "see Sample size for a target CI width",
    "limitations": _limitations,
    "code": _code,
    "ethics": lambda r, s: _not("outside the tool's data"),
    "intended_use": lambda r, s: _not("the authors state it"),
}


def checklist(results: dict[str, Any], specs: dict[str, Any] | None = None) -> list[list[str]]:
    """``[topic, text]`` per topic of :data:`~labral.reporting_topics.TOPICS`, in order.

    Args:
        results: the run's results dict. specs: model name -> its bundle spec (None where
            unreadable); read from the models' paths when not given.
    """
    specs = bundle_specs(results) if specs is None else specs
    return [[title, FILLS[key](results, specs)] for key, title in TOPICS]


def checklist_block(results: dict[str, Any]) -> list[dict[str, Any]]:
    """results.json's ``checklist``: ``[{"topic", "text", "filled"}]`` in topic order,
    ``filled`` false where the text is "not filled: <why>"."""
    return [
        {"topic": topic, "text": text, "filled": not text.startswith(NOT_FILLED)}
        for topic, text in checklist(results)
    ]
