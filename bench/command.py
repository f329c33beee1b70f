"""``labral bench bundle=<bundle> suite=<name or manifest>``: metrics, report and a gate.

``bundle=[a,b]`` compares several bundles (the first is the candidate).

Order of work: check the config, load every bundle, resolve (and if needed generate) the
suite, check the robustness sweep - every user error surfaces before the first clip is scored.
Then one clean pass (all bundles), the robustness passes, a latency probe, and the outputs:
``results.json``, ``predictions.csv``, ``report.html`` under ``out`` (or Hydra's run dir),
a terminal summary, and finally the ``fail_under`` gate. ``+spatial_maps=true`` also writes
``spatial_maps.npz`` (the clean pass's spatial map on every clip's peak frames). Every clip
is scored by :class:`labral.scoring.ClipScorer`, as in the service.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from tqdm import tqdm

from labral.bench import evaluate, metrics, perturb, report, scoring
from labral.bench.gate import check_gate, validate_gate
from labral.bench.suites import resolve_suite
from labral.bench.summary import print_summary
from labral.bundle import Bundle, load_bundle
from labral.errors import BadConfigError

RESULTS_SCHEMA_VERSION = 1
VERSIONED_PACKAGES = ("labral", "torch", "numpy", "scikit-learn", "monai", "pydicom", "scipy")


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


def _model_paths(cfg: DictConfig) -> list[str]:
    value = cfg.get("bundle")
    if value is None or value == "" or (isinstance(value, ListConfig) and len(value) == 0):
        raise BadConfigError("bundle: give a bundle folder (bundle=path) or a list (bundle=[a,b])")
    return [str(v) for v in value] if isinstance(value, ListConfig | list) else [str(value)]


def _unique_names(bundles: list[Bundle]) -> list[str]:
    names: list[str] = []
    for bundle in bundles:
        name, k = bundle.name, 2
        while name in names:
            name, k = f"{bundle.name}#{k}", k + 1
        names.append(name)
    return names


def _setting(cfg: DictConfig, key: str, minimum: int) -> int:
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, int) or value < minimum:
        raise BadConfigError(f"{key}={value!r}: must be an integer >= {minimum}")
    return value


def _ci_level(cfg: DictConfig) -> float:
    value = OmegaConf.select(cfg, "bootstrap.level", default=0.95)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise BadConfigError(f"bootstrap.level={value!r}: must be a number between 0 and 1")
    return float(value)


def _container(cfg: DictConfig, key: str) -> Any:
    value = cfg.get(key)
    return (
        OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else (value or {})
    )


def _write_predictions(
    path: Path, records: list[dict], names: list[str], passes: scoring.PassResult
) -> None:
    """predictions.csv: one row per clip; per model its probability, decision and relevance.

    Columns: ``path, patient, label, clip_type, shift``, ``p_<model>`` for every model, then
    for every model ``decision_<model>`` (0/1) and ``relevance_<model>`` (the clip's temporal
    relevance on its source frames, ``;``-separated, rounded as in the service's answer).
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
                *[f"p_{n}" for n in names],
                *[f"{col}_{n}" for n in names for col in ("decision", "relevance")],
            ]
        )
        for i, r in enumerate(records):
            probs = [f"{s.probability[i]:.9f}" for s in passes.scores]
            details = []
            for s in passes.scores:
                relevance = s.clips[i].rounded_relevance() if s.clips[i] else []
                details += [int(s.decision[i]), ";".join(f"{v:g}" for v in relevance)]
            writer.writerow(
                [
                    r["path"],
                    r["patient"],
                    r["label"],
                    r.get("clip_type", ""),
                    r.get("shift", ""),
                    *probs,
                    *details,
                ]
            )


def _write_spatial_maps(path: Path, passes: scoring.PassResult) -> None:
    """spatial_maps.npz: ``model<b>_clip<i>_frame<f>`` -> float32 (h, w) map (see
    :class:`labral.scoring.SpatialMap`); ``b`` indexes results.json ``models``, ``i`` the rows
    of predictions.csv, ``f`` a peak (source) frame of that clip."""
    arrays = {
        f"model{b}_clip{i}_frame{m.frame}": m.values
        for b, model in enumerate(passes.scores)
        for i, clip in enumerate(model.clips)
        if clip is not None
        for m in clip.spatial_maps
    }
    np.savez_compressed(path, **arrays)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Benchmark the bundle(s) in ``cfg.bundle`` on ``cfg.suite``; returns the results dict.

    Raises:
        BadConfigError: bad settings or an unknown suite name (lists the known suites).
        BadManifestError: a manifest suite with invalid rows or missing files (all listed).
        IncompatibleBundleError: a bundle this labral cannot run.
        GateFailedError: a ``fail_under`` threshold is not met (after all outputs are written).
    """
    paths = _model_paths(cfg)
    batch_size = _setting(cfg, "batch_size", 1)
    workers = _setting(cfg, "workers", 0)
    boot_n = _setting(cfg, "bootstrap.n", 1)
    tolerance = _setting(cfg, "localisation_tolerance", 0)
    ece_bins = _setting(cfg, "ece_bins", 1)
    latency_clips = _setting(cfg, "latency_clips", 0)
    spatial = bool(OmegaConf.select(cfg, "spatial_maps", default=False))  # +spatial_maps=true
    level = _ci_level(cfg)
    threads = _setting(cfg, "threads", 1) if cfg.get("threads") is not None else None
    gate = validate_gate(_container(cfg, "fail_under"))
    torch.set_num_threads(threads or scoring.model_threads(workers))
    bundles = [load_bundle(path) for path in paths]
    names = _unique_names(bundles)
    overrides = _container(cfg, "suite_overrides")
    generate_workers = _setting(cfg, "generate_workers", 1)
    suite = resolve_suite(
        str(cfg.suite), cfg.cache_dir, overrides, bool(cfg.get("progress", True)), generate_workers
    )
    perturb.check_sweep(suite.perturbations)
    out = Path(cfg.out) if cfg.get("out") else Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    transforms = scoring.eval_transforms(bundles)
    source = scoring.ClipSource([r["path"] for r in suite.records], keep=bool(suite.perturbations))
    n_passes = 1 + sum(len(p["levels"]) for p in suite.perturbations)
    show = bool(cfg.get("progress", True))
    with tqdm(total=len(source) * n_passes, desc="scoring", unit="clip", disable=not show) as bar:
        clean = scoring.score_pass(
            source,
            bundles,
            transforms,
            batch_size=batch_size,
            workers=workers,
            progress=bar.update,
            spatial=spatial,
        )
        sweep_passes = {}
        for item in suite.perturbations:
            for level in item["levels"]:
                sweep_passes[(item["name"], level)] = scoring.score_pass(
                    source,
                    bundles,
                    transforms,
                    batch_size=batch_size,
                    workers=workers,
                    perturbation=(item["name"], float(level), int(cfg.bootstrap.seed)),
                    progress=bar.update,
                )

    plan = metrics.ClusterBootstrap(
        [r["patient"] for r in suite.records], boot_n, int(cfg.bootstrap.seed)
    )
    per_model = {
        name: evaluate.evaluate_model(
            suite.records,
            scores,
            bundle.threshold,
            plan,
            ece_bins=ece_bins,
            tolerance=tolerance,
            level=level,
        )
        for name, bundle, scores in zip(names, bundles, clean.scores, strict=True)
    }
    robustness: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (name, lvl), passed in sweep_passes.items():
        for m, bundle, scores in zip(names, bundles, passed.scores, strict=True):
            point = evaluate.evaluate_robustness_point(
                suite.records, scores, bundle.threshold, plan, ece_bins=ece_bins, level=level
            )
            robustness.setdefault(name, {}).setdefault(m, []).append(
                {"level": lvl, "metrics": point}
            )
    speed = {}
    for b, (name, bundle, transform) in enumerate(zip(names, bundles, transforms, strict=True)):
        lat = (
            scoring.single_clip_latency(source, bundle, transform, latency_clips)
            if latency_clips
            else [np.nan]
        )
        speed[name] = {
            "clips_per_s": len(source) / clean.seconds,
            "pass_seconds_all_models": clean.seconds,
            "model_seconds": clean.model_seconds[b],
            "model_clips_per_s": len(source) / max(clean.model_seconds[b], 1e-9),
            "latency_ms_median": float(np.median(lat) * 1000),
            "latency_ms_p90": float(np.quantile(lat, 0.9) * 1000),
            "latency_clips": len(lat),
            "batch_size": batch_size,
            "decode_workers": workers,
        }
    arrays = evaluate.suite_arrays(suite.records)
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "suite": {
            "name": suite.name,
            "content_hash": suite.content_hash,
            "manifest": str(suite.manifest),
            "n_clips": len(suite.records),
            "n_patients": int(np.unique(arrays["patient"]).size),
            "definition": suite.definition,
        },
        "models": [
            {
                "name": n,
                "path": str(b.path),
                "sha256": b.sha256,
                "threshold": b.threshold,
                "temperature": b.temperature,
                "eval_transform": b.spec["eval_transform"],
            }
            for n, b in zip(names, bundles, strict=True)
        ],
        "settings": {
            "bootstrap_n": boot_n,
            "bootstrap_seed": int(cfg.bootstrap.seed),
            "ci_level": level,
            "ece_bins": ece_bins,
            "localisation_tolerance": tolerance,
            "spatial_maps": spatial,
            "reweight_prevalences": list(metrics.REWEIGHT_PREVALENCES),
        },
        "versions": versions(),
        "hardware": hardware(),
        "results": per_model,
        "robustness": robustness,
        "comparisons": evaluate.compare_models(suite.records, names, clean.scores, plan, level),
        "speed": speed,
        "created_unix": time.time(),
    }
    results["gate"] = check_gate(gate, {n: per_model[n]["overall"] for n in names})
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    _write_predictions(out / "predictions.csv", suite.records, names, clean)
    if spatial:
        _write_spatial_maps(out / "spatial_maps.npz", clean)
    probabilities = {n: s.probability for n, s in zip(names, clean.scores, strict=True)}
    (out / "report.html").write_text(report.render_report(results, arrays["y"], probabilities))
    print_summary(results, out)
    if results["gate"]["failed"]:
        from labral.bench.gate import GateFailedError

        raise GateFailedError(results["gate"]["failed"])
    return results
