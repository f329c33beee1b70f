"""``labral bench bundle=<bundle> suite=<name or manifest>``: metrics, report and a gate.

``bundle=[a,b]`` compares several bundles (the first is the candidate);
``predictions=<csv>`` evaluates saved predictions instead (:mod:`labral.bench.saved_predictions`).

Order of work: check the settings (:class:`~labral.bench.settings.BenchSettings`), load every
bundle, resolve (and if needed generate) the suite, check the robustness sweep and the
patient overlap of a manifest suite with the bundles' training splits
(:mod:`labral.bench.overlap`) - every user error surfaces before the first clip is scored.
Then the passes (:mod:`labral.bench.passes`: clean, order controls, pointing game,
robustness), the evaluation (:mod:`labral.bench.results`), a latency probe, and the outputs:
``results.json``, ``predictions.csv``, ``report.html`` (with the first model's failure cases,
:mod:`labral.bench.failure_cases`) and ``report.pdf`` (``pdf=auto|true|false``,
:mod:`labral.bench.pdf`) under ``out`` (or Hydra's run dir), a terminal summary, and finally
the ``fail_under`` gate. ``+spatial_maps=true`` also writes ``spatial_maps.npz`` (the clean
pass's spatial map on every clip's peak frames). Every clip
is scored by :class:`labral.scoring.ClipScorer`, as in the service.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from labral.bench import evaluate, failure_cases, perturb
from labral.bench import suite_scoring as scoring
from labral.bench.distributed import leave_scoring_group, world
from labral.bench.gate import GateFailedError, check_gate, validate_gate
from labral.bench.outputs import (
    spatial_arrays,
    write_predictions,
    write_results,
    write_spatial_maps,
)
from labral.bench.overlap import check_overlap
from labral.bench.passes import ScoredSuite, score_suite
from labral.bench.pdf import bench_pdf, check_pdf_setting
from labral.bench.report import html_report as report
from labral.bench.report.terminal import print_summary
from labral.bench.results import bundle_results, unique_names
from labral.bench.saved_predictions import run_saved_predictions
from labral.bench.settings import ADDED_ON_COMMAND_LINE, SCHEMA_NAME, BenchSettings
from labral.bench.suites import Suite, resolve_suite
from labral.bundle import Bundle, load_bundle
from labral.cli import main as cli_main
from labral.errors import BadConfigError
from labral.runtimes import check_runtime
from labral.settings import register_schema, settings_from_config

__all__ = ["main", "resolve_suite", "run"]

register_schema(SCHEMA_NAME, BenchSettings, leave_out=ADDED_ON_COMMAND_LINE)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Benchmark the bundle(s) in ``cfg.bundle`` on ``cfg.suite``; returns the results dict.

    Raises:
        BadConfigError: bad settings or an unknown suite name (lists the known suites).
        BadManifestError: a manifest suite with invalid rows or missing files (all listed).
        IncompatibleBundleError: a bundle this labral cannot run.
        OverlapError: a manifest holds clips of a bundle's training patients (``overlap=refuse``).
        GateFailedError: a ``fail_under`` threshold is not met (after all outputs are written).
    """
    settings = settings_from_config(BenchSettings, cfg, ignore=("paths",))
    out = Path(settings.out) if settings.out else Path(cfg.paths.output_dir)
    if settings.predictions:  # saved predictions (a CV run's oof_predictions.csv): no model
        return run_saved_predictions(settings, out)
    return run_bundles(settings, out)


def run_bundles(settings: BenchSettings, out: Path) -> dict[str, Any]:
    """Score ``settings.bundle`` on ``settings.suite`` and write every output into ``out``.

    Returns the results dict ({} on a torchrun rank other than 0). Raises as :func:`run`.
    """
    if not settings.bundle:
        raise BadConfigError("bundle: give a bundle folder (bundle=path) or a list (bundle=[a,b])")
    gate = validate_gate(settings.fail_under)
    check_pdf_setting(settings.pdf)
    runtime = check_runtime(settings.runtime) if settings.runtime else None
    torch.set_num_threads(settings.threads or scoring.model_threads(settings.workers))
    bundles = [load_bundle(path, runtime=runtime) for path in settings.bundle]
    names = unique_names(bundles)
    suite, overlap = _checked_suite(settings, bundles, names)
    out.mkdir(parents=True, exist_ok=True)
    transforms = scoring.eval_transforms(bundles)
    scored = score_suite(settings, suite.records, suite.perturbations, bundles, transforms)
    rank, ranks = world()
    if ranks > 1:  # torchrun: every rank scored its shard; rank 0 evaluates and writes
        leave_scoring_group()
        if rank != 0:
            return {}
    results = bundle_results(settings, suite, overlap, names, bundles, transforms, scored)
    results["gate"] = check_gate(gate, {n: results["results"][n]["overall"] for n in names})
    _write_outputs(settings, out, results, suite, (names, bundles, transforms), scored)
    if results["gate"]["failed"]:
        raise GateFailedError(results["gate"]["failed"])
    return results


def _checked_suite(
    settings: BenchSettings, bundles: list[Bundle], names: list[str]
) -> tuple[Suite, dict[str, Any]]:
    """The resolved suite, its sweep checked and (a manifest) its training patients handled.

    Returns the suite (records left out by ``overlap=exclude`` removed) and the ``overlap``
    block of results.json.
    """
    suite = resolve_suite(
        settings.suite,
        settings.cache_dir,
        settings.suite_overrides,
        settings.progress,
        settings.generate_workers,
    )
    perturb.check_sweep(suite.perturbations)
    if suite.definition:
        return suite, {"mode": "not needed: synthetic suite patients are disjoint from training"}
    # a manifest: its patients may be the bundles' training patients
    keep, overlap = check_overlap(suite.records, bundles, names, settings.overlap)
    suite.records = [r for r, k in zip(suite.records, keep, strict=True) if k]
    if not suite.records:
        raise BadConfigError("overlap=exclude left no clips to score; use a held-out manifest")
    return suite, overlap


def _write_outputs(
    settings: BenchSettings,
    out: Path,
    results: dict[str, Any],
    suite: Suite,
    models: tuple[list[str], list[Bundle], list[Callable[[dict], dict]]],
    scored: ScoredSuite,
) -> None:
    """predictions.csv, results.json (with ``failure_cases``, read from predictions.csv),
    (spatial_maps.npz), report.html with its failure cases, (report.pdf) and the terminal
    summary.

    Args:
        models: the models' names, bundles and eval transforms, in results.json's order.
    """
    names = models[0]
    write_predictions(out / "predictions.csv", suite.records, names, scored.clean)
    rows: list[dict[str, str]] = []
    if top := settings.failure_cases:  # the cases are picked from predictions.csv as written
        with open(out / "predictions.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        results["failure_cases"] = failure_cases.failure_block(results, rows, top)
    write_results(out, results)
    arrays = spatial_arrays(scored.clean)  # empty without +spatial_maps=true
    if settings.spatial_maps:
        write_spatial_maps(out / "spatial_maps.npz", arrays)
    labels = evaluate.suite_arrays(suite.records)["y"]
    probabilities = {n: s.probability for n, s in zip(names, scored.clean.scores, strict=True)}
    examples = {n: p["examples"] for n, p in zip(names, scored.pointing, strict=False)}
    failures = _failure_section(settings, rows, results, models, scored, arrays)
    html = report.render_report(results, labels, probabilities, examples, scored.source, failures)
    (out / "report.html").write_text(html)
    written = bench_pdf(out / "report.html", settings.pdf)
    print_summary(results, out)
    if written is not None:
        print(f"pdf:     {written}")


def _failure_section(
    settings: BenchSettings,
    rows: list[dict[str, str]],
    results: dict[str, Any],
    models: tuple[list[str], list[Bundle], list[Callable[[dict], dict]]],
    scored: ScoredSuite,
    arrays: dict[str, np.ndarray],
) -> list[str]:
    """The first model's failure cases for report.html: those of results.json's
    ``failure_cases`` (picked from ``rows``, predictions.csv; nothing for
    ``failure_cases=0``), with their maps from ``arrays`` (the pass's spatial maps) or,
    without ``+spatial_maps=true``, computed here for those clips alone."""
    if not settings.failure_cases:
        return []
    _, bundles, transforms = models
    maps = {k: v for k, v in arrays.items() if k.startswith("model0_")}
    if not maps:  # failure cases need maps for a handful of clips only
        block = results["failure_cases"]
        chosen = [case["row"] for kind in failure_cases.KINDS for case in block[kind]]
        maps = failure_cases.first_model_maps(scored.source, bundles[0], transforms[0], chosen)
    return failure_cases.html_section(
        results, rows, maps, scored.source.get, top=settings.failure_cases
    )


def main() -> None:
    """``python -m labral.bench.command ...`` (how torchrun starts it): ``labral bench ...``."""
    sys.exit(cli_main(["bench", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
