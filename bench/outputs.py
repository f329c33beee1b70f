"""What ``labral bench`` writes: results.json, predictions.csv, spatial_maps.npz, and the
machine and package versions the figures were measured with."""

from __future__ import annotations

import csv
import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.bench import bootstrap as metrics
from labral.bench import checklist, decision_curves, sample_size, stats
from labral.bench import suite_scoring as scoring
from labral.bench.refusals import REASON_SEPARATOR
from labral.bench.settings import BenchSettings
from labral.input_check.verdict import NOT_ASSESSABLE, SCORED

VERSIONED_PACKAGES = ("labral", "torch", "numpy", "scikit-learn", "monai", "pydicom", "scipy")


def statistics_settings(settings: BenchSettings) -> dict:
    """The statistical settings every ``results.json`` records (bootstrap, CI, hip rules)."""
    return {
        "bootstrap_n": settings.bootstrap.n,
        "bootstrap_seed": settings.bootstrap.seed,
        "ci_level": settings.bootstrap.level,
        "ci_min_patients_per_class": stats.MIN_PATIENTS_PER_CLASS,
        "ece_bins": settings.ece_bins,
        "hip_rules": list(stats.HIP_RULES),
        "reweight_prevalences": list(metrics.REWEIGHT_PREVALENCES),
        "prevalence": list(settings.prevalence),
        "subgroup_min_n": settings.subgroup_min_n,
    }


def hardware() -> dict[str, Any]:
    """CPU model, core count, torch threads and platform/torch versions of this machine."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    out = {}
    for package in VERSIONED_PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def derived_blocks(results: dict[str, Any]) -> dict[str, Any]:
    """The blocks results.json adds to the evaluation, each computed from it alone (and the
    bundles' metadata): ``decision_curves`` (:func:`labral.bench.decision_curves.summary`),
    ``sample_size`` (:func:`labral.bench.sample_size.summary`) and ``checklist``
    (:func:`labral.bench.checklist.checklist_block`)."""
    return {
        "decision_curves": decision_curves.summary(results),
        "sample_size": sample_size.summary(results),
        "checklist": checklist.checklist_block(results),
    }


def write_results(out: Path, results: dict[str, Any]) -> None:
    """``out/results.json``: the results dict with its :func:`derived_blocks` added (to
    ``results`` too, so the report reads them instead of computing them again), indented,
    numpy numbers written as floats."""
    results.update(derived_blocks(results))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))


#: predictions.csv's per-model columns, each suffixed ``_<model>``, after ``p_<model>``.
MODEL_COLUMNS = ("decision", "relevance", "status", "reasons")


def write_predictions(
    path: Path, records: list[dict], names: list[str], passes: scoring.PassResult
) -> None:
    """predictions.csv: one row per clip; per model its probability, decision, relevance and
    the input check's verdict.

    Columns: ``path, patient, label, clip_type, shift, wrong_input``, ``p_<model>`` for every
    model, then for every model (:data:`MODEL_COLUMNS`) ``decision_<model>`` (0/1, computed
    for every clip, refused or not), ``relevance_<model>`` (the clip's temporal relevance on
    its source frames, ``;``-separated, rounded as in the service's answer),
    ``status_<model>`` (``scored`` or ``not_assessable``; ``scored`` for a bundle without a
    check) and ``reasons_<model>`` (the refusing reasons, ``;``-separated, empty if scored).
    """
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "patient",
                "label",
                "clip_type",
                "shift",
                "wrong_input",
                *[f"p_{n}" for n in names],
                *[f"{col}_{n}" for n in names for col in MODEL_COLUMNS],
            ]
        )
        for i, r in enumerate(records):
            probs = [f"{s.probability[i]:.9f}" for s in passes.scores]
            details = []
            for s in passes.scores:
                relevance = s.clips[i].rounded_relevance() if s.clips[i] else []
                details += [
                    int(s.decision[i]),
                    ";".join(f"{v:g}" for v in relevance),
                    SCORED if s.assessable[i] else NOT_ASSESSABLE,
                    REASON_SEPARATOR.join(s.reasons[i]),
                ]
            writer.writerow(
                [
                    r["path"],
                    r["patient"],
                    r["label"],
                    r.get("clip_type", ""),
                    r.get("shift", ""),
                    r.get("wrong_input") or "",
                    *probs,
                    *details,
                ]
            )


def spatial_arrays(passes: scoring.PassResult) -> dict[str, np.ndarray]:
    """Every spatial map of a pass: ``model<b>_clip<i>_frame<f>`` -> float32 (h, w) map (see
    :class:`labral.scoring.SpatialMap`); ``b`` indexes results.json ``models``, ``i`` the rows
    of predictions.csv, ``f`` a peak (source) frame of that clip. Empty unless the pass was
    scored with spatial maps."""
    return {
        f"model{b}_clip{i}_frame{m.frame}": m.values
        for b, model in enumerate(passes.scores)
        for i, clip in enumerate(model.clips)
        if clip is not None
        for m in clip.spatial_maps
    }


def write_spatial_maps(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """spatial_maps.npz: a pass's :func:`spatial_arrays`."""
    np.savez_compressed(path, **arrays)
