"""``results.json`` of a ``labral bench`` run: the evaluation of its passes and the document.

Shared by both kinds of run: a bundle run (:mod:`labral.bench.command`) and a saved
predictions run (:mod:`labral.bench.saved_predictions`) write the same schema version and
name their models the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from labral.bench import bootstrap, controls, evaluate, stats
from labral.bench import suite_scoring as scoring
from labral.bench.outputs import hardware, statistics_settings, versions
from labral.bench.passes import ScoredSuite
from labral.bench.settings import BenchSettings
from labral.bench.suites import Suite
from labral.bundle import Bundle

RESULTS_SCHEMA_VERSION = 2


class Named(Protocol):
    """Anything with a ``name``: a bundle or a saved predictions CSV."""

    @property
    def name(self) -> str: ...


def unique_names(models: Sequence[Named]) -> list[str]:
    """The models' names, a repeated name suffixed ``#2``, ``#3``, ... in order."""
    names: list[str] = []
    for model in models:
        name, k = model.name, 2
        while name in names:
            name, k = f"{model.name}#{k}", k + 1
        names.append(name)
    return names


def _replicate_groups(names: list[str], bundles: Sequence[Bundle]) -> dict[str, list[str]]:
    """Bundles of one recipe trained with other seeds (:func:`stats.recipe_key`), 2 or more."""
    groups: dict[str, list[str]] = {}
    for name, bundle in zip(names, bundles, strict=True):
        groups.setdefault(stats.recipe_key(bundle.spec), []).append(name)
    return {members[0]: members for members in groups.values() if len(members) > 1}


def replicates(names: list[str], bundles: Sequence[Bundle], per_model: dict[str, Any]) -> dict:
    """Mean +- SD of the headline AUROCs over each group of replicate bundles."""
    out = {}
    for first, members in _replicate_groups(names, bundles).items():
        blocks = [per_model[m] for m in members]
        out[first] = {
            "models": members,
            "auroc": stats.replicate_spread([b["overall"]["auroc"]["value"] for b in blocks]),
            "per_shift": {
                shift: stats.replicate_spread(
                    [b["per_shift"][shift]["auroc"]["value"] for b in blocks]
                )
                for shift in blocks[0]["per_shift"]
            },
        }
    return out


def _checked_copies(
    passes: dict[str, scoring.PassResult], index: int
) -> dict[str, np.ndarray] | None:
    """control -> bool (K,) the input check of bundle ``index`` let each copy through; None
    when the bundle has no check (nothing was refused)."""
    scores = {control: result.scores[index] for control, result in passes.items()}
    if not all(s.checked.any() for s in scores.values()):
        return None
    return {control: s.assessable for control, s in scores.items()}


def evaluate_models(
    settings: BenchSettings,
    records: Sequence[dict[str, Any]],
    names: list[str],
    bundles: Sequence[Bundle],
    scored: ScoredSuite,
    plan: bootstrap.ClusterBootstrap,
) -> dict[str, Any]:
    """Model name -> its metric blocks on the clean pass, order controls and pointing game."""
    boot, bins = settings.bootstrap, settings.ece_bins
    per_model = {
        name: evaluate.evaluate_model(
            records,
            scores,
            bundle.threshold,
            plan,
            ece_bins=bins,
            tolerance=settings.localisation_tolerance,
            subgroup_min_n=settings.subgroup_min_n,
            level=boot.level,
        )
        for name, bundle, scores in zip(names, bundles, scored.clean.scores, strict=True)
    }
    for index, name in enumerate(names):
        if scored.controls:
            per_model[name]["order_controls"] = controls.order_controls(
                records,
                scored.positives,
                scored.clean.scores[index].probability,
                {c: p.scores[index].probability for c, p in scored.controls.items()},
                boot.n,
                boot.seed,
                boot.level,
                threshold=bundles[index].threshold,
                assessable=_checked_copies(scored.controls, index),
            )
        if scored.pointing:
            block = {k: v for k, v in scored.pointing[index].items() if k != "examples"}
            per_model[name]["localisation"]["pointing_game"] = block
    return per_model


def robustness(
    settings: BenchSettings,
    records: Sequence[dict[str, Any]],
    names: list[str],
    bundles: Sequence[Bundle],
    scored: ScoredSuite,
    plan: bootstrap.ClusterBootstrap,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Perturbation -> model -> ``[{"level", "metrics"}]`` over the sweep's passes."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (perturbation, level), passed in scored.sweep.items():
        for name, bundle, scores in zip(names, bundles, passed.scores, strict=True):
            point = evaluate.evaluate_robustness_point(
                records,
                scores,
                bundle.threshold,
                plan,
                ece_bins=settings.ece_bins,
                level=settings.bootstrap.level,
            )
            out.setdefault(perturbation, {}).setdefault(name, []).append(
                {"level": level, "metrics": point}
            )
    return out


def speed(
    settings: BenchSettings,
    names: list[str],
    bundles: Sequence[Bundle],
    transforms: Sequence[Any],
    scored: ScoredSuite,
) -> dict[str, dict[str, Any]]:
    """Model name -> throughput of the clean pass and single-clip latency."""
    clean, source, n_latency = scored.clean, scored.source, settings.latency_clips
    out = {}
    for index, (name, bundle, transform) in enumerate(zip(names, bundles, transforms, strict=True)):
        latency = (
            scoring.single_clip_latency(source, bundle, transform, n_latency)
            if n_latency
            else [np.nan]
        )
        out[name] = {
            "clips_per_s": len(source) / clean.seconds,
            "pass_seconds_all_models": clean.seconds,
            "model_seconds": clean.model_seconds[index],
            "model_clips_per_s": len(source) / max(clean.model_seconds[index], 1e-9),
            "latency_ms_median": float(np.median(latency) * 1000),
            "latency_ms_p90": float(np.quantile(latency, 0.9) * 1000),
            "latency_clips": len(latency),
            "batch_size": settings.batch_size,
            "decode_workers": settings.workers,
        }
    return out


def suite_block(suite: Suite, n_patients: int) -> dict[str, Any]:
    """The ``suite`` block: name, content hash, manifest, clip and patient counts."""
    return {
        "name": suite.name,
        "content_hash": suite.content_hash,
        "manifest": str(suite.manifest),
        "n_clips": len(suite.records),
        "n_patients": n_patients,
        "definition": suite.definition,
    }


def model_blocks(names: list[str], bundles: Sequence[Bundle]) -> list[dict[str, Any]]:
    """The ``models`` block: each bundle's identity, decision settings and recipe."""
    return [
        {
            "name": name,
            "path": str(bundle.path),
            "sha256": bundle.sha256,
            "threshold": bundle.threshold,
            "temperature": bundle.temperature,
            "eval_transform": bundle.spec["eval_transform"],
            "recipe": stats.recipe_key(bundle.spec),
            "runtime": bundle.runtime,
        }
        for name, bundle in zip(names, bundles, strict=True)
    ]


def bundle_results(
    settings: BenchSettings,
    suite: Suite,
    overlap: dict[str, Any],
    names: list[str],
    bundles: Sequence[Bundle],
    transforms: Sequence[Any],
    scored: ScoredSuite,
) -> dict[str, Any]:
    """The whole ``results.json`` of a bundle run (without its ``gate`` block)."""
    records, boot = suite.records, settings.bootstrap
    plan = boot.plan(records)
    per_model = evaluate_models(settings, records, names, bundles, scored, plan)
    n_patients = int(np.unique(plan.patients).size)
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "suite": suite_block(suite, n_patients),
        "models": model_blocks(names, bundles),
        "settings": {
            **statistics_settings(settings),
            "localisation_tolerance": settings.localisation_tolerance,
            "spatial_maps": settings.spatial_maps,
            "order_controls": list(scored.controls),
        },
        "overlap": overlap,
        "versions": versions(),
        "hardware": hardware(),
        "results": per_model,
        "replicates": replicates(names, bundles, per_model),
        "robustness": robustness(settings, records, names, bundles, scored, plan),
        "comparisons": evaluate.compare_models(
            records, names, scored.clean.scores, plan, boot.level
        ),
        "speed": speed(settings, names, bundles, transforms, scored),
        "pass_seconds": {"clean": scored.clean.seconds, **scored.timings},
        "created_unix": time.time(),
    }
