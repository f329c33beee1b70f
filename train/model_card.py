"""The bundle's model card (README.md), written under the TRIPOD+AI / CLAIM reporting topics.

``labral export`` writes it beside the model. Its first part follows
:data:`labral.reporting_topics.TOPICS`, the topics ``labral bench``'s checklist uses, so a
bundle and its benchmark read in the same terms: each topic the export knows (the data's
fingerprint and recorded splits, the model, its calibration, the validation split's figures,
the code) is filled from the bundle's spec; each it cannot know (eligibility, subgroups,
clinical utility, ethics, ...) says ``not filled:`` and why, and where the figure comes
from instead (mostly ``labral bench``). The technical sections (input, input check,
validation metrics, provenance) follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from labral.reporting_topics import TOPICS, not_filled

#: a topic's text from the bundle spec and the network's one-line description
Fill = Callable[[dict[str, Any], str], str]

INTENDED_USE = (
    "Research only. **Not a medical device and not a diagnosis.** Trained and validated on "
    "synthetic clips only; its scores say nothing about real patients."
)
LIMITATIONS = (
    "Synthetic data only; real probes, patients and artefacts differ. Sees a fixed window of "
    "{frames} frames at {fps} frames/s; motion faster or slower than that is resampled. "
    "Relevance shows when the model's evidence occurs, not why; it is not a segmentation."
)


def _val(spec: dict[str, Any], key: str) -> Any:
    return (spec.get("val_metrics") or {}).get(key)


def _source(spec: dict[str, Any], description: str) -> str:
    manifest = ((spec.get("config") or {}).get("data") or {}).get("manifest")
    where = f"the run's manifest `{manifest}`" if manifest else "the run's manifest"
    return (
        f"Synthetic cine clips (labral's generator) read from {where}; training-data "
        f"fingerprint `{spec.get('data_fingerprint')}`."
    )


def _sample_size(spec: dict[str, Any], description: str) -> str:
    splits = (spec.get("split_patients") or {}).get("splits") or {}
    parts = [f"{name} {len(ids)} patients" for name, ids in splits.items()]
    if _val(spec, "n") is not None:
        parts.append(f"validation {_val(spec, 'n')} clips ({_val(spec, 'n_positive')} positive)")
    if not parts:
        return not_filled("the export recorded neither the split patients nor the validation size")
    return "; ".join(parts) + "."


def _splits(spec: dict[str, Any], description: str) -> str:
    record = spec.get("split_patients") or {}
    if "splits" in record:
        return (
            "Patient-disjoint train / validation / test splits; the train and validation "
            "patients are recorded as salted hashes (`split_patients`), so `labral bench` "
            "refuses or leaves out clips of patients the model has seen."
        )
    return not_filled(record.get("unavailable", "the export recorded no split patients"))


def _model(spec: dict[str, Any], description: str) -> str:
    return (
        f"{spec['model_name']} {spec['model_version']}: {description}. Decision: calibrated "
        f"probability >= {spec['threshold']:.4g} ({spec['threshold_rule'] or 'rule not recorded'})."
    )


def _discrimination(spec: dict[str, Any], description: str) -> str:
    auroc = _val(spec, "auroc")
    if auroc is None:
        return not_filled("no validation AUROC recorded; run labral bench for one with its CI")
    return (
        f"Validation AUROC {auroc:.4g} (synthetic validation split, point estimate); "
        "patient-bootstrap CIs on a held-out suite come from `labral bench`."
    )


def _calibration(spec: dict[str, Any], description: str) -> str:
    brier = _val(spec, "brier")
    text = f"Temperature scaling on the validation split: temperature {spec['temperature']:.4g}"
    return text + (f"; validation Brier {brier:.4g}." if brier is not None else ".")


def _limitations(spec: dict[str, Any], description: str) -> str:
    shape = spec["input_spec"]
    return LIMITATIONS.format(frames=shape["frames"], fps=shape["fps"])


def _code(spec: dict[str, Any], description: str) -> str:
    return (
        f"Code {spec['code_version']}, labral {spec['labral_version']}; every file's SHA-256 "
        "in metadata.json."
    )


#: topic key (:data:`labral.reporting_topics.TOPICS`) -> how the card fills it
FILLS: dict[str, Fill] = {
    "source": _source,
    "eligibility": lambda s, d: not_filled(
        "the export does not know how the training manifest's patients were selected"
    ),
    "reference": lambda s, d: (
        "Each clip's label in the training manifest (for generated "
        "clips, the generator's ground truth: fluid extruding through a chondrolabral cleft)."
    ),
    "sample_size": _sample_size,
    "splits": _splits,
    "missing": lambda s, d: not_filled(
        "the export records no missing values; labral bench reports the input check's refusals"
    ),
    "model": _model,
    "discrimination": _discrimination,
    "calibration": _calibration,
    "subgroups": lambda s, d: not_filled(
        "measured by labral bench on a suite whose rows carry grouping columns (Subgroups)"
    ),
    "utility": lambda s, d: not_filled(
        "decision curves against treat all, treat none and the published tests come from "
        "labral bench (Decision curves)"
    ),
    "sample_size_justification": lambda s, d: not_filled(
        "the training size was not chosen for a target precision; labral bench's Sample size "
        "section sizes a study"
    ),
    "limitations": _limitations,
    "code": _code,
    "ethics": lambda s, d: not_filled(
        "synthetic training data involve no patients; a study on patients states its own"
    ),
    "intended_use": lambda s, d: INTENDED_USE,
}


def reporting_items(spec: dict[str, Any], description: str) -> list[tuple[str, str]]:
    """(topic, text) per :data:`~labral.reporting_topics.TOPICS`, in order.

    Args:
        spec: the bundle's spec (metadata.json without ``files``). description: the
            network's one-line description.
    """
    return [(title, FILLS[key](spec, description)) for key, title in TOPICS]


def model_card(
    spec: dict[str, Any], verified: dict[str, float], description: str, check_text: str
) -> str:
    """Markdown model card (README.md of the bundle).

    Args:
        spec: the bundle's spec. verified: runtime -> max |diff| of the export checks.
        description: the network's one-line description. check_text: the input-check
            section (what the bundle's check refuses and how it was fitted).
    """
    items = "\n\n".join(
        f"### {title}\n{text}" for title, text in reporting_items(spec, description)
    )
    val = spec.get("val_metrics") or {}
    metrics = "\n".join(
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in val.items()
        if not isinstance(v, (dict, list))
    )
    checks = ", ".join(f"{k} max |diff| {v:.2e}" for k, v in verified.items())
    return f"""# {spec["model_name"]} ({spec["model_version"]})

Detects anterior hip labral detachment (fluid extruding through a chondrolabral cleft) in a
dynamic ultrasound cine clip. Classes: {", ".join(spec["class_names"])}.

## Reporting items (TRIPOD+AI / CLAIM)
The topics of `labral bench`'s checklist; a topic this export cannot fill says so.

{items}

## Input
`model.ts` takes float32 (B, 1, T, H, W), intensities in [0, 1], produced by the eval
transform below; it returns `(logits (B,), relevance (B, T))`, where relevance is a class
activation over time whose mean over frames equals the logit.
- input spec: `{json.dumps(spec["input_spec"])}`
- eval transform: `{json.dumps(spec["eval_transform"])}`
- calibration: temperature {spec["temperature"]:.4g}; threshold {spec["threshold"]:.4g}
  ({spec["threshold_rule"]}); probability = sigmoid(logit / temperature),
  the scaled logit clipped to +-60.

## Input check
{check_text}

## Validation metrics (synthetic validation split)
| metric | value |
|---|---|
{metrics or "| (none recorded) | |"}

## Provenance
code {spec["code_version"]}, labral {spec["labral_version"]}; export checks: {checks}.
"""
