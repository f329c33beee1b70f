"""``labral bench bundle=<bundle> suite=<name or manifest>``: metrics, report and a gate.

``bundle=[a,b]`` compares several bundles (the first is the candidate).

Order of work: check the config, load every bundle, resolve (and if needed generate) the
suite, check the robustness sweep and the patient overlap of a manifest suite with the
bundles' training splits (:mod:`labral.bench.overlap`) - every user error surfaces before
the first clip is scored. Then one clean pass (all bundles), the order controls (every
positive reversed and shuffled, :mod:`labral.bench.controls`), the pointing game on
positives with extrusion masks (:mod:`labral.bench.localisation`), the robustness passes, a
latency probe, and the outputs:
``results.json``, ``predictions.csv``, ``report.html`` under ``out`` (or Hydra's run dir),
a terminal summary, and finally the ``fail_under`` gate. ``+spatial_maps=true`` also writes
``spatial_maps.npz`` (the clean pass's spatial map on every clip's peak frames). Every clip
is scored by :class:`labral.scoring.ClipScorer`, as in the service.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from tqdm import tqdm

from labral.bench import bootstrap as metrics
from labral.bench import controls, evaluate, localisation, perturb, stats
from labral.bench import suite_scoring as scoring
from labral.bench.distributed import leave_scoring_group, score_pass_distributed, world
from labral.bench.gate import check_gate, validate_gate
from labral.bench.outputs import (
    hardware,
    statistics_settings,
    versions,
    write_predictions,
    write_spatial_maps,
)
from labral.bench.overlap import check_overlap
from labral.bench.report import html_report as report
from labral.bench.report.terminal import print_summary
from labral.bench.suites import resolve_suite
from labral.bundle import Bundle, load_bundle
from labral.errors import BadConfigError
from labral.metrics import DEFAULT_ECE_BINS
from labral.runtimes import check_runtime

RESULTS_SCHEMA_VERSION = 2


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


def _replicate_groups(names: list[str], bundles: list[Bundle]) -> dict[str, list[str]]:
    """Bundles of one recipe trained with other seeds (:func:`stats.recipe_key`), 2 or more."""
    groups: dict[str, list[str]] = {}
    for name, bundle in zip(names, bundles, strict=True):
        groups.setdefault(stats.recipe_key(bundle.spec), []).append(name)
    return {names_[0]: names_ for names_ in groups.values() if len(names_) > 1}


def _replicates(groups: dict[str, list[str]], per_model: dict[str, Any]) -> dict[str, Any]:
    """Mean +- SD of the headline AUROCs over each group of replicate bundles."""
    out = {}
    for first, members in groups.items():
        blocks = [per_model[m] for m in members]
        entry = {
            "models": members,
            "auroc": stats.replicate_spread([b["overall"]["auroc"]["value"] for b in blocks]),
            "per_shift": {
                shift: stats.replicate_spread(
                    [b["per_shift"][shift]["auroc"]["value"] for b in blocks]
                )
                for shift in blocks[0]["per_shift"]
            },
        }
        out[first] = entry
    return out


def run(cfg: DictConfig) -> dict[str, Any]:
    """Benchmark the bundle(s) in ``cfg.bundle`` on ``cfg.suite``; returns the results dict.

    Raises:
        BadConfigError: bad settings or an unknown suite name (lists the known suites).
        BadManifestError: a manifest suite with invalid rows or missing files (all listed).
        IncompatibleBundleError: a bundle this labral cannot run.
        OverlapError: a manifest holds clips of a bundle's training patients (``overlap=refuse``).
        GateFailedError: a ``fail_under`` threshold is not met (after all outputs are written).
    """
    if cfg.get("predictions"):  # saved predictions (a CV run's oof_predictions.csv): no model
        from labral.bench.saved_predictions import run as run_saved

        return run_saved(cfg)
    paths = _model_paths(cfg)
    batch_size = _setting(cfg, "batch_size", 1)
    workers = _setting(cfg, "workers", 0)
    boot_n = _setting(cfg, "bootstrap.n", 1)
    boot_seed = int(cfg.bootstrap.seed)
    tolerance = _setting(cfg, "localisation_tolerance", 0)
    ece_bins = _setting(cfg, "ece_bins", 1) if cfg.get("ece_bins") is not None else DEFAULT_ECE_BINS
    latency_clips = _setting(cfg, "latency_clips", 0)
    spatial = bool(OmegaConf.select(cfg, "spatial_maps", default=False))  # +spatial_maps=true
    with_controls = bool(cfg.get("controls", True))
    with_pointing = bool(cfg.get("pointing_game", True))
    level = _ci_level(cfg)
    threads = _setting(cfg, "threads", 1) if cfg.get("threads") is not None else None
    gate = validate_gate(_container(cfg, "fail_under"))
    runtime = check_runtime(cfg.runtime) if cfg.get("runtime") else None
    torch.set_num_threads(threads or scoring.model_threads(workers))
    bundles = [load_bundle(path, runtime=runtime) for path in paths]
    names = _unique_names(bundles)
    overrides = _container(cfg, "suite_overrides")
    generate_workers = _setting(cfg, "generate_workers", 1)
    show = bool(cfg.get("progress", True))
    suite = resolve_suite(str(cfg.suite), cfg.cache_dir, overrides, show, generate_workers)
    perturb.check_sweep(suite.perturbations)
    overlap = {"mode": "not needed: synthetic suite patients are disjoint from training"}
    if not suite.definition:  # a manifest: its patients may be the bundles' training patients
        keep, overlap = check_overlap(
            suite.records, bundles, names, str(cfg.get("overlap", "refuse"))
        )
        suite.records = [r for r, k in zip(suite.records, keep, strict=True) if k]
        if not suite.records:
            raise BadConfigError("overlap=exclude left no clips to score; use a held-out manifest")
    out = Path(cfg.out) if cfg.get("out") else Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    records = suite.records
    transforms = scoring.eval_transforms(bundles)
    positives = np.flatnonzero([int(r["label"]) == 1 for r in records])
    # every clip is decoded once: the positives (or, for a sweep, all) are kept for the
    # order controls, the pointing game and the report
    keep = True if suite.perturbations else positives.tolist()
    source = scoring.ClipSource([r["path"] for r in records], keep=keep)
    n_pointing = sum(1 for i in positives if records[i].get("extrusion_mask"))
    n_passes = 1 + sum(len(p["levels"]) for p in suite.perturbations)
    total = (
        len(source) * n_passes
        + (len(positives) * len(controls.CONTROLS) if with_controls else 0)
        + (n_pointing if with_pointing else 0)
    )
    score = dict(batch_size=batch_size, workers=workers)
    timings: dict[str, float] = {}
    with tqdm(total=total, desc="scoring", unit="clip", disable=not show) as bar:
        clean = score_pass_distributed(
            source, bundles, transforms, **score, progress=bar.update, spatial=spatial
        )
        control_passes = {}
        if with_controls and positives.size:
            started = time.perf_counter()
            control_passes = controls.score_controls(
                source.subset(positives),
                bundles,
                transforms,
                boot_seed,
                progress=bar.update,
                **score,
            )
            timings["controls_seconds"] = time.perf_counter() - started
        pointing: list[dict[str, Any]] = []
        if with_pointing and n_pointing and world()[0] == 0:  # rank 0 alone under torchrun
            started = time.perf_counter()
            plan_all = metrics.ClusterBootstrap([r["patient"] for r in records], boot_n, boot_seed)
            pointing = localisation.pointing_game(
                records,
                source,
                bundles,
                transforms,
                plan_all,
                level,
                bar.update,
            )
            timings["pointing_seconds"] = time.perf_counter() - started
        sweep_passes = {}
        for item in suite.perturbations:
            for lvl in item["levels"]:
                sweep_passes[(item["name"], lvl)] = score_pass_distributed(
                    source,
                    bundles,
                    transforms,
                    **score,
                    perturbation=(item["name"], float(lvl), boot_seed),
                    progress=bar.update,
                )

    rank, ranks = world()
    if ranks > 1:  # torchrun: every rank scored its shard; rank 0 evaluates and writes
        leave_scoring_group()
        if rank != 0:
            return {}
    plan = metrics.ClusterBootstrap([r["patient"] for r in records], boot_n, boot_seed)
    per_model = {
        name: evaluate.evaluate_model(
            records,
            scores,
            bundle.threshold,
            plan,
            ece_bins=ece_bins,
            tolerance=tolerance,
            level=level,
        )
        for name, bundle, scores in zip(names, bundles, clean.scores, strict=True)
    }
    for b, name in enumerate(names):
        if control_passes:
            per_model[name]["order_controls"] = controls.order_controls(
                records,
                positives,
                clean.scores[b].probability,
                {c: p.scores[b].probability for c, p in control_passes.items()},
                boot_n,
                boot_seed,
                level,
            )
        if pointing:
            block = {k: v for k, v in pointing[b].items() if k != "examples"}
            per_model[name]["localisation"]["pointing_game"] = block
    robustness: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (name, lvl), passed in sweep_passes.items():
        for m, bundle, scores in zip(names, bundles, passed.scores, strict=True):
            point = evaluate.evaluate_robustness_point(
                records, scores, bundle.threshold, plan, ece_bins=ece_bins, level=level
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
    arrays = evaluate.suite_arrays(records)
    groups = _replicate_groups(names, bundles)
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "suite": {
            "name": suite.name,
            "content_hash": suite.content_hash,
            "manifest": str(suite.manifest),
            "n_clips": len(records),
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
                "recipe": stats.recipe_key(b.spec),
                "runtime": b.runtime,
            }
            for n, b in zip(names, bundles, strict=True)
        ],
        "settings": {
            **statistics_settings(boot_n, boot_seed, level, ece_bins),
            "localisation_tolerance": tolerance,
            "spatial_maps": spatial,
            "order_controls": list(control_passes),
        },
        "overlap": overlap,
        "versions": versions(),
        "hardware": hardware(),
        "results": per_model,
        "replicates": _replicates(groups, per_model),
        "robustness": robustness,
        "comparisons": evaluate.compare_models(records, names, clean.scores, plan, level),
        "speed": speed,
        "pass_seconds": {"clean": clean.seconds, **timings},
        "created_unix": time.time(),
    }
    results["gate"] = check_gate(gate, {n: per_model[n]["overall"] for n in names})
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    write_predictions(out / "predictions.csv", records, names, clean)
    if spatial:
        write_spatial_maps(out / "spatial_maps.npz", clean)
    probabilities = {n: s.probability for n, s in zip(names, clean.scores, strict=True)}
    examples = {n: p["examples"] for n, p in zip(names, pointing, strict=False)}
    html_report = report.render_report(results, arrays["y"], probabilities, examples, source)
    (out / "report.html").write_text(html_report)
    print_summary(results, out)
    if results["gate"]["failed"]:
        from labral.bench.gate import GateFailedError

        raise GateFailedError(results["gate"]["failed"])
    return results


def main() -> None:
    """``python -m labral.bench.command ...`` (how torchrun starts it): ``labral bench ...``."""
    import sys

    from labral.cli import main as cli_main

    sys.exit(cli_main(["bench", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
